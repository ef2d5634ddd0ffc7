#!/usr/bin/env bash
# Shared set-up, sourced by scripts/test.sh and scripts/demo.sh: creates .venv (the tap, the
# simulator and dev tools) and .venv-meltano (Meltano in its own environment, because it needs
# SQLAlchemy < 2.1 while singer-sdk pulls 2.1). Safe to rerun, and cheap when nothing changed:
# the pip installs are skipped while .venv/.setup-stamp matches pyproject.toml and this script
# (SETUP_FORCE=1 reinstalls anyway).
set -euo pipefail
PYTHON="${PYTHON:-python3}"
SETUP_STAMP="$(cat pyproject.toml scripts/setup.sh | cksum)"
if [ "${SETUP_FORCE:-0}" = 1 ] || [ ! -x .venv/bin/tap-hpe-flex ] \
  || [ ! -x .venv-meltano/bin/meltano ] || [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$SETUP_STAMP" ]; then
  if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  # The s3 extra brings boto3, which Meltano's s3:// state backend needs (docs/scale-out.md); an
  # older .venv-meltano without it gets it added.
  if [ ! -x .venv-meltano/bin/meltano ]; then
    "$PYTHON" -m venv .venv-meltano
    .venv-meltano/bin/python -m pip install -q --upgrade pip
    .venv-meltano/bin/python -m pip install -q 'meltano[s3]~=4.4.1'
  elif ! .venv-meltano/bin/python -c 'import boto3' 2>/dev/null; then
    .venv-meltano/bin/python -m pip install -q 'meltano[s3]~=4.4.1'
  fi
  printf '%s\n' "$SETUP_STAMP" >.venv/.setup-stamp
else
  echo "scripts/setup.sh: .venv and .venv-meltano are up to date (SETUP_FORCE=1 reinstalls)"
fi
export MELTANO_BIN="$PWD/.venv-meltano/bin/meltano"
