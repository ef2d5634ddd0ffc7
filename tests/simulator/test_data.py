"""The generated data: deterministic, schema-valid, and as irregular as real services are."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from flex_simulator.data import CUTOFF_2026_06, DEVICE_TYPES, FlexDataGenerator, render_ts
from flex_simulator.odata import parse_rfc3339
from flex_simulator.store import FlexStore
from flex_simulator.testing import list_page

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "flex-api"
SPEC /= "flex-api-v1beta1.openapi.json"
PRIVATE = ("_c", "_u", "_s", "_e")


def public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in PRIVATE}


@pytest.fixture(scope="module")
def gen_records() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    gen = FlexDataGenerator(seed=21, orders_hint=300)
    return list(gen.orders(300)), list(gen.devices(2000))


def dump_store(seed: int) -> list[Any]:
    with FlexStore() as store:
        store.generate("w", orders=40, devices=60, seed=seed)
        return [list_page(store, r, "w").items for r in ("orders", "devices")]


def test_generation_is_deterministic_per_seed() -> None:
    assert dump_store(1) == dump_store(1)
    assert dump_store(1) != dump_store(2)


def test_records_validate_against_openapi(gen_records) -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} not present")
    jsonschema = pytest.importorskip("jsonschema")
    components = json.loads(SPEC.read_text())["components"]
    for name, records in zip(("Order", "Device"), gen_records, strict=True):
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": components},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        for rec in records[:500]:
            validator.validate(public(rec))
        # optional fields are sometimes absent, required ones never
        props = set(components["schemas"][name]["properties"])
        required = set(components["schemas"][name]["required"])
        assert all(required <= set(r) for r in records)
        assert any(set(r) & props != props for r in records)


def test_timestamps(gen_records) -> None:
    orders, devices = gen_records
    styles = set()
    for rec in orders + devices:
        created, updated = parse_rfc3339(rec["createdAt"]), parse_rfc3339(rec["updatedAt"])
        assert (created, updated) == (rec["_c"], rec["_u"])  # canonical = parsed rendering
        assert created <= updated < CUTOFF_2026_06
        assert rec["generation"] >= 1
        styles.add(re.sub(r"\d", "9", rec["updatedAt"]))
    assert styles >= {
        "9999-99-99T99:99:99Z",
        "9999-99-99T99:99:99.999Z",
        "9999-99-99T99:99:99+99:99",
    }
    shared = [r["_u"] for r in devices]
    assert len(set(shared)) < len(shared), "some devices share exactly one updatedAt"
    for rec in orders:
        assert parse_rfc3339(rec["orderStartDate"]) < parse_rfc3339(rec["orderEndDate"])
        assert parse_rfc3339(rec["orderStartDate"]) < CUTOFF_2026_06
    assert render_ts(1_700_000_000_123_456, 4) == (
        "2023-11-14T22:13:20.123456Z",
        1_700_000_000_123_456,
    )


def test_device_fields(gen_records) -> None:
    orders, devices = gen_records
    accounts = {name for _, name in FlexDataGenerator(seed=21, orders_hint=300).pools.accounts}
    assert {o["billingAccountName"] for o in orders} <= accounts  # one pool for both resources
    assert len({d["id"] for d in devices}) == len(devices)
    assert len({d["macAddress"] for d in devices}) == len(devices)
    assert len({d["serialNumber"] for d in devices}) == len(devices)
    for d in devices:
        assert d["resourceId"] == d["id"] and d["type"] == "flex/devices"
        assert re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", d["macAddress"])
        assert re.fullmatch(r"[0-9A-Z]{9}", d["serialNumber"])
        assert d["deviceType"] in DEVICE_TYPES
        assert 0 <= len(d["tags"]) <= 3
        assert d.get("billingAccountName", "Some Company Inc.") in accounts | {"Some Company Inc."}
    assert {"HPE", "Aruba"} <= {d["make"] for d in devices}
    assert "HPE ProLiant DL380 Gen11" in {d["model"] for d in devices}


def test_order_fields(gen_records) -> None:
    orders, _ = gen_records
    for o in orders:
        assert re.fullmatch(r"OPE-\d{10}", o["sowId"]) and o["type"] == "flex/orders"
    resellers = {o["resellerName"] for o in orders if "resellerName" in o}
    distributors = {o["distributorName"] for o in orders if "distributorName" in o}
    assert resellers & distributors and resellers - distributors and distributors - resellers
    assert {o.get("isFlexPartner") for o in orders} == {True, False, None}
    assert any("partnerName" not in o for o in orders)
