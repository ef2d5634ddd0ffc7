"""Deletions for the demo and the tap's guard: delete chosen records, answer empty lists."""

from __future__ import annotations

from typing import Any

import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token
from tests.e2e.meltano_helpers import read_all

API = "/flex/v1beta1"


def _mutate(sim: FlexSimulator, ops: list[dict[str, Any]]) -> requests.Response:
    return requests.post(f"{sim.url}/__sim/mutations", json={"ops": ops}, timeout=10)


def _transform_values(sim: FlexSimulator, token: str, group_by: str) -> set[str]:
    values: set[str] = set()
    offset = 0
    while True:
        page = requests.get(
            f"{sim.url}{API}/orders/transform",
            params={"group-by": group_by, "limit": 100, "offset": offset},
            headers=auth_headers(token),
            timeout=10,
        ).json()
        values |= {item[group_by] for item in page["items"]}
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return values


def test_delete_chosen_devices_by_id(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    before = {d["id"] for d in read_all(simulator, token, "devices")}
    chosen = sorted(before)[:3]
    r = _mutate(simulator, [{"op": "delete", "resource": "devices", "ids": chosen}])
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["ids"] == chosen
    after = {d["id"] for d in read_all(simulator, token, "devices")}
    assert after == before - set(chosen)
    gone = requests.get(f"{simulator.url}{API}/devices/{chosen[0]}", headers=auth_headers(token))
    assert gone.status_code == 404


def test_delete_a_partners_orders_with_where(simulator: FlexSimulator) -> None:
    """The demo's "a partner withdraws": every order naming it in any role, then it is gone."""
    token = fetch_token(simulator)
    orders = read_all(simulator, token, "orders")
    partner = next(o["resellerName"] for o in orders if o.get("resellerName"))
    roles = ("partnerName", "resellerName", "distributorName")
    doomed = {o["id"] for o in orders if partner in (o.get(f) for f in roles)}
    assert partner in _transform_values(simulator, token, "partnerName")
    ops = [{"op": "delete", "resource": "orders", "where": {f: partner}} for f in roles]
    r = _mutate(simulator, ops)
    assert r.status_code == 200, r.text
    deleted = [set(result["ids"]) for result in r.json()["results"]]
    assert set().union(*deleted) == doomed
    assert all(not (a & b) for i, a in enumerate(deleted) for b in deleted[i + 1 :])
    left = read_all(simulator, token, "orders")
    assert {o["id"] for o in left} == {o["id"] for o in orders} - doomed
    assert partner not in _transform_values(simulator, token, "partnerName")


def test_where_matches_every_field_given_and_may_match_nothing(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    devices = read_all(simulator, token, "devices")
    model, make = devices[0]["model"], devices[0]["make"]
    expected = sorted(d["id"] for d in devices if d["model"] == model and d["make"] == make)
    where = {"model": model, "make": make}
    r = _mutate(simulator, [{"op": "update", "resource": "devices", "where": where}])
    assert r.status_code == 200, r.text
    assert sorted(r.json()["results"][0]["ids"]) == expected
    r = _mutate(simulator, [{"op": "delete", "resource": "devices", "where": {"model": "none"}}])
    assert r.status_code == 200 and r.json()["results"][0]["ids"] == []
    nameless = [d["id"] for d in read_all(simulator, token, "devices") if "name" not in d]
    assert nameless
    r = _mutate(simulator, [{"op": "delete", "resource": "devices", "where": {"name": None}}])
    assert sorted(r.json()["results"][0]["ids"]) == sorted(nameless)
    flex = [o["id"] for o in read_all(simulator, token, "orders") if o.get("isFlexPartner")]
    r = _mutate(
        simulator, [{"op": "delete", "resource": "orders", "where": {"isFlexPartner": True}}]
    )
    assert sorted(r.json()["results"][0]["ids"]) == sorted(flex)


def test_bad_where_is_400_and_changes_nothing(simulator: FlexSimulator) -> None:
    ws = simulator.config.workspace_id
    for where in ({}, [], {"updatedAt": "x"}, {"model": 3}, {"isFlexPartner": "yes"}):
        op = {"op": "delete", "resource": "devices", "where": where}
        if "isFlexPartner" in where:
            op["resource"] = "orders"
        r = _mutate(simulator, [{"op": "delete", "resource": "devices", "count": 1}, op])
        assert r.status_code == 400, where
        assert simulator.store.count(ws, "devices") == 250
    r = _mutate(
        simulator, [{"op": "delete", "resource": "devices", "where": {"id": "x"}, "count": 1}]
    )
    assert r.status_code == 400 and "exactly one of" in r.text


def test_empty_lists_switch_answers_nothing_until_turned_off(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    device = read_all(simulator, token, "devices")[0]
    r = requests.post(f"{simulator.url}/__sim/faults", json={"empty_lists": True}, timeout=10)
    assert r.status_code == 200 and r.json()["config"]["empty_lists"] is True
    headers = auth_headers(token)
    for path, params in (
        ("orders", {"offset": 20}),
        ("devices", {}),
        ("orders/transform", {"group-by": "partnerName"}),
    ):
        page = requests.get(f"{simulator.url}{API}/{path}", params=params, headers=headers)
        assert page.status_code == 200
        assert page.json() == {
            "items": [],
            "count": 0,
            "offset": params.get("offset", 0),
            "total": 0,
        }
    one = requests.get(f"{simulator.url}{API}/devices/{device['id']}", headers=headers)
    assert one.status_code == 200 and one.json()["id"] == device["id"]
    requests.post(f"{simulator.url}/__sim/faults", json={"empty_lists": False}, timeout=10)
    assert len(read_all(simulator, token, "devices")) == 250
