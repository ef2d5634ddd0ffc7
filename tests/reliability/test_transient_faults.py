"""Transient faults over real HTTP: 5xx (JSON or HTML), drops, cut-off bodies, timeouts, tokens."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from tap_hpe_flex.errors import FlexAPIError, FlexAuthError
from tests.reliability.helpers import all_ids, fast_config, statuses
from tests.tap.helpers import run_tap, sim_requests


@pytest.mark.parametrize(
    ("faults", "expected_statuses"),
    [
        (["503-html", "502-html", "500", "503-html", "502-html"], [503, 502, 500, 503, 502]),
        (["drop", "drop", "drop"], [None, None, None]),
        (["truncate", "truncate"], [200, 200]),
    ],
    ids=["5xx-burst-with-html", "dropped-connections", "truncated-bodies"],
)
def test_transient_faults_mid_sync_lose_nothing(
    make_simulator: Any, faults: list[str], expected_statuses: list[int | None]
) -> None:
    sim = make_simulator(orders=1, devices=60, server_error_retry_after_s=0)
    sim.script_faults("devices", ["pass", *faults])  # the burst hits the second page
    result = run_tap(fast_config(sim, page_size=20), streams=("devices",))
    ids = [r["id"] for r in result.records("devices")]
    assert set(ids) == all_ids(sim, "devices") and len(ids) == 60
    got = statuses(sim, "devices")
    assert got[1 : 1 + len(faults)] == expected_statuses
    assert got[1 + len(faults) :] == [200] * (len(got) - 1 - len(faults))


def test_timeouts_are_retried(make_simulator: Any) -> None:
    sim = make_simulator(orders=25, devices=1)
    sim.script_faults("orders", ["timeout:1.5", "timeout:1.5"])
    result = run_tap(fast_config(sim, request_timeout=0.3), streams=("orders",))
    assert len(result.records("orders")) == 25
    deadline = time.monotonic() + 5  # a stalled request is logged when its stall ends
    while len(sim_requests(sim, "orders")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(sim_requests(sim, "orders")) == 3


def test_a_non_json_success_is_retried_not_fatal(make_simulator: Any) -> None:
    # A cut-off body without the connection closing looks like this to the tap: HTTP 200, not JSON.
    sim = make_simulator(orders=30, devices=1)
    sim.script_faults("orders", ["truncate"])
    result = run_tap(fast_config(sim, page_size=10), streams=("orders",))
    assert len({r["id"] for r in result.records("orders")}) == 30


def test_gives_up_after_max_retry_seconds_with_one_line(make_simulator: Any) -> None:
    sim = make_simulator(orders=30, devices=1, server_error_retry_after_s=1)
    sim.script_faults("orders", ["500"] * 20)
    started = time.monotonic()
    with pytest.raises(FlexAPIError) as info:
        run_tap(fast_config(sim, max_retry_seconds=2.5), streams=("orders",))
    message = str(info.value)
    assert time.monotonic() - started < 10
    assert "\n" not in message
    assert message.startswith("orders: GET /flex/v1beta1/orders: giving up after 3 attempts")
    assert "HTTP 500" in message and "debugId=" in message
    assert len(sim_requests(sim, "orders")) == 3


@pytest.mark.parametrize("status", ["400", "403"])
def test_client_errors_fail_fast(make_simulator: Any, status: str) -> None:
    sim = make_simulator(orders=30, devices=1)
    if status == "400":
        config = fast_config(sim, incremental_strategy="filter", start_date="2020-01-01T00:00:00Z")
    else:
        sim.add_client("devices-only", "devices-secret-1", sim.config.workspace_id, ("devices",))
        config = fast_config(sim, client_id="devices-only", client_secret="devices-secret-1")
    with pytest.raises(FlexAPIError, match=f"HTTP {status}"):
        run_tap(config, streams=("orders",))
    assert len(sim_requests(sim, "orders")) == 1


def test_token_endpoint_faults_are_retried(make_simulator: Any) -> None:
    sim = make_simulator(orders=10, devices=1, rate_window_s=1, server_error_retry_after_s=0)
    # (A scripted "truncate" is not applied to the token endpoint by the simulator: reported.)
    sim.script_faults("token", ["503-html", "drop", "500", "429"])
    result = run_tap(fast_config(sim), streams=("orders",))
    assert len(result.records("orders")) == 10
    assert statuses(sim, "token") == [503, None, 500, 429, 200]


def test_token_endpoint_refusal_is_not_retried(make_simulator: Any) -> None:
    sim = make_simulator(orders=10, devices=1)
    with pytest.raises(FlexAuthError, match="rejected client_id/client_secret"):
        run_tap(fast_config(sim, client_secret="wrong-secret"), streams=("orders",))
    assert statuses(sim, "token") == [401]


def test_token_expiring_during_a_long_sync_is_renewed(make_simulator: Any) -> None:
    # 2-second tokens, a sync paced over ~3 s: renewed before expiry, never a 401.
    sim = make_simulator(orders=1, devices=100, token_ttl=2, rate_limit=4, rate_window_s=1)
    config = fast_config(sim, page_size=10, requests_per_minute=4, rate_limit_window_seconds=1)
    result = run_tap(config, streams=("devices",))
    assert {r["id"] for r in result.records("devices")} == all_ids(sim, "devices")
    assert len(statuses(sim, "token")) >= 2
    assert 401 not in statuses(sim, "devices") and 429 not in statuses(sim, "devices")


def test_token_expiring_during_a_backoff_is_renewed_before_the_retry(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The server asks for 3 s after a 500; the 2-second token expires meanwhile.
    sim = make_simulator(orders=15, devices=1, token_ttl=2)
    sim.script_faults("orders", ["500:3"])
    caplog.set_level(logging.INFO)
    result = run_tap(fast_config(sim), streams=("orders",))
    assert len(result.records("orders")) == 15
    assert statuses(sim, "orders") == [500, 200]  # no 401: the token was renewed first
    assert len(statuses(sim, "token")) == 2
    assert "waiting 3.0 s (as the server asked: retryAfterSeconds)" in caplog.text


def test_token_revoked_during_a_backoff_gets_one_new_token(make_simulator: Any) -> None:
    sim = make_simulator(orders=15, devices=1)
    sim.script_faults("orders", ["503-html"])
    config = fast_config(sim, retry_initial_wait_seconds=0.5, retry_max_wait_seconds=0.5)

    def revoke_after_first_answer() -> None:
        deadline = time.monotonic() + 5
        while not sim.requests("orders") and time.monotonic() < deadline:
            time.sleep(0.01)
        sim.expire_tokens()  # the server revokes the token while the tap waits to retry

    thread = threading.Thread(target=revoke_after_first_answer)
    thread.start()
    result = run_tap(config, streams=("orders",))
    thread.join()
    assert len(result.records("orders")) == 15
    assert statuses(sim, "orders") == [503, 401, 200]
    assert len(statuses(sim, "token")) == 2
