#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for target-postgres (the e2e tests and local runs).
#
#   scripts/postgres.sh start    # install (apt, root only) if missing, initdb once, start, create db
#   scripts/postgres.sh stop     # fast shutdown; the data directory stays for the next start
#   scripts/postgres.sh status   # exit 0 when this server is running
#   scripts/postgres.sh env      # print `export TARGET_POSTGRES_...` lines for meltano run
#   scripts/postgres.sh destroy  # stop and delete the data directory
#
# Every command is idempotent. The server listens on 127.0.0.1 only, in a data directory outside
# the repository (default /tmp/tap-hpe-flex-pg-<port>), with password (SCRAM) authentication over
# TCP and trust over its own Unix socket (in that directory). initdb refuses to run as root, so
# as root the server runs as the `postgres` user (created by Debian's package), or a system user
# `flexpg` when there is none.
#
# Knobs: FLEX_PG_PORT (54329), FLEX_PG_DIR, FLEX_PG_USER (flex), FLEX_PG_PASSWORD (flex-dev),
# FLEX_PG_DB (flex), FLEX_PG_BINDIR (directory of initdb/pg_ctl; found automatically).
set -euo pipefail

PORT="${FLEX_PG_PORT:-54329}"
BASE="${FLEX_PG_DIR:-${TMPDIR:-/tmp}/tap-hpe-flex-pg-$PORT}"
DATA="$BASE/data"
SOCK="$BASE"
LOG="$BASE/server.log"
DB_USER="${FLEX_PG_USER:-flex}"
DB_PASSWORD="${FLEX_PG_PASSWORD:-flex-dev}"
DB_NAME="${FLEX_PG_DB:-flex}"

say() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  if [ -n "${FLEX_PG_BINDIR:-}" ]; then echo "$FLEX_PG_BINDIR"; return 0; fi
  local dir
  # Debian/Ubuntu keep server binaries off PATH, one directory per major version: newest wins.
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

install_server() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "no PostgreSQL server binaries (initdb, pg_ctl) found; install PostgreSQL 15 or set FLEX_PG_BINDIR"
    exit 1
  fi
  say "installing PostgreSQL server binaries with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql-15 >/dev/null || apt-get install -y -qq postgresql >/dev/null
}

BIN="$(find_bindir || true)"
if [ "${1:-}" = "start" ] && [ -z "$BIN" ]; then
  install_server
  BIN="$(find_bindir)"
fi

# Who runs the server: the current user, or (as root) an unprivileged one that owns $BASE.
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
  OWNER=postgres
  if ! id "$OWNER" >/dev/null 2>&1; then
    OWNER=flexpg
    id "$OWNER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$OWNER"
  fi
  RUN_AS=(runuser -u "$OWNER" --)
fi

pg_ctl_() { "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" "$@"; }
# Admin SQL over the server's Unix socket (trust), so no password is needed or shown.
admin_sql() { "$BIN/psql" -h "$SOCK" -p "$PORT" -U "$DB_USER" -d postgres -v ON_ERROR_STOP=1 -qAtc "$1"; }

running() { [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ] && pg_ctl_ status >/dev/null 2>&1; }

cmd_start() {
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$BASE"
    chmod 700 "$BASE"
    [ ${#RUN_AS[@]} -eq 0 ] || chown "$OWNER" "$BASE"
    local pwfile="$BASE/.pwfile"
    (umask 077; printf '%s\n' "$DB_PASSWORD" >"$pwfile")
    [ ${#RUN_AS[@]} -eq 0 ] || chown "$OWNER" "$pwfile"
    "${RUN_AS[@]}" "$BIN/initdb" -D "$DATA" -U "$DB_USER" --pwfile="$pwfile" -E UTF8 \
      --locale=C --auth-local=trust --auth-host=scram-sha-256 >"$BASE/initdb.log" 2>&1 ||
      { cat "$BASE/initdb.log" >&2; rm -f "$pwfile"; exit 1; }
    rm -f "$pwfile"
  fi
  if running; then
    say "already running on 127.0.0.1:$PORT ($DATA)"
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      say "port $PORT is taken by another process; set FLEX_PG_PORT"
      exit 1
    fi
    # Small settings: a test server on a 2-core machine; fsync off because the data is disposable.
    pg_ctl_ start -w -t 60 -l "$LOG" -o "-c listen_addresses=127.0.0.1 -p $PORT \
      -c unix_socket_directories='$SOCK' -c fsync=off -c synchronous_commit=off \
      -c full_page_writes=off -c max_connections=50 -c shared_buffers=64MB" >/dev/null ||
      { tail -n 30 "$LOG" >&2; exit 1; }
    say "started PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT ($DATA)"
  fi
  if [ -z "$(admin_sql "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    admin_sql "CREATE DATABASE \"$DB_NAME\"" >/dev/null
  fi
}

cmd_stop() {
  if running; then
    pg_ctl_ stop -w -m fast >/dev/null
    say "stopped the server on port $PORT"
  else
    say "not running (port $PORT)"
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) running ;;
  env)
    echo "export TARGET_POSTGRES_HOST=127.0.0.1"
    echo "export TARGET_POSTGRES_PORT=$PORT"
    echo "export TARGET_POSTGRES_USER=$DB_USER"
    echo "export TARGET_POSTGRES_PASSWORD=$DB_PASSWORD"
    echo "export TARGET_POSTGRES_DATABASE=$DB_NAME"
    ;;
  destroy)
    cmd_stop
    rm -rf "$BASE"
    ;;
  *)
    echo "usage: $0 start|stop|status|env|destroy" >&2
    exit 2
    ;;
esac
