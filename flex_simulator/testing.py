"""Helpers for tests (the tap's and the simulator's own) that need a live Flex API.

A context manager rather than a pytest fixture so non-pytest code (bench scripts, notebooks) can use
it too; ``tests/conftest.py`` wraps it in fixtures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from .config import SimulatorConfig
from .server import FlexSimulator
from .store import FlexStore, Page

#: The options of a plain listing: no filter, sort or select, one page of 100, the server's
#: undocumented updatedAt filter and sort refused.
LIST_DEFAULTS: dict[str, Any] = {
    "filter": None,
    "sort": None,
    "select": None,
    "limit": 100,
    "offset": 0,
    "updated_filter": False,
    "updated_sort": False,
}


@contextmanager
def running_simulator(
    config: SimulatorConfig | None = None, **overrides: Any
) -> Iterator[FlexSimulator]:
    """Start a simulator on a free loopback port, yield it, always stop it.

    ``overrides`` replace fields of ``config`` (or of the defaults), e.g.
    ``running_simulator(orders=50, rate_limit=5, rate_window_s=2)``.
    """
    base = config if config is not None else SimulatorConfig()
    sim = FlexSimulator(dataclasses.replace(base, **overrides))
    try:
        sim.start()
        yield sim
    finally:
        sim.stop()


def fetch_token(
    sim: FlexSimulator,
    client_id: str | None = None,
    client_secret: str | None = None,
    *,
    classic: bool = False,
) -> str:
    """Get a token over HTTP the way a client would (form-encoded client credentials).

    The workspace token URL is the client's own (a client file's MSP client has its own workspace).
    """
    url = sim.token_url
    client = sim.authority.client(client_id) if client_id else None
    if client is not None:
        url = f"{sim.url}/authorization/v2/oauth2/{client.workspace_id}/token"
    response = requests.post(
        sim.classic_token_url if classic else url,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id or sim.config.client_id,
            "client_secret": client_secret or sim.config.client_secret,
        },
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def exchange_token(sim: FlexSimulator, tenant_id: str, subject_token: str) -> requests.Response:
    """Trade an MSP token for a tenant token over HTTP (RFC 8693); the raw answer, unchecked."""
    return requests.post(
        f"{sim.url}/authorization/v2/oauth2/{tenant_id}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
        timeout=10,
    )


def auth_headers(token: str) -> dict[str, str]:
    """Build the ``Authorization: Bearer`` header for a token."""
    return {"Authorization": f"Bearer {token}"}


def list_page(store: FlexStore, resource: str, workspace_id: str, **options: Any) -> Page:
    """One page straight from the store, bypassing HTTP: LIST_DEFAULTS but for ``options``.

    The store's listing methods take every option on purpose (the route passes all it parsed);
    tests and bench scripts name only the ones they are about.
    """
    lister = {"orders": store.list_orders, "devices": store.list_devices}[resource]
    return lister(workspace_id, **{**LIST_DEFAULTS, **options})
