#!/usr/bin/env bash
# Runs govulncheck over the root module and the dev cluster's module, against
# the vulnerability database pinned in hack/tools/govulncheck/go.mod, with no
# network once the module cache holds that module (the CI cache does).
#
#   hack/vulncheck.sh            # make vulncheck
#
# govulncheck, indexdb and the database folder are built once per machine,
# keyed by version, outside the repo (as hack/envtest-assets.sh does). The
# database is made from the OSV files of golang.org/x/vulndb, which the Go
# module proxy serves like any module: indexdb writes the index files
# govulncheck's -db file://... reads. Exit status 3 means a vulnerability
# is reachable from our code: CI (.ci/run) fails on any, in a module or in
# the standard library of the project's Go.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/hack/tools/govulncheck"
vuln_version="$(awk '$1=="golang.org/x/vuln" {print $2}' "$tools/go.mod")"
db_version="$(awk '$1=="golang.org/x/vulndb" {print $2}' "$tools/go.mod")"
cache="${PACER_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pacer/tools}"
mkdir -p "$cache"

# govulncheck's key names the Go that built it: it type-checks the standard
# library with its own go/types, which refuses a newer Go's (hack/go-env.sh).
go_version="$(go env GOVERSION)"
govulncheck="$cache/govulncheck-$vuln_version-$go_version"
build() { # build BINARY PACKAGE
	[[ -x "$1" ]] && return 0
	echo "building $2 (once per machine, cached in $cache)" >&2
	(cd "$tools" && CGO_ENABLED=0 go build -trimpath -o "$1.tmp" "$2")
	mv "$1.tmp" "$1"
}
build "$govulncheck" golang.org/x/vuln/cmd/govulncheck
build "$cache/indexdb-$db_version" golang.org/x/vulndb/cmd/indexdb

db="$cache/vulndb-$db_version"
if [[ ! -f "$db/index/modules.json" ]]; then
	src="$(cd "$tools" && go mod download -json golang.org/x/vulndb | awk -F'"' '$2=="Dir" {print $4}')"
	echo "indexing the vulnerability database $db_version" >&2
	rm -rf "$db.tmp"
	"$cache/indexdb-$db_version" -vulns "$src/data/osv" -out "$db.tmp"
	mv "$db.tmp" "$db"
fi

status=0
for module in "$root" "$root/hack/devcluster"; do
	echo "== govulncheck ${module#"$root"}/... ($go_version, database $db_version)" >&2
	(cd "$module" && "$govulncheck" -db "file://$db" ./...) || status=$?
done
exit "$status"
