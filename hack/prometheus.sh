#!/usr/bin/env bash
# Installs Prometheus for pacer's tests and prints the path of its binary on
# stdout, so that `PACER_TEST_PROMETHEUS_BIN=$(hack/prometheus.sh)` works.
# The tests start their own Prometheus from that binary, on a free loopback
# port with a config and data directory of their own, and stop it.
#
# Works on a fresh Debian 12 machine as root: installs Debian's `prometheus`
# package with apt if it is missing, without starting the packaged service
# (a daemon on :9090 of every interface is not wanted on a test machine).
# Safe to run any number of times. Progress goes to stderr.
#
# Usage:
#   hack/prometheus.sh                          install if needed, print the binary
#   hack/prometheus.sh serve CONFIG DATADIR [ADDR]
#                                               install if needed, then run Prometheus in
#                                               the foreground with CONFIG, storing in
#                                               DATADIR, listening on ADDR
#                                               (default 127.0.0.1:9095; loopback only)
set -euo pipefail

log() { echo "prometheus.sh: $*" >&2; }

bin="$(command -v prometheus || true)"
if [ -z "$bin" ]; then
  log "installing prometheus"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's init script from starting a daemon during install.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap '[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends prometheus >&2
  bin="$(command -v prometheus)"
fi

case "${1:-}" in
  "")
    echo "$bin"
    ;;
  serve)
    config="${2:?usage: hack/prometheus.sh serve CONFIG DATADIR [ADDR]}"
    data="${3:?usage: hack/prometheus.sh serve CONFIG DATADIR [ADDR]}"
    addr="${4:-127.0.0.1:9095}"
    case "$addr" in
      127.*|localhost:*|\[::1\]:*) ;;
      *) log "ADDR must be a loopback address, got $addr"; exit 2 ;;
    esac
    mkdir -p "$data"
    log "serving on http://$addr with $config, data in $data"
    exec "$bin" --config.file="$config" --storage.tsdb.path="$data" \
      --web.listen-address="$addr" --storage.tsdb.retention.time=1d
    ;;
  *)
    log "unknown command: $1"
    exit 2
    ;;
esac
