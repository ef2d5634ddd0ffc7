"""Fault matrix: run the tap against the simulator under each fault and count what arrives.

For every scenario a fresh simulator (1,000 devices) is started, faults are injected, the tap
syncs the ``devices`` stream in-process, and the table shows how many faults the simulator
injected (drift rows: records deleted, inserted or updated mid-sync), how many records were
expected (alive at the end), delivered (distinct ids; for two-sync rows, the union) and lost, how
many 429s the tap received, the device requests made and the wall time. Backoff waits are
shortened (tenths of a second) so the matrix runs in about a minute; waits the server names
(rate-limit resets, ``retryAfterSeconds``) are honoured as sent.

The rows after the drift ones play the unhelpful backends of ``docs/simulator.md``: ties
reshuffled on every request (orders, whose default sort ties), an order, a filter or a sort
accepted but not applied, steady churn, and values of the wrong type or none. For the two-sync
rows of an ignored filter or sort, "expected" is the records changed between the syncs and
"delivered" those the second sync emitted; for bad values, records whose id or updatedAt is
unusable cannot be delivered and are reported by the tap (their number is in the row's name).

Run: ``.venv/bin/python bench/fault_matrix.py`` (prints a Markdown table).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import (
    bad_value_ids,
    list_page,
    running_simulator,
    share_order_end_dates,
)
from tap_hpe_flex.errors import FlexUserError
from tap_hpe_flex.tap import TapHpeFlex
from tests.reliability.helpers import all_ids, fast_config
from tests.tap.helpers import CollectingWriter, RunResult, run_tap, select_only

DEVICES = 1000


@dataclass
class Row:
    """One line of the matrix."""

    fault: str
    injected: int
    expected: int
    delivered: int
    lost: int
    got_429: int
    seconds: float
    requests: int


def _ids(*runs: RunResult) -> set[str]:
    return {r["id"] for run in runs for r in run.records("devices")}


#: Faults and mutated records scripted per simulator (keyed by id), to report what was injected.
SCRIPTED: dict[int, int] = {}


def _script(sim: FlexSimulator, endpoint: str, faults: list[str]) -> None:
    SCRIPTED[id(sim)] = SCRIPTED.get(id(sim), 0) + sum(1 for f in faults if f != "pass")
    sim.script_faults(endpoint, faults)


def _count(sim: FlexSimulator) -> tuple[int, int, int]:
    time.sleep(1.2)  # the simulator logs a stalled (timed-out) request when its stall ends
    entries = sim.requests("devices") + sim.requests("token")
    left = sum(1 for q in sim.faults.pending().values() for f in q if f != "pass")
    random_faults = 0 if id(sim) in SCRIPTED else sum(1 for e in entries if e.get("fault"))
    injected = SCRIPTED.pop(id(sim), 0) - left + random_faults
    got_429 = sum(1 for e in entries if e.get("status") == 429)
    return injected, got_429, len(sim.requests("devices"))


@dataclass
class Tally:
    """What a scenario itself says must arrive, and what did (instead of every device id)."""

    expected: set[str]
    delivered: set[str]
    note: str = ""


Scenario = Callable[[FlexSimulator], "list[RunResult] | Tally"]


def _tied_orders(page_size: int) -> Scenario:
    def run(sim: FlexSimulator) -> Tally:
        share_order_end_dates(sim, 7)
        writer = CollectingWriter()
        tap = TapHpeFlex(config=fast_config(sim, page_size=page_size), message_writer=writer)
        select_only(tap, "orders")
        note = ""
        try:
            tap.sync_all()
        except FlexUserError as exc:  # loud: one line, no bookmark advanced
            note = f"sync failed with: {str(exc).split(': ', 1)[1][:60]}..."
        delivered = {r["id"] for r in RunResult(tap, writer.messages).records("orders")}
        return Tally(all_ids(sim, "orders"), delivered, note)

    return run


def _changed_between(strategy: str) -> Scenario:
    def run(sim: FlexSimulator) -> Tally:
        config = fast_config(sim, incremental_strategy=strategy, page_size=50)
        first = run_tap(config, streams=("devices",))
        results = sim.mutate([{"op": "update", "resource": "devices", "count": 150}])
        changed = {str(i) for i in results[0]["ids"]}
        second = run_tap(config, state=first.state, streams=("devices",))
        return Tally(changed, {r["id"] for r in second.records("devices")} & changed)

    return run


def _bad_values(sim: FlexSimulator) -> Tally:
    result = run_tap(fast_config(sim, page_size=50), streams=("devices",))
    spoiled = bad_value_ids(sim, "devices")
    unusable = {i for i, f in spoiled.items() if {"id", "updatedAt"} & set(f)}
    expected = all_ids(sim, "devices") - unusable
    delivered = {r["id"] for r in result.records("devices") if r.get("id")}
    return Tally(expected, delivered, f"{len(unusable)} unusable, reported")


def _one_sync(**config: Any) -> Scenario:
    def run(sim: FlexSimulator) -> list[RunResult]:
        return [run_tap(fast_config(sim, **config), streams=("devices",))]

    return run


def _scripted(faults: list[str], **config: Any) -> Scenario:
    def run(sim: FlexSimulator) -> list[RunResult]:
        _script(sim, "devices", ["pass", *faults])
        return [run_tap(fast_config(sim, **config), streams=("devices",))]

    return run


def _token_faults(sim: FlexSimulator) -> list[RunResult]:
    _script(sim, "token", ["503-html", "drop", "500", "429"])
    return [run_tap(fast_config(sim), streams=("devices",))]


def _drift(
    ops_by_page: dict[int, list[dict[str, Any]]], two_syncs: bool, **settings: Any
) -> Scenario:
    def run(sim: FlexSimulator) -> list[RunResult]:
        for after, ops in ops_by_page.items():
            sim.script_mutations("devices", after_requests=after, ops=ops)
            SCRIPTED[id(sim)] = SCRIPTED.get(id(sim), 0) + sum(
                len(op.get("ids", [])) or op.get("count", 1) for op in ops
            )
        config = fast_config(sim, **{"incremental_strategy": "client", **settings})
        first = run_tap(config, streams=("devices",))
        if not two_syncs:
            return [first]
        return [first, run_tap(config, state=first.state, streams=("devices",))]

    return run


def _crash_and_resume(sim: FlexSimulator) -> list[RunResult]:
    config = fast_config(sim, incremental_strategy="client")
    _script(sim, "devices", ["pass"] * 5 + ["500:1"] * 2)
    writer = CollectingWriter()
    tap = TapHpeFlex(config={**config, "max_retry_seconds": 1.5}, message_writer=writer)
    select_only(tap, "devices")
    with contextlib.suppress(FlexUserError):
        tap.sync_all()
    partial = RunResult(tap, writer.messages)
    sim.faults.clear()
    return [partial, run_tap(config, state=partial.state, streams=("devices",))]


def _first_page_ids(sim: FlexSimulator, n: int) -> list[str]:
    page = list_page(sim.store, "devices", sim.default_workspace, limit=n)
    return [str(i["id"]) for i in page.items]


def scenarios() -> list[tuple[str, dict[str, Any], Scenario | str]]:
    """(name, simulator settings, scenario) triples; a string scenario names a drift recipe."""
    paced = {"requests_per_minute": 5, "rate_limit_window_seconds": 1, "page_size": 50}
    return [
        ("none (baseline)", {}, _one_sync()),
        (
            "pacing at the server limit (5/1 s)",
            {"rate_limit": 5, "rate_window_s": 1},
            _one_sync(**paced),
        ),
        (
            "server limit below configured (3/1 s vs 5/1 s)",
            {"rate_limit": 3, "rate_window_s": 1},
            _one_sync(**paced),
        ),
        ("6 x 429 in a row (reset 1 s)", {"rate_window_s": 1}, _scripted(["429"] * 6)),
        (
            "5 x 500 JSON (retryAfterSeconds 0)",
            {"server_error_retry_after_s": 0},
            _scripted(["500"] * 5),
        ),
        ("5 x 503/502 HTML", {}, _scripted(["503-html", "502-html"] * 2 + ["503-html"])),
        ("5 x dropped connection", {}, _scripted(["drop"] * 5)),
        ("5 x truncated body", {}, _scripted(["truncate"] * 5)),
        (
            "2 x timeout (0.5 s limit)",
            {"timeout_fault_s": 1.0},
            _scripted(["timeout"] * 2, request_timeout=0.5),
        ),
        (
            "random 5% each: 500, HTML 503, drop, truncate",
            {
                "error_rate": 0.05,
                "html_error_rate": 0.05,
                "drop_rate": 0.05,
                "truncate_rate": 0.05,
                "server_error_retry_after_s": 0,
                "fault_seed": 7,
            },
            _one_sync(page_size=20),
        ),
        ("token endpoint: 503 HTML, drop, 500, 429", {"rate_window_s": 1}, _token_faults),
        (
            "token expiry mid-sync (2 s tokens, paced)",
            {"token_ttl": 2, "rate_limit": 5, "rate_window_s": 1},
            _one_sync(**paced),
        ),
        ("drift: 5 deletes before offset (1 sync)", {}, "deletes"),
        ("drift: deletes+inserts+updates (2 syncs)", {}, "churn"),
        ("drift: 150 deletes > 1 page (1 sync)", {}, "mass"),
        (
            "drift, updatedAt filterable (snapshot check, page 20): 3 deletes + 3 inserts (1 sync)",
            {"updated_filter": True, "rate_limit": 0},
            "snapshot",
        ),
        (
            "drift, updatedAt filterable (snapshot check, page 20): churn (2 syncs)",
            {"updated_filter": True, "rate_limit": 0},
            "snapshot-churn",
        ),
        (
            "ties in the default sort, reshuffled per request (orders; sort=id asc)",
            {"unstable_ties": True, "rate_limit": 0, "orders": 3000},
            _tied_orders(10),
        ),
        (
            "ties reshuffled and every sort ignored (orders; distinct ids re-read)",
            {"unstable_ties": True, "sort_mode": "ignore", "rate_limit": 0, "orders": 3000},
            _tied_orders(100),
        ),
        (
            "updatedAt filter accepted, not applied: 150 changed between 2 syncs",
            {"updated_filter": "ignore", "rate_limit": 0},
            _changed_between("filter"),
        ),
        (
            "sort=updatedAt desc accepted, not applied: 150 changed between 2 syncs",
            {"updated_sort": "ignore", "rate_limit": 0},
            _changed_between("sort"),
        ),
        (
            "steady churn, 1 update per 0.05 s, during a snapshot-check pass (page 20)",
            {"updated_filter": True, "churn_interval_s": 0.05, "rate_limit": 0},
            _one_sync(incremental_strategy="filter", page_size=20),
        ),
        (
            "bad values: nulls, strings for integers, missing ids, garbage updatedAt",
            {
                "bad_values": "devices.serialNumber=null@5,devices.generation=string@7,"
                "devices.id=missing@25,devices.updatedAt=garbage@30",
                "rate_limit": 0,
            },
            _bad_values,
        ),
        (
            "crash mid-sync, rerun from last STATE",
            {"server_error_retry_after_s": 1},
            _crash_and_resume,
        ),
    ]


def drift_recipe(name: str, sim: FlexSimulator) -> Scenario:
    """Build the drift scenarios (they need the ids of the first page)."""
    first = _first_page_ids(sim, 150)
    if name == "deletes":
        return _drift({2: [{"op": "delete", "resource": "devices", "ids": first[10:15]}]}, False)
    if name == "mass":
        return _drift({2: [{"op": "delete", "resource": "devices", "ids": first[:150]}]}, False)
    snapshot = {"incremental_strategy": "filter", "page_size": 20}
    if name == "snapshot":  # the total stays the same: only the snapshot check can tell
        ops = [
            {"op": "delete", "resource": "devices", "ids": first[10:13]},
            {"op": "insert", "resource": "devices", "count": 3},
        ]
        return _drift({2: ops}, False, **snapshot)
    churn = [
        {"op": "delete", "resource": "devices", "ids": first[:3]},
        {"op": "insert", "resource": "devices", "count": 5},
        {"op": "update", "resource": "devices", "count": 10},
    ]
    more = [
        {"op": "delete", "resource": "devices", "count": 4},
        {"op": "insert", "resource": "devices", "count": 2},
    ]
    if name == "snapshot-churn":
        return _drift({2: churn, 5: more}, True, **snapshot)
    return _drift({2: churn, 5: more}, True)


def run_row(name: str, sim_settings: dict[str, Any], scenario: Scenario | str) -> Row:
    """Run one scenario on a fresh simulator and account for every record."""
    with running_simulator(**{"orders": 1, "devices": DEVICES, **sim_settings}) as sim:
        run = drift_recipe(scenario, sim) if isinstance(scenario, str) else scenario
        started = time.perf_counter()
        runs = run(sim)
        seconds = time.perf_counter() - started
        injected, got_429, requests = _count(sim)
        requests += len(sim.requests("orders"))
        if isinstance(runs, Tally):
            expected, delivered = runs.expected, runs.delivered
            name = f"{name} ({runs.note})" if runs.note else name
        else:
            expected, delivered = all_ids(sim, "devices"), _ids(*runs)
    return Row(
        name,
        injected,
        len(expected),
        len(expected & delivered),
        len(expected - delivered),
        got_429,
        seconds,
        requests,
    )


def main() -> None:
    """Print the matrix as a Markdown table."""
    logging.disable(logging.WARNING)
    print(
        "| fault | faults injected | records expected | delivered | lost | 429s received "
        "| requests (devices, orders) | time (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, settings, scenario in scenarios():
        row = run_row(name, settings, scenario)
        print(
            f"| {row.fault} | {row.injected} | {row.expected} | {row.delivered} | {row.lost} "
            f"| {row.got_429} | {row.requests} | {row.seconds:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
