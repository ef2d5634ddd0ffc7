"""``tap-hpe-flex --test``: one cheap request per selected stream, one line each, exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flex_simulator.server import FlexSimulator
from tests.tap.helpers import clear_requests, run_cli, sim_requests, tap_config

DATA = ("orders", "orders/transform", "devices", "devices/{id}")


def _test_lines(stderr: str) -> list[str]:
    return [line.split("| ")[-1] for line in stderr.splitlines() if "Connection test" in line]


def _data_requests(sim: FlexSimulator) -> list[dict[str, Any]]:
    return [r for r in sim_requests(sim) if r["endpoint"] in DATA]


def test_full_permission_client_all_ok_with_one_request_per_stream(
    make_simulator: Any, tmp_path: Path
) -> None:
    sim = make_simulator(orders=30, devices=40)
    proc = run_cli(tap_config(sim), tmp_path, "--test")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = _test_lines(proc.stderr)
    assert sorted(lines) == [
        "Connection test devices: OK",
        "Connection test order_transforms: OK",
        "Connection test orders: OK",
    ]
    data = _data_requests(sim)
    assert sorted(r["endpoint"] for r in data) == ["devices", "orders", "orders/transform"]
    assert all(r["query"]["limit"] == "1" and r["status"] == 200 for r in data)
    # A plain verdict per stream on stdout; no RECORD, SCHEMA or STATE: a check, not a sync.
    assert sorted(proc.stdout.splitlines()) == ["devices: OK", "order_transforms: OK", "orders: OK"]


def test_devices_less_client_names_the_permission_and_fails(
    make_simulator: Any, tmp_path: Path
) -> None:
    sim = make_simulator(orders=5, devices=5)
    sim.add_client("orders-only", "orders-only-secret", sim.config.workspace_id, ("orders",))
    config = tap_config(sim, client_id="orders-only", client_secret="orders-only-secret")
    proc = run_cli(config, tmp_path, "--test")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "orders-only-secret" not in proc.stderr
    lines = {line.split(":")[0]: line for line in _test_lines(proc.stderr)}
    assert lines["Connection test orders"] == "Connection test orders: OK"
    assert lines["Connection test order_transforms"].endswith(": OK")
    assert "FAILED" in lines["Connection test devices"]
    assert "View on Devices" in lines["Connection test devices"]
    assert len(_data_requests(sim)) == 3


def test_catalog_selection_and_device_ids_mode(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(orders=5, devices=5)
    config = tap_config(sim, device_ids=["no-such-device", "another"])
    discovered = run_cli(config, tmp_path, "--discover")
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "devices"
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    clear_requests(sim)
    proc = run_cli(config, tmp_path, "--test", "--catalog", str(tmp_path / "catalog.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line.split(":")[0] for line in _test_lines(proc.stderr)] == ["Connection test devices"]
    data = _data_requests(sim)
    assert [(r["endpoint"], r["path"].rsplit("/", 1)[-1]) for r in data] == [
        ("devices/{id}", "no-such-device")
    ]


def test_msp_checks_every_tenant(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(orders=2, devices=2)
    good, refused = "11" * 16, "33" * 16
    sim.add_client(
        "msp",
        "msp-secret",
        "ab" * 16,
        msp=True,
        tenants=[{"workspace_id": good}, {"workspace_id": refused, "exchange_allowed": False}],
    )
    config = tap_config(
        sim,
        client_id="msp",
        client_secret="msp-secret",
        workspace_id="ab" * 16,
        tenant_workspace_ids=["*"],
        workspaces_api_url=sim.url,
    )
    proc = run_cli(config, tmp_path, "--test")
    assert proc.returncode == 1
    lines = _test_lines(proc.stderr)
    assert len(lines) == 6
    assert all(line.endswith(": OK") for line in lines if good in line)
    assert all("token exchange refused" in line for line in lines if refused in line)
