"""End-to-end: Meltano keeps the tap's state in object storage (an S3-compatible server), for real.

A local S3 server (moto's server mode, from the dev extra) runs on a loopback port; Meltano (with
its ``s3`` extra, which brings boto3) stores state under ``s3://flex-state/meltano``. The repo's
meltano.yml stays as it is: the backend is chosen with Meltano's own environment variables
(``MELTANO_STATE_BACKEND_URI`` and ``MELTANO_STATE_BACKEND_S3_*``), as an orchestrator would set
them. The second run uses a fresh system database, so its bookmarks can only come from S3.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import requests

from flex_simulator.testing import running_simulator
from tests.e2e.meltano_helpers import (
    INCREMENT,
    clean_env,
    meltano,
    post_mutations,
    run_env,
    snapshot,
    tap_env,
)

BUCKET, PREFIX = "flex-state", "meltano"
STATE_ID = "dev:tap-hpe-flex-to-target-jsonl"
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """moto's S3-compatible server on a free loopback port, with an empty bucket."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto's server did not start (is the dev extra installed?)")
                time.sleep(0.2)
        requests.put(f"{url}/{BUCKET}", timeout=10).raise_for_status()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def installed() -> None:
    """Install the extractor and the JSONL loader once per module (`.meltano/`, gitignored)."""
    meltano(["install", "tap-hpe-flex", "target-jsonl"], clean_env())


def _objects(s3_url: str) -> list[str]:
    """Every key in the bucket, listed over S3's HTTP API (ListObjectsV2)."""
    resp = requests.get(f"{s3_url}/{BUCKET}", params={"list-type": "2"}, timeout=10)
    resp.raise_for_status()
    root = ElementTree.fromstring(resp.content)
    return [el.text or "" for el in root.iter(f"{S3_NS}Key")]


def _stored_state(s3_url: str) -> dict[str, Any]:
    """The state object Meltano wrote for the job, read straight from the S3 server."""
    key = f"{PREFIX}/{STATE_ID}/state.json"
    resp = requests.get(f"{s3_url}/{BUCKET}/{key}", timeout=10)
    resp.raise_for_status()
    state: dict[str, Any] = resp.json()
    return state


def _bookmarks(s3_url: str) -> dict[str, datetime]:
    """Each incremental stream's bookmark, as stored in S3 after a completed run."""
    marks = _stored_state(s3_url)["completed"]["singer_state"]["bookmarks"]
    return {s: _instant(marks[s]["replication_key_value"]) for s in ("orders", "devices")}


def _instant(value: str) -> datetime:
    """An ISO 8601 instant (the API's several spellings, or the bookmark's) as aware UTC."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _newest(records: dict[str, dict[str, Any]]) -> datetime:
    return max(_instant(r["updatedAt"]) for r in records.values())


def _records(out: Path, stream: str) -> list[dict[str, Any]]:
    path = out / f"{stream}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.e2e
def test_state_in_s3_makes_the_second_run_incremental(
    installed: None, s3_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "jsonl"
    out.mkdir()

    def env_for(system_db: str) -> dict[str, str]:
        env = run_env(tmp_path, "TARGET_JSONL_", "AWS_")
        env.update(
            MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / system_db}",
            MELTANO_STATE_BACKEND_URI=f"s3://{BUCKET}/{PREFIX}",
            MELTANO_STATE_BACKEND_S3_ENDPOINT_URL=s3_url,
            MELTANO_STATE_BACKEND_S3_AWS_ACCESS_KEY_ID="flex-test-key",
            MELTANO_STATE_BACKEND_S3_AWS_SECRET_ACCESS_KEY="flex-test-secret",
            AWS_DEFAULT_REGION="us-east-1",
            TARGET_JSONL_DESTINATION_PATH=str(out),
        )
        return env

    with running_simulator(orders=40, devices=120, seed=11) as sim:
        before = snapshot(sim)
        env = env_for("first.db")
        env.update(tap_env(sim))
        run1 = meltano(["run", "tap-hpe-flex", "target-jsonl"], env)
        first = {s: len(_records(out, s)) for s in ("orders", "devices")}
        assert first == {"orders": 40, "devices": 120}
        assert f"{PREFIX}/{STATE_ID}/state.json" in _objects(s3_url)
        bookmarks1 = _bookmarks(s3_url)
        assert bookmarks1 == {s: _newest(before[s]) for s in ("orders", "devices")}

        post_mutations(sim, INCREMENT)
        after = snapshot(sim)
        # A new system database: nothing local remembers the first run, only S3 does.
        env = env_for("second.db")
        env.update(tap_env(sim))
        run2 = meltano(["run", "tap-hpe-flex", "target-jsonl"], env)

    for run in (run1, run2):  # the object store's secret key is never printed
        assert "flex-test-secret" not in run.stdout + run.stderr
    for stream in ("orders", "devices"):
        second = _records(out, stream)[first[stream] :]
        changed = {
            i
            for i, r in after[stream].items()
            if i not in before[stream] or before[stream][i]["generation"] != r["generation"]
        }
        assert changed and changed <= {r["id"] for r in second}, stream
        # Incremental: the changes plus at most the records on the bookmark instant, far fewer
        # than a full read.
        assert len(second) < len(after[stream]) / 2, (stream, len(second))
    # The second run's bookmarks moved on towards the changes (the tap caps a bookmark a little
    # before the sync's start), and S3 holds them.
    bookmarks2 = _bookmarks(s3_url)
    for stream in ("orders", "devices"):
        assert bookmarks1[stream] < bookmarks2[stream] <= _newest(after[stream]), stream
