#!/usr/bin/env bash
# Benchmarks pacer-api against a bare net/http + pgxpool baseline, side by
# side in one run, on loopback only (see docs/service.md for the figures).
#
#   hack/bench-service.sh [loadgen bench flags, e.g. -duration 10s -conns 64]
#
# Starts PostgreSQL with hack/postgres.sh unless PACER_BENCH_DATABASE_URL or
# DATABASE_URL is set. Every load loop is bounded in time and count. Writes
# reports/bench-service.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
cd "$(dirname "$0")/.."

# PACER_BENCH_DATABASE_URL (as the Makefile passes it) or DATABASE_URL, else start one.
DATABASE_URL="${PACER_BENCH_DATABASE_URL:-${DATABASE_URL:-}}"
if [ -z "$DATABASE_URL" ]; then
  DATABASE_URL="$(hack/postgres.sh)"
fi
export DATABASE_URL

mkdir -p bin reports
go build -o bin/pacer-api ./service/cmd/pacer-api
go build -o bin/loadgen ./hack/loadgen
exec bin/loadgen bench -pacer-api bin/pacer-api -out reports/bench-service.md "$@"
