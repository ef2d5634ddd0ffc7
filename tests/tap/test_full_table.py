"""Full-table passes in-process: versions, deletion markers, ACTIVATE_VERSION, key sets, guard.

Each test runs the tap twice against a live simulator, deleting records in between, and reads the
Singer messages: the order records -> markers -> ACTIVATE_VERSION -> STATE per stream, the markers'
shape, and which STATE carries which key sets (docs/deletions.md holds the contract).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flex_simulator.server import FlexSimulator
from tap_hpe_flex.deletions import DELETED_AT
from tap_hpe_flex.errors import FlexUserError
from tap_hpe_flex.keysets import decode_keys, scope_fingerprint
from tap_hpe_flex.tap import TapHpeFlex
from tests.tap.helpers import CollectingWriter, RunResult, tap_config

STREAMS = ("orders", "devices", "order_transforms")


def full_table_catalog(
    config: dict[str, Any], full: tuple[str, ...], selected: tuple[str, ...] = STREAMS
) -> dict[str, Any]:
    """The tap's catalog with ``full`` streams FULL_TABLE (as Meltano's metadata sets it)."""
    catalog: dict[str, Any] = TapHpeFlex(config=config).catalog_dict
    for entry in catalog["streams"]:
        name = entry["tap_stream_id"]
        if name in full:
            entry["replication_method"] = "FULL_TABLE"
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = name in selected
    return catalog


def sync(
    config: dict[str, Any], catalog: dict[str, Any], state: dict[str, Any] | None = None
) -> RunResult:
    """One in-process run; a failing run raises, with its messages in ``exc.result``."""
    writer = CollectingWriter()
    tap = TapHpeFlex(config=config, catalog=catalog, state=state or {}, message_writer=writer)
    try:
        tap.sync_all()
    except FlexUserError as exc:
        exc.result = RunResult(tap, writer.messages)  # type: ignore[attr-defined]
        raise
    return RunResult(tap, writer.messages)


def keysets(state: dict[str, Any], stream: str) -> dict[str, Any]:
    """``bookmarks.<stream>.keysets`` of a state ({} when absent)."""
    found: dict[str, Any] = state.get("bookmarks", {}).get(stream, {}).get("keysets", {})
    return found


def decoded(state: dict[str, Any], stream: str, scope: str | None) -> dict[str, frozenset[str]]:
    """Each partition's keys in a state."""
    return {
        pid: keys
        for pid, enc in keysets(state, stream).items()
        if (keys := decode_keys(enc, scope=scope)) is not None
    }


def markers(result: RunResult, stream: str) -> list[dict[str, Any]]:
    """The deletion markers a run sent for ``stream``."""
    return [
        m
        for m in result.messages
        if m["type"] == "RECORD" and m["stream"] == stream and DELETED_AT in m["record"]
    ]


def activations(result: RunResult, stream: str) -> list[dict[str, Any]]:
    """The ACTIVATE_VERSION messages of ``stream``."""
    return [m for m in result.messages if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream]


def states(result: RunResult) -> list[dict[str, Any]]:
    """Every STATE value, in order."""
    return [m["value"] for m in result.messages if m["type"] == "STATE"]


def assert_order(result: RunResult, stream: str) -> None:
    """Records, then markers, then ACTIVATE_VERSION, then a STATE, nothing else between."""
    kinds = []
    for m in result.messages:
        if m.get("stream") == stream or m["type"] == "STATE":
            is_marker = m["type"] == "RECORD" and DELETED_AT in m["record"]
            kinds.append("MARKER" if is_marker else m["type"])
    records = [i for i, k in enumerate(kinds) if k == "RECORD"]
    marks = [i for i, k in enumerate(kinds) if k == "MARKER"]
    (activate,) = [i for i, k in enumerate(kinds) if k == "ACTIVATE_VERSION"]
    assert marks, f"{stream}: no markers"
    assert max(records) < min(marks) and max(marks) < activate
    assert kinds[activate + 1] == "STATE"
    assert all(k != "RECORD" for k in kinds[min(marks) : activate])


def _sim(make_simulator: Any, **extra: Any) -> FlexSimulator:
    sim: FlexSimulator = make_simulator(orders=30, devices=45, rate_limit=100_000, **extra)
    return sim


def _config(sim: FlexSimulator, concurrency: int = 1, **extra: Any) -> dict[str, Any]:
    return tap_config(
        sim,
        page_size=10,
        requests_per_minute=100_000,
        max_concurrent_requests=concurrency,
        order_transform_group_by=["sowId", "partnerName"],
        **extra,
    )


def _lone_sow_order(result: RunResult) -> dict[str, Any]:
    """An order whose sowId no other order has: deleting it makes a transform value vanish."""
    orders = result.records("orders")
    sows = [o["sowId"] for o in orders]
    return next(o for o in orders if o["sowId"] and sows.count(o["sowId"]) == 1)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_second_pass_marks_what_vanished_then_activates_then_stores_key_sets(
    make_simulator: Any, concurrency: int
) -> None:
    sim = _sim(make_simulator)
    config = _config(sim, concurrency)
    catalog = full_table_catalog(config, ("orders", "devices"))
    first = sync(config, catalog)
    for stream in STREAMS:
        records = [m for m in first.messages if m["type"] == "RECORD" and m["stream"] == stream]
        assert len({m["version"] for m in records}) == 1, stream
        assert not markers(first, stream) and not activations(first, stream)  # a first pass
    assert set(decoded(first.state, "devices", scope_fingerprint(filter=None))[""]) == {
        r["id"] for r in first.records("devices")
    }
    assert set(keysets(first.state, "order_transforms")) == {
        '{"groupBy":"partnerName"}',
        '{"groupBy":"sowId"}',
    }
    assert all(not keysets(s, "devices") for s in states(first)[:-1])  # only the final STATE

    lone = _lone_sow_order(first)
    gone_devices = sorted(r["id"] for r in first.records("devices")[3:6])
    sim.mutate(
        [
            {"op": "delete", "resource": "devices", "ids": gone_devices},
            {"op": "delete", "resource": "orders", "id": lone["id"]},
        ]
    )
    second = sync(config, catalog, first.state)

    device_marks = markers(second, "devices")
    assert sorted(m["record"]["id"] for m in device_marks) == gone_devices
    assert all(set(m["record"]) == {"id", DELETED_AT} for m in device_marks)
    assert all("version" not in m for m in device_marks)
    assert [m["record"]["id"] for m in markers(second, "orders")] == [lone["id"]]

    def pairs(records: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(r["groupBy"], r["value"]) for r in records if DELETED_AT not in r}

    marked = {
        (m["record"]["groupBy"], m["record"]["value"]) for m in markers(second, "order_transforms")
    }
    gone = pairs(first.records("order_transforms")) - pairs(second.records("order_transforms"))
    assert ("sowId", lone["sowId"]) in gone
    assert marked == gone
    for stream in STREAMS:
        assert_order(second, stream)
        versions = {
            m["version"]
            for m in second.messages
            if m["type"] == "RECORD" and m["stream"] == stream and "version" in m
        }
        (version,) = versions
        (activation,) = activations(second, stream)
        assert activation["version"] == version > first.tap.streams[stream].table_version

    # Every STATE but the last still carries the first run's key sets; the last the live ones.
    for state in states(second)[:-1]:
        assert all(keysets(state, s) == keysets(first.state, s) for s in STREAMS)
    live = {r["id"] for r in second.records("devices") if DELETED_AT not in r}
    assert decoded(second.state, "devices", scope_fingerprint(filter=None))[""] == live


def test_incremental_passes_keep_no_key_sets_and_send_no_markers(make_simulator: Any) -> None:
    sim = _sim(make_simulator)
    config = _config(sim)
    catalog = full_table_catalog(config, (), selected=("orders", "devices"))
    first = sync(config, catalog)
    sim.mutate([{"op": "delete", "resource": "devices", "count": 3}])
    second = sync(config, catalog, first.state)
    for result in (first, second):
        for stream in ("orders", "devices"):
            assert not keysets(result.state, stream)
            assert not markers(result, stream) and not activations(result, stream)
            assert all(
                "version" not in m
                for m in result.messages
                if m["type"] == "RECORD" and m["stream"] == stream
            )
    assert second.bookmark("devices")  # incremental as before


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_failed_pass_deletes_nothing_and_keeps_the_previous_key_sets(
    make_simulator: Any, concurrency: int
) -> None:
    sim = _sim(make_simulator)
    config = _config(sim, concurrency, max_retry_seconds=0)
    catalog = full_table_catalog(config, ("orders", "devices"))
    first = sync(config, catalog)
    gone = [r["id"] for r in first.records("devices")[:2]]
    gone_order = first.records("orders")[0]["id"]
    sim.mutate(
        [
            {"op": "delete", "resource": "devices", "ids": gone},
            {"op": "delete", "resource": "orders", "id": gone_order},
        ]
    )
    sim.script_faults("orders", ["pass", "pass", *["500"] * 20])  # orders is synced last
    with pytest.raises(FlexUserError) as failed:
        sync(config, catalog, first.state)
    broken: RunResult = failed.value.result  # type: ignore[attr-defined]
    assert broken.records("orders"), "the pass read some pages before failing"
    # devices (read first) was complete, but a failed run sends nothing for any stream.
    assert broken.records("devices") and broken.tap.streams["devices"].pass_outcome is not None
    assert not [m for m in broken.messages if m["type"] == "ACTIVATE_VERSION"]
    assert not markers(broken, "devices") and not markers(broken, "orders")
    for state in states(broken):
        assert all(keysets(state, s) == keysets(first.state, s) for s in STREAMS)

    sim.faults.clear()
    rerun = sync(config, catalog, broken.state)
    assert sorted(m["record"]["id"] for m in markers(rerun, "devices")) == sorted(gone)
    assert [m["record"]["id"] for m in markers(rerun, "orders")] == [gone_order]
    assert activations(rerun, "devices")


def test_the_guard_refuses_an_empty_answer_and_warns_once_per_partition(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _sim(make_simulator)
    config = _config(sim)
    catalog = full_table_catalog(config, ("devices",), selected=("devices", "order_transforms"))
    first = sync(config, catalog)
    sim.update_config(empty_lists=True)
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    second = sync(config, catalog, first.state)
    assert not second.records("devices")
    for stream in ("devices", "order_transforms"):
        assert not markers(second, stream) and not activations(second, stream)
        assert keysets(second.state, stream) == keysets(first.state, stream)
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING]
    texts = sorted(r.getMessage().split(":")[0] for r in refusals)
    assert texts == [
        "devices",
        'order_transforms {"groupBy"',
        'order_transforms {"groupBy"',
    ]
    assert all("delivered no records" in r.getMessage() for r in refusals)

    # The API recovers: the next pass compares with the kept set and marks nothing wrongly.
    sim.update_config(empty_lists=False)
    third = sync(config, catalog, second.state)
    assert not markers(third, "devices") and activations(third, "devices")


def test_the_share_guard_and_turning_it_off(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _sim(make_simulator)
    config = _config(sim)
    catalog = full_table_catalog(config, ("devices",), selected=("devices",))
    first = sync(config, catalog)
    ids = [r["id"] for r in first.records("devices")]
    sim.mutate([{"op": "delete", "resource": "devices", "ids": ids[:30]}])  # 30 of 45: 67%
    caplog.set_level(logging.WARNING, logger="tap-hpe-flex")
    refused = sync(config, catalog, first.state)
    assert not markers(refused, "devices") and not activations(refused, "devices")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "30 of the previous pass's 45 records (67%)" in warning
    # Both sets kept: the deletion is still seen once an operator allows it.
    assert decoded(refused.state, "devices", scope_fingerprint(filter=None))[""] == set(ids)

    allowed = sync({**config, "deletion_max_share": 1}, catalog, refused.state)
    assert sorted(m["record"]["id"] for m in markers(allowed, "devices")) == sorted(ids[:30])
    assert activations(allowed, "devices")


def test_above_deletion_max_keys_no_markers_but_activate_version_by_counts(
    make_simulator: Any,
) -> None:
    sim = _sim(make_simulator)
    config = _config(sim, deletion_max_keys=20)
    catalog = full_table_catalog(config, ("devices",), selected=("devices",))
    first = sync(config, catalog)
    assert keysets(first.state, "devices")[""]["overflow"] is True
    assert keysets(first.state, "devices")[""]["count"] == 45
    sim.mutate([{"op": "delete", "resource": "devices", "count": 4}])
    second = sync(config, catalog, first.state)
    assert not markers(second, "devices")
    assert activations(second, "devices")  # the counts guard allowed 4 of 45
    assert keysets(second.state, "devices")[""]["count"] == 41


def test_a_filter_change_is_no_deletion(make_simulator: Any) -> None:
    sim = _sim(make_simulator)
    config = _config(sim)
    catalog = full_table_catalog(config, ("devices",), selected=("devices",))
    first = sync(config, catalog)
    model = first.records("devices")[0]["model"]
    narrowed = {**config, "devices_filter": f"model eq '{model}'"}
    second = sync(narrowed, catalog, first.state)
    assert 0 < len(second.records("devices")) < 45
    assert not markers(second, "devices") and not activations(second, "devices")


def test_device_ids_mode_a_404_is_a_deletion_a_dropped_id_is_not(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _sim(make_simulator)
    probe = sync(_config(sim), full_table_catalog(_config(sim), (), selected=("devices",)))
    ids = [r["id"] for r in probe.records("devices")[:6]]
    config = _config(sim, device_ids=ids)
    catalog = full_table_catalog(config, ("devices",), selected=("devices",))
    first = sync(config, catalog)
    assert decoded(first.state, "devices", None)[""] == set(ids)

    sim.mutate([{"op": "delete", "resource": "devices", "id": ids[0]}])
    caplog.set_level(logging.WARNING, logger="tap-hpe-flex")
    fewer = {**config, "device_ids": ids[:5]}  # ids[5] is no longer configured
    second = sync(fewer, catalog, first.state)
    assert [m["record"]["id"] for m in markers(second, "devices")] == [ids[0]]
    assert any("was not found" in r.getMessage() for r in caplog.records)
    # An ACTIVATE_VERSION would delete ids[5]'s row too: it waits for the next run.
    assert not activations(second, "devices")
    assert decoded(second.state, "devices", None)[""] == set(ids[1:5])
    third = sync(fewer, catalog, second.state)
    assert not markers(third, "devices") and activations(third, "devices")


def test_a_skipped_tenant_makes_the_stream_incomplete_for_every_tenant(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    msp_id, msp_secret, msp_ws = "msp-client", "msp-client-secret", "ab" * 16
    t1, t2 = "11" * 16, "22" * 16

    def tenants(t2_allowed: bool) -> list[dict[str, Any]]:
        return (
            [
                {"workspace_id": t1, "orders": 6, "devices": 8, "seed": 11},
                {"workspace_id": t2, "orders": 4, "devices": 5, "seed": 22},
            ]
            if t2_allowed
            else [
                {"workspace_id": t1, "orders": 6, "devices": 8, "seed": 11},
                {
                    "workspace_id": t2,
                    "orders": 4,
                    "devices": 5,
                    "seed": 22,
                    "exchange_allowed": False,
                },
            ]
        )

    sim: FlexSimulator = make_simulator(orders=2, devices=2, rate_limit=100_000)
    sim.add_client(msp_id, msp_secret, msp_ws, msp=True, tenants=tenants(True))
    config = tap_config(
        sim,
        client_id=msp_id,
        client_secret=msp_secret,
        workspace_id=msp_ws,
        tenant_workspace_ids=[t1, t2],
        workspaces_api_url=sim.url,
        requests_per_minute=100_000,
        page_size=5,
    )
    catalog = full_table_catalog(config, ("devices",), selected=("devices",))
    first = sync(config, catalog)
    assert set(keysets(first.state, "devices")) == {
        f'{{"workspaceId":"{t1}"}}',
        f'{{"workspaceId":"{t2}"}}',
    }

    sim.mutate([{"op": "delete", "resource": "devices", "count": 2}], workspace_id=t1)
    sim.add_client(msp_id, msp_secret, msp_ws, msp=True, tenants=tenants(False))
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    second = sync(config, catalog, first.state)
    assert len(second.records("devices")) == 6  # t1's live devices; t2 refused
    assert not markers(second, "devices") and not activations(second, "devices")
    assert keysets(second.state, "devices") == keysets(first.state, "devices")
    assert any("not read in this run" in r.getMessage() for r in caplog.records)

    sim.add_client(msp_id, msp_secret, msp_ws, msp=True, tenants=tenants(True))
    third = sync(config, catalog, second.state)
    marks = markers(third, "devices")
    assert len(marks) == 2 and {m["record"]["workspaceId"] for m in marks} == {t1}
    assert all(set(m["record"]) == {"workspaceId", "id", DELETED_AT} for m in marks)
    assert activations(third, "devices")
