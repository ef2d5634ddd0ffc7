"""Shared pieces of the fault-injection suite: fast retry settings and record accounting."""

from __future__ import annotations

from typing import Any

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import list_page
from tests.tap.helpers import sim_requests, tap_config

#: Backoff waits of tenths of a second, so a burst of faults costs well under a second.
FAST_RETRIES = {
    "retry_initial_wait_seconds": 0.05,
    "retry_max_wait_seconds": 0.2,
    "max_retry_seconds": 30,
}


def fast_config(sim: FlexSimulator, **overrides: Any) -> dict[str, Any]:
    """A tap config for ``sim`` with quick backoff and no client-side pacing in the way."""
    return tap_config(sim, **{"requests_per_minute": 100_000, **FAST_RETRIES, **overrides})


def all_ids(sim: FlexSimulator, resource: str) -> set[str]:
    """Every record id the simulator holds now (read from its store, not over HTTP)."""
    ids: set[str] = set()
    offset = 0
    while True:
        page = list_page(sim.store, resource, sim.default_workspace, offset=offset)
        ids.update(str(i["id"]) for i in page.items)
        if len(page.items) < 100:
            return ids
        offset += 100


def statuses(sim: FlexSimulator, endpoint: str) -> list[int | None]:
    """Statuses the simulator answered for ``endpoint``, in order (None: dropped)."""
    return [r["status"] for r in sim_requests(sim, endpoint)]
