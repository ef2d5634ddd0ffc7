"""Shared helpers for the tap's tests: configs for a simulator, in-process runs, CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.singerlib.encoding.base import GenericSingerWriter

from flex_simulator.server import FlexSimulator
from tap_hpe_flex.tap import TapHpeFlex

TAP_EXE = Path(sys.executable).with_name("tap-hpe-flex")


class FakeClock:
    """A hand-driven clock for the limiter and retry policy: ``sleep`` advances time at once."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def tap_config(sim: FlexSimulator, **overrides: Any) -> dict[str, Any]:
    """A config that points the tap at ``sim`` (with the simulator's demo client)."""
    config: dict[str, Any] = {
        "client_id": sim.config.client_id,
        "client_secret": sim.config.client_secret,
        "workspace_id": sim.config.workspace_id,
        "token_url": sim.url + "/authorization/v2/oauth2/{workspace_id}/token",
        "api_url": sim.url,
    }
    config.update(overrides)
    return config


#: The two ways a simulator can let the tap ask about change (``updatedAt`` filter or sort), as
#: pytest parameters ``(incremental_strategy, simulator switches)``.
UPDATED_AT_FORMS = [
    pytest.param("filter", {"updated_filter": True}, id="filter"),
    pytest.param("sort", {"updated_sort": True}, id="sort"),
]


class CollectingWriter(GenericSingerWriter[dict, Any]):
    """Keeps Singer messages in memory (as dicts) instead of writing them to stdout."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def serialize_message(self, message: Any) -> dict:
        return json.loads(json.dumps(message.to_dict(), default=str))

    def write_message(self, message: Any) -> None:
        self.messages.append(self.serialize_message(message))


@dataclass
class RunResult:
    """What one in-process sync emitted."""

    tap: TapHpeFlex
    messages: list[dict[str, Any]] = field(default_factory=list)

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def state(self) -> dict[str, Any]:
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else {}

    def bookmark(self, stream: str) -> str | None:
        return self.state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")


def select_only(tap: TapHpeFlex, *names: str) -> None:
    """Deselect every stream not named."""
    for name, stream in tap.streams.items():
        stream.selected = name in names


def run_tap(
    config: dict[str, Any], state: dict[str, Any] | None = None, streams: tuple[str, ...] = ()
) -> RunResult:
    """Build a tap in-process, sync (optionally only some streams) and collect its messages."""
    writer = CollectingWriter()
    tap = TapHpeFlex(config=config, state=state or {}, message_writer=writer)
    if streams:
        select_only(tap, *streams)
    tap.sync_all()
    return RunResult(tap, writer.messages)


def run_cli(
    config: dict[str, Any], tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``tap-hpe-flex`` executable with ``config`` written to a file."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    return subprocess.run(
        [str(TAP_EXE), "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _settle(sim: FlexSimulator, quiet_s: float = 0.03, limit_s: float = 2.0) -> None:
    """Wait until the simulator's request log stops growing.

    The simulator logs a request after writing its answer, so the tap can act on the last answer
    before that request shows up in the log.
    """
    deadline = time.monotonic() + limit_s
    seen = len(sim.requests())
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = len(sim.requests())
        if now == seen:
            return
        seen = now


def sim_requests(sim: FlexSimulator, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Logged requests (of one endpoint), after the log has settled."""
    _settle(sim)
    return sim.requests(endpoint)


def clear_requests(sim: FlexSimulator) -> None:
    """Empty the request log once the previous run's entries have all arrived."""
    _settle(sim)
    sim.clear_requests()
