"""Fixtures of the e2e modules (the helpers they share are in meltano_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.meltano_helpers import gen_plugin_definition
from tests.e2e.postgres_helpers import PgServer, fresh_database, loopback_server


@pytest.fixture(scope="session")
def about() -> dict[str, Any]:
    """The installed tap's own description (the source of truth), read as the generator reads it."""
    result: dict[str, Any] = gen_plugin_definition().read_about()
    return result


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    """scripts/postgres.sh's loopback server, started (and stopped) here unless running."""
    with loopback_server() as server:
        yield server


@pytest.fixture
def database(pg_server: PgServer) -> Iterator[str]:
    """A fresh database per test, dropped afterwards."""
    with fresh_database(pg_server) as name:
        yield name
