"""Tokens (shared, refreshed before expiry and once on 401) and user-facing errors."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tap_hpe_flex.errors import FlexAuthError, FlexConfigError
from tap_hpe_flex.tap import TapHpeFlex
from tests.tap.helpers import CollectingWriter, run_cli, run_tap, sim_requests, tap_config


def _tap(config: dict[str, Any]) -> TapHpeFlex:
    return TapHpeFlex(config=config, message_writer=CollectingWriter())


def test_token_refreshed_before_expiry_with_one_extra_request(make_simulator: Any) -> None:
    sim = make_simulator(orders=5, devices=5, token_ttl=2, rate_limit=10_000)
    tap = _tap(tap_config(sim))
    tap.streams["orders"].sync()
    time.sleep(2.1)  # past the 2 s token life (the tap refreshes 0.2 s before it ends)
    tap.streams["devices"].sync()
    assert len(sim_requests(sim, "token")) == 2
    assert tap.runtime.authenticator.token_requests == 2
    assert all(r["status"] == 200 for r in sim_requests(sim))  # no 401 was needed


def test_401_gets_one_new_token_and_resends(make_simulator: Any) -> None:
    sim = make_simulator(orders=5, devices=25, rate_limit=10_000)
    tap = _tap(tap_config(sim, page_size=10))
    tap.streams["orders"].sync()
    sim.expire_tokens()
    tap.streams["devices"].sync()
    assert len(sim_requests(sim, "token")) == 2
    statuses = [r["status"] for r in sim_requests(sim, "devices")]
    assert statuses == [401, 200, 200, 200]
    # The limiter counted every attempt, the refused one included.
    assert tap.runtime.limiter.in_window("devices") == 4


def test_no_token_request_without_data_request(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=1)
    _tap(tap_config(sim))
    assert sim_requests(sim) == []


def test_bad_credentials_in_process(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=1)
    with pytest.raises(FlexAuthError, match="rejected client_id/client_secret"):
        run_tap(tap_config(sim, client_secret="not-the-secret"), streams=("orders",))


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"orders_filter": "updatedAt ge '2024-01-01T00:00:00Z'"}, "'updatedAt' is not filterable"),
        ({"devices_filter": "make eq HPE"}, "expected a literal"),
        ({"orders_filter": "isFlexPartner eq 'true'"}, "isFlexPartner is a boolean"),
        ({"orders_filter": "sowId eq 'a' or sowId eq 'b'"}, "only 'and' may join"),
        ({"orders_filter": "isFlexPartner eq true"}, "order_transforms"),
        ({"token_url": "http://x/{workspace_id}/token", "workspace_id": ""}, "workspace_id"),
    ],
)
def test_invalid_settings_fail_before_any_request(
    make_simulator: Any, overrides: dict[str, Any], fragment: str
) -> None:
    sim = make_simulator(orders=1, devices=1)
    with pytest.raises(FlexConfigError) as info:
        _tap(tap_config(sim, **overrides))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert sim_requests(sim) == []


def test_orders_filter_with_flex_partner_is_fine_without_order_transforms(
    make_simulator: Any,
) -> None:
    sim = make_simulator(orders=40, devices=1, rate_limit=10_000)
    catalog = _tap(tap_config(sim)).catalog_dict
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] == "orders"
    writer = CollectingWriter()
    tap = TapHpeFlex(
        config=tap_config(sim, orders_filter="isFlexPartner eq true"),
        catalog=catalog,
        message_writer=writer,
    )
    tap.sync_all()
    records = [m["record"] for m in writer.messages if m["type"] == "RECORD"]
    assert records and all(r["isFlexPartner"] is True for r in records)
    assert sim_requests(sim, "orders")[0]["query"]["filter"] == "isFlexPartner eq true"


def test_user_filter_is_and_ed_with_the_incremental_filter(make_simulator: Any) -> None:
    sim = make_simulator(orders=60, devices=1, rate_limit=10_000, updated_filter=True)
    config = tap_config(sim, start_date="2000-01-01T00:00:00Z")
    everything = run_tap(config, streams=("orders",)).records("orders")
    customer = everything[0]["customerName"]
    quoted = customer.replace("'", "''")
    result = run_tap(
        {**config, "orders_filter": f"customerName eq '{quoted}'"}, streams=("orders",)
    )
    assert {r["id"] for r in result.records("orders")} == {
        r["id"] for r in everything if r["customerName"] == customer
    }
    sent = sim_requests(sim, "orders")[-1]["query"]["filter"]
    assert sent.startswith(
        f"customerName eq '{quoted}' and updatedAt ge '2000-01-01T00:00:00.000Z'"
    )


def test_device_ids_unknown_id_warns_and_others_arrive(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=1, devices=20, rate_limit=10_000)
    known = [r["id"] for r in run_tap(tap_config(sim), streams=("devices",)).records("devices")]
    wanted = [known[3], "00000000-0000-0000-0000-000000000000", known[7]]
    caplog.set_level(logging.WARNING)
    result = run_tap(tap_config(sim, device_ids=wanted), streams=("devices",))
    assert [r["id"] for r in result.records("devices")] == [known[3], known[7]]
    single = sim_requests(sim, "devices/{id}")
    assert [r["status"] for r in single] == [200, 404, 200]
    assert "00000000-0000-0000-0000-000000000000 was not found" in caplog.text


# --- the CLI: one clear line, non-zero exit, no traceback, no secret ---------------------------
def _assert_one_clear_error(proc: Any, fragment: str, secret: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if fragment in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert secret not in proc.stderr and secret not in proc.stdout


def test_cli_bad_credentials(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(orders=1, devices=1)
    secret = "wrong-secret-123"
    proc = run_cli(tap_config(sim, client_secret=secret), tmp_path)
    _assert_one_clear_error(proc, "rejected client_id/client_secret", secret)


def test_cli_forbidden_names_the_permission(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(orders=3, devices=3)
    sim.add_client("orders-only", "orders-secret-456", sim.config.workspace_id, ("orders",))
    config = tap_config(sim, client_id="orders-only", client_secret="orders-secret-456")
    proc = run_cli(config, tmp_path)
    _assert_one_clear_error(proc, "needs the View on Devices permission", "orders-secret-456")
    assert "debugId=" in proc.stderr
    assert len(sim_requests(sim, "devices")) == 1  # a 403 is never retried


def test_cli_invalid_filter_makes_no_request(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(orders=1, devices=1)
    proc = run_cli(tap_config(sim, devices_filter="deviceType eq 'AP'"), tmp_path)
    _assert_one_clear_error(proc, "Invalid devices_filter", sim.config.client_secret)
    assert "fields: id, macAddress" in proc.stderr
    assert sim_requests(sim) == []


def test_cli_rejected_explicit_strategy_shows_api_message(
    make_simulator: Any, tmp_path: Path
) -> None:
    sim = make_simulator(orders=3, devices=3)
    config = tap_config(sim, incremental_strategy="filter", start_date="2020-01-01T00:00:00Z")
    proc = run_cli(config, tmp_path)
    _assert_one_clear_error(proc, "HTTP 400", sim.config.client_secret)
    assert "debugId=" in proc.stderr and "use auto or client" in proc.stderr
    assert len(sim_requests(sim, "devices")) == 1  # a 400 is never retried


def test_cli_debug_logs_hold_no_secret_or_token(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(orders=30, devices=30, rate_limit=10_000)
    proc = run_cli(tap_config(sim, page_size=10), tmp_path, env={"TAP_HPE_FLEX_LOGLEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DEBUG" in proc.stderr
    assert sim.config.client_secret not in proc.stderr + proc.stdout
    assert "Bearer " not in proc.stderr
    assert "access_token" not in proc.stderr


def test_in_process_debug_logs_hold_no_token(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(orders=5, devices=5, rate_limit=10_000)
    caplog.set_level(logging.DEBUG)
    result = run_tap(tap_config(sim), streams=("orders", "devices"))
    token = result.tap.runtime.authenticator.access_token
    assert token and token not in caplog.text
    assert sim.config.client_secret not in caplog.text
