#!/usr/bin/env bash
# Starts a local PostgreSQL for pacer's tests and prints its DSN on stdout.
#
# Works on a fresh Debian 12 machine as root: installs PostgreSQL with apt if
# it is missing, starts the cluster, and creates the test role and database
# if they do not exist. Safe to run any number of times. Listens on loopback
# only. Progress goes to stderr so that `DSN=$(hack/postgres.sh)` works.
#
# Env: PACER_PG_USER, PACER_PG_PASSWORD, PACER_PG_DB, PACER_PG_PORT.
set -euo pipefail

user="${PACER_PG_USER:-pacer}"
password="${PACER_PG_PASSWORD:-pacer}"
db="${PACER_PG_DB:-pacer}"
port="${PACER_PG_PORT:-5432}"

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q postgresql >&2
fi

# The newest installed major version, e.g. 15 on Debian 12.
version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
  log "creating cluster $version/main"
  pg_createcluster "$version" main --port="$port" >&2
fi

conf_dir="/etc/postgresql/$version/main"
# Loopback only, and enough connections for parallel test packages and pool swaps.
settings_changed=no
if ! grep -q '^# pacer test settings' "$conf_dir/postgresql.conf"; then
  settings_changed=yes
  cat >>"$conf_dir/postgresql.conf" <<CONF
# pacer test settings
listen_addresses = '127.0.0.1'
max_connections = 300
CONF
fi

# A server killed without shutting down (a CI runner ending a session's
# processes) leaves lock files naming its PID. PostgreSQL refuses to start
# while that PID is alive, even when the PID now belongs to another program.
remove_stale_lock() { # FILE [SOCKET]
  local pid
  [ -f "$1" ] || return 0
  pid="$(head -1 "$1" | tr -d ' ')"
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]; then
    log "removing stale $1 (PID ${pid:-none} is not a running postgres)"
    rm -f "$@"
  fi
}

if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  # A killed server's processes may take a moment to be gone: try a few times.
  for attempt in 1 2 3 4 5; do
    for lock in /var/run/postgresql/.s.PGSQL.*.lock; do
      remove_stale_lock "$lock" "${lock%.lock}"
    done
    remove_stale_lock "/var/lib/postgresql/$version/main/postmaster.pid"
    log "starting cluster $version/main"
    if pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2; then
      break
    fi
    [ "$attempt" = 5 ] && { log "could not start PostgreSQL"; exit 1; }
    sleep 2
  done
elif [ "$settings_changed" = yes ]; then
  # Started by the package's install before our settings were there.
  log "restarting cluster $version/main to apply the test settings"
  pg_ctlcluster --skip-systemctl-redirect "$version" main restart >&2
fi

actual_port="$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')"

# From /: the postgres user may not enter the caller's folder (a 0700 temp clone), and psql says so on every call.
psql_admin() { (cd / && runuser -u postgres -- psql -p "$actual_port" -v ON_ERROR_STOP=1 -qtAX "$@"); }

# Wait for the server to accept connections.
for _ in $(seq 1 60); do
  if psql_admin -c 'select 1' >/dev/null 2>&1; then break; fi
  sleep 0.5
done

if [ "$(psql_admin -c "select 1 from pg_roles where rolname = '$user'")" != "1" ]; then
  log "creating role $user"
  # CREATEDB lets tests create a database per test package for isolation.
  psql_admin -c "create role \"$user\" login createdb password '$password'"
fi
if [ "$(psql_admin -c "select 1 from pg_database where datname = '$db'")" != "1" ]; then
  log "creating database $db"
  psql_admin -c "create database \"$db\" owner \"$user\""
fi

echo "postgres://$user:$password@127.0.0.1:$actual_port/$db?sslmode=disable"
