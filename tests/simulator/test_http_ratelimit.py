"""Rate limiting per endpoint per client (rolling window) and injected latency."""

from __future__ import annotations

import time

import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token

API = "/flex/v1beta1"


def _get(sim: FlexSimulator, token: str, path: str = "/orders") -> requests.Response:
    return requests.get(f"{sim.url}{API}{path}", headers=auth_headers(token), timeout=10)


def test_429_after_the_limit_with_headers(make_simulator) -> None:
    sim = make_simulator(rate_limit=3, rate_window_s=30)
    token = fetch_token(sim)
    assert [_get(sim, token).status_code for _ in range(3)] == [200, 200, 200]
    r = _get(sim, token)
    assert r.status_code == 429
    body = r.json()
    assert body["errorCode"] == "HPE_GL_ERROR_TOO_MANY_REQUESTS"
    assert body["httpStatusCode"] == 429
    assert r.headers["X-RateLimit-Limit"] == "3"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(r.headers["X-RateLimit-Reset"]) <= 30
    assert "Retry-After" not in r.headers
    log = sim.requests("orders")
    assert [e["status"] for e in log] == [200, 200, 200, 429]


def test_retry_after_only_behind_the_switch(make_simulator) -> None:
    sim = make_simulator(rate_limit=1, rate_window_s=30, retry_after=True)
    token = fetch_token(sim)
    _get(sim, token)
    r = _get(sim, token)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == r.headers["X-RateLimit-Reset"]
    sim.update_config(retry_after=False)
    assert "Retry-After" not in _get(sim, token).headers


def test_limits_are_per_endpoint_and_per_client(make_simulator) -> None:
    sim = make_simulator(rate_limit=2, rate_window_s=30)
    token = fetch_token(sim)
    for _ in range(2):
        assert _get(sim, token, "/orders").status_code == 200
    assert _get(sim, token, "/orders").status_code == 429
    assert _get(sim, token, "/devices").status_code == 200
    assert _get(sim, token, "/orders/transform?group-by=sowId").status_code == 200
    sim.add_client("other", "other-secret", sim.config.workspace_id)
    other = fetch_token(sim, "other", "other-secret")
    assert _get(sim, other, "/orders").status_code == 200
    # token requests are not rate limited
    for _ in range(3):
        fetch_token(sim)


def test_window_recovers_and_rejections_do_not_count(make_simulator) -> None:
    sim = make_simulator(rate_limit=2, rate_window_s=1.0)
    token = fetch_token(sim)
    assert _get(sim, token).status_code == 200
    assert _get(sim, token).status_code == 200
    for _ in range(5):  # hammering while limited must not push recovery further out
        assert _get(sim, token).status_code == 429
    time.sleep(1.1)
    assert _get(sim, token).status_code == 200
    assert _get(sim, token).status_code == 200
    assert _get(sim, token).status_code == 429


def test_latency_is_added_after_the_rate_limit(make_simulator) -> None:
    sim = make_simulator(latency_ms=1500, rate_limit=1, rate_window_s=30)
    token = fetch_token(sim)
    assert _get(sim, token).status_code == 200
    assert _get(sim, token).status_code == 429
    ok, limited = sim.requests("orders")
    assert ok["duration"] >= 1.5  # slept at least the latency (a lower bound, not a speed test)
    # 429 answers before the latency is applied (server-side duration; wide margin for a busy host)
    assert limited["duration"] < 1.0
    (tok,) = sim.requests("token")
    assert tok["duration"] < 1.0  # the token endpoint has no added latency
