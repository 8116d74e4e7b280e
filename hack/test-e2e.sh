#!/usr/bin/env bash
# `make test-e2e`: builds the binaries and control-plane assets, starts
# PostgreSQL, and runs the end-to-end test (test/e2e, build tag e2e) on the
# dev cluster. Under CI=true a missing dependency fails the test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

go build -o bin/manager .
go build -o bin/pacer-api ./service/cmd/pacer-api
(cd hack/devcluster && go build -o ../../bin/devcluster .)
KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh etcd kube-apiserver kube-controller-manager kube-scheduler)"
# Without them the resource metrics subtests skip (and fail under CI=true).
hack/envtest-assets.sh metrics-server kubectl >/dev/null || echo "WARNING: could not build metrics-server or kubectl" >&2
PACER_TEST_DATABASE_URL="$(hack/postgres.sh)"
export KUBEBUILDER_ASSETS PACER_TEST_DATABASE_URL
exec go test -tags e2e -count=1 -v -timeout 15m ./test/e2e "$@"
