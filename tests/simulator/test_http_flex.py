"""Flex endpoints over HTTP: envelopes, paging validation, query errors, switches, routing."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token

API = "/flex/v1beta1"


def _get(
    sim: FlexSimulator, path: str, token: str | None = None, **params: Any
) -> requests.Response:
    token = token or fetch_token(sim)
    return requests.get(
        f"{sim.url}{API}{path}", params=params, headers=auth_headers(token), timeout=10
    )


def _assert_bad_request(r: requests.Response, subject: str) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["httpStatusCode"] == 400
    assert body["errorCode"] == "HPE_GL_ERROR_BAD_REQUEST"
    assert body["debugId"] and body["message"]
    (detail,) = body["errorDetails"]
    assert detail["type"] == "hpe.greenlake.bad_request"
    (issue,) = detail["issues"]
    assert issue["subject"] == subject
    assert issue["source"] == "query.parameter"
    assert issue["description"]
    return issue


def test_orders_envelope_and_default_limit(simulator: FlexSimulator) -> None:
    body = _get(simulator, "/orders").json()
    assert set(body) == {"items", "count", "offset", "total"}
    assert body["count"] == len(body["items"]) == 20
    assert body["offset"] == 0
    assert body["total"] == 120


def test_paging_covers_every_record_once(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    ids: list[str] = []
    offset = 0
    while True:
        page = _get(simulator, "/devices", token, limit=100, offset=offset).json()
        ids += [d["id"] for d in page["items"]]
        offset += page["count"]
        if page["count"] < 100:
            break
    assert len(ids) == len(set(ids)) == 250
    last = _get(simulator, "/devices", token, limit=100, offset=250).json()
    assert last["items"] == [] and last["total"] == 250 and last["offset"] == 250


def test_limit_zero_returns_only_total(simulator: FlexSimulator) -> None:
    body = _get(simulator, "/devices", limit=0).json()
    assert body["items"] == [] and body["count"] == 0 and body["total"] == 250


@pytest.mark.parametrize(
    ("params", "subject"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"offset": "-5"}, "offset"),
        ({"offset": "x"}, "offset"),
    ],
)
@pytest.mark.parametrize("path", ["/orders", "/devices", "/orders/transform"])
def test_paging_parameters_are_validated(
    simulator: FlexSimulator, path: str, params: dict[str, str], subject: str
) -> None:
    if path == "/orders/transform":
        params = {**params, "group-by": "sowId"}
    issue = _assert_bad_request(_get(simulator, path, **params), subject)
    assert subject in issue["description"]


@pytest.mark.parametrize(
    ("path", "params", "subject"),
    [
        ("/orders", {"filter": "noSuchField eq 'x'"}, "filter"),
        ("/orders", {"filter": "customerName eq"}, "filter"),
        ("/devices", {"filter": "make gt 'HPE'"}, "filter"),
        ("/orders", {"sort": "noSuchField asc"}, "sort"),
        ("/devices", {"sort": "model sideways"}, "sort"),
        ("/orders/transform", {}, "group-by"),
        ("/orders/transform", {"group-by": "model"}, "group-by"),
        ("/orders/transform", {"group-by": "sowId", "sort": "customerName"}, "sort"),
    ],
)
def test_query_errors_name_the_parameter(
    simulator: FlexSimulator, path: str, params: dict[str, str], subject: str
) -> None:
    _assert_bad_request(_get(simulator, path, **params), subject)


def test_filter_sort_select_work(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    first = _get(simulator, "/devices", token, limit=1).json()["items"][0]
    r = _get(simulator, "/devices", token, filter=f"serialNumber eq '{first['serialNumber']}'")
    assert [d["id"] for d in r.json()["items"]] == [first["id"]]
    desc = _get(simulator, "/devices", token, sort="resourceId desc", limit=100).json()["items"]
    keys = [d["resourceId"] for d in desc]
    assert keys == sorted(keys, reverse=True)
    sel = _get(simulator, "/orders", token, select="id,sowId", limit=3).json()["items"]
    assert all(set(o) == {"id", "sowId"} for o in sel)


@pytest.mark.parametrize(
    ("path", "spec_example", "known"),
    [
        # The select examples of HPE's OpenAPI document, verbatim.
        ("/devices", "serialNumber,type,make,orderEndDate,billingTier", 4),
        ("/orders", "resellerName,billingAccountName,orderEndDate", 3),
    ],
)
def test_hpe_select_examples_work_and_unknown_fields_are_ignored(
    simulator: FlexSimulator, path: str, spec_example: str, known: int
) -> None:
    token = fetch_token(simulator)
    r = _get(simulator, path, token, select=spec_example, limit=10)
    assert r.status_code == 200, r.text
    full = _get(simulator, path, token, limit=10).json()
    fields = spec_example.split(",")
    assert r.json()["total"] == full["total"]
    assert r.json()["items"] == [{k: rec[k] for k in fields if k in rec} for rec in full["items"]]
    # orderEndDate is no device field: of the devices example, 4 of 5 names are served.
    assert max(len(item) for item in r.json()["items"]) == known


def test_transform_groups(simulator: FlexSimulator) -> None:
    body = _get(simulator, "/orders/transform", **{"group-by": "customerName", "limit": 100}).json()
    names = [i["customerName"] for i in body["items"]]
    assert names and len(names) == len(set(names))
    assert all(set(i) == {"customerName"} for i in body["items"])


@pytest.mark.parametrize("path", ["/orders", "/devices"])
def test_updated_filter_switch(make_simulator, path: str) -> None:
    flt = "updatedAt gt '2000-01-01T00:00:00Z'"
    off = make_simulator()
    _assert_bad_request(_get(off, path, filter=flt), "filter")
    on = make_simulator(updated_filter=True)
    assert _get(on, path, filter=flt).json()["total"] > 0
    on.update_config(updated_filter=False)
    _assert_bad_request(_get(on, path, filter=flt), "filter")


@pytest.mark.parametrize("path", ["/orders", "/devices"])
def test_updated_sort_switch(make_simulator, path: str) -> None:
    sim = make_simulator()
    token = fetch_token(sim)
    _assert_bad_request(_get(sim, path, token, sort="updatedAt asc"), "sort")
    sim.update_config(updated_sort=True)
    r = _get(sim, path, token, sort="updatedAt asc", limit=100)
    assert r.status_code == 200
    assert r.json()["count"] == 100


def test_device_by_id_and_404(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    listed = _get(simulator, "/devices", token, limit=1).json()["items"][0]
    r = _get(simulator, f"/devices/{listed['id']}", token)
    assert r.status_code == 200
    assert r.json() == listed
    missing = _get(simulator, "/devices/00000000-0000-0000-0000-000000000000", token)
    assert missing.status_code == 404
    body = missing.json()
    assert body["httpStatusCode"] == 404 and body["errorCode"] == "HPE_GL_ERROR_NOT_FOUND"
    assert body["debugId"] and body["message"]


def test_unknown_path_is_404_greenlake_body(simulator: FlexSimulator) -> None:
    for path in ("/flex/v1beta1/widgets", "/", "/flex/v1/orders"):
        r = requests.get(f"{simulator.url}{path}", timeout=10)
        assert r.status_code == 404
        assert r.json()["errorCode"] == "HPE_GL_ERROR_NOT_FOUND"


def test_debug_ids_are_fresh(simulator: FlexSimulator) -> None:
    ids = {requests.get(f"{simulator.url}/nope", timeout=10).json()["debugId"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", f"{API}/orders", "GET"),
        ("DELETE", f"{API}/devices/abc", "GET"),
        ("PUT", f"{API}/orders/transform", "GET"),
        ("GET", "/as/token.oauth2", "POST"),
        ("PUT", "/__sim/mutations", "GET, POST, DELETE"),
        ("POST", "/workspaces/v1/msp-tenants", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(
    simulator: FlexSimulator, method: str, path: str, allow: str
) -> None:
    r = requests.request(method, f"{simulator.url}{path}", timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == allow
    assert r.json()["httpStatusCode"] == 405
