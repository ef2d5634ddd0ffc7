"""Several API clients of one workspace (``additional_clients``): spread, doubled, adapted.

The simulator limits each client on its own by default (GreenLake's rule "unless noted"), so two
clients paced at the limit each send twice as much as one, with no 429. With
``rate_limit_scope="workspace"`` it counts the clients together: the tap sees a 429 on a client
whose own window was not full, says so once, and paces the clients together from then on.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flex_simulator.server import FlexSimulator
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.ratelimit import ClientLanes, EndpointRateLimiter
from tap_hpe_flex.shared_budget import SharedRateBudget, client_hash
from tests.reliability.helpers import all_ids
from tests.tap.helpers import FakeClock, run_cli, run_tap, sim_requests, tap_config

LIMIT, WINDOW_S = 10, 1.0
SECOND_ID, SECOND_SECRET = "second-client", "second-client-secret-value"


def _config(sim: FlexSimulator, clients: int, **overrides: Any) -> dict[str, Any]:
    extra = [{"client_id": SECOND_ID, "client_secret": SECOND_SECRET}] if clients == 2 else []
    settings: dict[str, Any] = {"additional_clients": extra} if extra else {}
    return tap_config(
        sim,
        requests_per_minute=LIMIT,
        rate_limit_window_seconds=WINDOW_S,
        page_size=5,
        incremental_strategy="client",
        order_transform_group_by=["sowId"],
        max_concurrent_requests=4,
        retry_initial_wait_seconds=0.05,
        retry_max_wait_seconds=0.2,
        **{**settings, **overrides},
    )


def _sim(make_simulator: Any, **overrides: Any) -> FlexSimulator:
    sim: FlexSimulator = make_simulator(
        orders=2, devices=120, rate_limit=LIMIT, rate_window_s=WINDOW_S, **overrides
    )
    sim.add_client(SECOND_ID, SECOND_SECRET, sim.config.workspace_id)
    return sim


def _max_in_window(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps[i:] if s < start + WINDOW_S) for i, start in enumerate(stamps))


def test_two_clients_double_the_throughput(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spans = {}
    for clients in (1, 2):
        sim = _sim(make_simulator)
        result = run_tap(_config(sim, clients), streams=("devices",))
        assert {r["id"] for r in result.records("devices")} == all_ids(sim, "devices")
        log = sim_requests(sim, "devices")
        assert {r["status"] for r in log} == {200}  # no 429, whichever the client
        by_client = Counter(r["client_id"] for r in log)
        assert len(by_client) == clients
        assert min(by_client.values()) >= 0.3 * len(log)  # every client takes a share
        for client in by_client:  # each client within its own limit ...
            assert _max_in_window([r["time"] for r in log if r["client_id"] == client]) <= LIMIT
        # ... and together up to `clients` times the limit per window.
        assert _max_in_window([r["time"] for r in log]) > LIMIT * (clients - 1)
        stamps = [r["time"] for r in log]
        spans[clients] = (len(stamps), max(stamps) - min(stamps))
    (one_n, one_s), (two_n, two_s) = spans[1], spans[2]
    assert one_n == two_n  # the same requests: 24 pages (the overlap check included)
    # One client: (ceil(n/10) - 1) windows; two clients: half as many.
    assert one_s >= 0.95 * ((one_n - 1) // LIMIT)
    assert two_s <= 0.55 * one_s + 0.2, spans
    assert SECOND_SECRET not in caplog.text
    assert "shared by the" not in caplog.text  # no false alarm: the limit is per client


def test_a_shared_limit_is_detected_and_said_once(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _sim(make_simulator, rate_limit_scope="workspace")
    caplog.set_level(logging.INFO)
    result = run_tap(_config(sim, 2), streams=("devices",))
    assert {r["id"] for r in result.records("devices")} == all_ids(sim, "devices")
    warnings = [r.getMessage() for r in caplog.records if "shared by the 2 API" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "rate limit of devices is shared by the 2 API clients" in warnings[0]
    assert result.tap.runtime.lanes is not None and result.tap.runtime.lanes.is_shared("devices")
    statuses = [r["status"] for r in sim_requests(sim, "devices")]
    refused = statuses.count(429)
    assert refused >= 1
    # After the switch the clients pace together: 429s only around the switch, not every window.
    assert refused <= 12, statuses
    assert SECOND_SECRET not in caplog.text


def test_lanes_pick_the_client_free_soonest_and_judge_a_shared_limit() -> None:
    clock = FakeClock(100.0)
    limiter = EndpointRateLimiter(2, 10.0, clock=clock, sleep=clock.sleep)
    lanes = ClientLanes(limiter, ["main", "b" * 16])
    picked = []
    for _ in range(4):
        lane = lanes.pick("devices")
        picked.append(lane)
        limiter.complete(lanes.view(lane).reserve("devices")[0])
    assert picked == [0, 1, 0, 1]
    assert limiter.in_window("devices") == 2 and limiter.in_window("b" * 16 + "#devices") == 2
    # A 429 with the lane's own window full is the client's own limit: nothing changes.
    lanes.view(1).block("devices", 1.0)
    lanes.pick("devices")
    assert not lanes.is_shared("devices")
    # A 429 when the lane has sent less than its limit: the server counts the clients together.
    clock.now += 11
    limiter.complete(lanes.view(1).reserve("devices")[0])
    lanes.view(1).block("devices", 1.0)
    lanes.pick("devices")
    assert lanes.is_shared("devices")
    assert lanes.key(1, "devices") == "devices" and lanes.key(1, "orders") == "b" * 16 + "#orders"


def test_a_lower_announced_limit_is_not_taken_for_a_shared_one() -> None:
    clock = FakeClock(0.0)
    limiter = EndpointRateLimiter(10, 10.0, clock=clock, sleep=clock.sleep)
    lanes = ClientLanes(limiter, ["main", "c" * 16])
    view = lanes.view(1)
    for _ in range(3):
        limiter.complete(view.reserve("devices")[0])
    view.block("devices", 1.0)  # the server says 3 per window for this client, not 10
    view.lower_limit("devices", 3)
    lanes.pick("devices")
    assert not lanes.is_shared("devices")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([{"client_id": "x"}], "item 1 needs a client_id and a client_secret"),
        ('[{"client_id": "demo-client", "client_secret": "s"}]', "item 1 repeats a client_id"),
        ("not json", "additional_clients must be a list"),
    ],
)
def test_bad_additional_clients_fail_with_one_line(
    simulator: FlexSimulator, value: Any, fragment: str
) -> None:
    with pytest.raises(FlexConfigError, match=fragment):
        run_tap(tap_config(simulator, additional_clients=value))


def test_the_cli_never_prints_the_second_secret(make_simulator: Any, tmp_path: Path) -> None:
    """The list as JSON text from the environment (how an orchestrator passes a secret)."""
    sim = _sim(make_simulator)
    clients = json.dumps([{"client_id": SECOND_ID, "client_secret": SECOND_SECRET}])
    env = {"TAP_HPE_FLEX_ADDITIONAL_CLIENTS": clients}
    proc = run_cli(_config(sim, 1), tmp_path, "--config", "ENV", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert SECOND_SECRET not in proc.stdout + proc.stderr
    used = {r["client_id"] for r in sim_requests(sim, "devices")}
    assert used == {sim.config.client_id, SECOND_ID}


def test_a_lane_key_names_that_clients_own_shared_budget() -> None:
    """Process 1 (main A, extra B) and process 2 (main B) share B's budget in the store."""
    store = "redis://127.0.0.1:9/0"  # never reached: naming needs no connection
    first = SharedRateBudget(store, "client-a", 10, 1.0, timeout_s=0.2)
    second = SharedRateBudget(store, "client-b", 10, 1.0, timeout_s=0.2)
    lanes = ClientLanes(first, [client_hash("client-a"), client_hash("client-b")])
    assert first.bucket_name(lanes.key(1, "devices")) == second.bucket_name("devices")
    assert first.bucket_name(lanes.key(0, "devices")) != second.bucket_name("devices")
    first.close()
    second.close()
