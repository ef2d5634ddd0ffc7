"""Concurrency changes the speed, never the output: same records, same STATE, valid Singer order.

Also: several requests in flight at the simulator's own limit still meet no 429, because the
shared limiter counts a request from its send until its answer.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from typing import Any

import pytest

from tap_hpe_flex import incremental
from tests.tap.helpers import RunResult, run_tap, sim_requests, tap_config

STREAMS = ("orders", "devices", "order_transforms")


def check_singer_order(messages: list[dict[str, Any]]) -> None:
    """Fail unless ``messages`` is a valid Singer stream as this tap must write it.

    A stream's SCHEMA comes before its first RECORD; every RECORD carries only properties its
    SCHEMA declares; STATE values are objects with a ``bookmarks`` object; streams are not
    interleaved (the main thread consumes one stream at a time, whatever the fetch order); the
    last message is a STATE written after the last RECORD.
    """
    schemas: dict[str, set[str]] = {}
    finished: set[str] = set()
    current: str | None = None
    for i, message in enumerate(messages):
        kind = message["type"]
        if kind == "SCHEMA":
            assert message["key_properties"] is not None
            schemas[message["stream"]] = set(message["schema"]["properties"])
        elif kind == "RECORD":
            stream = message["stream"]
            assert stream in schemas, f"message {i}: RECORD of {stream} before its SCHEMA"
            assert set(message["record"]) <= schemas[stream], f"message {i}: undeclared field"
            if stream != current:
                assert stream not in finished, f"message {i}: {stream} interleaved"
                if current is not None:
                    finished.add(current)
                current = stream
        elif kind == "STATE":
            value = message["value"]
            assert isinstance(value, dict) and isinstance(value.get("bookmarks", {}), dict)
            json.dumps(value)
        else:
            assert kind in {"ACTIVATE_VERSION", "BATCH"}, kind
    assert messages and messages[-1]["type"] == "STATE"


def _multiset(result: RunResult, stream: str) -> Counter[str]:
    return Counter(json.dumps(r, sort_keys=True) for r in result.records(stream))


def test_checker_rejects_a_record_before_its_schema() -> None:
    bad = [
        {"type": "RECORD", "stream": "orders", "record": {"id": "1"}},
        {"type": "SCHEMA", "stream": "orders", "schema": {"properties": {}}, "key_properties": []},
        {"type": "STATE", "value": {"bookmarks": {}}},
    ]
    try:
        check_singer_order(bad)
    except AssertionError:
        return
    raise AssertionError("the checker accepted a RECORD before its SCHEMA")


def test_same_records_and_state_with_one_or_eight_requests_in_flight(make_simulator: Any) -> None:
    sim = make_simulator(orders=234, devices=567, rate_limit=0, latency_ms=2)
    runs = {}
    for concurrency in (1, 8):
        config = tap_config(
            sim,
            page_size=25,
            requests_per_minute=100_000,
            max_concurrent_requests=concurrency,
            order_transform_group_by=["sowId", "customerName"],
        )
        runs[concurrency] = run_tap(config)
    one, eight = runs[1], runs[8]
    for stream in STREAMS:
        assert _multiset(eight, stream) == _multiset(one, stream), stream
        assert sum(_multiset(eight, stream).values()) > 0, stream
    assert len(one.records("devices")) == 567 and len(one.records("orders")) == 234
    assert eight.state["bookmarks"] == one.state["bookmarks"]
    assert eight.bookmark("devices") is not None and eight.bookmark("orders") is not None
    check_singer_order(one.messages)
    check_singer_order(eight.messages)


def test_incremental_state_identical_with_concurrency(
    make_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records updated seconds ago sit inside the bookmark's safety margin, so each run would cap
    # its bookmark at its own start minus 30 s (different for runs a second apart). With no
    # margin, and the runs a second after the updates, both bookmarks are the newest updatedAt.
    monkeypatch.setattr(incremental, "BOOKMARK_SAFETY_MARGIN_S", 0)
    sim = make_simulator(orders=150, devices=300, rate_limit=0, updated_filter=True)
    base = tap_config(sim, page_size=20, requests_per_minute=100_000)
    first = run_tap({**base, "max_concurrent_requests": 1}, streams=("orders", "devices"))
    sim.mutate([{"op": "update", "resource": "devices", "count": 45}])
    time.sleep(1.1)  # the server's Date (whole seconds) must be later than the updates
    runs = {
        c: run_tap({**base, "max_concurrent_requests": c}, state=first.state)
        for c in (1, 8)  # both from the same state, against the same data
    }
    for stream in STREAMS:
        assert _multiset(runs[8], stream) == _multiset(runs[1], stream), stream
    assert len(runs[8].records("devices")) >= 45
    assert runs[8].state["bookmarks"] == runs[1].state["bookmarks"]
    newest = max(r["updatedAt"] for r in runs[1].records("devices"))
    assert runs[8].bookmark("devices") == newest
    check_singer_order(runs[8].messages)


def test_no_429_at_the_simulator_limit_with_requests_in_flight(make_simulator: Any) -> None:
    # 20 requests per 2 s window on both sides, 200 ms per answer: 28 device pages need two
    # windows, so the limit binds; several requests are in flight at once.
    sim = make_simulator(orders=120, devices=250, rate_limit=20, rate_window_s=2, latency_ms=200)
    config = tap_config(
        sim,
        page_size=10,
        requests_per_minute=20,
        rate_limit_window_seconds=2,
        max_concurrent_requests=8,
        order_transform_group_by=["sowId"],
    )
    result = run_tap(config)
    assert len(result.records("devices")) == 250 and len(result.records("orders")) == 120
    log = sim_requests(sim)
    assert [r for r in log if r["status"] == 429] == []
    devices = [r for r in log if r["endpoint"] == "devices"]
    pages = [r for r in devices if r["query"]["limit"] == "10"]
    assert len(pages) == 28  # more than one window's 20: pacing was needed
    # auto, full pass, updatedAt neither filterable nor sortable here: the two refused probes
    # for a snapshot check (snapshot.py, sent together), then overlapping pages
    probes = [r["query"] for r in devices if r not in pages and r["status"] == 400]
    assert len(devices) == len(pages) + 2
    assert sorted((q.get("filter", "")[:12], q.get("sort", "")) for q in probes) == [
        ("", "updatedAt desc"),
        ("updatedAt lt", ""),
    ]
    # Requests really overlapped: some answer started before the previous one had ended.
    spans = sorted((r["time"], r["time"] + r["duration"]) for r in devices)
    overlapping = sum(b[0] < a[1] for a, b in itertools.pairwise(spans))
    assert overlapping >= 5
