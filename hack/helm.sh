#!/usr/bin/env bash
# Builds helm from the pinned Go module under hack/tools/helm, once per
# machine, into a cache outside the repo keyed by version (as
# hack/envtest-assets.sh does for the Kubernetes binaries), and prints the
# binary's path: the chart tests run `helm lint` and `helm template` with it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(awk '$1=="require" && $2=="helm.sh/helm/v4" {print $3}' "$root/hack/tools/helm/go.mod")"
base="${PACER_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pacer/k8s}"
cache="$base/helm-${version#v}-$(go env GOOS)-$(go env GOARCH)"
bin="$cache/helm"
if [[ ! -x "$bin" ]]; then
	echo "building helm $version (first time on this machine; takes minutes)" >&2
	mkdir -p "$cache"
	# Build to a temp name and rename, so an interrupted build never leaves a
	# half-written binary that a later run would trust.
	(cd "$root/hack/tools/helm" && CGO_ENABLED=0 go build -trimpath \
		-ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
		-o "$cache/.helm.tmp" helm.sh/helm/v4/cmd/helm)
	mv "$cache/.helm.tmp" "$bin"
fi
echo "$bin"
