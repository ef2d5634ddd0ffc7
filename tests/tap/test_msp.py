"""Managed service providers: tenant discovery, token exchange, per-tenant partitions and skips."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from flex_simulator.server import FlexSimulator
from tap_hpe_flex.errors import FlexConfigError
from tests.tap.helpers import RunResult, run_cli, run_tap, sim_requests, tap_config

MSP_ID, MSP_SECRET = "msp-client", "msp-client-secret"
MSP_WS = "ab" * 16
T1, T2, T3, T4 = "11" * 16, "22" * 16, "33" * 16, "44" * 16
SIZES = {T1: (7, 9), T2: (4, 6), T3: (3, 3), T4: (5, 4)}  # orders, devices


def _tenant(ws: str, **extra: Any) -> dict[str, Any]:
    orders, devices = SIZES[ws]
    return {"workspace_id": ws, "orders": orders, "devices": devices, "seed": int(ws[:2]), **extra}


def _msp_sim(make_simulator: Any, *tenants: dict[str, Any], **overrides: Any) -> FlexSimulator:
    sim: FlexSimulator = make_simulator(orders=2, devices=2, rate_limit=100_000, **overrides)
    sim.add_client(MSP_ID, MSP_SECRET, MSP_WS, msp=True, tenants=list(tenants))
    return sim


def _three_tenants(make_simulator: Any, **overrides: Any) -> FlexSimulator:
    """T1 and T2 work; T3 is listed but refuses the token exchange (403)."""
    return _msp_sim(
        make_simulator,
        _tenant(T1, name="One"),
        _tenant(T2, name="Two"),
        _tenant(T3, name="Refuser", exchange_allowed=False),
        **overrides,
    )


def _config(sim: FlexSimulator, tenants: list[str], **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "client_id": MSP_ID,
        "client_secret": MSP_SECRET,
        "workspace_id": MSP_WS,
        "tenant_workspace_ids": tenants,
        "workspaces_api_url": sim.url,
        "requests_per_minute": 100_000,
        "page_size": 5,
        "order_transform_group_by": ["sowId", "partnerName"],
        "incremental_strategy": "client",
    }
    return tap_config(sim, **{**settings, **overrides})


def _by_workspace(result: RunResult, stream: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in result.records(stream):
        counts[record["workspaceId"]] = counts.get(record["workspaceId"], 0) + 1
    return counts


def _partition_bookmarks(state: dict[str, Any], stream: str) -> dict[str, str | None]:
    partitions = state["bookmarks"][stream]["partitions"]
    return {p["context"]["workspaceId"]: p.get("replication_key_value") for p in partitions}


def _schema(result: RunResult, stream: str) -> dict[str, Any]:
    return next(m for m in result.messages if m["type"] == "SCHEMA" and m["stream"] == stream)


def test_star_lists_tenants_over_pages_and_skips_the_refusing_one(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _three_tenants(make_simulator)
    sim.update_config(tenant_id_hyphens=True)  # the list says 1111-...; exchange URLs need hex
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    result = run_tap(_config(sim, ["*"], tenant_list_page_size=2))

    listing = sim_requests(sim, "msp-tenants")
    assert [(r["query"]["offset"], r["query"]["limit"]) for r in listing] == [
        ("0", "2"),
        ("2", "2"),
    ]
    assert {r["client_id"] for r in listing} == {MSP_ID}
    assert _by_workspace(result, "orders") == {T1: 7, T2: 4}
    assert _by_workspace(result, "devices") == {T1: 9, T2: 6}
    assert set(_by_workspace(result, "order_transforms")) == {T1, T2}
    for stream, keys in (
        ("orders", ["workspaceId", "id"]),
        ("devices", ["workspaceId", "id"]),
        ("order_transforms", ["workspaceId", "groupBy", "value"]),
    ):
        assert _schema(result, stream)["key_properties"] == keys

    # One exchange per tenant (T3's refused), one MSP token; no Flex request for T3.
    tokens = sim_requests(sim, "token")
    assert sorted(r["workspace_id"] for r in tokens) == sorted([MSP_WS, T1, T2, T3])
    assert [r["status"] for r in tokens if r["workspace_id"] == T3] == [403]
    data = [r for r in sim_requests(sim) if r["endpoint"] in {"orders", "devices"}]
    assert {r["workspace_id"] for r in data} == {T1, T2}

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    skip_lines = [w for w in warnings if w.startswith("Tenant ")]
    assert len(skip_lines) == 1
    assert T3 in skip_lines[0] and "Refuser" in skip_lines[0]
    assert "token exchange refused" in skip_lines[0] and "HTTP 403" in skip_lines[0]
    summary = [w for w in warnings if "skipped in this run" in w]
    assert len(summary) == 1 and T3 in summary[0]

    # State: one partition per tenant; the skipped tenant has no bookmark.
    marks = _partition_bookmarks(result.state, "orders")
    assert marks[T1] and marks[T2] and not marks.get(T3)
    transforms = result.state["bookmarks"]["order_transforms"]["partitions"]
    assert {tuple(sorted(p["context"].items())) for p in transforms} >= {
        (("groupBy", "sowId"), ("workspaceId", T1)),
        (("groupBy", "partnerName"), ("workspaceId", T2)),
    }


def test_new_tenant_starts_from_scratch_while_others_keep_bookmarks(make_simulator: Any) -> None:
    sim = _msp_sim(make_simulator, _tenant(T1), _tenant(T2))
    first = run_tap(_config(sim, [T1, T2]), streams=("orders",))
    assert _by_workspace(first, "orders") == {T1: 7, T2: 4}
    before = _partition_bookmarks(first.state, "orders")

    # The MSP gains a tenant; the next run lists it too (hyphenated, as an operator may paste it).
    sim.add_client(
        MSP_ID, MSP_SECRET, MSP_WS, msp=True, tenants=[_tenant(T1), _tenant(T2), _tenant(T4)]
    )
    hyphenated = f"{T4[:8]}-{T4[8:12]}-{T4[12:16]}-{T4[16:20]}-{T4[20:]}"
    second = run_tap(_config(sim, [T1, T2, hyphenated]), state=first.state, streams=("orders",))

    counts = _by_workspace(second, "orders")
    assert counts[T4] == 5  # full first pass for the new tenant
    assert counts.get(T1, 0) < 7 and counts.get(T2, 0) < 4  # only from their bookmarks on
    after = _partition_bookmarks(second.state, "orders")
    assert after[T1] == before[T1] and after[T2] == before[T2]
    assert after[T4]


def test_tenant_without_a_permission_is_skipped_for_that_permission_only(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _msp_sim(make_simulator, _tenant(T1, permissions=["orders"]), _tenant(T2))
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    result = run_tap(_config(sim, [T1, T2]))

    assert _by_workspace(result, "orders") == {T1: 7, T2: 4}
    assert _by_workspace(result, "devices") == {T2: 6}
    assert set(_by_workspace(result, "order_transforms")) == {T1, T2}
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Tenant ")]
    assert len(skips) == 1
    assert T1 in skips[0] and "View on Devices" in skips[0] and "HTTP 403" in skips[0]
    devices_t1 = [r for r in sim_requests(sim, "devices") if r["workspace_id"] == T1]
    assert [r["status"] for r in devices_t1] == [403]


def test_skipped_tenant_exit_status_follows_the_setting(
    make_simulator: Any, tmp_path: Path
) -> None:
    sim = _three_tenants(make_simulator)
    config = _config(sim, [T3, T1])
    ok = run_cli(config, tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert '"workspaceId":"' + T1 in ok.stdout.replace(" ", "")
    strict = run_cli({**config, "fail_on_skipped_tenants": True}, tmp_path)
    assert strict.returncode == 1
    assert "Traceback" not in strict.stderr
    assert "skipped in this run" in strict.stderr and T3 in strict.stderr
    assert "fail_on_skipped_tenants" in strict.stderr
    assert MSP_SECRET not in ok.stderr + strict.stderr
    # The records of the working tenant and a final state were written before the exit.
    assert '"type":"STATE"' in strict.stdout.replace(" ", "")


def test_tenant_and_msp_tokens_refreshed_after_expiry(make_simulator: Any) -> None:
    sim = _msp_sim(make_simulator, _tenant(T1), token_ttl=2)
    result = run_tap(_config(sim, [T1]), streams=("orders",))
    tap = result.tap
    time.sleep(2.1)  # both tokens are past their 2 s life (refreshed 0.2 s early)
    tap.streams["devices"].sync()
    tokens = sim_requests(sim, "token")
    assert [r["workspace_id"] for r in tokens] == [MSP_WS, T1, MSP_WS, T1]
    assert all(r["status"] == 200 for r in sim_requests(sim))  # refreshed before any 401
    assert tap.runtime.authenticator.token_requests == 4


def test_tenants_share_the_per_endpoint_limiter(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _msp_sim(make_simulator, _tenant(T1), _tenant(T2))
    caplog.set_level(logging.DEBUG, logger="tap-hpe-flex")
    config = _config(sim, [T1, T2], requests_per_minute=2, rate_limit_window_seconds=0.5)
    result = run_tap(config, streams=("orders",))
    assert _by_workspace(result, "orders") == {T1: 7, T2: 4}
    # Two tenants' pages (2 + 1) share one orders window of 2: the third request was paced.
    assert any(r.getMessage().startswith("Paced orders") for r in caplog.records)
    assert set(result.tap.runtime.limiter._events) == {"orders"}


def test_state_from_before_msp_mode_does_not_crash(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _msp_sim(make_simulator, _tenant(T1))
    old = {
        "bookmarks": {
            "orders": {"replication_key": "updatedAt", "replication_key_value": "2099-01-01"},
            "order_transforms": {"partitions": [{"context": {"groupBy": "sowId"}}]},
        }
    }
    result = run_tap(_config(sim, [T1]), state=old, streams=("orders", "order_transforms"))
    assert _by_workspace(result, "orders") == {T1: 7}  # the old bookmark is not applied
    assert any("from a run without tenant_workspace_ids" in r.getMessage() for r in caplog.records)


def test_single_workspace_records_carry_the_configured_workspace(simulator: FlexSimulator) -> None:
    result = run_tap(tap_config(simulator), streams=("orders",))
    assert {r["workspaceId"] for r in result.records("orders")} == {simulator.config.workspace_id}
    assert _schema(result, "orders")["key_properties"] == ["id"]
    assert "partitions" not in result.state["bookmarks"]["orders"]
    classic = tap_config(simulator, workspace_id=None, token_url=simulator.classic_token_url)
    result = run_tap(classic, streams=("devices",))
    assert {r["workspaceId"] for r in result.records("devices")} == {None}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"tenant_workspace_ids": ["not-a-workspace"]}, "is not a workspace ID"),
        (
            {"tenant_workspace_ids": [T1], "token_url": "https://sso.example/as/token.oauth2"},
            "needs a token_url containing {workspace_id}",
        ),
    ],
)
def test_msp_settings_checked_before_any_request(
    simulator: FlexSimulator, overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(FlexConfigError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        run_tap(tap_config(simulator, **overrides))
    assert sim_requests(simulator) == []
