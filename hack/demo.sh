#!/usr/bin/env bash
# `make demo`: builds what the demo needs, starts PostgreSQL, and runs
# hack/demo (the dev cluster, the manager, pacer-api pods, load in phases,
# a live table and a report). Works on a fresh machine; the first run builds
# the control-plane binaries (minutes). DEMO_DURATION=1m shortens it.
# `make demo-compare` runs it with --compare (static, HPA, Pacer in turn).
# `make demo-budget` runs it with --budget (two services on one ConnectionBudget).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "building bin/manager, bin/pacer-api, bin/devcluster" >&2
go build -o bin/manager .
go build -o bin/pacer-api ./service/cmd/pacer-api
(cd hack/devcluster && go build -o ../../bin/devcluster .)
KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh etcd kube-apiserver kube-controller-manager kube-scheduler)"
# Resource metrics are optional here: without metrics-server the dev cluster says so and runs.
hack/envtest-assets.sh metrics-server >/dev/null || echo "WARNING: could not build metrics-server; the dev cluster runs without resource metrics" >&2
DATABASE_URL="$(hack/postgres.sh)"
export KUBEBUILDER_ASSETS DATABASE_URL
go build -o bin/demo ./hack/demo
# The load generator measures latency: on a shared machine its own wait for
# a CPU would count as the service's. Root runs it (and the cluster it
# starts) at a higher priority; anyone else as is.
if [ "$(id -u)" = 0 ]; then
  exec nice -n -10 bin/demo "$@"
fi
exec bin/demo "$@"
