"""Progress lines during a sync and one summary line per stream at the end."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import pytest

from tap_hpe_flex.progress import PartitionProgress, ProgressTracker
from tests.reliability.helpers import fast_config
from tests.tap.helpers import run_tap, sim_requests

PROGRESS = re.compile(
    r"^Progress (?P<stream>\w+)(?: \[(?P<label>[^\]]*)\])?: (?P<records>\d+) records so far, "
    r"read (?P<read>\d+) of (?P<total>\d+) \(\d+%\), (?P<requests>\d+) requests in [^;]+; "
    r"[\d.]+ records/s, [\d.]+ requests/min; (about .+ left|time left unknown)$"
)
SUMMARY = re.compile(
    r"^Summary (?P<stream>\w+): (?P<records>\d+) records, (?P<requests>\d+) requests, "
    r"(?P<retries>\d+) retries, (?P<throttled>\d+) 429s, [\d.]+ s, (?P<partitions>\d+) "
    r"partition\(s\), strategy (?P<strategy>[\w, ]+)$"
)


def _lines(caplog: pytest.LogCaptureFixture, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    found = (pattern.match(r.getMessage()) for r in caplog.records if r.levelno == logging.INFO)
    return [m for m in found if m]


def test_progress_lines_carry_records_total_requests_pace_and_time_left(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=60, devices=1, rate_limit=100_000, latency_ms=5)
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    config = fast_config(
        sim,
        page_size=10,
        progress_interval_seconds=0.001,
        order_transform_group_by=["sowId", "partnerName"],
        max_concurrent_requests=1,  # a line after each page: each waits its 5 ms latency
    )
    run_tap(config, streams=("orders", "order_transforms"))

    orders = [m for m in _lines(caplog, PROGRESS) if m["stream"] == "orders"]
    assert len(orders) >= 3
    assert {m["total"] for m in orders} == {"60"}
    reads = [int(m["read"]) for m in orders]
    assert reads == sorted(reads) and reads[-1] <= 60
    assert [int(m["requests"]) for m in orders] == sorted(int(m["requests"]) for m in orders)
    assert any(m.group(0).endswith("left") and "about" in m.group(0) for m in orders)
    labels = {m["label"] for m in _lines(caplog, PROGRESS) if m["stream"] == "order_transforms"}
    assert labels == {"groupBy=sowId", "groupBy=partnerName"}


def test_progress_lines_with_pages_fetched_ahead(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Concurrent twin: pages are fetched by worker threads and counted when the sync consumes
    # them, so lines stay monotonic and never exceed the total, whatever the fetch order. How
    # many lines come depends on timing (the tap paces at 1 request per 0.1 s, so usually one
    # per page); the summary's counts do not.
    sim = make_simulator(orders=60, devices=1, rate_limit=100_000)
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    config = fast_config(
        sim,
        page_size=10,
        progress_interval_seconds=0.001,
        requests_per_minute=1,
        rate_limit_window_seconds=0.1,
        max_concurrent_requests=8,
    )
    run_tap(config, streams=("orders",))

    orders = [m for m in _lines(caplog, PROGRESS) if m["stream"] == "orders"]
    assert orders
    assert {m["total"] for m in orders} == {"60"}
    reads = [int(m["read"]) for m in orders]
    assert reads == sorted(reads) and reads[0] >= 10 and reads[-1] <= 60
    requests = [int(m["requests"]) for m in orders]
    # ceil(60 / 10): at 1 request per window, overlapping pages would cost a window each, so the
    # pass is read tail-first (tail_first.py) in the fewest requests.
    assert requests == sorted(requests) and requests[-1] <= 6
    records = [int(m["records"]) for m in orders]
    assert records == sorted(records) and records[-1] <= 60
    summary = {m["stream"]: m for m in _lines(caplog, SUMMARY)}["orders"]
    assert (summary["records"], summary["requests"]) == ("60", "6")


def test_summary_line_per_stream_counts_records_requests_retries_and_429s(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=25, devices=12, rate_limit=100_000, rate_window_s=1)
    sim.script_faults("orders", ["429", "500:0", "drop"])
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    config = fast_config(sim, page_size=10, progress_interval_seconds=0)
    run_tap(config, streams=("orders", "devices"))

    assert _lines(caplog, PROGRESS) == []  # 0 turns progress lines off, summaries stay
    summaries = {m["stream"]: m for m in _lines(caplog, SUMMARY)}
    assert set(summaries) == {"orders", "devices"}
    orders, devices = summaries["orders"], summaries["devices"]
    # Requests as the server saw them: 3 pages (overlapping by one) and the 3 failed attempts.
    assert (orders["records"], orders["requests"]) == ("25", "6")
    assert orders["requests"] == str(len(sim_requests(sim, "orders")))
    assert (orders["retries"], orders["throttled"]) == ("3", "1")
    assert (devices["records"], devices["requests"], devices["retries"]) == ("12", "2", "0")
    assert orders["strategy"] == "full" and orders["partitions"] == "1"


def test_tracker_counts_from_many_threads() -> None:
    tracker = ProgressTracker(0)
    parts: list[PartitionProgress] = [tracker.start("orders", f"p{i}") for i in range(4)]

    def work(part: PartitionProgress) -> None:
        for i in range(500):
            tracker.record(part)
            tracker.request(part, total=2000, position=i)
            tracker.note_sent("orders")
            tracker.note_retry("orders", 429 if i % 2 else 500)

    threads = [threading.Thread(target=work, args=(p,)) for p in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for part in parts:
        tracker.finish(part, "client")
    line = tracker.summary_line("orders", ["orders"])
    assert line is not None
    match = SUMMARY.match(line)
    assert match, line
    assert (match["records"], match["requests"], match["retries"], match["throttled"]) == (
        "2000",
        "2000",
        "2000",
        "1000",
    )
    assert match["partitions"] == "4" and match["strategy"] == "client"
