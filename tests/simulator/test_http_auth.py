"""Bearer authorization on Flex endpoints: 401 missing/unknown/expired, 403 per permission."""

from __future__ import annotations

import pytest
import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token

API = "/flex/v1beta1"
ENDPOINTS = ["/orders", "/orders/transform?group-by=sowId", "/devices", "/devices/some-id"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_missing_or_unknown_token_is_401(simulator: FlexSimulator, path: str) -> None:
    for headers in ({}, auth_headers("not-a-real-token"), {"Authorization": "Basic abc"}):
        r = requests.get(f"{simulator.url}{API}{path}", headers=headers, timeout=10)
        assert r.status_code == 401
        body = r.json()
        assert body["errorCode"] == "HPE_GL_ERROR_UNAUTHORIZED"
        assert body["httpStatusCode"] == 401 and body["debugId"]


def test_expired_token_is_401_expired_and_a_new_token_works(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    url = f"{simulator.url}{API}/orders"
    assert requests.get(url, headers=auth_headers(token), timeout=10).status_code == 200
    simulator.expire_tokens()
    r = requests.get(url, headers=auth_headers(token), timeout=10)
    assert r.status_code == 401
    assert r.json()["errorCode"] == "HPE_GL_IAM_EXPIRED_TOKEN"
    fresh = fetch_token(simulator)
    assert requests.get(url, headers=auth_headers(fresh), timeout=10).status_code == 200


def test_zero_ttl_tokens_are_born_expired(make_simulator) -> None:
    sim = make_simulator(token_ttl=0)
    r = requests.get(f"{sim.url}{API}/devices", headers=auth_headers(fetch_token(sim)), timeout=10)
    assert r.json()["errorCode"] == "HPE_GL_IAM_EXPIRED_TOKEN"


@pytest.mark.parametrize(
    ("permissions", "allowed", "denied", "resource"),
    [
        (
            ("devices",),
            ["/devices", "/devices/x"],
            ["/orders", "/orders/transform?group-by=sowId"],
            "Orders",
        ),
        (
            ("orders",),
            ["/orders", "/orders/transform?group-by=sowId"],
            ["/devices", "/devices/x"],
            "Devices",
        ),
    ],
)
def test_403_names_the_missing_permission(
    simulator: FlexSimulator,
    permissions: tuple[str, ...],
    allowed: list[str],
    denied: list[str],
    resource: str,
) -> None:
    simulator.add_client("limited", "limited-secret", simulator.config.workspace_id, permissions)
    token = fetch_token(simulator, "limited", "limited-secret")
    for path in denied:
        r = requests.get(f"{simulator.url}{API}{path}", headers=auth_headers(token), timeout=10)
        assert r.status_code == 403
        body = r.json()
        assert body["errorCode"] == "HPE_GL_ERROR_FORBIDDEN"
        assert body["message"] == f"View permission on {resource} is required"
    for path in allowed:
        r = requests.get(f"{simulator.url}{API}{path}", headers=auth_headers(token), timeout=10)
        assert r.status_code in (200, 404)  # 404: device "x" does not exist, but access was granted


def test_log_records_client_and_workspace(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.clear_requests()
    requests.get(f"{simulator.url}{API}/devices", headers=auth_headers(token), timeout=10)
    (entry,) = simulator.requests("devices")
    assert entry["client_id"] == "demo-client"
    assert entry["workspace_id"] == simulator.config.workspace_id
