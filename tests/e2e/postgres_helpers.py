"""The loopback PostgreSQL of scripts/postgres.sh for the e2e modules: start, query, databases.

Shared by test_meltano_postgres.py (the tap's runs) and test_loader_deletions.py (what the loader
does with deletions); the fixtures `pg_server` and `database` in conftest.py wrap it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from glob import glob
from typing import Any

import pytest

from tests.e2e.meltano_helpers import REPO

PG_SCRIPT = REPO / "scripts" / "postgres.sh"


def _psql_bin() -> str:
    found = sorted(glob("/usr/lib/postgresql/*/bin/psql")) or [shutil.which("psql") or ""]
    if not found[-1]:
        pytest.fail("psql not found: scripts/postgres.sh start installs PostgreSQL")
    return found[-1]


@dataclass(frozen=True)
class PgServer:
    """Connection facts of the scripts/postgres.sh server (its `env` command is the source)."""

    host: str
    port: str
    user: str
    password: str
    database: str

    def sql(self, query: str, database: str | None = None) -> list[Any]:
        """Run one statement; each result row comes back as the JSON value it selects."""
        proc = subprocess.run(
            [
                *(_psql_bin(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
                *("-h", self.host, "-p", self.port, "-U", self.user),
                *("-d", database or self.database, "-c", query),
            ],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"psql failed: {proc.stderr.strip()[-2000:]}")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def target_env(self, database: str) -> dict[str, str]:
        """The TARGET_POSTGRES_* variables that point the loader at `database` on this server."""
        return {
            "TARGET_POSTGRES_HOST": self.host,
            "TARGET_POSTGRES_PORT": self.port,
            "TARGET_POSTGRES_USER": self.user,
            "TARGET_POSTGRES_PASSWORD": self.password,
            "TARGET_POSTGRES_DATABASE": database,
        }


def _pg_script(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(PG_SCRIPT), command],
        capture_output=True,
        text=True,
        timeout=900,  # `start` may apt-get install PostgreSQL on a fresh machine
        check=False,
    )


@contextmanager
def loopback_server() -> Iterator[PgServer]:
    """The loopback server, started here (and stopped at the end) unless already running."""
    started_here = _pg_script("status").returncode != 0
    start = _pg_script("start")
    if start.returncode != 0:
        pytest.fail(f"scripts/postgres.sh start failed:\n{start.stderr[-3000:]}")
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in _pg_script("env").stdout.splitlines()
        if line.startswith("export ")
    )
    server = PgServer(
        host=exports["TARGET_POSTGRES_HOST"],
        port=exports["TARGET_POSTGRES_PORT"],
        user=exports["TARGET_POSTGRES_USER"],
        password=exports["TARGET_POSTGRES_PASSWORD"],
        database=exports["TARGET_POSTGRES_DATABASE"],
    )
    try:
        yield server
    finally:
        if started_here:
            _pg_script("stop")


@contextmanager
def fresh_database(server: PgServer) -> Iterator[str]:
    """A new database, dropped afterwards, so reruns and other tests never see its rows."""
    name = f"flex_e2e_{secrets.token_hex(6)}"
    server.sql(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        server.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
