"""MSP tenants: tenant list, per-tenant tokens and data, per-workspace rate limits, --tenants."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
import requests

from flex_simulator.config import EXAMPLES_DIR, load_clients_file
from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, exchange_token, fetch_token

EXAMPLE = "example:msp-clients.json"
MSP_ID, MSP_SECRET = "msp-demo-client", "msp-demo-secret"
HEX32 = re.compile(r"[0-9a-f]{32}")
ITEM_KEYS = {
    "id",
    "type",
    "workspaceName",
    "generation",
    "createdAt",
    "updatedAt",
    "createdBy",
    "resourceUri",
    "inventoryOwnership",
}


def _tenants(sim: FlexSimulator, token: str | None, **params: Any) -> requests.Response:
    headers = auth_headers(token) if token else {}
    return requests.get(
        f"{sim.url}/workspaces/v1/msp-tenants", headers=headers, params=params, timeout=10
    )


def _devices(sim: FlexSimulator, token: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{sim.url}/flex/v1beta1/devices", headers=auth_headers(token), params=params, timeout=10
    )


@pytest.fixture
def msp_sim(make_simulator) -> FlexSimulator:
    return make_simulator(clients_file=EXAMPLE, orders=15, devices=25)


def test_example_file_ships_inside_the_package() -> None:
    path = EXAMPLES_DIR / "msp-clients.json"
    assert json.loads(path.read_text())["clients"]
    msp = next(c for c in load_clients_file(EXAMPLE) if c.msp)
    assert len(msp.tenants) == 3
    assert [t.exchange_allowed for t in msp.tenants].count(False) == 1
    with pytest.raises(ValueError, match="no shipped example"):
        load_clients_file("example:nope.json")


def test_msp_token_lists_its_tenants_in_hpe_shape(msp_sim: FlexSimulator) -> None:
    r = _tenants(msp_sim, fetch_token(msp_sim, MSP_ID, MSP_SECRET))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"items", "count", "offset", "total"}
    assert (body["count"], body["offset"], body["total"]) == (3, 0, 3)
    names = [t["workspaceName"] for t in body["items"]]
    assert names == ["Northwind Traders", "Contoso Pharma", "Fabrikam Retail (exchange refused)"]
    for item in body["items"]:
        assert set(item) == ITEM_KEYS
        assert HEX32.fullmatch(item["id"])
        assert item["resourceUri"] == f"/workspaces/v1/msp-tenants/{item['id']}"
        assert item["inventoryOwnership"] in ("MSP_OWNED_INVENTORY", "CUSTOMER_OWNED_INVENTORY")
        created = datetime.fromisoformat(item["createdAt"].replace("Z", "+00:00"))
        assert created <= datetime.fromisoformat(item["updatedAt"].replace("Z", "+00:00"))
        assert isinstance(item["generation"], int) and "@" in item["createdBy"]
    assert body["items"][1]["inventoryOwnership"] == "CUSTOMER_OWNED_INVENTORY"


def test_tenant_list_pages_with_limit_and_offset(msp_sim: FlexSimulator) -> None:
    token = fetch_token(msp_sim, MSP_ID, MSP_SECRET)
    every = _tenants(msp_sim, token).json()["items"]
    pages = [_tenants(msp_sim, token, limit=2, offset=o).json() for o in (0, 2, 4)]
    assert [p["count"] for p in pages] == [2, 1, 0]
    assert all(p["total"] == 3 for p in pages)
    assert [p["offset"] for p in pages] == [0, 2, 4]
    assert [t for p in pages for t in p["items"]] == every
    assert _tenants(msp_sim, token, limit=300).status_code == 200


@pytest.mark.parametrize(
    ("params", "subject"),
    [({"limit": 301}, "limit"), ({"offset": -1}, "offset"), ({"filter": "id eq 'x'"}, "filter")],
)
def test_tenant_list_bad_parameters_are_400(
    msp_sim: FlexSimulator, params: dict[str, Any], subject: str
) -> None:
    r = _tenants(msp_sim, fetch_token(msp_sim, MSP_ID, MSP_SECRET), **params)
    assert r.status_code == 400
    assert r.json()["errorDetails"][0]["issues"][0]["subject"] == subject


def test_non_msp_and_tenant_tokens_are_403_and_no_token_401(msp_sim: FlexSimulator) -> None:
    plain = fetch_token(msp_sim, "plain-demo-client", "plain-demo-secret")
    demo = fetch_token(msp_sim)
    msp_token = fetch_token(msp_sim, MSP_ID, MSP_SECRET)
    tenant_id = _tenants(msp_sim, msp_token).json()["items"][0]["id"]
    tenant_token = exchange_token(msp_sim, tenant_id, msp_token).json()["access_token"]
    for token in (plain, demo, tenant_token):
        r = _tenants(msp_sim, token)
        assert r.status_code == 403
        body = r.json()
        assert body["errorCode"] == "HPE_GL_ERROR_FORBIDDEN"
        assert body["httpStatusCode"] == 403 and body["debugId"]
        assert "MSP" in body["message"]
    assert _tenants(msp_sim, None).json()["errorCode"] == "HPE_GL_ERROR_UNAUTHORIZED"
    msp_sim.expire_tokens()
    assert _tenants(msp_sim, msp_token).json()["errorCode"] == "HPE_GL_IAM_EXPIRED_TOKEN"


def test_each_tenant_token_serves_that_tenants_data(msp_sim: FlexSimulator) -> None:
    msp_token = fetch_token(msp_sim, MSP_ID, MSP_SECRET)
    items = _tenants(msp_sim, msp_token).json()["items"]
    sizes = {}
    first_ids = {}
    for item in items:
        r = exchange_token(msp_sim, item["id"], msp_token)
        if item["workspaceName"].startswith("Fabrikam"):
            assert r.status_code == 403, r.text  # listed, but the exchange is refused
            assert r.json()["error"] == "invalid_target"
            continue
        assert r.status_code == 200, r.text
        page = _devices(msp_sim, r.json()["access_token"], limit=1).json()
        sizes[item["workspaceName"]] = page["total"]
        first_ids[item["workspaceName"]] = page["items"][0]["id"]
    assert sizes == {"Northwind Traders": 120, "Contoso Pharma": 60}
    assert _devices(msp_sim, msp_token).json()["total"] == 80  # the MSP's own workspace
    assert len(set(first_ids.values())) == 2
    logged = {e["workspace_id"] for e in msp_sim.requests("devices")}
    assert logged == {i["id"] for i in items[:2]} | {"5e1c0a7d3b9f4e21a6c8d0b2f4e6a8c1"}


def test_rate_limits_are_per_client_and_workspace(make_simulator) -> None:
    sim = make_simulator(clients_file=EXAMPLE, orders=15, devices=25, rate_limit=2)
    msp_token = fetch_token(sim, MSP_ID, MSP_SECRET)
    tenants = _tenants(sim, msp_token).json()["items"]
    tokens = [exchange_token(sim, t["id"], msp_token).json()["access_token"] for t in tenants[:2]]
    assert [_devices(sim, msp_token).status_code for _ in range(3)] == [200, 200, 429]
    for token in tokens:  # same client, other workspaces: their own windows
        assert [_devices(sim, token).status_code for _ in range(3)] == [200, 200, 429]
    # The tenant list has its own window too (one slot was used above to read it).
    assert [_tenants(sim, msp_token).status_code for _ in range(2)] == [200, 429]


def test_scripted_faults_reach_the_tenant_list(msp_sim: FlexSimulator) -> None:
    token = fetch_token(msp_sim, MSP_ID, MSP_SECRET)
    msp_sim.script_faults("msp-tenants", ["500", "503-html"])
    assert _tenants(msp_sim, token).status_code == 500
    assert _tenants(msp_sim, token).headers["Content-Type"] == "text/html"
    assert _tenants(msp_sim, token).status_code == 200
    assert [e["fault"] for e in msp_sim.requests("msp-tenants")] == ["500", "503-html", None]


def test_hyphenated_tenant_ids_must_be_normalised_for_the_exchange(msp_sim: FlexSimulator) -> None:
    token = fetch_token(msp_sim, MSP_ID, MSP_SECRET)
    msp_sim.update_config(tenant_id_hyphens=True)
    item = _tenants(msp_sim, token).json()["items"][0]
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", item["id"])
    assert item["resourceUri"].endswith(item["id"])
    assert exchange_token(msp_sim, item["id"], token).status_code == 400
    assert exchange_token(msp_sim, item["id"].replace("-", ""), token).status_code == 200


def test_tenants_setting_makes_the_demo_client_an_msp(make_simulator) -> None:
    sim = make_simulator(tenants=4)
    token = fetch_token(sim)
    body = _tenants(sim, token).json()
    assert body["total"] == 4
    assert [t["workspaceName"] for t in body["items"]] == [
        f"Demo Tenant {i:02d}" for i in range(1, 5)
    ]
    again = make_simulator(tenants=4)  # same seed, same tenants
    assert _tenants(again, fetch_token(again)).json()["items"] == body["items"]
    for item in body["items"]:
        tenant_token = exchange_token(sim, item["id"], token).json()["access_token"]
        assert _devices(sim, tenant_token).json()["total"] == 40
    health = requests.get(f"{sim.url}/__sim/health", timeout=10).json()["workspaces"]
    assert len(health) == 5


def test_msp_clients_without_tenants_list_nothing(simulator: FlexSimulator) -> None:
    simulator.add_client("lonely-msp", "s", "ab" * 16, msp=True)
    body = _tenants(simulator, fetch_token(simulator, "lonely-msp", "s")).json()
    assert body == {"items": [], "count": 0, "offset": 0, "total": 0}
