"""The flex-simulator command: URL on the first line, serves real requests, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

SCRIPT = Path(sys.executable).parent / "flex-simulator"
FLAGS = [
    "--host",
    "--port",
    "--orders",
    "--devices",
    "--seed",
    "--rate-limit",
    "--rate-window",
    "--token-ttl",
    "--client-id",
    "--client-secret",
    "--workspace-id",
    "--updated-filter",
    "--no-updated-filter",
    "--updated-sort",
    "--no-updated-sort",
    "--latency-ms",
    "--retry-after",
    "--deprecation",
    "--error-rate",
    "--html-error-rate",
    "--drop-rate",
    "--truncate-rate",
    "--fault-seed",
    "--clients-file",
    "--db",
    "--tenants",
    "--tenant-id-hyphens",
    "--sort",
    "--unstable-ties",
    "--bad-values",
    "--churn-interval",
    "--churn-resource",
    "--churn-mode",
]


def _start(*args: str, module: bool = True) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "flex_simulator"] if module else [str(SCRIPT)]
    proc = subprocess.Popen(
        [*cmd, "--port", "0", "--orders", "15", "--devices", "25", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    return proc, first


def _classic_token(url: str, secret: str = "demo-secret") -> str:
    """The demo client's token from the started server's classic URL (Basic credentials)."""
    r = requests.post(
        f"{url}/as/token.oauth2",
        data={"grant_type": "client_credentials"},
        auth=("demo-client", secret),
        timeout=10,
    )
    return str(r.json()["access_token"])


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out, err


@pytest.mark.parametrize("module", [True, False], ids=["python-m", "console-script"])
def test_cli_prints_url_first_serves_and_stops_on_sigterm(module: bool) -> None:
    # scripts/setup.sh installs the project, so the console script must exist next to Python.
    assert module or SCRIPT.exists(), f"{SCRIPT} missing: is the project installed?"
    proc, first = _start("--client-secret", "cli-secret-value", module=module)
    try:
        match = re.match(r"flex-simulator listening on (http://127\.0\.0\.1:(\d+)) \(", first)
        assert match, first
        url = match.group(1)
        assert int(match.group(2)) > 0
        assert "15 orders, 25 devices" in first
        token = _classic_token(url, "cli-secret-value")
        r = requests.get(
            f"{url}/flex/v1beta1/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert r.json()["total"] == 15
    finally:
        out, err = _stop(proc)
    assert "cli-secret-value" not in first + out + err
    assert token not in first + out + err


def test_cli_flags_reach_the_server(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    clients.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "client_id": "c2",
                        "client_secret": "s2",
                        "workspace_id": "ab" * 16,
                        "permissions": ["devices"],
                        "devices": 5,
                    }
                ]
            }
        )
    )
    proc, first = _start(
        "--rate-limit",
        "1",
        "--rate-window",
        "30",
        "--retry-after",
        "--deprecation",
        "--updated-filter",
        "--clients-file",
        str(clients),
        "--db",
        str(tmp_path / "sim.db"),
    )
    try:
        url = re.search(r"http://[\d.]+:\d+", first).group(0)  # type: ignore[union-attr]
        token = requests.post(
            f"{url}/authorization/v2/oauth2/{'ab' * 16}/token",
            data={"grant_type": "client_credentials", "client_id": "c2", "client_secret": "s2"},
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        devices = f"{url}/flex/v1beta1/devices"
        ok = requests.get(
            devices,
            headers=headers,
            params={"filter": "updatedAt gt '2000-01-01T00:00:00Z'"},
            timeout=10,
        )
        assert ok.status_code == 200 and ok.json()["total"] == 5
        assert "Deprecation" in ok.headers
        limited = requests.get(devices, headers=headers, timeout=10)
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        assert (
            requests.get(f"{url}/flex/v1beta1/orders", headers=headers, timeout=10).status_code
            == 403
        )
    finally:
        _stop(proc)
    assert (tmp_path / "sim.db").exists()


def test_cli_unhelpful_server_modes_reach_the_server() -> None:
    proc, first = _start(
        "--updated-filter",
        "ignore",
        "--updated-sort",
        "--sort",
        "no-tiebreak",
        "--unstable-ties",
        "--bad-values",
        "devices.serialNumber=null@1",
        "--churn-interval",
        "30",
        "--churn-resource",
        "orders",
        "--churn-mode",
        "shift",
    )
    try:
        url = re.search(r"http://[\d.]+:\d+", first).group(0)  # type: ignore[union-attr]
        config = requests.post(f"{url}/__sim/faults", json={}, timeout=10).json()["config"]
        headers = {"Authorization": f"Bearer {_classic_token(url)}"}
        devices = requests.get(
            f"{url}/flex/v1beta1/devices",
            headers=headers,
            params={"filter": "updatedAt gt '2999-01-01T00:00:00Z'"},
            timeout=10,
        ).json()
        refused = requests.get(
            f"{url}/flex/v1beta1/orders", headers=headers, params={"sort": "id"}, timeout=10
        )
    finally:
        _stop(proc)
    assert {k: config[k] for k in ("updated_filter", "updated_sort", "sort_mode")} == {
        "updated_filter": "ignore",
        "updated_sort": True,
        "sort_mode": "no-tiebreak",
    }
    assert config["unstable_ties"] is True and config["churn_interval_s"] == 30
    assert (config["churn_resource"], config["churn_mode"]) == ("orders", "shift")
    assert devices["total"] == 25  # the updatedAt clause was accepted, not applied
    assert all(d["serialNumber"] is None for d in devices["items"])
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--updated-filter", "sometimes"], "use on, off or ignore"),
        (["--sort", "shuffle"], "invalid choice"),
        (["--bad-values", "devices.x"], "bad_values"),
        (["--churn-interval", "-1"], "churn_interval_s"),
    ],
)
def test_cli_rejects_bad_mode_settings(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flex_simulator", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr


def test_cli_tenants_and_shipped_msp_example() -> None:
    proc, first = _start("--tenants", "2", "--clients-file", "example:msp-clients.json")
    try:
        assert proc.stdout is not None
        url = re.search(r"http://[\d.]+:\d+", first).group(0)  # type: ignore[union-attr]
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("token URL: ")
        msp_lines = sorted(lines[1:])
        assert msp_lines[0].startswith("MSP client demo-client: 2 tenants at ")
        assert msp_lines[1].startswith("MSP client msp-demo-client: 3 tenants at ")
        token = _classic_token(url)
        tenants = requests.get(
            f"{url}/workspaces/v1/msp-tenants",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        assert tenants["total"] == 2
        assert [t["workspaceName"] for t in tenants["items"]] == [
            "Demo Tenant 01",
            "Demo Tenant 02",
        ]
    finally:
        _stop(proc)


def test_cli_help_lists_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flex_simulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    for flag in FLAGS:
        assert flag in out, flag


def test_cli_rejects_bad_settings() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flex_simulator", "--port", "0", "--error-rate", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "error_rate" in proc.stderr
