"""The arithmetic of bench/peers.py: the physical floor and the accounting of records.

The benchmark's verdicts (wall ÷ floor, records lost) are only as good as these two functions,
so they are checked here on hand-computed cases; the benchmark itself never runs in the suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from peers_floor import (
    account,
    answer_stamped_bound,
    drift_schedule,
    endpoint_floor,
    fewest_requests,
    median_of,
    physical_floor,
)


@pytest.mark.parametrize(
    ("records", "requests"), [(0, 1), (1, 1), (100, 1), (101, 2), (50_000, 500), (50_001, 501)]
)
def test_fewest_requests_is_ceil_n_over_100_and_at_least_one(records: int, requests: int) -> None:
    assert fewest_requests(records) == requests


def test_floor_of_the_issues_run_is_24_15_seconds() -> None:
    # 50,000 devices = 500 requests at 100 per 6 s: 5 windows, the last batch leaves at 24 s.
    assert endpoint_floor(50_000, 100, 6.0, 0.15) == pytest.approx(24.15)


def test_a_full_last_window_costs_no_extra_window_but_one_more_request_does() -> None:
    assert endpoint_floor(100_000, 100, 6.0, 0.15) == pytest.approx(54.15)
    assert endpoint_floor(100_001, 100, 6.0, 0.15) == pytest.approx(60.15)


def test_without_a_limit_the_floor_is_one_latency() -> None:
    assert endpoint_floor(1_000_000, 0, 6.0, 0.15) == pytest.approx(0.15)


def test_endpoints_run_in_parallel_so_the_floor_is_the_slowest_one() -> None:
    floor = physical_floor({"orders": 2_000, "devices": 100_000}, 100, 6.0, 0.15)
    assert floor == pytest.approx(54.15)
    assert physical_floor({}, 100, 6.0, 0.15) == 0.0


def test_account_counts_lost_unchanged_records_and_duplicates() -> None:
    before = {"devices": {"a", "b", "c", "d"}}
    after = {"devices": {"a", "b", "c", "e"}}  # d deleted, e inserted mid-sync
    emitted = [("devices", "a"), ("devices", "a"), ("devices", "d"), ("devices", "e")]
    acc = account(emitted, before, after)
    assert acc.emitted == 4
    assert acc.duplicates == 1
    assert acc.lost == 2  # b and c were there all along and never arrived
    assert acc.delivered == 2  # a and e exist at the end; d does not count
    assert acc.truth == 4


def test_account_keeps_streams_apart() -> None:
    held = {"orders": {"x"}, "devices": {"x"}}
    acc = account([("orders", "x")], held, held)
    assert (acc.delivered, acc.lost, acc.duplicates) == (1, 1, 0)


def test_median_of_repetitions_per_key() -> None:
    rows = [
        {"wall": 3.0, "cpu": 1.0, "by_endpoint": {"devices": 1}},
        {"wall": 1.0, "cpu": 5.0, "by_endpoint": {"devices": 2}, "only_here": 1.0},
        {"wall": 2.0, "cpu": 2.0, "by_endpoint": {"devices": 3}},
    ]
    assert median_of(rows) == {"cpu": 2.0, "wall": 2.0}  # not the dicts, not partial keys
    assert median_of([]) == {}


def test_drift_deletes_fire_evenly_and_hit_records_already_read() -> None:
    plan = drift_schedule(20_000, 3, 20)  # 200 device pages
    assert [after for after, _ in plan] == [50, 100, 150]
    for after, positions in plan:
        assert len(positions) == 20
        assert max(positions) < (after - 1) * 100  # read even by a client one page behind
    every = [p for _, positions in plan for p in positions]
    assert len(every) == len(set(every))  # no record is deleted twice


def test_the_answer_stamped_bound_adds_a_latency_per_window_and_the_first_windows_spread() -> None:
    # 10 full windows of 100 at W = 6 s, L = 0.15 s: 9 x 6.15 + ceil(100 / 8) x 0.15 = 57.30 s.
    assert answer_stamped_bound(10, 100, 6.0, 0.15, 8) == pytest.approx(57.30)
    assert answer_stamped_bound(10, 100, 6.0, 0.15, 32) == pytest.approx(55.95)
    # A last window of 5 follows the first window's first 5: one round at 8 in flight.
    assert answer_stamped_bound(4, 5, 0.3, 0.01, 8) == pytest.approx(0.94)
    # One window, everything at once: the floor's single latency.
    assert answer_stamped_bound(1, 100, 6.0, 0.15, 100) == pytest.approx(0.15)
