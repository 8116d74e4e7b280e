#!/usr/bin/env bash
# Starts a local Redis for pacer's tests and prints its URL on stdout.
#
# Works on a fresh Debian 12 machine as root: installs redis-server with apt
# if it is missing and starts it on 127.0.0.1 (no systemd needed). Safe to run
# any number of times. Progress goes to stderr so that `URL=$(hack/redis.sh)`
# works.
#
# Env: PACER_REDIS_PORT (default 6379).
set -euo pipefail

port="${PACER_REDIS_PORT:-6379}"
log() { echo "redis.sh: $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q redis-server >&2
fi

if ! redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
  log "starting redis-server on 127.0.0.1:$port"
  dir="/var/lib/pacer-redis-$port"
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" >&2
  for _ in $(seq 1 50); do
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null
fi

echo "redis://127.0.0.1:$port/0"
