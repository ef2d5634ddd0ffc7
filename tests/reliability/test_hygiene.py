"""Secrets never reach output; deprecation warns once per endpoint; schema drift never crashes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tap_hpe_flex.redact import MASK, REDACTOR
from tests.reliability.helpers import fast_config
from tests.tap.helpers import run_cli, run_tap


def _issued_tokens(sim: Any) -> list[str]:
    return list(sim.authority._tokens)  # the simulator's record of every token it issued


def test_cli_debug_output_holds_no_secret_or_token_through_faults(
    make_simulator: Any, tmp_path: Path
) -> None:
    # Faults on the token endpoint and the API, a revoked token and DEBUG logging everywhere.
    sim = make_simulator(orders=30, devices=30, token_ttl=1, server_error_retry_after_s=0)
    sim.script_faults("token", ["503-html", "500"])
    sim.script_faults("devices", ["pass", "500", "503-html", "drop", "truncate"])
    config = fast_config(sim, page_size=10)
    proc = run_cli(config, tmp_path, env={"TAP_HPE_FLEX_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert "DEBUG" in proc.stderr and "urllib3" in proc.stderr
    tokens = _issued_tokens(sim)
    assert tokens
    for secret in [sim.config.client_secret, *tokens]:
        assert secret not in output
    assert "Bearer " not in output


def test_redactor_masks_secrets_from_any_logger_and_traceback(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=5, devices=1)
    caplog.set_level(logging.DEBUG)
    result = run_tap(fast_config(sim), streams=("orders",))
    token = result.tap.runtime.authenticator.access_token
    assert token
    # Third-party code that did quote a secret (as the SDK's error messages quote bodies):
    logging.getLogger("urllib3.connectionpool").debug("header Authorization: Bearer %s", token)
    try:
        raise RuntimeError(f"body was client_secret={sim.config.client_secret}")
    except RuntimeError:
        logging.getLogger("singer_sdk").exception("request failed")
    assert token not in caplog.text and sim.config.client_secret not in caplog.text
    assert caplog.text.count(MASK) >= 2
    assert REDACTOR.redact(f"x{token}y") == f"x{MASK}y"


def test_deprecation_headers_warn_once_per_endpoint(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=50, devices=50, deprecation=True)
    caplog.set_level(logging.WARNING)
    config = fast_config(sim, page_size=10, order_transform_group_by=["sowId", "customerName"])
    run_tap(config)
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 3, warnings  # orders, devices, orders/transform: once each
    assert any("/flex/v1beta1/devices is deprecated" in w for w in warnings)
    assert all("Sunset: Tue, 01 Dec 2026" in w and r"@1780272000" in w for w in warnings)


def test_unknown_field_and_new_device_type_pass_or_drop_without_crashing(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=1, devices=20)
    record = {"deviceType": "QUANTUM_SWITCH", "energyRating": "A+", "name": "new-kind"}
    (inserted,) = sim.mutate([{"op": "insert", "resource": "devices", "record": record}])
    new_id = inserted["ids"][0]
    caplog.set_level(logging.WARNING)
    result = run_tap(fast_config(sim), streams=("devices",))
    records = {r["id"]: r for r in result.records("devices")}
    assert len(records) == 21
    assert records[new_id]["deviceType"] == "QUANTUM_SWITCH"  # an open set: passes through
    assert "energyRating" not in records[new_id]  # not in the schema: dropped ...
    assert "energyRating" in caplog.text  # ... with a warning naming the field
    assert "A+" not in caplog.text  # never its value
