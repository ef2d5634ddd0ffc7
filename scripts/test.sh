#!/usr/bin/env bash
# Sets up everything from scratch (virtual environments, Meltano, plugins) and runs lint, types and
# the whole test suite. Idempotent: reruns reuse the environments. Arguments go to pytest.
# The PostgreSQL server of the target-postgres e2e test (scripts/postgres.sh: loopback, port
# 54329, installed with apt when missing and run as root) is started before pytest and stopped on
# exit, unless it was already running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== postgres"
if ! bash scripts/postgres.sh status; then
  trap 'bash scripts/postgres.sh stop || true' EXIT
fi
bash scripts/postgres.sh start
echo "== pytest"; .venv/bin/pytest "$@"
