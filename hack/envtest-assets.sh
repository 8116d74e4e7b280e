#!/usr/bin/env bash
# Builds the control-plane binaries envtest and the dev cluster run, from the
# pinned Go modules under hack/tools, once per machine. They are cached
# outside the repo, keyed by version, as setup-envtest does, and the folder is
# printed on stdout for KUBEBUILDER_ASSETS.
#
#   hack/envtest-assets.sh                       # kube-apiserver + etcd (envtest)
#   hack/envtest-assets.sh kube-controller-manager kube-scheduler   # extra binaries
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kube_version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$root/hack/tools/kube/go.mod")"
etcd_version="$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$root/hack/tools/etcd/go.mod")"
cache="${PACER_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pacer/k8s}/${kube_version#v}-etcd-${etcd_version#v}-$(go env GOOS)-$(go env GOARCH)"
mkdir -p "$cache"

build() { # build NAME MODULE_DIR PACKAGE [LDFLAGS]
	local name=$1 dir=$2 pkg=$3 ldflags=${4:-}
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
	kube-apiserver | kube-controller-manager | kube-scheduler)
		# Stamp the real version: kube-apiserver reports it in /version and
		# derives its default compatibility version from it.
		v=k8s.io/component-base/version
		minor="${kube_version#v1.}" minor="${minor%%.*}"
		build "$name" "$root/hack/tools/kube" "k8s.io/kubernetes/cmd/$name" \
			"-X $v.gitVersion=$kube_version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" ;;
	*) echo "unknown binary: $name" >&2; exit 2 ;;
	esac
done
echo "$cache"
