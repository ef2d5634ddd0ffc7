"""The read path's seams: per-workspace tokens, bounded spools and threads, per-partition caps."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests.adapters

from flex_simulator.server import FlexSimulator
from tap_hpe_flex import prefetch
from tap_hpe_flex.errors import FlexUserError
from tests.tap.helpers import TAP_EXE, run_tap, sim_requests, tap_config
from tests.tap.test_msp import MSP_WS, T1, T2, _config, _msp_sim, _partition_bookmarks, _tenant


def _expire_tokens_of(sim: FlexSimulator, workspace: str) -> None:
    """Make the simulator answer 401 to every token of one workspace (the others stay valid)."""
    authority = sim.authority
    with authority._lock:
        authority._tokens = {
            token: dataclasses.replace(info, expires_at=0.0)
            if info.workspace_id == workspace
            else info
            for token, info in authority._tokens.items()
        }


def test_one_tenants_401_renews_only_that_tenants_token(make_simulator: Any) -> None:
    sim = _msp_sim(make_simulator, _tenant(T1), _tenant(T2))
    config = _config(sim, [T1, T2], max_concurrent_requests=1)
    result = run_tap(config, streams=("orders",))
    tap = result.tap
    _expire_tokens_of(sim, T1)
    tap.streams["devices"].sync()
    tokens = [r["workspace_id"] for r in sim_requests(sim, "token")]
    assert tokens == [MSP_WS, T1, T2, T1]  # T1 exchanged again; T2 and the MSP token kept
    auth = tap.runtime.authenticator
    assert auth.exchanges(T1) == 2 and auth.exchanges(T2) == 1
    assert [r["status"] for r in sim_requests(sim, "devices")].count(401) == 1


def test_a_spool_that_cannot_be_created_ends_the_sync_with_one_clear_error(
    make_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = make_simulator(orders=30, devices=250, rate_limit=0)

    def no_files(*args: Any, **kwargs: Any) -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(prefetch.tempfile, "mkstemp", no_files)
    outcome: list[BaseException | None] = []

    def sync() -> None:
        try:
            run_tap(tap_config(sim, page_size=10, max_concurrent_requests=4), streams=("devices",))
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=sync, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the sync hung after a worker failed"
    (error,) = outcome
    assert isinstance(error, FlexUserError)
    assert "temporary file" in str(error) and "ulimit -n" in str(error)
    assert "\n" not in str(error)


def test_pages_spooled_ahead_stay_bounded_whatever_the_number_of_tenants(
    make_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = [f"{i:02d}" * 16 for i in range(1, 7)]
    specs = [
        {"workspace_id": t, "orders": 2, "devices": 60, "seed": i} for i, t in enumerate(tenants)
    ]
    sim = make_simulator(orders=2, devices=2, rate_limit=0)
    sim.add_client("msp-client", "msp-client-secret", MSP_WS, msp=True, tenants=specs)
    lock = threading.Lock()
    live = [0, 0]  # pages spooled and not yet read; the most at any time
    store, get = prefetch.PagePipeline._store, prefetch.PagePipeline.get

    def counting_store(self: Any, run: int, offset: int, fetched: Any) -> None:
        with lock:
            live[0] += 1
            live[1] = max(live)
        store(self, run, offset, fetched)

    def counting_get(self: Any, offset: int) -> Any:
        page = get(self, offset)
        with lock:
            live[0] -= 1
        return page

    monkeypatch.setattr(prefetch.PagePipeline, "_store", counting_store)
    monkeypatch.setattr(prefetch.PagePipeline, "get", counting_get)
    config = _config(sim, tenants, page_size=5, max_concurrent_requests=4)
    result = run_tap(config, streams=("devices",))
    assert len(result.records("devices")) >= 6 * 60
    pages = len(sim_requests(sim, "devices"))  # 6 tenants x 15 pages (overlapping by one)
    assert pages >= 6 * 12
    # Two partitions wait ahead with at most 4 pages each; the one being read is at most 16
    # pages ahead: far fewer than the pages of the run, and independent of the tenant count.
    assert live[1] <= 2 * 4 + 16 + 4, live


def test_three_hundred_tenants_under_an_open_files_limit_of_256(
    make_simulator: Any, tmp_path: Path
) -> None:
    sim = make_simulator(orders=1, devices=1, rate_limit=0, tenants=300)
    config = {
        **tap_config(sim, requests_per_minute=100_000),
        "tenant_workspace_ids": ["*"],
        "workspaces_api_url": sim.url,
        "order_transform_group_by": ["sowId"],
        "progress_interval_seconds": 0,
    }
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    started = time.monotonic()
    proc = subprocess.run(
        [str(TAP_EXE), "--config", str(config_file)],
        capture_output=True,
        timeout=120,
        preexec_fn=low_limit,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith(b"{")]
    workspaces = {
        m["record"]["workspaceId"]
        for m in lines
        if m["type"] == "RECORD" and m["stream"] == "devices"
    }
    assert len(workspaces) == 300
    assert time.monotonic() - started < 120


def test_each_partition_caps_its_bookmark_when_the_server_sends_no_date(
    make_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = requests.adapters.HTTPAdapter.build_response

    def without_date(self: Any, req: Any, resp: Any) -> Any:
        response = build(self, req, resp)
        response.headers.pop("Date", None)
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "build_response", without_date)
    sim = _msp_sim(make_simulator, _tenant(T1), _tenant(T2))
    sim.mutate([{"op": "update", "resource": "devices", "count": 2}], workspace_id=T1)
    started = time.time()
    result = run_tap(_config(sim, [T1, T2], max_concurrent_requests=1), streams=("devices",))
    bookmarks = _partition_bookmarks(result.state, "devices")
    newest = max(r["updatedAt"] for r in result.records("devices") if r["workspaceId"] == T1)
    cap = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started - 29))
    # The records just updated are newer than the run's start minus the 30 s margin: the
    # partition's bookmark stops at that cap, so the next run reads them again.
    assert newest > cap
    assert bookmarks[T1] is not None and bookmarks[T1] < cap
