#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (and for trying the multi-gate set-up by hand).
#
#   scripts/pg-cluster.sh start [DIR] [--watch PID]   initdb in DIR (default: a new temporary folder), start it on a
#                                                     free port of 127.0.0.1, create the roles and the database, and
#                                                     print KEY=VALUE lines (also in DIR/cluster.env). With --watch,
#                                                     the cluster is stopped and removed when process PID ends.
#   scripts/pg-cluster.sh pause DIR                   fast shutdown, keep the data (the tests' "server down")
#   scripts/pg-cluster.sh resume DIR                  start it again on the same port
#   scripts/pg-cluster.sh stop DIR                    fast shutdown and remove DIR
#
# The server never runs as root: as root, it runs as $PG_CLUSTER_USER (default nobody) through setpriv.
# Roles: attendance_owner (owns the database and its tables, runs the migrations; CREATEDB so tests can make their
# own databases) and attendance_gate (the daemons: reads and writes rows, cannot alter or drop anything).
# Both sign in with a password over TCP (scram-sha-256); the passwords are in DIR/owner.password and
# DIR/gate.password (0600). The superuser `postgres` has no password and is reachable only through the Unix socket
# in DIR/socket (0700, the cluster user's).
set -euo pipefail

die() { echo "pg-cluster: $*" >&2; exit 1; }

# The server must not inherit our caller's descriptors beyond stdin/out/err (a test harness's pipe would never see
# end-of-file while the server runs): close them all.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  [[ $fd =~ ^[0-9]+$ && $fd -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
done

bindir() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/initdb" ]] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  die "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql (scripts/install-deps.sh)"
}

BIN=$(bindir)
RUNUSER=${PG_CLUSTER_USER:-nobody}

# Runs a command as the cluster's user (as root), or as ourselves.
as_cluster() {
  if [[ $(id -u) -eq 0 ]]; then
    setpriv --reuid="$RUNUSER" --regid="$(id -g "$RUNUSER")" --clear-groups -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_password() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32; }

pg_start() {
  local dir=$1
  as_cluster "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; die "the server did not start (log: $dir/server.log)"; }
}

pg_stop() {
  local dir=$1
  [[ -f "$dir/data/postmaster.pid" ]] || return 0
  as_cluster "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

cmd=${1:-}
shift || true
case "$cmd" in
  start)
    dir=""
    watch=""
    while (( $# )); do
      case "$1" in
        --watch) watch=$2; shift 2 ;;
        *) dir=$1; shift ;;
      esac
    done
    [[ -n "$dir" ]] || dir=$(mktemp -d /tmp/pg-cluster.XXXXXX)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ ! -e "$dir/data" ]] || die "$dir/data exists already"
    # The folder stays ours (root's): the cluster user may pass through it to its data and socket, and read
    # nothing else (the password files).
    chmod 0711 "$dir"
    mkdir -m 0700 "$dir/data" "$dir/socket"
    if [[ $(id -u) -eq 0 ]]; then
      id "$RUNUSER" >/dev/null 2>&1 || die "no user $RUNUSER to run the server as (set PG_CLUSTER_USER)"
      chown "$RUNUSER:" "$dir/data" "$dir/socket"
      touch "$dir/server.log"; chown "$RUNUSER:" "$dir/server.log"
    fi
    as_cluster "$BIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    port=$(free_port)
    cat >>"$dir/data/postgresql.conf" <<EOF
# pg-cluster.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/socket'
password_encryption = 'scram-sha-256'
max_connections = 100
EOF
    pg_start "$dir"
    umask 077
    random_password >"$dir/owner.password"
    random_password >"$dir/gate.password"
    chmod 0600 "$dir/owner.password" "$dir/gate.password"
    owner_pw=$(cat "$dir/owner.password")
    gate_pw=$(cat "$dir/gate.password")
    as_cluster "$BIN/psql" -q -v ON_ERROR_STOP=1 -h "$dir/socket" -p "$port" -U postgres -d postgres >/dev/null <<EOF
CREATE ROLE attendance_owner LOGIN CREATEDB PASSWORD '$owner_pw';
CREATE ROLE attendance_gate LOGIN PASSWORD '$gate_pw';
CREATE DATABASE attendance OWNER attendance_owner;
EOF
    {
      echo "PG_CLUSTER_DIR=$dir"
      echo "PG_PORT=$port"
      echo "PG_BIN=$BIN"
      echo "PG_OWNER_URL=postgresql://attendance_owner@127.0.0.1:$port/attendance"
      echo "PG_OWNER_PASSWORD_FILE=$dir/owner.password"
      echo "PG_GATE_URL=postgresql://attendance_gate@127.0.0.1:$port/attendance"
      echo "PG_GATE_PASSWORD_FILE=$dir/gate.password"
    } >"$dir/cluster.env"
    if [[ -n "$watch" ]]; then
      # Stops and removes the cluster when the watched process ends, however it ends (even SIGKILL).
      setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' _ \
        "$watch" "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$dir" </dev/null >/dev/null 2>&1 &
    fi
    cat "$dir/cluster.env"
    ;;
  pause)
    dir=${1:?pause DIR}
    pg_stop "$dir"
    ;;
  resume)
    dir=${1:?resume DIR}
    pg_start "$dir"
    ;;
  stop)
    dir=${1:?stop DIR}
    [[ -f "$dir/cluster.env" || -d "$dir/data" ]] || exit 0
    pg_stop "$dir"
    rm -rf "$dir"
    ;;
  *)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    [[ -z "$cmd" || "$cmd" == help || "$cmd" == --help ]] || exit 2
    ;;
esac
