"""FlexStore behaviour: paging, sorting, select, transform, mutations, workspaces, threads."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flex_simulator.odata import parse_rfc3339
from flex_simulator.store import FlexStore, MutationError, Page, QueryError
from flex_simulator.testing import list_page


@pytest.fixture(scope="module")
def store() -> Iterator[FlexStore]:
    with FlexStore() as s:
        s.generate("w", orders=120, devices=250, seed=3)
        s.generate("other", orders=7, devices=9, seed=4)
        yield s


def devices(store: FlexStore, ws: str = "w", **kw: Any) -> Page:
    return list_page(store, "devices", ws, **kw)


def orders(store: FlexStore, ws: str = "w", **kw: Any) -> Page:
    return list_page(store, "orders", ws, **kw)


def all_pages(fetch: Any, limit: int = 37, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = fetch(limit=limit, offset=len(out), **kw)
        out.extend(page.items)
        if not page.items:
            return out


def transform(store: FlexStore, group_by: str | None, ws: str = "w", **kw: Any) -> Page:
    args: dict[str, Any] = {
        "filter": None,
        "sort": None,
        "limit": 100,
        "offset": 0,
        "updated_filter": False,
        **kw,
    }
    return store.transform_orders(ws, group_by=group_by, **args)


def test_paging_offset_limit_total(store: FlexStore) -> None:
    every = all_pages(lambda **kw: devices(store, **kw))
    assert len(every) == 250 == store.count("w", "devices")
    assert len({d["id"] for d in every}) == 250
    page = devices(store, limit=10, offset=245)
    assert (len(page.items), page.total) == (5, 250)
    assert page.items == every[245:]
    empty = devices(store, limit=0, offset=0, filter="make eq 'HPE'")
    assert empty.items == []
    assert empty.total == sum(d["make"] == "HPE" for d in every) > 0
    assert devices(store, offset=10_000).items == []


def test_default_sorts(store: FlexStore) -> None:
    devs = all_pages(lambda **kw: devices(store, **kw))
    assert [d["resourceId"] for d in devs] == sorted(d["resourceId"] for d in devs)
    ords = all_pages(lambda **kw: orders(store, **kw))
    keys = [(parse_rfc3339(o["orderEndDate"]), o["id"]) for o in ords]
    assert keys == sorted(keys)


def test_desc_multi_field_and_tiebreak(store: FlexStore) -> None:
    got = all_pages(lambda **kw: devices(store, **kw), sort="make desc, model")
    expect = sorted(got, key=lambda d: d["id"])
    expect.sort(key=lambda d: d["model"])
    expect.sort(key=lambda d: d["make"], reverse=True)
    assert [d["id"] for d in got] == [d["id"] for d in expect]
    # ties on make alone are broken by id, so every paging of the same sort agrees
    a = [d["id"] for d in all_pages(lambda **kw: devices(store, **kw), limit=7, sort="make")]
    b = [d["id"] for d in all_pages(lambda **kw: devices(store, **kw), limit=50, sort="make asc")]
    assert a == b and len(set(a)) == 250


def test_updated_at_sort_needs_the_switch(store: FlexStore) -> None:
    with pytest.raises(QueryError) as err:
        devices(store, sort="updatedAt desc")
    assert (err.value.subject, "updatedAt") == ("sort", err.value.description.split("'")[1])
    got = all_pages(lambda **kw: devices(store, **kw), sort="updatedAt", updated_sort=True)
    keys = [(parse_rfc3339(d["updatedAt"]), d["id"]) for d in got]
    assert keys == sorted(keys)
    assert len({k for k, _ in keys}) < len(keys), "some records share an updatedAt"


@pytest.mark.parametrize(
    ("sort", "needle"),
    [
        ("colour", "Field 'colour' is not sortable on devices"),
        ("createdAt", "Field 'createdAt' is not sortable"),
        ("make sideways", "Invalid sort direction 'sideways' for 'make'"),
        ("make,,model", "Invalid sort term ''"),
        ("make asc desc", "Invalid sort term 'make asc desc'"),
    ],
)
def test_invalid_sorts(store: FlexStore, sort: str, needle: str) -> None:
    with pytest.raises(QueryError) as err:
        devices(store, sort=sort)
    assert err.value.subject == "sort"
    assert needle in err.value.description


def test_orders_sortable_by_dates(store: FlexStore) -> None:
    got = orders(store, sort="orderStartDate desc").items
    keys = [parse_rfc3339(o["orderStartDate"]) for o in got]
    assert keys == sorted(keys, reverse=True)


def test_select_returns_exactly_the_fields(store: FlexStore) -> None:
    page = devices(store, select="serialNumber, name,serialNumber", limit=50)
    full = devices(store, limit=50)
    assert page.total == full.total
    for small, big in zip(page.items, full.items, strict=True):
        assert small == {k: big[k] for k in ("serialNumber", "name") if k in big}


def test_select_ignores_unknown_fields(store: FlexStore) -> None:
    # HPE's devices example selects orderEndDate, an order field: it must not be refused.
    page = devices(store, select="serialNumber,type,make,orderEndDate,billingTier", limit=20)
    full = devices(store, limit=20)
    wanted = ("serialNumber", "type", "make", "billingTier")
    assert [set(d) - set(wanted) for d in page.items] == [set()] * 20
    assert page.items == [{k: d[k] for k in wanted if k in d} for d in full.items]
    only_unknown = devices(store, select="bogus, ,alsoBogus", limit=5)
    assert only_unknown.items == [{}] * 5
    assert only_unknown.total == full.total


@pytest.mark.parametrize(
    "field", ["sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName"]
)
def test_transform_distinct_values(store: FlexStore, field: str) -> None:
    every = all_pages(lambda **kw: orders(store, **kw))
    if field == "partnerName":
        expected = {o[k] for o in every for k in ("resellerName", "distributorName") if k in o}
    else:
        expected = {o[field] for o in every if field in o}
    page = transform(store, field)
    assert page.total == len(expected)
    got = all_pages(lambda **kw: transform(store, field, **kw), limit=30)
    assert got == [{field: v} for v in sorted(expected)]
    desc = transform(store, field, sort=f"{field} desc", limit=5).items
    assert desc == [{field: v} for v in sorted(expected, reverse=True)[:5]]


def test_transform_partner_union_overlaps_and_filter_applies_first(store: FlexStore) -> None:
    every = all_pages(lambda **kw: orders(store, **kw))
    resellers = {o["resellerName"] for o in every if "resellerName" in o}
    distributors = {o["distributorName"] for o in every if "distributorName" in o}
    assert resellers & distributors, "some companies are both reseller and distributor"
    customer = every[0]["customerName"]
    mine = [o for o in every if o["customerName"] == customer]
    expected = {o[k] for o in mine for k in ("resellerName", "distributorName") if k in o}
    page = transform(store, "partnerName", filter=f"customerName eq '{customer}'")
    assert [i["partnerName"] for i in page.items] == sorted(expected)


@pytest.mark.parametrize(
    ("group_by", "sort", "subject", "needle"),
    [
        (None, None, "group-by", "group-by is required"),
        ("resellerName", None, "group-by", "Unsupported group-by field 'resellerName'"),
        ("sowId", "customerName", "sort", "Sort must be the group-by field 'sowId'"),
        ("sowId", "sowId,customerName", "sort", "Sort must be the group-by field"),
        ("sowId", "updatedAt", "sort", "updatedAt"),
    ],
)
def test_transform_errors(store: FlexStore, group_by, sort, subject: str, needle: str) -> None:
    with pytest.raises(QueryError) as err:
        transform(store, group_by, sort=sort)
    assert err.value.subject == subject
    assert needle in err.value.description


def test_workspaces_are_separate(store: FlexStore) -> None:
    assert store.workspaces() == ["w", "other"]
    assert devices(store, "other").total == 9
    assert orders(store, "other").total == 7
    assert devices(store, "nope").total == 0
    dev = devices(store, "other", limit=1).items[0]
    assert store.get_device("other", dev["id"]) == dev
    assert store.get_device("w", dev["id"]) is None
    assert store.get_device("other", "missing") is None


# ---- mutations ------------------------------------------------------------------------------


@pytest.fixture
def fresh() -> Iterator[FlexStore]:
    with FlexStore() as s:
        s.generate("m", orders=30, devices=40, seed=8)
        yield s


def test_update_by_id_bumps_updated_at_and_generation(fresh: FlexStore) -> None:
    dev = devices(fresh, "m", limit=1).items[0]
    (res,) = fresh.apply_mutations(
        "m", [{"op": "update", "resource": "devices", "id": dev["id"], "set": {"name": "x"}}]
    )
    assert (res["op"], res["resource"], res["ids"]) == ("update", "devices", [dev["id"]])
    after = fresh.get_device("m", dev["id"])
    assert after is not None
    assert after["name"] == "x" and after["generation"] == dev["generation"] + 1
    assert after["updatedAt"] == res["updatedAt"]
    assert parse_rfc3339(after["updatedAt"]) > parse_rfc3339(dev["updatedAt"])
    assert devices(fresh, "m", filter="name eq 'x'").total == 1  # columns follow the JSON


def test_mutation_instants_strictly_increase(fresh: FlexStore) -> None:
    ops = [{"op": "update", "resource": "orders", "count": 1} for _ in range(20)]
    stamps = [parse_rfc3339(r["updatedAt"]) for r in fresh.apply_mutations("m", ops)]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    later = fresh.apply_mutations("m", [{"op": "delete", "resource": "orders", "count": 1}])
    assert parse_rfc3339(later[0]["updatedAt"]) > stamps[-1]


def test_count_update_is_seeded_and_visible_to_updated_filter(fresh: FlexStore) -> None:
    with FlexStore() as twin:
        twin.generate("m", orders=30, devices=40, seed=8)
        op = [{"op": "update", "resource": "orders", "count": 5}]
        ids = fresh.apply_mutations("m", op)[0]["ids"]
        assert twin.apply_mutations("m", op)[0]["ids"] == ids
    assert len(set(ids)) == 5
    changed = orders(fresh, "m", filter="updatedAt ge '2026-06-01T00:00:00Z'", updated_filter=True)
    assert sorted(o["id"] for o in changed.items) == sorted(ids)


def test_insert_and_delete(fresh: FlexStore) -> None:
    res = fresh.apply_mutations(
        "m",
        [
            {"op": "insert", "resource": "devices", "count": 3},
            {"op": "insert", "resource": "devices", "record": {"id": "dev-x", "name": "new box"}},
        ],
    )
    assert len(res[0]["ids"]) == 3 and res[1]["ids"] == ["dev-x"]
    assert fresh.count("m", "devices") == 44
    new = fresh.get_device("m", "dev-x")
    assert new is not None
    assert (new["resourceId"], new["name"], new["generation"]) == ("dev-x", "new box", 1)
    assert new["createdAt"] == new["updatedAt"] == res[1]["updatedAt"]
    assert "make" in new and "macAddress" in new  # generated defaults filled in
    victims = devices(fresh, "m", limit=2).items
    fresh.apply_mutations(
        "m",
        [
            {"op": "delete", "resource": "devices", "id": "dev-x"},
            {"op": "delete", "resource": "devices", "ids": [v["id"] for v in victims]},
            {"op": "delete", "resource": "devices", "count": 2},
        ],
    )
    assert fresh.count("m", "devices") == 39
    assert fresh.get_device("m", "dev-x") is None
    assert devices(fresh, "m").total == 39  # cached totals were invalidated


@pytest.mark.parametrize(
    ("op", "needle"),
    [
        ({"op": "upsert", "resource": "devices", "count": 1}, "unknown op 'upsert'"),
        ({"op": "update", "resource": "widgets", "count": 1}, "unknown resource 'widgets'"),
        ({"op": "update", "resource": "devices", "id": "nope"}, "no device with id 'nope'"),
        ({"op": "delete", "resource": "orders", "count": 999}, "count must be 0..30"),
        ({"op": "update", "resource": "devices"}, "exactly one of id, ids, count or where"),
        (
            {"op": "update", "resource": "devices", "count": 1, "set": {"generation": 9}},
            "'generation' in 'set' is managed by the server",
        ),
        (
            {"op": "update", "resource": "orders", "count": 1, "set": {"isFlexPartner": "yes"}},
            "'isFlexPartner' in 'set' has the wrong type",
        ),
    ],
)
def test_bad_mutations_change_nothing(fresh: FlexStore, op: dict, needle: str) -> None:
    before = all_pages(lambda **kw: devices(fresh, "m", **kw))
    good = {"op": "delete", "resource": "devices", "count": 1}
    with pytest.raises(MutationError, match=needle):
        fresh.apply_mutations("m", [good, op])
    assert all_pages(lambda **kw: devices(fresh, "m", **kw)) == before
    with pytest.raises(MutationError, match="Unknown workspace"):
        fresh.apply_mutations("zz", [good])


def test_concurrent_reads_while_mutating(fresh: FlexStore) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                page = devices(fresh, "m", limit=100)
                assert len(page.items) == page.total  # one snapshot: items agree with total
                sows = transform(fresh, "sowId", "m").total
                assert 0 < sows <= 30  # orders are not mutated here
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(30):
        fresh.apply_mutations(
            "m",
            [
                {"op": "insert", "resource": "devices", "count": 2},
                {"op": "update", "resource": "devices", "count": 3},
                {"op": "delete", "resource": "devices", "count": 1},
            ],
        )
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert fresh.count("m", "devices") == 40 + 30
