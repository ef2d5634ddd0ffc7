"""Admin HTTP API (/__sim/...) and the request log."""

from __future__ import annotations

import itertools

import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token

API = "/flex/v1beta1"


def test_health_reports_workspaces(simulator: FlexSimulator) -> None:
    r = requests.get(f"{simulator.url}/__sim/health", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["workspaces"][simulator.config.workspace_id] == {"orders": 120, "devices": 250}


def test_mutations_over_http_are_visible_to_clients(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    url = f"{simulator.url}{API}/devices"
    first = requests.get(url, headers=auth_headers(token), params={"limit": 1}, timeout=10)
    device = first.json()["items"][0]
    ops = [
        {"op": "update", "resource": "devices", "id": device["id"], "set": {"name": "renamed"}},
        {"op": "insert", "resource": "orders", "count": 2},
    ]
    r = requests.post(f"{simulator.url}/__sim/mutations", json={"ops": ops}, timeout=10)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["op"] for x in results] == ["update", "insert"]
    after = requests.get(f"{url}/{device['id']}", headers=auth_headers(token), timeout=10).json()
    assert after["name"] == "renamed"
    assert after["generation"] == device["generation"] + 1
    orders = requests.get(f"{simulator.url}{API}/orders", headers=auth_headers(token), timeout=10)
    assert orders.json()["total"] == 122


def test_bad_mutations_are_400(simulator: FlexSimulator) -> None:
    for payload in ({"ops": [{"op": "explode", "resource": "orders"}]}, {"ops": "x"}, [1]):
        r = requests.post(f"{simulator.url}/__sim/mutations", json=payload, timeout=10)
        assert r.status_code == 400, payload
        assert r.json()["errorCode"] == "HPE_GL_ERROR_BAD_REQUEST"


def test_mutate_python_api(simulator: FlexSimulator) -> None:
    results = simulator.mutate([{"op": "delete", "resource": "orders", "count": 20}])
    assert len(results[0]["ids"]) == 20
    assert simulator.store.count(simulator.config.workspace_id, "orders") == 100


def test_faults_and_config_over_http(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    r = requests.post(
        f"{simulator.url}/__sim/faults",
        json={"endpoint": "orders", "faults": ["500", "pass"], "deprecation": True},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.json()["pending"] == {"orders": ["500", "pass"]}
    assert r.json()["config"]["deprecation"] is True
    assert "client_secret" not in r.json()["config"]
    url = f"{simulator.url}{API}/orders"
    assert requests.get(url, headers=auth_headers(token), timeout=10).status_code == 500
    ok = requests.get(url, headers=auth_headers(token), timeout=10)
    assert ok.status_code == 200 and "Deprecation" in ok.headers
    bad = requests.post(f"{simulator.url}/__sim/faults", json={"port": 1}, timeout=10)
    assert bad.status_code == 400
    bad = requests.post(
        f"{simulator.url}/__sim/faults", json={"endpoint": "orders", "faults": ["nope"]}, timeout=10
    )
    assert bad.status_code == 400


def test_request_log_contents(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    requests.get(
        f"{simulator.url}{API}/orders",
        headers=auth_headers(token),
        params={"limit": 5, "filter": "isFlexPartner eq true"},
        timeout=10,
    )
    requests.get(f"{simulator.url}{API}/devices/abc", headers=auth_headers(token), timeout=10)
    requests.get(f"{simulator.url}{API}/orders/transform", headers=auth_headers(token), timeout=10)
    entries = simulator.requests()
    assert [e["endpoint"] for e in entries] == [
        "token",
        "orders",
        "devices/{id}",
        "orders/transform",
    ]
    tok, orders, device, transform = entries
    assert tok["method"] == "POST" and tok["status"] == 200 and tok["client_id"] == "demo-client"
    assert orders["query"] == {"limit": "5", "filter": "isFlexPartner eq true"}
    assert orders["path"] == "/flex/v1beta1/orders" and orders["status"] == 200
    assert device["status"] == 404 and transform["status"] == 400
    assert all(e["time"] <= f["time"] for e, f in itertools.pairwise(entries))
    assert all(e["duration"] >= 0 for e in entries)
    assert simulator.requests("orders") == [orders]


def test_request_log_over_http(simulator: FlexSimulator) -> None:
    fetch_token(simulator)
    r = requests.get(f"{simulator.url}/__sim/requests", params={"endpoint": "token"}, timeout=10)
    assert r.status_code == 200
    assert [e["endpoint"] for e in r.json()["items"]] == ["token"]
    cleared = requests.delete(f"{simulator.url}/__sim/requests", timeout=10)
    assert cleared.json()["cleared"] >= 2
    # the DELETE itself is logged after the clear, as "admin"
    assert [e["endpoint"] for e in simulator.requests()] == ["admin"]
    simulator.clear_requests()
    assert simulator.requests() == []


def test_admin_is_not_rate_limited_or_authenticated(make_simulator) -> None:
    sim = make_simulator(rate_limit=1, rate_window_s=30)
    for _ in range(5):
        assert requests.get(f"{sim.url}/__sim/health", timeout=10).status_code == 200
