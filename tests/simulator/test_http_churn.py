"""Steady churn: a background updater that moves nothing in the default order, or shifts it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import fetch_token, flex_get, list_page, running_simulator

MakeSim = Callable[..., FlexSimulator]


def _listing(sim: FlexSimulator, path: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for offset in range(0, 300, 100):
        items += flex_get(sim, path, token, limit=100, offset=offset).json()["items"]
    return items


def _wait_for_events(sim: FlexSimulator, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sim.churn.events()) < count:
        assert time.monotonic() < deadline, f"only {len(sim.churn.events())} churn ticks"
        time.sleep(0.02)


def test_churn_updates_records_without_moving_the_default_order(make_simulator: MakeSim) -> None:
    sim = make_simulator(devices=250, churn_resource="devices")
    token = fetch_token(sim)
    before = _listing(sim, "/devices", token)
    sim.update_config(churn_interval_s=0.05)
    _wait_for_events(sim, 4)
    sim.update_config(churn_interval_s=0)
    time.sleep(0.1)  # a tick under way when churn was switched off lands before the listing
    after = _listing(sim, "/devices", token)
    assert [d["id"] for d in after] == [d["id"] for d in before]  # nothing moved
    changed = {i for e in sim.churn.events() for r in e["results"] for i in r["ids"]}
    assert changed and all(r["op"] == "update" for e in sim.churn.events() for r in e["results"])
    old = {d["id"]: d for d in before}
    for device in after:
        if device["id"] in changed:
            assert device["generation"] > old[device["id"]]["generation"]
            assert device["updatedAt"] != old[device["id"]]["updatedAt"]
        else:
            assert device == old[device["id"]]


def test_churn_shift_deletes_and_inserts_each_tick(make_simulator: MakeSim) -> None:
    sim = make_simulator(orders=120, churn_resource="orders", churn_mode="shift")
    token = fetch_token(sim)
    before = {o["id"] for o in _listing(sim, "/orders", token)}
    events = [sim.churn.tick() for _ in range(3)]  # no thread needed: interval is 0
    after = {o["id"] for o in _listing(sim, "/orders", token)}
    assert len(after) == len(before) == 120
    deleted = {i for e in events for r in e["results"] if r["op"] == "delete" for i in r["ids"]}
    inserted = {i for e in events for r in e["results"] if r["op"] == "insert" for i in r["ids"]}
    assert len(deleted) == len(inserted) == 3
    assert before - after == deleted - inserted and after - before == inserted - deleted


def test_churn_is_off_by_default_and_switchable_at_run_time(simulator: FlexSimulator) -> None:
    time.sleep(0.2)
    assert simulator.churn.events() == []
    r = requests.post(f"{simulator.url}/__sim/faults", json={"churn_interval_s": 0.03}, timeout=10)
    assert r.status_code == 200 and r.json()["config"]["churn_interval_s"] == 0.03
    _wait_for_events(simulator, 3)
    simulator.update_config(churn_interval_s=0)
    settled = len(simulator.churn.events())
    time.sleep(0.2)
    assert len(simulator.churn.events()) <= settled + 1  # at most a tick already under way


def test_churn_over_the_admin_api(simulator: FlexSimulator) -> None:
    base = f"{simulator.url}/__sim/churn"
    assert requests.get(base, timeout=10).json() == {"items": [], "count": 0}
    records = list_page(simulator.store, "devices", simulator.default_workspace, limit=1000)
    generation = {d["id"]: d["generation"] for d in records.items}
    tick = requests.post(base, timeout=10).json()["tick"]
    (result,) = tick["results"]
    assert result["op"] == "update" and result["resource"] == "devices"
    listed = requests.get(base, timeout=10).json()
    assert listed["count"] == 1 and listed["items"][0]["results"] == tick["results"]
    device = flex_get(simulator, f"/devices/{result['ids'][0]}").json()
    assert device["updatedAt"] == result["updatedAt"]
    assert device["generation"] == generation[device["id"]] + 1


def test_churn_stops_with_the_server() -> None:
    with running_simulator(orders=5, devices=20, churn_interval_s=0.02) as sim:
        _wait_for_events(sim, 2)
        assert sim.churn.alive
    assert not sim.churn.alive  # its own thread (other tests' simulators may still churn)
    ticks = len(sim.churn.events())
    time.sleep(0.1)
    assert len(sim.churn.events()) == ticks
