"""Fixtures of the e2e modules (the helpers they share are in meltano_helpers.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.meltano_helpers import gen_plugin_definition


@pytest.fixture(scope="session")
def about() -> dict[str, Any]:
    """The installed tap's own description (the source of truth), read as the generator reads it."""
    result: dict[str, Any] = gen_plugin_definition().read_about()
    return result
