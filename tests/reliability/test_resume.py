"""Interrupted syncs: a rerun from the last STATE emitted loses nothing (at-least-once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tap_hpe_flex.errors import FlexAPIError
from tap_hpe_flex.tap import TapHpeFlex
from tests.reliability.helpers import all_ids, fast_config
from tests.tap.helpers import TAP_EXE, CollectingWriter, run_tap, select_only


def _records(messages: list[dict[str, Any]], stream: str) -> set[str]:
    return {m["record"]["id"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream}


def _states(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["value"] for m in messages if m["type"] == "STATE"]


def test_sigterm_mid_sync_then_rerun_from_last_state_loses_nothing(
    make_simulator: Any, tmp_path: Path
) -> None:
    # 100 ms a page keeps the sync running well past the 100th device even with 8 in flight.
    sim = make_simulator(orders=60, devices=400, latency_ms=100)
    config_file = tmp_path / "config.json"
    config = fast_config(sim, page_size=10, order_transform_group_by=["sowId"])
    config_file.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [str(TAP_EXE), "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[bytes] = []
    devices_seen = 0
    deadline = time.monotonic() + 60
    while devices_seen < 100 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        devices_seen += b'"stream":"devices"' in line and b'"type":"RECORD"' in line
    proc.send_signal(signal.SIGTERM)
    # Read the rest through the same buffered reader: communicate(timeout=...) reads the raw
    # pipe and would drop what readline() had already buffered (a torn first line).
    with proc.stdout:
        rest = proc.stdout.read()
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, "the tap finished before it was killed"
    lines += rest.splitlines(keepends=True)
    complete = [json.loads(line) for line in lines if line.endswith(b"\n")]
    first_devices = _records(complete, "devices")
    assert 100 <= len(first_devices) < 400  # killed mid-stream

    state = _states(complete)[-1]
    # Devices (synced first) was cut off: the STATE written on SIGTERM has no bookmark for it.
    assert "replication_key_value" not in state["bookmarks"]["devices"]
    assert not _records(complete, "orders") or state["bookmarks"]["orders"]

    rerun = run_tap(config, state=state, streams=("orders", "devices"))
    for stream, seen in (("orders", _records(complete, "orders")), ("devices", first_devices)):
        assert all_ids(sim, stream) <= seen | {r["id"] for r in rerun.records(stream)}


@pytest.mark.parametrize("in_flight", [1, 8])
def test_crash_mid_stream_keeps_the_old_bookmark_and_the_rerun_reads_the_changes(
    make_simulator: Any, in_flight: int
) -> None:
    sim = make_simulator(orders=1, devices=200, server_error_retry_after_s=1)
    config = fast_config(
        sim, page_size=10, incremental_strategy="client", max_concurrent_requests=in_flight
    )
    first = run_tap(config, streams=("devices",))
    old_bookmark = first.bookmark("devices")
    assert old_bookmark
    time.sleep(0.05)
    changed = sim.mutate([{"op": "update", "resource": "devices", "count": 30}])[0]["ids"]

    # The second sync dies at its 12th request; STATE is written every 5 records meanwhile. With
    # one request in flight that is the 12th page; with 8 the 500s hit whichever pages arrive
    # 12th and later, possibly early ones, so fewer records (and states) may come first.
    sim.script_faults("devices", ["pass"] * 11 + ["500"] * 50)
    writer = CollectingWriter()
    tap = TapHpeFlex(
        config={**config, "max_retry_seconds": 0.3}, state=first.state, message_writer=writer
    )
    select_only(tap, "devices")
    tap.streams["devices"].STATE_MSG_FREQUENCY = 5
    with pytest.raises(FlexAPIError, match="giving up"):
        tap.sync_all()
    states = _states(writer.messages)
    assert states
    if in_flight == 1:
        assert len(states) >= 2  # mid-stream states were written before the crash
    for state in states:  # none advanced the bookmark: it is only finalised at stream end
        assert state["bookmarks"]["devices"]["replication_key_value"] == old_bookmark
    crashed = _records(writer.messages, "devices")
    assert set(changed) - crashed  # some changes were not read before the crash

    sim.faults.clear()
    rerun = run_tap(config, state=states[-1], streams=("devices",))
    assert set(changed) <= crashed | {r["id"] for r in rerun.records("devices")}
