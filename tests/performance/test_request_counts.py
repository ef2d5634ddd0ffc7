"""Exact request counts: a full sync pays one request per page plus the overlap, nothing else.

Pages overlap by one record (offset-drift detection, ``drift.py``), so a list of N records read
``page`` at a time costs ``1 + ceil((N - page) / (page - 1))`` requests (1 when N <= page), however
many requests are in flight. Incremental syncs pay only for the records that changed.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from flex_simulator.testing import list_page
from tap_hpe_flex.incremental import UPDATED_SORT, Strategy, parse_timestamp
from tests.tap.helpers import UPDATED_AT_FORMS, clear_requests, run_tap, sim_requests, tap_config

PAGE = 10


def full_pass_requests(n: int, page: int = PAGE) -> int:
    """Requests of a quiet pass over ``n`` records with overlapping pages."""
    return 1 if n <= page else 1 + math.ceil((n - page) / (page - 1))


def sort_pass_requests(changed: int, total: int, page: int = PAGE) -> int:
    """Requests of a ``sort=updatedAt desc`` pass that stops at the first unchanged record.

    Page i starts at ``i * (page - 1)``; the pass ends with the page holding position ``changed``
    (the first record older than the bookmark), or at the end of the list.
    """
    if changed >= total:
        return full_pass_requests(total, page)
    return 1 + max(0, math.ceil((changed - (page - 1)) / (page - 1)))


def counting_config(sim: Any, **overrides: Any) -> dict[str, Any]:
    """Page size ``PAGE``, no client-side pacing: only the tap's own requests decide the count."""
    return tap_config(sim, page_size=PAGE, requests_per_minute=100_000, **overrides)


def test_formula_by_hand() -> None:
    assert [full_pass_requests(n) for n in (0, 7, 10, 11, 19, 20, 50)] == [1, 1, 1, 2, 2, 3, 6]
    assert [sort_pass_requests(k, 100) for k in (0, 8, 9, 10, 18, 19)] == [1, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("n", [0, 7, PAGE, 5 * PAGE, 137])
def test_full_sync_costs_exactly_the_overlapping_pages(
    make_simulator: Any, n: int, concurrency: int
) -> None:
    sim = make_simulator(orders=n, devices=n, rate_limit=0)
    config = counting_config(
        sim,
        max_concurrent_requests=concurrency,
        order_transform_group_by=["sowId"],
    )
    result = run_tap(config)
    for stream in ("orders", "devices"):
        assert len(result.records(stream)) == n, stream
        assert len(sim_requests(sim, stream)) == full_pass_requests(n), stream
    rows = len(result.records("order_transforms"))
    assert len(sim_requests(sim, "orders/transform")) == full_pass_requests(rows)
    assert len(sim_requests(sim, "token")) == 1


def _changed_since(sim: Any, bookmark: str, resource: str) -> int:
    """How many records the API holds with ``updatedAt >= bookmark`` (from the store)."""
    page = list_page(sim.store, resource, sim.default_workspace, limit=100_000)
    start = parse_timestamp(bookmark)
    return sum(parse_timestamp(i["updatedAt"]) >= start for i in page.items)


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(
    ("strategy", "switches", "k"),
    [
        ("filter", {"updated_filter": True}, 3),
        ("filter", {"updated_filter": True}, 25),
        ("sort", {"updated_sort": True}, 3),
        ("sort", {"updated_sort": True}, 25),
    ],
)
def test_incremental_sync_pays_for_the_changed_records_only(
    make_simulator: Any, strategy: str, switches: dict[str, bool], k: int, concurrency: int
) -> None:
    sim = make_simulator(orders=80, devices=150, rate_limit=0, **switches)
    config = counting_config(
        sim,
        incremental_strategy=strategy,
        max_concurrent_requests=concurrency,
    )
    first = run_tap(config, streams=("orders", "devices"))
    sim.mutate(
        [
            {"op": "update", "resource": "orders", "count": k},
            {"op": "update", "resource": "devices", "count": k},
        ]
    )
    clear_requests(sim)
    second = run_tap(config, state=first.state, streams=("orders", "devices"))
    for stream, total in (("orders", 80), ("devices", 150)):
        bookmark = first.bookmark(stream)
        assert bookmark is not None
        m = _changed_since(sim, bookmark, stream)
        assert k <= m <= k + 3, stream  # the changed ones plus any sitting on the bookmark
        assert len(second.records(stream)) == m, stream
        log = sim_requests(sim, stream)
        assert all(r["status"] == 200 for r in log), stream  # an explicit strategy: no probe
        want = full_pass_requests(m) if strategy == "filter" else sort_pass_requests(m, total)
        assert len(log) == want, (stream, m, [r["query"].get("offset") for r in log])


def plain_pass_requests(n: int, page: int = PAGE) -> int:
    """Requests of a pass without overlap: ceil(n / page), at least one."""
    return max(1, math.ceil(n / page))


def _is_check(query: dict[str, str]) -> bool:
    """The snapshot check's requests and probes ask about updatedAt; pages do not."""
    return "updatedAt" in query.get("filter", "") + query.get("sort", "")


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(("strategy", "switches"), UPDATED_AT_FORMS)
def test_snapshot_check_replaces_the_overlap_where_updated_at_filters_or_sorts(
    make_simulator: Any, strategy: str, switches: dict[str, bool], concurrency: int
) -> None:
    # 250 devices at page 10: the overlap would cost 3 extra requests; the filter-form check
    # costs 2 (unchanged count, changed list), the sort-form check 1. 120 orders: the overlap
    # costs 2, so only the sort form is cheaper. (An explicit strategy: no probe.)
    sim = make_simulator(orders=120, devices=250, rate_limit=0, **switches)
    config = counting_config(
        sim,
        incremental_strategy=strategy,
        max_concurrent_requests=concurrency,
    )
    result = run_tap(config, streams=("orders", "devices"))
    for stream, n in (("orders", 120), ("devices", 250)):
        ids = [r["id"] for r in result.records(stream)]
        log = sim_requests(sim, stream)
        pages = [r for r in log if not _is_check(r["query"])]
        checks = [r["query"] for r in log if _is_check(r["query"])]
        assert all(r["query"]["sort"] == "id asc" for r in pages), stream
        walk = result.tap.streams[stream].last_walk
        assert walk is not None
        if stream == "orders" and strategy == "filter":  # the overlap is as cheap: kept
            assert len(pages) == full_pass_requests(n) and checks == []
            assert len(set(ids)) == n and walk.checks == 0
            continue
        assert len(ids) == len(set(ids)) == n, stream  # no page overlaps: each record once
        assert len(pages) == plain_pass_requests(n), stream
        assert sorted(int(r["query"]["offset"]) for r in pages) == list(range(0, n, PAGE))
        if strategy == "filter":  # count what is unchanged since the pass began, list the rest
            assert sorted(q["limit"] for q in checks) == ["0", str(PAGE)], stream
            assert any(q["filter"].startswith("updatedAt lt '") for q in checks), stream
            assert any(q["filter"].startswith("updatedAt ge '") for q in checks), stream
        else:  # newest first: the records changed since the pass began, then older ones
            assert [(q["limit"], q["sort"]) for q in checks] == [(str(PAGE), UPDATED_SORT)]
        assert (walk.checks, walk.check_failures) == (1, 0)


@pytest.mark.parametrize(("strategy", "switches"), UPDATED_AT_FORMS)
def test_auto_probes_for_a_snapshot_check_once_for_a_large_full_pass(
    make_simulator: Any, strategy: str, switches: dict[str, bool]
) -> None:
    # auto, no bookmark: nothing says yet whether updatedAt filters or sorts. 400 devices: the
    # overlap would cost 5 extra requests, so two probes (sent together) and a check are worth
    # it; for 120 orders (2 extra) they are not, and orders keep the overlap. The filter form
    # wins when both work.
    sim = make_simulator(orders=120, devices=400, rate_limit=0, **switches)
    config = counting_config(sim)
    result = run_tap(config, streams=("orders", "devices"))
    assert len(result.records("devices")) == 400 and len(result.records("orders")) == 120
    devices = sim_requests(sim, "devices")
    asked = [r for r in devices if _is_check(r["query"])]
    extra = sorted(
        ((r["query"]["limit"], r["query"].get("sort"), r["status"]) for r in asked), key=str
    )
    sort_probe, sort_refused = ("1", UPDATED_SORT, 200), ("1", UPDATED_SORT, 400)
    if strategy == "filter":  # both probes (sort refused here), then the filter-form check
        checks = [("0", None, 200), (str(PAGE), "id asc", 200)]
        assert extra == sorted([("0", None, 200), sort_refused, *checks], key=str)
    else:  # the filter probe refused, the sort probe accepted, then the sort-form check
        assert extra == sorted(
            [("0", None, 400), sort_probe, (str(PAGE), UPDATED_SORT, 200)], key=str
        )
    assert len(devices) == plain_pass_requests(400) + len(extra)
    assert len(sim_requests(sim, "orders")) == full_pass_requests(120)
    # the probes settled the run's incremental strategy for the endpoint, filter preferred
    assert result.tap.runtime.strategies.chosen("devices") is Strategy(strategy)
