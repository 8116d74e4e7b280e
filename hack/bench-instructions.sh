#!/usr/bin/env bash
# Counts the user-space instructions of one uncached read of pacer-api and of
# the bare baseline under valgrind's callgrind (loadgen instructions): a figure
# that hardly moves with other load on the machine, unlike CPU time. Loopback
# only; every load loop is bounded in count. Writes reports/bench-instructions.md.
#
#   hack/bench-instructions.sh [-requests 5000] [-repeats 2] [-conns 16]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
DATABASE_URL="${PACER_BENCH_DATABASE_URL:-${DATABASE_URL:-}}"
if [ -z "$DATABASE_URL" ]; then
  DATABASE_URL="$(hack/postgres.sh)"
fi
export DATABASE_URL

# Without cgo: valgrind does not follow cgo's threads.
mkdir -p bin/instr reports
CGO_ENABLED=0 go build -o bin/instr/pacer-api ./service/cmd/pacer-api
CGO_ENABLED=0 go build -o bin/instr/loadgen ./hack/loadgen
exec bin/instr/loadgen instructions -pacer-api bin/instr/pacer-api -out reports/bench-instructions.md "$@"
