"""The shared rate budget on real PostgreSQL and Redis: processes together stay within the limit.

Three worker *processes* (tests/tap/shared_budget_worker.py) share one client's budget and send
each acquisition to the simulator, whose rolling window (counted on arrival) is the judge. The
control runs the same workers on today's in-process limiter alone. The fallback tests use private
servers of their own (scripts/postgres.sh and scripts/redis.sh on other ports) and stop them
mid-run, so the suite's shared servers are never stopped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import fetch_token
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.shared_budget import SharedRateBudget, client_hash, mask_url

REPO = Path(__file__).resolve().parents[2]
# The margin covers the time between the store stamping a unit and the server counting the
# request; on a loaded 2-core machine that can pass 0.1 s, so the test allows 0.3 s.
LIMIT, WINDOW_S, MARGIN_S = 10, 1.0, 0.3
WORKERS, PER_WORKER = 3, 12


def _script(name: str, command: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / f"{name}.sh"), command],
        capture_output=True,
        text=True,
        timeout=900,  # `start` may apt-get install the server on a fresh machine
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0 and command != "status":
        pytest.fail(f"scripts/{name}.sh {command} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout if proc.returncode == 0 else ""


def _pg_url(env: dict[str, str] | None = None) -> str:
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in _script("postgres", "env", env).splitlines()
        if line.startswith("export ")
    )
    return (
        f"postgresql://{exports['TARGET_POSTGRES_USER']}:{exports['TARGET_POSTGRES_PASSWORD']}"
        f"@{exports['TARGET_POSTGRES_HOST']}:{exports['TARGET_POSTGRES_PORT']}"
        f"/{exports['TARGET_POSTGRES_DATABASE']}"
    )


@pytest.fixture(scope="module", params=["postgres", "redis"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The suite's loopback server of each kind (started, and then stopped, if not running)."""
    name = request.param
    started_here = (
        subprocess.run(
            ["bash", str(REPO / "scripts" / f"{name}.sh"), "status"], check=False
        ).returncode
        != 0
    )
    _script(name, "start")
    yield _pg_url() if name == "postgres" else _script("redis", "url").strip()
    if started_here:
        _script(name, "stop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["postgres", "redis"])
def private_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Callable[[], None]]]:
    """A server of this test's own (URL, stop function): stopping it disturbs no other test."""
    name = request.param
    port = str(_free_port())
    if name == "postgres":
        env = {"FLEX_PG_PORT": port, "FLEX_PG_DIR": f"/tmp/tap-hpe-flex-budget-pg-{port}"}
    else:
        env = {"FLEX_REDIS_PORT": port, "FLEX_REDIS_DIR": str(tmp_path / "redis")}
    _script(name, "start", env)
    url = _pg_url(env) if name == "postgres" else _script("redis", "url", env).strip()

    def stop() -> None:
        _script(name, "stop", env)

    try:
        yield url, stop
    finally:
        _script(name, "destroy", env)


def _run_workers(sim: FlexSimulator, store_url: str | None, client_id: str) -> list[dict]:
    """Run WORKERS processes that start together; return what each recorded."""
    token = fetch_token(sim)
    job = {
        "store_url": store_url,
        "client_id": client_id,
        "limit": LIMIT,
        "window_s": WINDOW_S,
        "margin_s": MARGIN_S,
        "count": PER_WORKER,
        "api_url": sim.url,
        "token": token,
        "key": "orders",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.tap.shared_budget_worker"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    try:
        for proc in procs:
            assert proc.stdin and proc.stdout
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
            assert token not in out + err and "flex-dev" not in out + err
            results.append(json.loads(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _max_in_window(stamps: list[float], window_s: float) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps[i:] if s < start + window_s) for i, start in enumerate(stamps))


def test_three_processes_share_one_budget(
    store_url: str, make_simulator: Callable[..., FlexSimulator]
) -> None:
    sim = make_simulator(orders=5, devices=5, rate_limit=LIMIT, rate_window_s=WINDOW_S)
    results = _run_workers(sim, store_url, f"client-{uuid.uuid4()}")
    stamps = [s for r in results for s in r["stamps"]]
    statuses = [s for r in results for s in r["statuses"]]
    assert len(statuses) == WORKERS * PER_WORKER
    assert all(r["shared"] for r in results)  # no worker fell back to pacing alone
    assert statuses.count(429) == 0, statuses
    assert set(statuses) == {200}
    assert _max_in_window(stamps, WINDOW_S) <= LIMIT
    # Each process got a share without manual division, and the union ran at the limit: after
    # the first 10, each further 10 needs one shared window (1 s plus the 0.3 s margin).
    assert all(len(r["stamps"]) == PER_WORKER for r in results)
    assert all(min(r["stamps"]) - min(stamps) < WINDOW_S for r in results)  # all ran at once
    floor = ((WORKERS * PER_WORKER - 1) // LIMIT) * (WINDOW_S + MARGIN_S)
    assert floor * 0.95 <= max(stamps) - min(stamps) <= floor * 1.1 + 0.2


def test_without_the_shared_budget_processes_overrun_the_limit(
    make_simulator: Callable[..., FlexSimulator],
) -> None:
    sim = make_simulator(orders=5, devices=5, rate_limit=LIMIT, rate_window_s=WINDOW_S)
    results = _run_workers(sim, None, "unused")
    stamps = [s for r in results for s in r["stamps"]]
    statuses = [s for r in results for s in r["statuses"]]
    # Each process paces itself to the whole limit: together up to three times too much.
    assert _max_in_window(stamps, WINDOW_S) > LIMIT
    assert statuses.count(429) > 0
    assert all(not r["shared"] for r in results)


def test_the_budget_is_per_client_and_endpoint(store_url: str) -> None:
    """Another API client, or another endpoint, has a budget of its own: no wait for a full one."""
    client = f"a-{uuid.uuid4()}"
    first = SharedRateBudget(store_url, client, 3, 5.0)
    second = SharedRateBudget(store_url, f"b-{uuid.uuid4()}", 3, 5.0)
    try:
        assert all(first.acquire("orders") < 0.5 for _ in range(3))
        assert all(second.acquire("orders") < 0.5 for _ in range(3))
        assert all(first.acquire("devices") < 0.5 for _ in range(3))
        assert not first.fallen_back and not second.fallen_back
        if store_url.startswith("redis"):
            keys = [k.decode() for k in Redis.from_url(store_url).keys(f"*{client_hash(client)}*")]
            assert sorted(keys) == [
                f"tap-hpe-flex:{client_hash(client)}:devices",
                f"tap-hpe-flex:{client_hash(client)}:orders",
            ]
    finally:
        first.close()
        second.close()


def test_a_full_budget_makes_another_process_wait(store_url: str) -> None:
    client = f"client-{uuid.uuid4()}"
    holder = SharedRateBudget(store_url, client, 4, 1.0, margin_s=0.05)
    waiter = SharedRateBudget(store_url, client, 4, 1.0, margin_s=0.05)
    try:
        assert all(holder.acquire("orders") < 0.2 for _ in range(4))
        started = time.monotonic()
        waited = waiter.acquire("orders")
        elapsed = time.monotonic() - started
        # The waiter's own limiter is empty: the wait comes from the shared budget alone.
        assert waiter.in_window("orders") == 1
        assert 0.8 <= elapsed <= 2.0
        assert waited == pytest.approx(elapsed, abs=0.05)
        assert not waiter.fallen_back
    finally:
        holder.close()
        waiter.close()


def test_the_fallback_when_the_store_stops_mid_run(
    private_store: tuple[str, Callable[[], None]], caplog: pytest.LogCaptureFixture
) -> None:
    url, stop = private_store
    client = f"client-{uuid.uuid4()}"
    holder = SharedRateBudget(url, client, 3, 1.0, timeout_s=2.0)
    waiter = SharedRateBudget(url, client, 3, 1.0, timeout_s=2.0)
    caplog.set_level(logging.DEBUG)
    try:
        for _ in range(3):
            holder.acquire("orders")
        assert not holder.fallen_back
        # The waiter blocks on the full shared budget; the store goes away while it waits.
        done = threading.Event()

        def wait_for_a_unit() -> None:
            waiter.acquire("orders")
            done.set()

        thread = threading.Thread(target=wait_for_a_unit)
        thread.start()
        time.sleep(0.3)
        stop()
        thread.join(timeout=30)
        assert done.is_set()
        assert waiter.fallen_back
        # The rest of the run is paced by the process's own limiter: 3 per 1 s.
        started = time.monotonic()
        for _ in range(6):
            waiter.acquire("orders")
        assert 0.9 <= time.monotonic() - started <= 3.0
        assert waiter.in_window("orders") <= 3
    finally:
        holder.close()
        waiter.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    said = [r for r in warnings if "Shared rate budget" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in warnings]
    assert mask_url(url) in said[0].getMessage() and "paces alone" in said[0].getMessage()
    password = url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password and password not in caplog.text
    assert client not in caplog.text


def test_an_unreachable_store_at_start_falls_back_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://:s3cret-pass@127.0.0.1:{_free_port()}/0"
    budget = SharedRateBudget(url, "client", 2, 1.0, timeout_s=1.0)
    try:
        assert budget.acquire("orders") < 0.1
        assert budget.fallen_back
    finally:
        budget.close()
    assert "s3cret-pass" not in caplog.text
    assert "redis://:***@127.0.0.1" in caplog.text


def test_urls_are_checked_and_masked() -> None:
    with pytest.raises(FlexConfigError, match="postgresql:// or redis://") as info:
        SharedRateBudget("mysql://u:hunter22@db/x", "client", 10)
    assert "hunter22" not in str(info.value)
    assert mask_url("postgresql://flex:pw@127.0.0.1:54329/flex") == (
        "postgresql://flex:***@127.0.0.1:54329/flex"
    )
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert client_hash("demo-client") == client_hash("demo-client") != client_hash("other")
    assert "demo-client" not in client_hash("demo-client")


@pytest.mark.parametrize(
    ("url", "module"),
    [("postgresql://u:pw@127.0.0.1:1/db", "psycopg_pool"), ("redis://127.0.0.1:1/0", "redis")],
)
def test_without_the_extra_the_url_is_a_config_error(
    url: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(FlexConfigError, match=r"tap-hpe-flex\[shared-budget\]") as info:
        SharedRateBudget(url, "client", 10)
    assert module in str(info.value)
