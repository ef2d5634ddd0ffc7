"""Offset drift over real HTTP: records deleted, inserted or updated while a sync pages through."""

from __future__ import annotations

from typing import Any

import pytest

from flex_simulator.testing import list_page
from tests.reliability.helpers import all_ids, fast_config
from tests.tap.helpers import UPDATED_AT_FORMS, RunResult, run_tap, sim_requests


def _ordered_ids(sim: Any, limit: int = 100) -> list[str]:
    page = list_page(sim.store, "devices", sim.default_workspace, limit=limit)
    return [str(i["id"]) for i in page.items]


def _generations(sim: Any) -> dict[str, int]:
    page = list_page(sim.store, "devices", sim.default_workspace, limit=10_000)
    return {str(i["id"]): int(i["generation"]) for i in page.items}


def _newest(*runs: RunResult) -> dict[str, int]:
    seen: dict[str, int] = {}
    for run in runs:
        for record in run.records("devices"):
            seen[record["id"]] = max(seen.get(record["id"], 0), record["generation"])
    return seen


def test_deletes_before_the_offset_are_re_read_in_the_same_sync(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=100)
    first_page = _ordered_ids(sim, 10)
    ops = [{"op": "delete", "resource": "devices", "ids": first_page[2:5]}]
    scripted = sim.script_mutations("devices", after_requests=2, ops=ops)
    # One request in flight: the exact sequential re-read order is the point of this test.
    config = fast_config(sim, page_size=10, max_concurrent_requests=1)
    result = run_tap(config, streams=("devices",))
    assert scripted.done.is_set() and scripted.error is None
    assert all_ids(sim, "devices") <= {r["id"] for r in result.records("devices")}
    walk = result.tap.streams["devices"].last_walk
    assert walk is not None and (walk.drifts, walk.rereads, walk.restarts) == (1, 1, 0)
    offsets = [int(r["query"]["offset"]) for r in sim_requests(sim, "devices")]
    assert offsets[:4] == [0, 9, 18, 9]  # the shift seen at 18, the previous page read again


def test_deletes_seen_by_pages_fetched_ahead_are_re_read(make_simulator: Any) -> None:
    # Concurrent twin: page 0 is answered alone (the pipeline learns ``total`` from it), the
    # deletes land right after it, so every page fetched ahead sees the shifted list. The walk
    # consumes pages in order, sees the shift at offset 9 and re-reads page 0.
    sim = make_simulator(orders=1, devices=100)
    first_page = _ordered_ids(sim, 10)
    ops = [{"op": "delete", "resource": "devices", "ids": first_page[2:5]}]
    scripted = sim.script_mutations("devices", after_requests=1, ops=ops)
    config = fast_config(sim, page_size=10, max_concurrent_requests=8)
    result = run_tap(config, streams=("devices",))
    assert scripted.done.is_set() and scripted.error is None
    delivered = [r["id"] for r in result.records("devices")]
    assert all_ids(sim, "devices") <= set(delivered)
    assert set(first_page[2:5]) <= set(delivered)  # read before they were deleted
    walk = result.tap.streams["devices"].last_walk
    assert walk is not None and (walk.drifts, walk.rereads, walk.restarts) == (1, 1, 0)
    offsets = [int(r["query"]["offset"]) for r in sim_requests(sim, "devices")]
    assert offsets[0] == 0 and offsets.count(0) == 2  # page 0, then its re-read after the shift


@pytest.mark.parametrize("concurrency", [1, 8])
def test_churn_during_a_sync_then_the_next_sync_misses_nothing(
    make_simulator: Any, concurrency: int
) -> None:
    sim = make_simulator(orders=1, devices=150)
    first_page = _ordered_ids(sim, 20)
    config = fast_config(
        sim, page_size=20, incremental_strategy="client", max_concurrent_requests=concurrency
    )
    sim.script_mutations(
        "devices",
        # Sequential: after the second page. Concurrent: after page 0, which is answered alone,
        # so the pages fetched ahead all see the churn and the walk must notice it.
        after_requests=2 if concurrency == 1 else 1,
        ops=[
            {"op": "delete", "resource": "devices", "ids": first_page[:3]},
            {"op": "insert", "resource": "devices", "count": 4},
            {"op": "update", "resource": "devices", "count": 5},
        ],
    )
    sim.script_mutations(
        "devices",
        after_requests=5,
        ops=[
            {"op": "delete", "resource": "devices", "count": 2},
            {"op": "update", "resource": "devices", "count": 3},
            {"op": "insert", "resource": "devices", "count": 1},
        ],
    )
    # The churn hits a full pass (no bookmark) and is followed by an incremental one.
    first = run_tap(config, streams=("devices",))
    second = run_tap(config, state=first.state, streams=("devices",))
    alive = _generations(sim)
    newest = _newest(first, second)
    assert set(alive) <= set(newest)
    assert all(newest[i] == generation for i, generation in alive.items())  # no update lost
    walk = first.tap.streams["devices"].last_walk
    assert walk is not None and walk.drifts >= 1


def test_updates_under_sort_by_updated_at_move_records_to_the_front(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=120, updated_sort=True)
    config = fast_config(
        sim, page_size=10, incremental_strategy="sort", start_date="2000-01-01T00:00:00Z"
    )
    first = run_tap(config, streams=("devices",))
    sim.mutate([{"op": "update", "resource": "devices", "count": 40}])
    sim.script_mutations(
        "devices", after_requests=2, ops=[{"op": "update", "resource": "devices", "count": 6}]
    )
    second = run_tap(config, state=first.state, streams=("devices",))
    third = run_tap(config, state=second.state, streams=("devices",))
    alive = _generations(sim)
    newest = _newest(first, second, third)
    assert all(newest[i] == generation for i, generation in alive.items())
    walk = second.tap.streams["devices"].last_walk
    assert walk is not None and walk.drifts >= 1  # the moves were noticed as a forward shift


def test_more_than_a_page_deleted_restarts_the_pass(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=100)
    first_pages = _ordered_ids(sim, 25)
    ops = [{"op": "delete", "resource": "devices", "ids": first_pages[:22]}]
    sim.script_mutations("devices", after_requests=3, ops=ops)
    result = run_tap(fast_config(sim, page_size=10), streams=("devices",))
    assert all_ids(sim, "devices") <= {r["id"] for r in result.records("devices")}
    walk = result.tap.streams["devices"].last_walk
    assert walk is not None and walk.restarts == 1


# --- passes read without overlap and ended by a snapshot check (drift.py) ---------------------


def _snapshot_config(sim: Any, strategy: str, concurrency: int) -> dict[str, Any]:
    return fast_config(
        sim, page_size=10, incremental_strategy=strategy, max_concurrent_requests=concurrency
    )


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(("strategy", "switches"), UPDATED_AT_FORMS)
def test_a_total_that_changes_mid_pass_re_reads_with_overlap(
    make_simulator: Any, strategy: str, switches: dict[str, bool], concurrency: int
) -> None:
    sim = make_simulator(orders=1, devices=250, **switches)
    first_page = _ordered_ids(sim, 10)
    ops = [{"op": "delete", "resource": "devices", "ids": first_page[2:5]}]
    scripted = sim.script_mutations("devices", after_requests=2, ops=ops)
    result = run_tap(_snapshot_config(sim, strategy, concurrency), streams=("devices",))
    assert scripted.done.is_set() and scripted.error is None
    assert all_ids(sim, "devices") <= {r["id"] for r in result.records("devices")}
    walk = result.tap.streams["devices"].last_walk
    assert walk is not None and walk.overlap and walk.drifts >= 1
    offsets = [int(r["query"]["offset"]) for r in sim_requests(sim, "devices")]
    assert 9 in offsets  # the second pass overlaps its pages


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(("strategy", "switches"), UPDATED_AT_FORMS)
def test_delete_plus_insert_with_an_unchanged_total_is_caught_by_the_check(
    make_simulator: Any, strategy: str, switches: dict[str, bool], concurrency: int
) -> None:
    # The churn a total cannot see: 3 deleted from the first page and 3 inserted, after page 0.
    # Without the check, one unchanged record per shifted boundary would be skipped for good.
    sim = make_simulator(orders=1, devices=250, **switches)
    first_page = _ordered_ids(sim, 10)
    ops = [
        {"op": "delete", "resource": "devices", "ids": first_page[2:5]},
        {"op": "insert", "resource": "devices", "count": 3},
    ]
    scripted = sim.script_mutations("devices", after_requests=1, ops=ops)
    result = run_tap(_snapshot_config(sim, strategy, concurrency), streams=("devices",))
    assert scripted.done.is_set() and scripted.error is None
    assert all_ids(sim, "devices") <= {r["id"] for r in result.records("devices")}
    walk = result.tap.streams["devices"].last_walk
    assert walk is not None and (walk.checks, walk.check_failures) == (1, 1)
    assert walk.overlap  # the pass was read again with overlapping pages
    # The check: the count of unchanged records and one page of changed ones (filter form), or
    # one page newest first (sort form); it saw the 3 records created since the pass began.
    assert len(_check_requests(sim)) == (1 if strategy == "sort" else 2)


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(("strategy", "switches"), UPDATED_AT_FORMS)
def test_updates_during_the_pass_cost_what_changed_not_a_second_pass(
    make_simulator: Any, strategy: str, switches: dict[str, bool], concurrency: int
) -> None:
    # Pages are read in id order, which an update never changes: records updated before and
    # during the pass are listed by the check (they were created before it), and the pass holds.
    sim = make_simulator(orders=1, devices=250, **switches)
    sim.mutate([{"op": "update", "resource": "devices", "count": 2}])  # just before the pass
    ops = [{"op": "update", "resource": "devices", "count": 3}]
    sim.script_mutations("devices", after_requests=3, ops=ops)
    result = run_tap(_snapshot_config(sim, strategy, concurrency), streams=("devices",))
    walk = result.tap.streams["devices"].last_walk
    assert walk is not None and (walk.checks, walk.check_failures) == (1, 0)
    assert {r["id"] for r in result.records("devices")} == all_ids(sim, "devices")
    assert len(result.records("devices")) == 250  # one pass: no record read twice
    checks = _check_requests(sim)
    pages = [r for r in sim_requests(sim, "devices") if r not in checks]
    assert len(pages) == 25 and all(r["query"]["sort"] == "id asc" for r in pages)
    assert len(checks) == (1 if strategy == "sort" else 2)


def _check_requests(sim: Any) -> list[dict[str, Any]]:
    """The snapshot check's requests (and probes): they ask about updatedAt, pages do not."""
    return [
        r
        for r in sim_requests(sim, "devices")
        if "updatedAt" in r["query"].get("filter", "") + r["query"].get("sort", "")
    ]
