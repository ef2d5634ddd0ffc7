#!/usr/bin/env bash
# Sets up everything from scratch (virtual environments, Meltano, plugins) and runs lint, types and
# the whole test suite. Idempotent: reruns reuse the environments.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
