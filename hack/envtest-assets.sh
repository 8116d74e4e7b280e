#!/usr/bin/env bash
# Builds the control-plane binaries envtest and the dev cluster run, from the
# pinned Go modules under hack/tools, once per machine. They are cached
# outside the repo, keyed by version, as setup-envtest does, and the folder is
# printed on stdout for KUBEBUILDER_ASSETS.
#
#   hack/envtest-assets.sh                       # kube-apiserver + etcd (envtest)
#   hack/envtest-assets.sh kube-controller-manager kube-scheduler   # extra binaries
#   hack/envtest-assets.sh metrics-server kubectl   # the dev cluster's resource metrics
#
# metrics-server has a version of its own (hack/tools/metrics-server): it is
# built into a folder keyed by that version and linked into the printed one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kube_version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$root/hack/tools/kube/go.mod")"
etcd_version="$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$root/hack/tools/etcd/go.mod")"
ms_version="$(awk '$1=="require" && $2=="sigs.k8s.io/metrics-server" {print $3}' "$root/hack/tools/metrics-server/go.mod")"
base="${PACER_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pacer/k8s}"
platform="$(go env GOOS)-$(go env GOARCH)"
cache="$base/${kube_version#v}-etcd-${etcd_version#v}-$platform"
mkdir -p "$cache"

build() { # build NAME MODULE_DIR PACKAGE [LDFLAGS [CACHE]]
	local name=$1 dir=$2 pkg=$3 ldflags=${4:-} cache=${5:-$cache}
	mkdir -p "$cache"
	[[ -x "$cache/$name" ]] && return 0
	echo "building $name from $pkg (first time on this machine; takes minutes)" >&2
	# Build to a temp name and rename, so an interrupted build never leaves a
	# half-written binary that a later run would trust.
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $ldflags" -o "$cache/.$name.tmp" "$pkg")
	mv "$cache/.$name.tmp" "$cache/$name"
}

wanted=("$@")
[[ ${#wanted[@]} -eq 0 ]] && wanted=(etcd kube-apiserver)
for name in "${wanted[@]}"; do
	case "$name" in
	etcd) build etcd "$root/hack/tools/etcd" go.etcd.io/etcd/server/v3 ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		# Stamp the real version: kube-apiserver reports it in /version and
		# derives its default compatibility version from it.
		v=k8s.io/component-base/version
		minor="${kube_version#v1.}" minor="${minor%%.*}"
		build "$name" "$root/hack/tools/kube" "k8s.io/kubernetes/cmd/$name" \
			"-X $v.gitVersion=$kube_version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" ;;
	metrics-server)
		ms_cache="$base/metrics-server-${ms_version#v}-$platform"
		build metrics-server "$root/hack/tools/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server \
			"-X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$ms_version" "$ms_cache"
		# Re-linked every time, so a new pin takes effect without a stale link.
		ln -sfn "$ms_cache/metrics-server" "$cache/metrics-server" ;;
	*) echo "unknown binary: $name" >&2; exit 2 ;;
	esac
done
echo "$cache"
