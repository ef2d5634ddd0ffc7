"""Mutations scripted after the N-th successful answer: deterministic offset drift mid-sync."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.store import MutationError
from flex_simulator.testing import auth_headers, fetch_token

DEVICES = "/flex/v1beta1/devices"


def _page(sim: FlexSimulator, token: str, offset: int, limit: int = 10, **extra: Any) -> dict:
    r = requests.get(
        f"{sim.url}{DEVICES}",
        headers=auth_headers(token),
        params={"limit": limit, "offset": offset, **extra},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _all_ids(sim: FlexSimulator, token: str) -> list[str]:
    return [d["id"] for d in _page(sim, token, 0, limit=100)["items"]] + [
        d["id"] for o in (100, 200) for d in _page(sim, token, o, limit=100)["items"]
    ]


def test_deletion_before_the_offset_shifts_the_next_page_exactly_once(
    simulator: FlexSimulator,
) -> None:
    token = fetch_token(simulator)
    before = _all_ids(simulator, token)  # 3 requests before scripting: not counted
    assert len(before) == 250
    victim = before[3]
    scripted = simulator.script_mutations(
        "devices", after_requests=2, ops=[{"op": "delete", "resource": "devices", "id": victim}]
    )
    simulator.clear_requests()
    first = _page(simulator, token, 0)
    assert victim in [d["id"] for d in first["items"]]
    second = _page(simulator, token, 10)  # the 2nd answer: mutation applies right after it
    assert [d["id"] for d in second["items"]] == before[10:20]
    assert second["total"] == 250  # this answer predates the deletion
    assert scripted.done.is_set() and scripted.error is None
    assert scripted.results is not None and scripted.results[0]["ids"] == [victim]
    third = _page(simulator, token, 20)
    # Everything after the victim moved up by one: offset 20 now starts at the old record 21,
    # so a client paging by offset never sees old record 20.
    assert [d["id"] for d in third["items"]] == before[21:31]
    assert third["total"] == 249
    assert [d["id"] for d in _page(simulator, token, 30)["items"]] == before[31:41]
    assert _all_ids(simulator, token) == before[:3] + before[4:]  # deleted once, nothing else
    marks = [e["mutations"] for e in simulator.requests("devices")]
    assert marks[:4] == [[], [scripted.id], [], []]
    assert sum(len(m) for m in marks) == 1


def test_only_successful_answers_of_that_endpoint_and_workspace_count(
    simulator: FlexSimulator,
) -> None:
    token = fetch_token(simulator)
    tenant = "cd" * 16
    simulator.add_client(
        "msp", "s", "ab" * 16, msp=True, tenants=[{"workspace_id": tenant, "devices": 5}]
    )
    other_token = fetch_token(simulator, "msp", "s")
    scripted = simulator.script_mutations(
        "devices", after_requests=1, ops=[{"op": "delete", "resource": "devices", "count": 1}]
    )
    headers = auth_headers(token)
    url = f"{simulator.url}{DEVICES}"
    assert requests.get(url, headers=headers, params={"limit": 500}, timeout=10).status_code == 400
    orders = requests.get(f"{simulator.url}/flex/v1beta1/orders", headers=headers, timeout=10)
    assert orders.status_code == 200
    other = requests.get(url, headers=auth_headers(other_token), timeout=10)
    assert other.status_code == 200  # another workspace's devices
    simulator.script_faults("devices", ["500", "truncate"])
    assert requests.get(url, headers=headers, timeout=10).status_code == 500
    with pytest.raises(requests.RequestException):
        requests.get(url, headers=headers, timeout=10).json()  # half a body
    assert scripted.seen == 0 and not scripted.done.is_set()
    assert _page(simulator, token, 0)["total"] == 250
    assert scripted.done.is_set()
    assert _page(simulator, token, 0)["total"] == 249


def test_mutations_can_target_a_tenant_workspace(simulator: FlexSimulator) -> None:
    tenant = "cd" * 16
    simulator.add_client(
        "msp", "s", "ab" * 16, msp=True, tenants=[{"workspace_id": tenant, "orders": 6}]
    )
    msp = fetch_token(simulator, "msp", "s")
    tenant_token = requests.post(
        f"{simulator.url}/authorization/v2/oauth2/{tenant}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": msp,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
        timeout=10,
    ).json()["access_token"]
    scripted = simulator.script_mutations(
        "orders",
        after_requests=1,
        ops=[{"op": "insert", "resource": "orders", "count": 2}],
        workspace_id=tenant,
    )
    url = f"{simulator.url}/flex/v1beta1/orders"
    demo = requests.get(url, headers=auth_headers(fetch_token(simulator)), timeout=10).json()
    assert demo["total"] == 120 and not scripted.done.is_set()  # demo workspace: not counted
    totals = [
        requests.get(url, headers=auth_headers(tenant_token), timeout=10).json()["total"]
        for _ in range(3)
    ]
    assert totals == [6, 8, 8]


def test_bad_scripts_are_refused_at_once(simulator: FlexSimulator) -> None:
    delete_missing = [{"op": "delete", "resource": "devices", "id": "no-such-device"}]
    with pytest.raises(MutationError):
        simulator.script_mutations("devices", 1, delete_missing)
    ok_ops = [{"op": "update", "resource": "devices", "count": 1}]
    with pytest.raises(ValueError, match="unknown endpoint"):
        simulator.script_mutations("gadgets", 1, ok_ops)
    with pytest.raises(ValueError, match="at least 1"):
        simulator.script_mutations("devices", 0, ok_ops)
    with pytest.raises(MutationError, match="Unknown workspace"):
        simulator.script_mutations("devices", 1, ok_ops, workspace_id="ef" * 16)
    assert simulator.scheduler.items() == []
    assert simulator.store.count(simulator.default_workspace, "devices") == 250


def test_scripted_mutations_over_http(simulator: FlexSimulator) -> None:
    admin = f"{simulator.url}/__sim/mutations"
    token = fetch_token(simulator)
    ops = [{"op": "delete", "resource": "devices", "count": 3}]
    r = requests.post(
        admin, json={"ops": ops, "after": {"endpoint": "devices", "requests": 2}}, timeout=10
    )
    assert r.status_code == 200, r.text
    scheduled = r.json()["scheduled"]
    assert scheduled["applied"] is False and scheduled["after_requests"] == 2
    assert scheduled["workspace_id"] == simulator.default_workspace
    totals = [_page(simulator, token, 0)["total"] for _ in range(3)]
    assert totals == [250, 250, 247]
    listed = requests.get(admin, timeout=10).json()
    assert listed["count"] == 1
    item = listed["items"][0]
    assert item["applied"] is True and item["seen"] == 2 and len(item["results"][0]["ids"]) == 3
    assert requests.delete(admin, timeout=10).json() == {"cleared": 1}
    assert requests.get(admin, timeout=10).json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"ops": [], "after": {"endpoint": "gadgets", "requests": 1}},
        {"ops": [], "after": {"endpoint": "devices", "requests": 0}},
        {"ops": [], "after": {"endpoint": "devices", "requests": "2"}},
        {"ops": [], "after": {"endpoint": "devices"}},
        {
            "ops": [{"op": "explode", "resource": "devices"}],
            "after": {"endpoint": "devices", "requests": 1},
        },
    ],
)
def test_bad_http_scripts_are_400_and_nothing_is_scheduled(
    simulator: FlexSimulator, body: dict
) -> None:
    r = requests.post(f"{simulator.url}/__sim/mutations", json=body, timeout=10)
    assert r.status_code == 400
    assert r.json()["errorCode"] == "HPE_GL_ERROR_BAD_REQUEST"
    assert simulator.scheduler.items() == []
