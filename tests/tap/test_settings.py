"""Settings a scheduled job gives as text, mistakes that get one line, and --test's own budget."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from flex_simulator.server import FlexSimulator
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.settings import Settings
from tests.tap.helpers import TAP_EXE, run_cli, tap_config


def _env(config: dict[str, Any]) -> dict[str, str]:
    """The config as a scheduled job would pass it: TAP_HPE_FLEX_* environment variables."""
    return {f"TAP_HPE_FLEX_{k.upper()}": str(v) for k, v in config.items()}


def _run_env(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAP_HPE_FLEX_")}
    return subprocess.run(
        [str(TAP_EXE), "--config=ENV", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
        cwd=cwd,  # no .env file here
        check=False,
    )


def test_number_settings_from_the_environment(simulator: FlexSimulator, tmp_path: Path) -> None:
    env = _env(tap_config(simulator))
    env.update(
        TAP_HPE_FLEX_REQUEST_TIMEOUT="30",
        TAP_HPE_FLEX_MAX_RETRY_SECONDS="120",
        TAP_HPE_FLEX_RETRY_INITIAL_WAIT_SECONDS="0.5",
        TAP_HPE_FLEX_PROGRESS_INTERVAL_SECONDS="0",
    )
    proc = _run_env(env, "--test", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "orders: OK" in proc.stdout.splitlines()
    settings = Settings.from_config(
        {"request_timeout": "30", "max_retry_seconds": "120", "progress_interval_seconds": "0"}
    )
    assert (settings.request_timeout_s, settings.max_retry_s, settings.progress_interval_s) == (
        30.0,
        120.0,
        0.0,
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"start_date": "yesterday"}, "start_date: 'yesterday' is not a date-time"),
        ({"start_date": "01/02/2024"}, "start_date: '01/02/2024' is not a date-time"),
        ({"request_timeout": "soon"}, "request_timeout: 'soon' is not a number above 0"),
        ({"max_retry_seconds": "-1"}, "max_retry_seconds: '-1' is not a number of at least 0"),
    ],
)
def test_a_bad_setting_is_one_line_before_any_request(
    simulator: FlexSimulator, tmp_path: Path, overrides: dict[str, Any], fragment: str
) -> None:
    for args in (("--test",), ()):
        proc = run_cli(tap_config(simulator, **overrides), tmp_path, *args)
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if "| ERROR" in line]
        assert len(errors) == 1 and fragment in errors[0], proc.stderr[-2000:]
    with pytest.raises(FlexConfigError, match=r"write RFC 3339|is not a number"):
        Settings.from_config(overrides)


def test_a_date_alone_means_midnight_utc() -> None:
    assert Settings.from_config({"start_date": "2024-01-31"}).start_date == (
        "2024-01-31T00:00:00.000000Z"
    )


def test_a_misspelt_setting_is_named_with_the_one_meant(
    simulator: FlexSimulator, tmp_path: Path
) -> None:
    config = tap_config(simulator, requests_per_minut=50)
    proc = run_cli(config, tmp_path, "--test")
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if "Unknown setting" in line]
    assert len(warnings) == 1
    assert "'requests_per_minut' is ignored (did you mean requests_per_minute?)" in warnings[0]


def test_test_gives_up_on_an_unreachable_host_within_its_budget(tmp_path: Path) -> None:
    config = {
        "client_id": "a",
        "client_secret": "never-printed",
        "token_url": "http://127.0.0.1:9/token",  # discard port: nothing listens
        "api_url": "http://127.0.0.1:9",
    }
    started = time.monotonic()
    proc = run_cli(config, tmp_path, "--test")
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert elapsed < 25, elapsed  # max_retry_seconds is 600 for a sync; --test stops at 15 s
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(": FAILED: " in line for line in lines), proc.stdout
    assert "never-printed" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_describes_what_test_does() -> None:
    proc = subprocess.run(
        [str(TAP_EXE), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    text = " ".join(proc.stdout.split())
    assert "Check credentials and permissions" in text
    assert "sync a single record" not in text
