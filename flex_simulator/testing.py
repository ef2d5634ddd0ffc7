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

from .bad_values import parse_bad_values, spoiled_fields
from .config import SimulatorConfig
from .server import FlexSimulator
from .store import FlexStore, Page

#: The options of a plain listing: no filter, sort or select, one page of 100, the server's
#: undocumented updatedAt filter and sort refused, every sort honoured with a stable order.
LIST_DEFAULTS: dict[str, Any] = {
    "filter": None,
    "sort": None,
    "select": None,
    "limit": 100,
    "offset": 0,
    "updated_filter": False,
    "updated_sort": False,
    "single_key_sort": False,
    "tie_salt": None,
}


@contextmanager
def running_simulator(
    config: SimulatorConfig | None = None, **overrides: Any
) -> Iterator[FlexSimulator]:
    """Start a simulator on a free loopback port, yield it, always stop it.

    ``overrides`` replace fields of ``config`` (or of the defaults), e.g.
    ``running_simulator(orders=50, rate_limit=5, rate_window_s=2)``; the unhelpful-server modes
    too: ``unstable_ties=True``, ``sort_mode="no-tiebreak"`` or ``"ignore"``,
    ``updated_filter="ignore"``, ``updated_sort="ignore"``,
    ``bad_values="devices.serialNumber=null@10"``, ``churn_interval_s=5`` (with
    ``churn_resource`` and ``churn_mode="shift"``).
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


def flex_get(
    sim: FlexSimulator, path: str, token: str | None = None, **params: Any
) -> requests.Response:
    """GET a Flex path (``"/devices"``, ``"/orders?..."`` without the prefix) with a token.

    A fresh token is fetched over HTTP when none is given; the raw answer is returned unchecked.
    """
    return requests.get(
        f"{sim.url}/flex/v1beta1{path}",
        params=params,
        headers=auth_headers(token or fetch_token(sim)),
        timeout=10,
    )


def bad_value_ids(sim: FlexSimulator, resource: str) -> dict[str, list[str]]:
    """Map each record id the ``bad_values`` setting spoils to the fields it spoils.

    Read from the store (the records as they really are) with the server's own rule, so a test
    can say exactly which records must arrive bad, even those that arrive without their ``id``.
    """
    specs = parse_bad_values(sim.config.bad_values)
    records = list_page(sim.store, resource, sim.default_workspace, limit=10**9).items
    spoiled = {
        str(rec["id"]): [
            s.field for s in spoiled_fields(rec, resource, specs, sim.config.fault_seed)
        ]
        for rec in records
    }
    return {record_id: fields for record_id, fields in spoiled.items() if fields}


def share_order_end_dates(sim: FlexSimulator, distinct: int = 4) -> list[str]:
    """Leave the demo workspace's orders only ``distinct`` ``orderEndDate`` values (updates).

    Generated end dates rarely tie (a few pairs in a few hundred orders), while real fleets end
    many orders on the same date; with ``unstable_ties`` a test then pages through large groups
    of ties in the default sort. Orders are grouped in their current default order, each group
    taking its first member's date, so each group keeps its place (within it, ties). The updates
    bump ``updatedAt`` and ``generation`` as any update does. Returns the dates used. Choose
    ``distinct`` so groups are no multiple of the page size: a group that fills whole pages
    exactly reshuffles only within them, and an offset pager loses nothing there.
    """
    orders = list_page(sim.store, "orders", sim.default_workspace, limit=10**9).items
    size = max(1, -(-len(orders) // max(1, distinct)))
    groups = [orders[i : i + size] for i in range(0, len(orders), size)]
    sim.mutate(
        [
            {
                "op": "update",
                "resource": "orders",
                "ids": [o["id"] for o in group],
                "set": {"orderEndDate": group[0]["orderEndDate"]},
            }
            for group in groups
        ]
    )
    return [group[0]["orderEndDate"] for group in groups]
