"""Tail-first paging over real HTTP: the fewest requests when quiet, nothing lost when not.

The tap paces at 10 requests per window and pages of 10, so the 10 pages of 95 devices fill one
window exactly and overlapping them (11 requests) would cost a second one: the pass is read
tail-first (``tail_first.py``). Changes land mid-pass through the simulator's scripted mutations.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from tests.reliability.helpers import all_ids, fast_config
from tests.tap.helpers import run_tap, sim_requests

DEVICES, PAGE = 95, 10
#: (offset, limit) of each request of a quiet pass: the first page, then from the end down.
QUIET = [(0, 10), *((o, 10) for o in range(85, 10, -10)), (10, 5)]


def _config(sim: Any, concurrency: int = 1) -> dict[str, Any]:
    return fast_config(
        sim,
        page_size=PAGE,
        requests_per_minute=PAGE,
        rate_limit_window_seconds=0.05,
        max_concurrent_requests=concurrency,
    )


def _asked(sim: Any) -> list[tuple[int, int]]:
    return [
        (int(r["query"]["offset"]), int(r["query"]["limit"])) for r in sim_requests(sim, "devices")
    ]


def _delivered(result: Any) -> list[str]:
    return [r["id"] for r in result.records("devices")]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_quiet_pass_takes_one_request_per_page_and_no_probe(
    make_simulator: Any, concurrency: int, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=1, devices=DEVICES)
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    result = run_tap(_config(sim, concurrency), streams=("devices",))
    delivered = _delivered(result)
    assert sorted(delivered) == sorted(all_ids(sim, "devices"))  # each once
    asked = _asked(sim)
    assert sorted(asked) == sorted(QUIET)
    if concurrency == 1:
        assert asked == QUIET
    assert {r["status"] for r in sim_requests(sim, "devices")} == {200}  # no refused probe
    assert all(r["query"].get("sort") == "id asc" for r in sim_requests(sim, "devices"))
    assert "reading the rest from the end of the list" in caplog.text
    assert "again" not in caplog.text


def test_progress_counts_the_records_read_not_the_offsets(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The second page is at offset 85: "read 95 of 95" there would say the pass is done.
    sim = make_simulator(orders=1, devices=DEVICES)
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    run_tap({**_config(sim), "progress_interval_seconds": 0.001}, streams=("devices",))
    reads = [
        int(m.group(1))
        for r in caplog.records
        if (
            m := re.match(r"Progress devices: \d+ records so far, read (\d+) of 95", r.getMessage())
        )
    ]
    assert reads == [*range(10, 95, 10), 95]


def _ids_in_order(sim: Any) -> list[str]:
    return sorted(all_ids(sim, "devices"))


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(
    "case",
    ["delete in the first page", "delete in the unread part", "insert", "delete and insert"],
)
def test_changes_mid_pass_lose_nothing(
    make_simulator: Any, concurrency: int, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=1, devices=DEVICES)
    ids = _ids_in_order(sim)
    deletes = {
        "delete in the first page": ids[2:5],
        "delete in the unread part": ids[30:33],
        "insert": [],
        "delete and insert": ids[5:8],
    }[case]
    ops: list[dict[str, Any]] = []
    if deletes:
        ops.append({"op": "delete", "resource": "devices", "ids": deletes})
    if "insert" in case:
        ops.append({"op": "insert", "resource": "devices", "count": len(deletes) or 3})
    # Sequential: after three pages (the first and two from the end). Concurrent: after the
    # first page, which is answered alone, so every page fetched ahead sees the change.
    scripted = sim.script_mutations("devices", after_requests=3 if concurrency == 1 else 1, ops=ops)
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    result = run_tap(_config(sim, concurrency), streams=("devices",))
    assert scripted.done.is_set() and scripted.error is None
    unchanged = set(ids) - set(deletes)
    assert unchanged <= set(_delivered(result))  # every record there before and after
    # Given up once, then read once more with overlap (which re-reads what it sees shift).
    assert caplog.text.count("reading the list again from its start with overlapping") == 1
    walk = result.tap.streams["devices"].last_walk
    assert walk is not None and walk.drifts >= 1


def test_a_pass_that_overlap_would_not_slow_keeps_overlapping(make_simulator: Any) -> None:
    # 89 devices: 9 plain requests or 10 overlapping ones, both within one window of 10.
    sim = make_simulator(orders=1, devices=89)
    result = run_tap(_config(sim), streams=("devices",))
    assert sorted(_delivered(result)) == sorted(all_ids(sim, "devices"))
    assert [o for o, _ in _asked(sim)] == [0, 9, 18, 27, 36, 45, 54, 63, 72, 81]


def test_probes_are_sent_only_where_they_fit_in_the_windows(make_simulator: Any) -> None:
    # 450 devices at pages of 10: 45 plain requests, 50 overlapping ones, which fill one window
    # of 50. The snapshot check would pay (5 overlap requests against 2 probes and a 2-request
    # check), but against the documented API both probes are refused, and 52 requests need a
    # second window: the pass overlaps without probing.
    sim = make_simulator(orders=1, devices=450)
    config = {**_config(sim, 8), "requests_per_minute": 50}
    result = run_tap(config, streams=("devices",))
    assert sorted(_delivered(result)) == sorted(all_ids(sim, "devices"))
    log = sim_requests(sim, "devices")
    assert {r["status"] for r in log} == {200}  # no refused probe
    assert len(log) == 50
