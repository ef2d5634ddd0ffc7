"""The retry loop and wait parsing, with a hand-driven clock (no real waiting)."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_hpe_flex.errors import FlexAPIError
from tap_hpe_flex.ratelimit import EndpointRateLimiter
from tap_hpe_flex.retry import RetryPolicy, call_with_retries, server_wait
from tests.tap.helpers import FakeClock


def response(status: int, headers: dict[str, str] | None = None, body: Any = None) -> Any:
    resp = requests.Response()
    resp.status_code = status
    resp.reason = "Reason"
    resp.headers.update(headers or {})
    resp._content = json.dumps(body).encode() if body is not None else b""
    resp.url = "http://api.test/flex/v1beta1/orders"
    return resp


def policy(clock: FakeClock, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(clock=clock, sleep=clock.sleep, rng=lambda: 0.5, **kwargs)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "7"}, None, (7.0, "Retry-After")),
        ({"x-ratelimit-reset": "12"}, None, (12.0, "X-RateLimit-Reset")),
        ({"RATELIMIT-RESET": "3"}, None, (3.0, "RateLimit-Reset")),
        ({"X-RateLimit-Reset": "5", "Retry-After": "9"}, None, (9.0, "Retry-After")),
        ({}, {"errorDetails": [{"retryAfterSeconds": 30}]}, (30.0, "retryAfterSeconds")),
        ({}, {"message": "no hint"}, None),
        ({"Retry-After": "soon"}, None, None),
    ],
)
def test_server_wait_reads_every_spelling(
    headers: dict[str, str], body: Any, expected: tuple[float, str] | None
) -> None:
    assert server_wait(response(429, headers, body)) == expected


def test_server_wait_reads_http_dates_and_epoch_seconds() -> None:
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    date_wait = server_wait(response(503, {"Retry-After": later}))
    epoch_wait = server_wait(response(429, {"X-RateLimit-Reset": str(int(time.time()) + 20)}))
    assert date_wait and 15 < date_wait[0] <= 20
    assert epoch_wait and 15 < epoch_wait[0] <= 21


def _failing(answers: list[Any]) -> Any:
    def attempt() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if answer.status_code >= 400:
            raise RetriableAPIError("retriable", answer)
        return answer

    return attempt


def test_a_60_second_window_does_not_exhaust_the_retries() -> None:
    clock = FakeClock()
    limiter = EndpointRateLimiter(100, clock=clock, sleep=clock.sleep)
    answers = [response(429, {"X-RateLimit-Reset": "60", "X-RateLimit-Limit": "50"})] * 8
    answers.append(response(200))
    result = call_with_retries(
        _failing(answers), what="orders", key="orders", policy=policy(clock), limiter=limiter
    )
    assert result.status_code == 200
    assert clock.sleeps == [60.0] * 8  # exactly what the server said, no jitter
    assert limiter.limit_for("orders") == 50  # paced at the announced limit from now on


def test_a_429_holds_the_endpoint_for_everyone() -> None:
    clock = FakeClock()
    limiter = EndpointRateLimiter(100, clock=clock, sleep=lambda s: None)
    answers = [response(429, {"Retry-After": "5"}), response(200)]
    call_with_retries(
        _failing(answers),
        what="orders",
        key="orders",
        policy=RetryPolicy(clock=clock, sleep=lambda s: None),
        limiter=limiter,
    )
    assert not limiter.try_acquire("orders")  # still held: the clock did not move
    assert limiter.try_acquire("devices")


def test_backoff_without_hint_grows_with_jitter_and_a_cap() -> None:
    clock = FakeClock()
    errors = [requests.exceptions.ConnectionError()] * 7
    call_with_retries(
        _failing([*errors, response(200)]),
        what="orders",
        key="orders",
        policy=policy(clock, initial_wait_s=1, max_wait_s=8),
    )
    assert clock.sleeps == [0.75, 1.5, 3.0, 6.0, 6.0, 6.0, 6.0]


def test_a_server_that_keeps_asking_for_no_wait_gets_backoff_after_the_first_retry() -> None:
    # "Retry-After: 0" once is honoured (retry at once); said again, it is not a plan: without
    # a floor the loop would spin until max_retry_seconds.
    clock = FakeClock()
    answers = [response(503, {"Retry-After": "0"})] * 4 + [response(200)]
    result = call_with_retries(
        _failing(answers), what="orders", key="orders", policy=policy(clock, initial_wait_s=2)
    )
    assert result.status_code == 200
    assert clock.sleeps == [0.0, 1.5, 3.0, 6.0]  # then backoff(1), backoff(2), backoff(3)


def test_a_short_hint_on_the_first_failure_is_honoured_exactly() -> None:
    clock = FakeClock()
    answers = [response(429, {"Retry-After": "0.4"}), response(429, {"Retry-After": "3"})]
    call_with_retries(
        _failing([*answers, response(200)]), what="orders", key="orders", policy=policy(clock)
    )
    assert clock.sleeps == [0.4, 3.0]


def test_gives_up_when_the_budget_is_spent_naming_status_and_debug_id() -> None:
    clock = FakeClock()
    body = {"message": "boom", "debugId": "dbg-123", "errorDetails": [{"retryAfterSeconds": 40}]}
    answers = [response(500, {}, body)] * 10
    with pytest.raises(FlexAPIError) as info:
        call_with_retries(
            _failing(answers),
            what="orders: GET /flex/v1beta1/orders",
            key="orders",
            policy=policy(clock, max_retry_seconds=100),
        )
    assert str(info.value) == (
        "orders: GET /flex/v1beta1/orders: giving up after 3 attempts in 80 s "
        "(max_retry_seconds=100); last error: HTTP 500 Reason - boom - debugId=dbg-123"
    )


def test_non_transient_errors_are_not_retried() -> None:
    clock = FakeClock()
    calls = []

    def attempt() -> Any:
        calls.append(1)
        raise FlexAPIError("HTTP 422", status=422)

    with pytest.raises(FlexAPIError, match="422"):
        call_with_retries(attempt, what="orders", key="orders", policy=policy(clock))
    assert len(calls) == 1 and clock.sleeps == []
