"""EndpointRateLimiter with a hand-driven clock (no real waiting)."""

from __future__ import annotations

import threading

import pytest

from tap_hpe_flex.ratelimit import EndpointRateLimiter
from tests.tap.helpers import FakeClock


def _limiter(limit: int, window: float = 60.0) -> tuple[EndpointRateLimiter, FakeClock]:
    clock = FakeClock(start=1000.0)
    return EndpointRateLimiter(limit, window, clock=clock, sleep=clock.sleep), clock


def test_allows_limit_then_waits_for_the_oldest_to_leave_the_window() -> None:
    limiter, clock = _limiter(3)
    for _ in range(3):
        assert limiter.acquire("orders") == 0
        clock.now += 1
    waited = limiter.acquire("orders")  # t=1003, oldest at t=1000 leaves at 1060
    assert waited == pytest.approx(57.0)
    assert clock.now == pytest.approx(1060.0)
    assert limiter.in_window("orders") == 3


def test_keys_are_independent() -> None:
    limiter, _ = _limiter(1)
    assert limiter.try_acquire("orders")
    assert not limiter.try_acquire("orders")
    assert limiter.try_acquire("devices")
    assert limiter.try_acquire("devices/{id}")


def test_sliding_window_never_exceeds_limit_in_any_window() -> None:
    limiter, clock = _limiter(5, window=10.0)
    stamps = []
    for _ in range(23):
        limiter.acquire("devices")
        stamps.append(clock.now)
        clock.now += 0.7
    for start in stamps:
        assert sum(1 for s in stamps if start <= s < start + 10.0) <= 5


def test_block_holds_a_key() -> None:
    limiter, _clock = _limiter(100)
    limiter.block("orders", 12.5)
    assert not limiter.try_acquire("orders")
    assert limiter.acquire("orders") == pytest.approx(12.5)
    assert limiter.try_acquire("devices")


def test_thread_safe_counting() -> None:
    limiter = EndpointRateLimiter(10_000, 60.0)
    threads = [
        threading.Thread(target=lambda: [limiter.acquire("k") for _ in range(200)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limiter.in_window("k") == 1600


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        EndpointRateLimiter(0)
    with pytest.raises(ValueError, match="window"):
        EndpointRateLimiter(1, 0)


def test_a_slot_counts_from_when_its_answer_arrived() -> None:
    # The server counts a request on arrival, after the send: stamping at completion keeps the
    # next window's first request from reaching the server before the oldest one has left it.
    limiter, clock = _limiter(2, window=10.0)
    first, _ = limiter.reserve("orders")
    clock.now += 3  # a slow answer
    limiter.complete(first)
    limiter.acquire("orders")
    assert limiter.acquire("orders") == pytest.approx(10.0)  # from t=1003, not t=1000
    assert clock.now == pytest.approx(1013.0)


def test_in_flight_slots_count_against_the_window() -> None:
    limiter, _ = _limiter(1)
    slot, waited = limiter.reserve("orders")
    assert waited == 0
    assert not limiter.try_acquire("orders")  # in flight still counts
    limiter.complete(slot)
    assert limiter.in_window("orders") == 1


def test_lower_limit_only_lowers() -> None:
    limiter, _ = _limiter(10)
    limiter.lower_limit("orders", 20)
    assert limiter.limit_for("orders") == 10
    limiter.lower_limit("orders", 3)
    assert limiter.limit_for("orders") == 3
    assert limiter.limit_for("devices") == 10
