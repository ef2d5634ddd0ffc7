"""Unhelpful sort and filter modes over HTTP: unstable ties, refused or ignored sorts and filters.

Each mode is off by default (the simulator follows HPE's document); each test shows the default
answer next to the mode's, so it fails if the mode stops doing what a tap test relies on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import fetch_token, flex_get, share_order_end_dates

MakeSim = Callable[..., FlexSimulator]
FUTURE = "updatedAt ge '2999-01-01T00:00:00Z'"


def _ids(sim: FlexSimulator, path: str, token: str, **params: Any) -> list[str]:
    r = flex_get(sim, path, token, **params)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def _page_through(sim: FlexSimulator, path: str, token: str, **params: Any) -> list[str]:
    ids: list[str] = []
    offset = 0
    while True:
        page = flex_get(sim, path, token, limit=20, offset=offset, **params).json()
        ids += [item["id"] for item in page["items"]]
        offset += 20
        if offset >= page["total"]:
            return ids


def _assert_sort_refused(r: requests.Response) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["errorCode"] == "HPE_GL_ERROR_BAD_REQUEST" and body["debugId"]
    (issue,) = body["errorDetails"][0]["issues"]
    assert issue["subject"] == "sort" and issue["source"] == "query.parameter"


def test_ties_are_stable_by_default_and_reshuffled_with_unstable_ties(
    make_simulator: MakeSim,
) -> None:
    stable = make_simulator(devices=250)
    token = fetch_token(stable)
    assert _ids(stable, "/devices", token, sort="make", limit=100) == _ids(
        stable, "/devices", token, sort="make", limit=100
    )
    assert len(set(_page_through(stable, "/devices", token, sort="make"))) == 250

    shaky = make_simulator(devices=250, unstable_ties=True)
    token = fetch_token(shaky)
    first = flex_get(shaky, "/devices", token, sort="make", limit=100).json()["items"]
    second = flex_get(shaky, "/devices", token, sort="make", limit=100).json()["items"]
    assert [d["id"] for d in first] != [d["id"] for d in second]
    for page in (first, second):  # the sort itself still holds; only ties move
        makes = [d["make"] for d in page]
        assert makes == sorted(makes)
    # Paging a tied sort by offset now loses records (and repeats others), as on such a backend.
    paged = _page_through(shaky, "/devices", token, sort="make")
    assert len(paged) == 250 and len(set(paged)) < 250


def test_default_order_ties_move_with_unstable_ties(make_simulator: MakeSim) -> None:
    sim = make_simulator(orders=300, unstable_ties=True)
    token = fetch_token(sim)
    runs = [flex_get(sim, "/orders", token, limit=100).json()["items"] for _ in range(4)]
    for items in runs:
        ends = [dt.datetime.fromisoformat(o["orderEndDate"]) for o in items]
        assert ends == sorted(ends)  # still in orderEndDate order
    assert len({tuple(o["id"] for o in items) for items in runs}) > 1


def test_shared_end_dates_make_default_paging_lose_orders(make_simulator: MakeSim) -> None:
    sim = make_simulator(orders=120)
    token = fetch_token(sim)
    before = _ids(sim, "/orders", token, limit=100)
    dates = share_order_end_dates(sim, distinct=3)
    assert len(dates) == 3
    orders = flex_get(sim, "/orders", token, limit=100).json()["items"]
    assert {o["orderEndDate"] for o in orders} <= set(dates)
    after = [o["id"] for o in orders]
    for group in (0, 40):  # whole groups on the page keep their place; inside, ties go by id
        members = after[group : group + 40]
        assert set(members) == set(before[group : group + 40]) and members == sorted(members)
    assert len(set(_page_through(sim, "/orders", token))) == 120
    sim.update_config(unstable_ties=True)
    assert len(set(_page_through(sim, "/orders", token))) < 120
    assert len(set(_page_through(sim, "/orders", token, sort="orderEndDate,id"))) == 120


@pytest.mark.parametrize("sort", ["make asc,id asc", "id asc", "make,id desc,model"])
def test_a_sort_that_names_id_stays_stable_under_unstable_ties(
    make_simulator: MakeSim, sort: str
) -> None:
    sim = make_simulator(devices=250, unstable_ties=True)
    token = fetch_token(sim)
    runs = [_ids(sim, "/devices", token, sort=sort, limit=100) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    paged = _page_through(sim, "/devices", token, sort=sort)
    assert len(set(paged)) == 250


def test_no_tiebreak_refuses_every_sort_with_a_unique_key(make_simulator: MakeSim) -> None:
    sim = make_simulator(sort_mode="no-tiebreak")
    token = fetch_token(sim)
    for sort in ("orderEndDate asc,id asc", "id asc", "orderEndDate,customerName"):
        _assert_sort_refused(flex_get(sim, "/orders", token, sort=sort))
    _assert_sort_refused(flex_get(sim, "/devices", token, sort="resourceId,id"))
    assert flex_get(sim, "/orders", token, sort="orderEndDate desc").status_code == 200
    assert flex_get(sim, "/orders", token).status_code == 200  # the default sort is no request
    sim.update_config(sort_mode="apply")
    assert flex_get(sim, "/orders", token, sort="orderEndDate asc,id asc").status_code == 200


def test_sort_ignore_answers_every_sort_in_the_default_order(make_simulator: MakeSim) -> None:
    sim = make_simulator()
    token = fetch_token(sim)
    default = _ids(sim, "/devices", token, limit=100)
    by_make = _ids(sim, "/devices", token, limit=100, sort="make desc,id desc")
    assert by_make != default
    requests.post(f"{sim.url}/__sim/faults", json={"sort_mode": "ignore"}, timeout=10)
    assert sim.config.sort_mode == "ignore"
    for sort in ("make desc,id desc", "id desc", "noSuchField"):
        assert _ids(sim, "/devices", token, limit=100, sort=sort) == default


def test_updated_filter_ignore_accepts_the_clause_and_applies_the_rest(
    make_simulator: MakeSim,
) -> None:
    sim = make_simulator(updated_filter="ignore")
    token = fetch_token(sim)
    everything = flex_get(sim, "/devices", token).json()["total"]
    ignored = flex_get(sim, "/devices", token, filter=FUTURE)
    assert ignored.status_code == 200 and ignored.json()["total"] == everything == 250
    hpe = flex_get(sim, "/devices", token, filter="make eq 'HPE'").json()["total"]
    both = flex_get(sim, "/devices", token, filter=f"make eq 'HPE' and {FUTURE}").json()
    assert 0 < both["total"] == hpe < everything
    assert {d["make"] for d in both["items"]} == {"HPE"}
    lt = flex_get(sim, "/orders", token, filter="updatedAt lt '2000-01-01T00:00:00Z'").json()
    assert lt["total"] == 120
    bad_literal = flex_get(sim, "/devices", token, filter="updatedAt ge 'yesterday'")
    assert bad_literal.status_code == 400  # still checked, only not applied
    sim.update_config(updated_filter=True)
    assert flex_get(sim, "/devices", token, filter=FUTURE).json()["total"] == 0
    sim.update_config(updated_filter="off")
    assert sim.config.updated_filter is False
    assert flex_get(sim, "/devices", token, filter=FUTURE).status_code == 400


def test_updated_sort_ignore_answers_in_the_default_order(make_simulator: MakeSim) -> None:
    sim = make_simulator(updated_sort=True)
    token = fetch_token(sim)
    default = _ids(sim, "/orders", token, limit=100)
    newest_first = _ids(sim, "/orders", token, limit=100, sort="updatedAt desc")
    assert newest_first != default
    sim.update_config(updated_sort="ignore")
    assert _ids(sim, "/orders", token, limit=100, sort="updatedAt desc") == default
    assert _ids(sim, "/orders", token, limit=100, sort="customerName") != default
    sim.update_config(updated_sort=False)
    _assert_sort_refused(flex_get(sim, "/orders", token, sort="updatedAt desc"))


def test_bad_mode_values_are_refused(simulator: FlexSimulator) -> None:
    for body in ({"updated_filter": "sometimes"}, {"sort_mode": "random"}):
        r = requests.post(f"{simulator.url}/__sim/faults", json=body, timeout=10)
        assert r.status_code == 400
        assert next(iter(body)) in r.json()["errorDetails"][0]["issues"][0]["description"]
    assert simulator.config.updated_filter is False and simulator.config.sort_mode == "apply"
