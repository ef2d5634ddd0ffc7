#!/usr/bin/env bash
# A throwaway Redis server on loopback for the shared rate budget's tests (and local runs).
#
#   scripts/redis.sh start    # install Debian's redis-server (apt, root only) if missing, start
#   scripts/redis.sh stop     # shut down without saving (the data is disposable)
#   scripts/redis.sh status   # exit 0 when this server answers
#   scripts/redis.sh url      # print the redis:// URL the tests use (password included)
#   scripts/redis.sh destroy  # stop and delete the directory
#
# Every command is idempotent. The server listens on 127.0.0.1 only, keeps nothing on disk (no RDB,
# no AOF) and requires a password, so the tests exercise authentication and password masking. Its
# configuration, pid file and log live outside the repository (default /tmp/tap-hpe-flex-redis-
# <port>); the password is in the configuration file (mode 600), never on a command line.
#
# Knobs: FLEX_REDIS_PORT (56379), FLEX_REDIS_DIR, FLEX_REDIS_PASSWORD (flex-dev).
set -euo pipefail

PORT="${FLEX_REDIS_PORT:-56379}"
BASE="${FLEX_REDIS_DIR:-${TMPDIR:-/tmp}/tap-hpe-flex-redis-$PORT}"
PASSWORD="${FLEX_REDIS_PASSWORD:-flex-dev}"
CONF="$BASE/redis.conf"
LOG="$BASE/server.log"
PIDFILE="$BASE/redis.pid"

say() { echo "redis.sh: $*" >&2; }

install_server() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "no redis-server found; install Redis 7 (Debian: apt-get install redis-server)"
    exit 1
  fi
  say "installing redis-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
}

# redis-cli reads the password from REDISCLI_AUTH, which keeps it off the command line.
cli() { REDISCLI_AUTH="$PASSWORD" redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }

running() {
  command -v redis-cli >/dev/null 2>&1 && [ "$(cli ping 2>/dev/null || true)" = "PONG" ]
}

cmd_start() {
  command -v redis-server >/dev/null 2>&1 || install_server
  if running; then
    say "already running on 127.0.0.1:$PORT ($BASE)"
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    say "port $PORT is taken by another process; set FLEX_REDIS_PORT"
    exit 1
  fi
  mkdir -p "$BASE"
  chmod 700 "$BASE"
  (
    umask 077
    cat >"$CONF" <<EOF
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize yes
pidfile $PIDFILE
logfile $LOG
dir $BASE
save ""
appendonly no
maxmemory 64mb
requirepass $PASSWORD
EOF
  )
  redis-server "$CONF" || { tail -n 30 "$LOG" >&2 || true; exit 1; }
  for _ in $(seq 1 100); do
    running && break
    sleep 0.1
  done
  running || { tail -n 30 "$LOG" >&2 || true; say "did not answer on port $PORT"; exit 1; }
  say "started Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$PORT ($BASE)"
}

cmd_stop() {
  if running; then
    cli shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
      running || break
      sleep 0.1
    done
    say "stopped the server on port $PORT"
  else
    say "not running (port $PORT)"
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) running ;;
  url) echo "redis://:$PASSWORD@127.0.0.1:$PORT/0" ;;
  destroy)
    cmd_stop
    rm -rf "$BASE"
    ;;
  *)
    echo "usage: $0 start|stop|status|url|destroy" >&2
    exit 2
    ;;
esac
