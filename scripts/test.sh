#!/usr/bin/env bash
# Sets up everything from scratch (virtual environments, Meltano, plugins) and runs lint, types and
# the whole test suite. Idempotent: reruns reuse the environments. Arguments go to pytest.
# The PostgreSQL server of the target-postgres e2e test (scripts/postgres.sh: loopback, port
# 54329, installed with apt when missing and run as root) is started before pytest and stopped on
# exit, unless it was already running. The same goes for the Redis server of the shared rate
# budget's tests (scripts/redis.sh: loopback, port 56379, Debian's redis-server installed when
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
# Stop on exit only the servers this run started.
STOP_ON_EXIT=()
trap 'for s in "${STOP_ON_EXIT[@]}"; do bash "scripts/$s.sh" stop || true; done' EXIT
for server in postgres redis; do
  echo "== $server"
  bash "scripts/$server.sh" status || STOP_ON_EXIT+=("$server")
  bash "scripts/$server.sh" start
done
echo "== pytest"; .venv/bin/pytest "$@"
