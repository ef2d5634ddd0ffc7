"""Rate limits over real HTTP: pacing at the limit never meets a 429; a lower limit costs waits."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest

from tests.reliability.helpers import FAST_RETRIES, all_ids, statuses
from tests.tap.helpers import run_tap, sim_requests, tap_config


def test_pacing_at_the_simulator_limit_gets_no_429(make_simulator: Any) -> None:
    # 5 requests per 1 s window on both sides; 14 device pages must wait for the window twice.
    sim = make_simulator(orders=40, devices=120, rate_limit=5, rate_window_s=1)
    config = tap_config(
        sim, page_size=10, requests_per_minute=5, rate_limit_window_seconds=1, **FAST_RETRIES
    )
    result = run_tap(config, streams=("orders", "devices"))
    for stream in ("orders", "devices"):
        assert {r["id"] for r in result.records(stream)} == all_ids(sim, stream)
        assert 429 not in statuses(sim, stream)
    assert len(statuses(sim, "devices")) > 5  # the window really was exceeded without pacing


def test_server_limit_below_configured_one_delivers_everything(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The server allows 3 per second, the tap thinks 10: 429s come, the tap waits as told.
    sim = make_simulator(orders=1, devices=80, rate_limit=3, rate_window_s=1)
    config = tap_config(
        sim,
        page_size=10,
        requests_per_minute=10,
        rate_limit_window_seconds=1,
        max_concurrent_requests=1,  # one at a time: at most the first window meets 429s
        **FAST_RETRIES,
    )
    caplog.set_level(logging.INFO)
    result = run_tap(config, streams=("devices",))
    assert {r["id"] for r in result.records("devices")} == all_ids(sim, "devices")
    got = statuses(sim, "devices")
    assert got.count(429) >= 1
    # After the first 429 the tap paces at the announced X-RateLimit-Limit: few more 429s.
    assert got.count(429) <= 3, got
    assert result.tap.runtime.limiter.limit_for("devices") == 3
    waits = [r.getMessage() for r in caplog.records if "X-RateLimit-Reset" in r.getMessage()]
    assert waits and all(r.levelno == logging.INFO for r in caplog.records if "waiting" in r.msg)
    assert "HTTP 429" in waits[0] and "waiting 1.0 s" in waits[0]


def test_server_limit_below_configured_one_with_requests_in_flight(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Concurrent twin: 8 requests in flight when the server first says "3 per second". Each of
    # them may meet one 429 (they were sent before the tap knew); once the tap paces at the
    # announced limit no request meets a second one and no new request meets any.
    sim = make_simulator(orders=1, devices=80, rate_limit=3, rate_window_s=1)
    config = tap_config(
        sim,
        page_size=10,
        requests_per_minute=10,
        rate_limit_window_seconds=1,
        max_concurrent_requests=8,
        **FAST_RETRIES,
    )
    caplog.set_level(logging.INFO)
    result = run_tap(config, streams=("devices",))
    assert {r["id"] for r in result.records("devices")} == all_ids(sim, "devices")
    assert result.tap.runtime.limiter.limit_for("devices") == 3
    log = sim_requests(sim, "devices")
    refused = Counter(int(r["query"]["offset"]) for r in log if r["status"] == 429)
    assert refused, "the server's lower limit was never met"
    assert max(refused.values()) == 1, refused  # no request refused twice
    assert sum(refused.values()) <= 8  # only requests already in flight at the announcement
    assert {r["status"] for r in log} <= {200, 429}
    waits = [r.getMessage() for r in caplog.records if "X-RateLimit-Reset" in r.getMessage()]
    assert len(waits) == sum(refused.values()) and all("HTTP 429" in w for w in waits)


def test_more_429s_in_a_row_than_the_sdk_would_retry(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Six 429s in a row (the SDK gives up after 5 tries), with Retry-After honoured exactly.
    sim = make_simulator(orders=30, devices=1, rate_window_s=1, retry_after=True)
    sim.script_faults("orders", ["429"] * 6)
    caplog.set_level(logging.INFO)
    result = run_tap(tap_config(sim, **FAST_RETRIES), streams=("orders",))
    assert len(result.records("orders")) == 30
    assert statuses(sim, "orders") == [429] * 6 + [200]
    waits = [r.getMessage() for r in caplog.records if "before attempt" in r.getMessage()]
    assert len(waits) == 6
    assert all("waiting 1.0 s (as the server asked: Retry-After)" in w for w in waits)
