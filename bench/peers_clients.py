"""The clients ``bench/peers.py`` runs side by side: how each is installed, started and read.

Every client is a separate process started by the bench, so its CPU and memory are its own:
- ``tap-hpe-flex``: the CLI installed in this checkout's ``.venv`` (the code checked out now).
- ``tap-rest-api-msdk`` and ``dlt rest_api``: pinned releases from PyPI, each in its own venv under
  ``bench/.venvs/`` (gitignored), created on first use; never part of the test suite.
- ``sdk template``: ``bench/peer_clients/tap_flex_template``, the singer-sdk template's shape, in
  a venv with the pinned singer-sdk.
- ``raw loop`` (sequential) and ``raw loop ∥`` (concurrent): ``bench/baseline.py``.

Records are read back after the client has exited (from its Singer stdout, or from dlt's load
package), as ``(stream, id)`` pairs, so reading them costs the client nothing.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perf_proc import (
    CLIENT_ID,
    CLIENT_SECRET,
    PY,
    REPO,
    WORKSPACE,
    Sim,
    selected_catalog,
    write_json,
)

BENCH = REPO / "bench"
VENVS = BENCH / ".venvs"
#: Pinned peers (name of the venv → requirement lines). Bump here, nowhere else.
PINS: dict[str, list[str]] = {
    "msdk": ["tap-rest-api-msdk==1.4.2"],
    "dlt": ["dlt==1.31.0"],
    "sdk": ["singer-sdk==0.54.9"],
}
STREAMS = ("orders", "devices")


def ensure_venv(name: str) -> Path:
    """The venv of a pinned peer, created (or re-created when its pins changed) on first use."""
    venv = VENVS / name
    marker = venv / "bench-pins.txt"
    wanted = "\n".join(PINS[name]) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return venv
    print(f"  installing {', '.join(PINS[name])} into {venv.relative_to(REPO)} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    with (venv / "bench-pip.log").open("wb") as log:  # pip's chatter stays out of the table
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *PINS[name]],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
    marker.write_text(wanted)
    return venv


@dataclass
class Profile:
    """The simulator's limit and latency a run is made under (0 = none)."""

    name: str
    limit: int
    window_s: float
    latency_s: float


@dataclass
class Launch:
    """A ready-to-run client: its command, environment, and where its records will be."""

    cmd: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdout: Path | None = None  # Singer messages (or the raw loop's RECORD lines)
    dlt_dir: Path | None = None  # dlt's pipelines_dir


class Client:
    """One column of the table: ``launch`` builds the run, ``records`` reads its output."""

    name = ""
    key = ""

    def prepare(self, work: Path) -> None:
        """One-time set-up before the first run (a venv, a catalog)."""

    def launch(self, sim: Sim, profile: Profile, work: Path) -> Launch:
        """Command line for one sync of ``STREAMS`` against ``sim``."""
        raise NotImplementedError

    def version(self) -> str:
        """What exactly is measured (a pinned release, or this checkout's tap)."""
        return ""


def singer_records(path: Path) -> Iterator[tuple[str, str]]:
    """``(stream, id)`` of every RECORD line of a Singer (or raw-loop) output file."""
    with path.open("rb") as fh:
        for line in fh:
            if b'"RECORD"' not in line:
                continue
            msg = json.loads(line)
            if msg.get("type") == "RECORD":
                yield str(msg["stream"]), str(msg["record"]["id"])


def dlt_records(pipelines_dir: Path) -> Iterator[tuple[str, str]]:
    """``(table, id)`` of every row dlt extracted (its load package files, one table each)."""
    for path in sorted(pipelines_dir.rglob("*jsonl*")):
        table = path.name.split(".")[0]
        if table.startswith("_dlt"):
            continue
        opener: Any = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            for line in fh:
                rows = json.loads(line)
                for row in rows if isinstance(rows, list) else [rows]:
                    yield table, str(row["id"])


def records(launch: Launch) -> Iterator[tuple[str, str]]:
    """Whatever the client wrote, as ``(stream, id)``."""
    if launch.dlt_dir is not None:
        return dlt_records(launch.dlt_dir)
    assert launch.stdout is not None
    return singer_records(launch.stdout)


class TapHpeFlex(Client):
    """This checkout's tap, orders and devices selected, paced at the simulator's limit."""

    name, key = "tap-hpe-flex", "tap"
    exe = REPO / ".venv" / "bin" / "tap-hpe-flex"

    def prepare(self, work: Path) -> None:
        """Discover once and select ``STREAMS`` only (the peers sync no order_transforms).

        The checkout's package is an editable install, so, unlike the peers' pip-installed
        packages, it has no bytecode where ``PYTHONDONTWRITEBYTECODE`` is set (as here): compile
        it once, as installing a wheel would, so runs do not compile it each time.
        """
        subprocess.run([PY, "-m", "compileall", "-q", str(REPO / "tap_hpe_flex")], check=True)
        url = "http://127.0.0.1:9"  # discovery contacts nothing
        config = {"api_url": url, "token_url": url, "workspace_id": WORKSPACE}
        config |= {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        cfg = write_json(work / "discover.json", config)
        self.catalog = selected_catalog(self.exe, cfg, STREAMS, work / "tap-catalog.json")

    def launch(self, sim: Sim, profile: Profile, work: Path) -> Launch:
        """Default settings; a limited profile tells the tap the limit it syncs under."""
        extra: dict[str, Any] = {}
        if profile.limit:
            extra = {
                "requests_per_minute": profile.limit,
                "rate_limit_window_seconds": profile.window_s,
            }
        cfg = write_json(work / "tap.json", sim.tap_config(**extra))
        cmd = [str(self.exe), "--config", str(cfg), "--catalog", str(self.catalog)]
        return Launch(cmd, stdout=work / "out.jsonl")

    def version(self) -> str:
        """The checked-out commit (printed in the header)."""
        return "this checkout"


class TapRestApiMsdk(Client):
    """Meltano's generic REST tap, configured with the field names that work for Flex."""

    name, key = "tap-rest-api-msdk", "msdk"

    def prepare(self, work: Path) -> None:
        """Create its venv."""
        self.venv = ensure_venv("msdk")

    def launch(self, sim: Sim, profile: Profile, work: Path) -> Launch:
        """OAuth client credentials, offset paging by ``items`` length, backoff by header."""
        config = {
            "api_url": f"{sim.url}/flex/v1beta1",
            "auth_method": "oauth",
            "grant_type": "client_credentials",
            "access_token_url": sim.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "pagination_request_style": "simple_offset_paginator",
            "pagination_response_style": "offset",
            "pagination_initial_offset": 0,  # its default, 1, skips the first record
            "offset_records_jsonpath": "$.items",
            "pagination_page_size": 100,
            "backoff_type": "header",
            # GreenLake's 429 carries X-RateLimit-Reset (seconds); Retry-After is undocumented.
            "backoff_param": "X-RateLimit-Reset",
            "streams": [
                {"name": s, "path": f"/{s}", "records_path": "$.items[*]", "primary_keys": ["id"]}
                for s in STREAMS
            ],
        }
        cfg = write_json(work / "msdk.json", config)
        cmd = [str(self.venv / "bin" / "tap-rest-api-msdk"), "--config", str(cfg)]
        return Launch(cmd, stdout=work / "out.jsonl")

    def version(self) -> str:
        """The pinned release."""
        return PINS["msdk"][0]


class DltRestApi(Client):
    """dlt's ``rest_api`` source, extract step only (``bench/peer_clients/dlt_rest_api.py``)."""

    name, key = "dlt rest_api", "dlt"

    def prepare(self, work: Path) -> None:
        """Create its venv."""
        self.venv = ensure_venv("dlt")

    def launch(self, sim: Sim, profile: Profile, work: Path) -> Launch:
        """A fresh pipelines_dir per run, telemetry off."""
        base = sim.tap_config()
        config = {k: base[k] for k in ("api_url", "token_url", "client_id", "client_secret")}
        cfg = write_json(work / "dlt.json", {**config, "streams": list(STREAMS)})
        pipelines = work / "dlt-pipelines"
        script = BENCH / "peer_clients" / "dlt_rest_api.py"
        cmd = [str(self.venv / "bin" / "python"), str(script), str(cfg), str(pipelines)]
        env = {"RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(work / "dlt-data")}
        return Launch(cmd, env=env, dlt_dir=pipelines)

    def version(self) -> str:
        """The pinned release."""
        return PINS["dlt"][0]


class SdkTemplate(Client):
    """The singer-sdk template's shape, filled in for Flex (``bench/peer_clients``)."""

    name, key = "sdk template", "sdk"

    def prepare(self, work: Path) -> None:
        """Create its venv (the pinned singer-sdk)."""
        self.venv = ensure_venv("sdk")

    def launch(self, sim: Sim, profile: Profile, work: Path) -> Launch:
        """Runs ``python -m tap_flex_template`` from ``bench/peer_clients``."""
        base = sim.tap_config()
        config = {k: base[k] for k in ("api_url", "token_url", "client_id", "client_secret")}
        cfg = write_json(work / "sdk.json", config)
        cmd = [str(self.venv / "bin" / "python"), "-m", "tap_flex_template", "--config", str(cfg)]
        env = {"PYTHONPATH": str(BENCH / "peer_clients")}
        return Launch(cmd, env=env, stdout=work / "out.jsonl")

    def version(self) -> str:
        """The pinned singer-sdk."""
        return PINS["sdk"][0]


class RawLoop(Client):
    """``bench/baseline.py``: sequential, or concurrent under a sliding-window pacer."""

    def __init__(self, concurrent: bool) -> None:
        self.concurrent = concurrent
        self.name = "raw loop ∥" if concurrent else "raw loop"
        self.key = "raw-concurrent" if concurrent else "raw"

    def launch(self, sim: Sim, profile: Profile, work: Path) -> Launch:
        """Concurrent: ceil(L·R/W)+2 threads per endpoint, paced at the profile's limit."""
        cmd = [PY, str(BENCH / "baseline.py"), "--api-url", sim.url, "--token-url", sim.token_url]
        cmd += ["--endpoints", ",".join(STREAMS)]
        if self.concurrent:
            limit, window = (profile.limit, profile.window_s) if profile.limit else (10**9, 60)
            threads = 8
            if profile.limit:
                threads = math.ceil(profile.latency_s * profile.limit / profile.window_s) + 2
            cmd += ["--concurrent", "--rpm", str(limit), "--window", str(window)]
            cmd += ["--threads", str(threads)]
        return Launch(cmd, stdout=work / "out.jsonl")

    def version(self) -> str:
        """Part of this checkout."""
        return "bench/baseline.py"


def all_clients() -> list[Client]:
    """Every client, in table order."""
    return [
        TapHpeFlex(),
        TapRestApiMsdk(),
        DltRestApi(),
        SdkTemplate(),
        RawLoop(False),
        RawLoop(True),
    ]
