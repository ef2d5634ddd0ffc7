"""Three concurrent tap processes (the CLI) with one API client, with and without a shared budget.

The simulator allows 100 requests per 2 s window per client and endpoint (GreenLake's 100 per
minute, time-scaled) and counts on arrival; its request log is the judge. With
``rate_budget_url`` on the suite's PostgreSQL or Redis server the three taps meet no 429, each
writes every record, and the union of their requests takes no longer than 1.1x the floor (the
shortest time the limit allows for that many requests). Without it each tap paces alone, so
together they overrun the limit: the 429s come, are honoured, and each tap's summary counts them.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from flex_simulator.server import FlexSimulator
from tests.reliability.helpers import all_ids
from tests.tap.helpers import TAP_EXE, sim_requests, tap_config

REPO = Path(__file__).resolve().parents[2]
LIMIT, WINDOW_S = 100, 2.0
#: 5% of the window: covers how much later than its unit one request reaches the server than
#: another (up to ~0.1 s here, with three taps and the simulator on two busy cores).
MARGIN_S = 0.1
TAPS, DEVICES, PAGE_SIZE = 3, 140, 2  # ~139 device requests per tap (pages overlap by one)
SECRET = "scale-out-client-secret"


def _script(name: str, *args: str) -> str:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / f"{name}.sh"), *args],
        capture_output=True,
        text=True,
        timeout=900,  # `start` may apt-get install the server on a fresh machine
        check=False,
    )
    if proc.returncode != 0 and args[0] != "status":
        pytest.fail(f"scripts/{name}.sh {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout if proc.returncode == 0 else ""


def _url(name: str) -> str:
    if name == "redis":
        return _script("redis", "url").strip()
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in _script("postgres", "env").splitlines()
        if line.startswith("export ")
    )
    return (
        f"postgresql://{env['TARGET_POSTGRES_USER']}:{env['TARGET_POSTGRES_PASSWORD']}"
        f"@{env['TARGET_POSTGRES_HOST']}:{env['TARGET_POSTGRES_PORT']}"
        f"/{env['TARGET_POSTGRES_DATABASE']}"
    )


@pytest.fixture(scope="module", params=["postgres", "redis"])
def budget_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The suite's loopback PostgreSQL or Redis (started, and then stopped, if not running)."""
    name = request.param
    status = subprocess.run(
        ["bash", str(REPO / "scripts" / f"{name}.sh"), "status"], capture_output=True, check=False
    )
    _script(name, "start")
    yield _url(name)
    if status.returncode != 0:
        _script(name, "stop")


def _simulator(make_simulator: Callable[..., FlexSimulator]) -> tuple[FlexSimulator, str]:
    """A simulator at 100 per 2 s, and a client of its own (no other test shares its budget)."""
    sim = make_simulator(orders=3, devices=DEVICES, rate_limit=LIMIT, rate_window_s=WINDOW_S)
    client = f"scale-{uuid.uuid4().hex[:12]}"
    sim.add_client(client, SECRET, sim.config.workspace_id)
    return sim, client


def _run_taps(sim: FlexSimulator, client: str, tmp_path: Path, **settings: Any) -> list[str]:
    """Start TAPS tap processes at once; return each one's stderr once all have ended."""
    config = tap_config(
        sim,
        client_id=client,
        client_secret=SECRET,
        requests_per_minute=LIMIT,
        rate_limit_window_seconds=WINDOW_S,
        page_size=PAGE_SIZE,
        incremental_strategy="client",
        order_transform_group_by=["sowId"],
        retry_initial_wait_seconds=0.05,
        retry_max_wait_seconds=0.5,
        max_concurrent_requests=2,  # 6 in flight together: the server's queue stays short
        **settings,
    )
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    with ExitStack() as files:
        procs = [
            subprocess.Popen(
                [str(TAP_EXE), "--config", str(config_file)],
                stdout=files.enter_context((tmp_path / f"tap{n}.out").open("w")),
                stderr=files.enter_context((tmp_path / f"tap{n}.err").open("w")),
                env=os.environ.copy(),
            )
            for n in range(TAPS)
        ]
        for proc in procs:
            assert proc.wait(timeout=120) == 0, (tmp_path / "tap0.err").read_text()[-3000:]
    return [(tmp_path / f"tap{n}.err").read_text() for n in range(TAPS)]


def _device_ids(tmp_path: Path, n: int) -> set[str]:
    ids = set()
    for line in (tmp_path / f"tap{n}.out").read_text().splitlines():
        message = json.loads(line)
        if message.get("type") == "RECORD" and message["stream"] == "devices":
            ids.add(message["record"]["id"])
    return ids


def _max_in_window(stamps: list[float], window_s: float) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps[i:] if s < start + window_s) for i, start in enumerate(stamps))


def _summary_429s(stderr: str, stream: str) -> int:
    found = re.findall(rf"Summary {stream}: .*?(\d+) 429s", stderr)
    assert len(found) == 1, stderr[-2000:]
    return int(found[0])


def test_three_taps_share_one_budget(
    budget_url: str, make_simulator: Callable[..., FlexSimulator], tmp_path: Path
) -> None:
    sim, client = _simulator(make_simulator)
    logs = _run_taps(
        sim, client, tmp_path, rate_budget_url=budget_url, rate_budget_margin_seconds=MARGIN_S
    )
    log = sim_requests(sim, "devices")
    refused = [r["time"] - log[0]["time"] for r in log if r["status"] == 429]
    assert refused == [], refused
    assert {r["status"] for r in log} == {200}
    expected = all_ids(sim, "devices")
    for n in range(TAPS):
        assert _device_ids(tmp_path, n) == expected  # every record, in every tap
        assert _summary_429s(logs[n], "devices") == 0
        assert "Shared rate budget at " in logs[n] and "failed" not in logs[n]
        assert "flex-dev" not in logs[n] and SECRET not in logs[n]  # store and client secrets
    stamps = [r["time"] for r in log]
    assert len(stamps) >= TAPS * DEVICES // PAGE_SIZE  # 418: five windows, the floor 8 s
    assert _max_in_window(stamps, WINDOW_S) <= LIMIT
    # The floor: after the first 100, each further 100 needs a window of its own.
    floor = (math.ceil(len(stamps) / LIMIT) - 1) * WINDOW_S
    wall = max(stamps) - min(stamps)
    assert floor * 0.95 <= wall <= floor * 1.1, (wall, floor)


def test_three_taps_without_the_budget_meet_429s_and_count_them(
    make_simulator: Callable[..., FlexSimulator], tmp_path: Path
) -> None:
    sim, client = _simulator(make_simulator)
    logs = _run_taps(sim, client, tmp_path)
    statuses = [r["status"] for r in sim_requests(sim, "devices")]
    # Each tap allows itself the whole limit: together they send up to three times too much.
    assert statuses.count(429) > 0
    assert sum(_summary_429s(text, "devices") for text in logs) == statuses.count(429)
    expected = all_ids(sim, "devices")
    assert all(_device_ids(tmp_path, n) == expected for n in range(TAPS))  # 429s honoured
