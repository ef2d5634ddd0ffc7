"""Bad values in chosen fields over HTTP: the same records arrive spoiled on every request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from flex_simulator.bad_values import GARBAGE, parse_bad_values
from flex_simulator.server import FlexSimulator
from flex_simulator.testing import bad_value_ids, fetch_token, flex_get, list_page

MakeSim = Callable[..., FlexSimulator]
SPEC = (
    "devices.serialNumber=null@5,devices.updatedAt=garbage@0.1,devices.id=missing@25,"
    "devices.tags=missing,orders.generation=string@3,orders.isFlexPartner=number"
)


def _all(sim: FlexSimulator, path: str, token: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = flex_get(sim, path, token, limit=100, offset=offset, **params).json()
        items += page["items"]
        offset += 100
        if offset >= page["total"]:
            return items


def _spoiled_by(items: list[dict[str, Any]], field: str, kind: str) -> int:
    checks = {
        "null": lambda rec: field in rec and rec[field] is None,
        "missing": lambda rec: field not in rec,
        "garbage": lambda rec: rec.get(field) == GARBAGE,
        "string": lambda rec: isinstance(rec.get(field), str),
        "number": lambda rec: (
            isinstance(rec.get(field), int) and not isinstance(rec.get(field), bool)
        ),
    }
    return sum(1 for rec in items if checks[kind](rec))


def test_bad_values_spoil_the_same_records_on_every_request(make_simulator: MakeSim) -> None:
    sim = make_simulator(bad_values=SPEC, fault_seed=3)
    token = fetch_token(sim)
    expected = bad_value_ids(sim, "devices")
    devices = _all(sim, "/devices", token)
    assert len(devices) == 250
    for field, kind in (("serialNumber", "null"), ("updatedAt", "garbage"), ("id", "missing")):
        want = sum(1 for fields in expected.values() if field in fields)
        assert 0 < want < 250, field
        assert _spoiled_by(devices, field, kind) == want, field
    # Another order and page size: the same records, by id, are the bad ones.
    again = _all(sim, "/devices", token, sort="make,id")
    null_serials = {d["resourceId"] for d in devices if d["serialNumber"] is None}
    assert {d["resourceId"] for d in again if d["serialNumber"] is None} == null_serials
    assert null_serials == {i for i, fields in expected.items() if "serialNumber" in fields}
    # The store keeps the real values: only answers are spoiled.
    real = list_page(sim.store, "devices", sim.default_workspace, limit=1000).items
    assert all(d["serialNumber"] and "id" in d for d in real)
    spoiled_id = next(i for i, fields in expected.items() if "serialNumber" in fields)
    one = flex_get(sim, f"/devices/{spoiled_id}", token).json()
    assert one["serialNumber"] is None and one["resourceId"] == spoiled_id


def test_bad_values_in_orders_and_untouched_fields(make_simulator: MakeSim) -> None:
    sim = make_simulator(bad_values=SPEC)
    token = fetch_token(sim)
    orders = _all(sim, "/orders", token)
    expected = bad_value_ids(sim, "orders")
    as_string = [o for o in orders if isinstance(o["generation"], str)]
    assert len(as_string) == sum(1 for f in expected.values() if "generation" in f) > 0
    assert all(o["generation"] == str(int(o["generation"])) for o in as_string)
    assert _spoiled_by(orders, "isFlexPartner", "number") > 0
    assert all(isinstance(o["id"], str) and o["orderEndDate"] for o in orders)


def test_select_returns_only_selected_fields_of_spoiled_records(make_simulator: MakeSim) -> None:
    sim = make_simulator(bad_values="devices.serialNumber=null@4")
    token = fetch_token(sim)
    full = _all(sim, "/devices", token)
    selected = _all(sim, "/devices", token, select="serialNumber,make")
    assert all(set(d) <= {"serialNumber", "make"} for d in selected)
    assert [d["serialNumber"] for d in selected] == [d["serialNumber"] for d in full]
    assert 0 < sum(d["serialNumber"] is None for d in selected) < 250


def test_bad_values_are_off_by_default_and_switchable_at_run_time(
    simulator: FlexSimulator,
) -> None:
    token = fetch_token(simulator)
    clean = _all(simulator, "/devices", token)
    assert all(d["serialNumber"] and d["id"] for d in clean)
    r = requests.post(
        f"{simulator.url}/__sim/faults",
        json={"bad_values": "devices.serialNumber=null@1"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["config"]["bad_values"]
    assert all(d["serialNumber"] is None for d in _all(simulator, "/devices", token))
    simulator.update_config(bad_values="")
    assert _all(simulator, "/devices", token) == clean


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("devices.serialNumber", "expected RESOURCE.FIELD=KIND"),
        ("widgets.id=null", "expected RESOURCE.FIELD=KIND"),
        ("devices.noSuchField=null", "no field"),
        ("orders.id=scrambled", "kind must be one of"),
        ("orders.id=null@0", "@N needs"),
        ("orders.id=null@1.5", "@N needs"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(
    simulator: FlexSimulator, spec: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bad_values(spec)
    r = requests.post(f"{simulator.url}/__sim/faults", json={"bad_values": spec}, timeout=10)
    assert r.status_code == 400 and message in r.text
    assert simulator.config.bad_values == ""
