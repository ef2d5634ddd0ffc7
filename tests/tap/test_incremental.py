"""Incremental syncs on updatedAt: each strategy, auto's probing, bookmark capping, timestamps."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tap_hpe_flex.incremental import (
    BOOKMARK_SAFETY_MARGIN_S,
    Strategy,
    StrategyRegistry,
    canonical_timestamp,
    filter_timestamp,
    is_strategy_rejection,
    parse_timestamp,
)
from tests.tap.helpers import clear_requests, run_tap, sim_requests, tap_config

STREAMS = ("orders", "devices")


def _mutate(sim: Any) -> dict[str, set[str]]:
    done = sim.mutate(
        [
            {"op": "update", "resource": "devices", "count": 5},
            {"op": "update", "resource": "orders", "count": 3},
            {"op": "insert", "resource": "devices", "count": 2},
        ]
    )
    changed: dict[str, set[str]] = {"orders": set(), "devices": set()}
    for op in done:
        changed[op["resource"]].update(op["ids"])
    return changed


def _expected(first: Any, stream: str, changed: set[str]) -> set[str]:
    """Changed records plus those sitting exactly on the bookmark (``ge`` re-reads them)."""
    bookmark = first.bookmark(stream)
    on_bookmark = {r["id"] for r in first.records(stream) if r["updatedAt"] == bookmark}
    return changed | on_bookmark


@pytest.mark.parametrize(
    ("strategy", "sim_switches"),
    [
        ("filter", {"updated_filter": True}),
        ("sort", {"updated_sort": True}),
        ("client", {}),
    ],
)
def test_second_sync_emits_only_changed_records(
    make_simulator: Any, strategy: str, sim_switches: dict[str, bool]
) -> None:
    sim = make_simulator(orders=120, devices=250, rate_limit=10_000, **sim_switches)
    config = tap_config(sim, page_size=40, incremental_strategy=strategy)
    first = run_tap(config, streams=STREAMS)
    assert len(first.records("devices")) == 250
    changed = _mutate(sim)
    clear_requests(sim)

    second = run_tap(config, state=first.state, streams=STREAMS)

    for stream in STREAMS:
        ids = [r["id"] for r in second.records(stream)]
        assert len(ids) == len(set(ids))
        assert set(ids) == _expected(first, stream, changed[stream]), stream
        queries = [r["query"] for r in sim_requests(sim, stream)]
        assert all(r["status"] == 200 for r in sim_requests(sim, stream))
        if strategy == "filter":
            assert all("updatedAt ge '" in q["filter"] for q in queries)
            assert len(queries) == 1  # only a handful of records match
        elif strategy == "sort":
            assert all(q.get("sort") == "updatedAt desc,id asc" for q in queries)
            assert len(queries) == 1  # paging stops at the first record older than the bookmark
        else:  # every page in the one order an update cannot change, checked
            assert all("filter" not in q and q.get("sort") == "id asc" for q in queries)
    # Bookmarks are canonical and never move backwards.
    for stream in STREAMS:
        assert second.bookmark(stream) == canonical_timestamp(second.bookmark(stream) or "")
        assert (second.bookmark(stream) or "") >= (first.bookmark(stream) or "")


@pytest.mark.parametrize(
    ("sim_switches", "expected", "statuses"),
    [
        ({"updated_filter": True, "updated_sort": True}, "filter", [200]),
        ({"updated_sort": True}, "sort", [400, 200]),
        ({}, "client", [400, 400, 200]),
    ],
)
def test_auto_probes_once_per_strategy_and_remembers(
    make_simulator: Any,
    caplog: pytest.LogCaptureFixture,
    sim_switches: dict[str, bool],
    expected: str,
    statuses: list[int],
) -> None:
    sim = make_simulator(orders=30, devices=30, rate_limit=10_000, **sim_switches)
    config = tap_config(sim, page_size=100)
    first = run_tap(config, streams=STREAMS)
    clear_requests(sim)
    caplog.set_level(logging.INFO)

    second = run_tap(config, state=first.state, streams=STREAMS)

    assert second.tap.runtime.strategies.chosen("orders") == Strategy(expected)
    assert second.tap.runtime.strategies.chosen("devices") == Strategy(expected)
    for stream in STREAMS:
        assert [r["status"] for r in sim_requests(sim, stream)] == statuses, stream
    assert f"Incremental strategy for orders: {expected}" in caplog.text
    assert f"Incremental strategy for devices: {expected}" in caplog.text


def test_first_sync_without_bookmark_or_start_date_makes_no_probe(make_simulator: Any) -> None:
    sim = make_simulator(orders=30, devices=30, rate_limit=10_000)
    result = run_tap(tap_config(sim), streams=STREAMS)
    for stream in STREAMS:
        requests = sim_requests(sim, stream)
        assert len(requests) == 1
        assert requests[0]["status"] == 200
        assert "filter" not in requests[0]["query"]  # a full pass: no strategy, no probe
        assert requests[0]["query"].get("sort") == "id asc"
    assert result.tap.runtime.strategies.chosen("orders") is None


def test_start_date_bounds_the_first_sync(make_simulator: Any) -> None:
    sim = make_simulator(orders=80, devices=80, rate_limit=10_000, updated_filter=True)
    full = run_tap(tap_config(sim), streams=("orders",))
    stamps = sorted(r["updatedAt"] for r in full.records("orders"))
    start = stamps[len(stamps) // 2]
    result = run_tap(tap_config(sim, start_date=start), streams=("orders",))
    got = {r["id"] for r in result.records("orders")}
    assert got == {r["id"] for r in full.records("orders") if r["updatedAt"] >= start}
    assert "updatedAt ge '" in sim_requests(sim, "orders")[-1]["query"]["filter"]


def test_record_updated_during_sync_is_read_by_next_sync(make_simulator: Any) -> None:
    """A (already read) then B (read later) change mid-sync: the bookmark must not pass A."""
    sim = make_simulator(orders=1, devices=50, rate_limit=10_000)
    config = tap_config(sim, page_size=10, incremental_strategy="client")
    first = run_tap(config, streams=("devices",))
    order = [r["id"] for r in first.records("devices")]
    a_id, b_id = order[0], order[-1]

    ops = [
        {"op": "update", "resource": "devices", "id": a_id},
        {"op": "update", "resource": "devices", "id": b_id},
    ]
    scripted = sim.script_mutations("devices", after_requests=1, ops=ops)
    second = run_tap(config, state=first.state, streams=("devices",))
    assert scripted.done.is_set() and scripted.error is None
    assert b_id in {r["id"] for r in second.records("devices")}
    assert a_id not in {r["id"] for r in second.records("devices")}  # page 1 was already read

    third = run_tap(config, state=second.state, streams=("devices",))
    assert {a_id, b_id} <= {r["id"] for r in third.records("devices")}


def test_bookmark_capped_below_sync_start(make_simulator: Any) -> None:
    sim = make_simulator(orders=5, devices=5, rate_limit=10_000)
    config = tap_config(sim, incremental_strategy="client")
    first = run_tap(config, streams=("devices",))
    changed = _mutate(sim)["devices"]
    second = run_tap(config, state=first.state, streams=("devices",))
    newest = max(r["updatedAt"] for r in second.records("devices"))
    bookmark = second.bookmark("devices") or ""
    assert bookmark < newest  # capped at the sync's start minus the margin
    gap = parse_timestamp(newest) - parse_timestamp(bookmark)
    assert gap.total_seconds() <= BOOKMARK_SAFETY_MARGIN_S + 5
    third = run_tap(config, state=second.state, streams=("devices",))
    assert changed <= {r["id"] for r in third.records("devices")}


def test_new_fields_from_the_api_do_not_break_the_sync(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=3, rate_limit=10_000)
    target = run_tap(tap_config(sim), streams=("devices",)).records("devices")[0]["id"]
    sim.mutate(
        [{"op": "update", "resource": "devices", "id": target, "set": {"brandNewField": "x"}}]
    )
    result = run_tap(tap_config(sim), streams=("devices",))
    assert len(result.records("devices")) == 3
    assert all("brandNewField" not in r for r in result.records("devices"))


# --- pure helpers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2024-02-18T19:53:51Z", "2024-02-18T19:53:51.000000Z"),
        ("2024-02-18T19:53:51.48Z", "2024-02-18T19:53:51.480000Z"),
        ("2024-02-18T19:53:51.123456789+00:00", "2024-02-18T19:53:51.123456Z"),
        ("2024-02-18T21:53:51.5+02:00", "2024-02-18T19:53:51.500000Z"),
        ("2024-02-18T19:53:51", "2024-02-18T19:53:51.000000Z"),
    ],
)
def test_canonical_timestamp(text: str, canonical: str) -> None:
    assert canonical_timestamp(text) == canonical


def test_canonical_order_matches_time_order() -> None:
    raw = ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5+00:00", "2024-01-01T00:00:00.05Z"]
    assert sorted(raw, key=parse_timestamp) == sorted(raw, key=canonical_timestamp)
    assert sorted(raw) != sorted(raw, key=parse_timestamp)  # why normalising matters


def test_filter_literal_floors_to_milliseconds() -> None:
    assert filter_timestamp("2024-02-18T19:53:51.480999Z") == "2024-02-18T19:53:51.480Z"


def test_rejection_needs_a_400_naming_the_probe() -> None:
    body = {
        "message": "Bad Request.",
        "errorDetails": [{"issues": [{"subject": "filter", "description": "not filterable"}]}],
    }
    assert is_strategy_rejection(Strategy.FILTER, 400, body)
    assert not is_strategy_rejection(Strategy.SORT, 400, body)
    assert not is_strategy_rejection(Strategy.FILTER, 403, body)
    assert not is_strategy_rejection(Strategy.CLIENT, 400, body)


def test_registry_walks_filter_sort_client() -> None:
    registry = StrategyRegistry("auto")
    assert registry.strategy_for("orders") == (Strategy.FILTER, True)
    assert registry.reject("orders", Strategy.FILTER, "x") is Strategy.SORT
    assert registry.strategy_for("orders") == (Strategy.SORT, True)
    assert registry.strategy_for("devices") == (Strategy.FILTER, True)  # per endpoint
    assert registry.reject("orders", Strategy.SORT, "x") is Strategy.CLIENT
    assert registry.strategy_for("orders") == (Strategy.CLIENT, False)
    assert StrategyRegistry("sort").strategy_for("orders") == (Strategy.SORT, False)
