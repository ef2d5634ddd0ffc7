"""The SDK's standard tap tests plus paging, request counts and exactly-once delivery."""

from __future__ import annotations

import atexit
import math
from collections import Counter
from contextlib import ExitStack
from typing import Any

import pytest
from singer_sdk.testing import get_tap_test_class

from flex_simulator.testing import running_simulator
from tap_hpe_flex.tap import TapHpeFlex
from tests.tap.helpers import run_tap, sim_requests, tap_config

# The standard suite's class needs its config when the class is built (at collection), so this
# module starts its own simulator at import and stops it at module teardown (atexit as backstop).
_STACK = ExitStack()
_SUITE_SIM = _STACK.enter_context(
    running_simulator(orders=30, devices=40, seed=3, rate_limit=100_000)
)
atexit.register(_STACK.close)


@pytest.fixture(scope="module", autouse=True)
def _stop_suite_simulator() -> Any:
    yield
    _STACK.close()


# The SDK warns about a declared field no record carries; ``_sdc_deleted_at`` is declared for
# deletion markers only (docs/deletions.md), so that one field (and only it) is expected.
TestTapHpeFlex = pytest.mark.filterwarnings(
    r"ignore:Fields in transformed catalog but not in records. \(.'_sdc_deleted_at'.\)$"
)(
    get_tap_test_class(
        TapHpeFlex,
        config=tap_config(
            _SUITE_SIM, page_size=25, order_transform_group_by=["sowId", "partnerName"]
        ),
    )
)


def expected_offsets(records: int, page_size: int) -> list[int]:
    """Offsets of a quiet sync: pages overlap by one record (drift detection, see drift.py)."""
    if records <= page_size or page_size == 1:
        return [i * page_size for i in range(max(1, math.ceil(records / page_size)))]
    pages = 1 + math.ceil((records - page_size) / (page_size - 1))
    return [i * (page_size - 1) for i in range(pages)]


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize(
    ("orders", "devices", "page_size"),
    [(120, 250, 50), (100, 100, 100), (0, 7, 10), (1, 1, 1), (3, 3, 1), (1000, 5000, 100)],
)
def test_every_record_once_and_overlapping_pages(
    make_simulator: Any, orders: int, devices: int, page_size: int, concurrency: int
) -> None:
    sim = make_simulator(orders=orders, devices=devices, rate_limit=10_000)
    config = tap_config(
        sim, page_size=page_size, requests_per_minute=100_000, max_concurrent_requests=concurrency
    )
    result = run_tap(config, streams=("orders", "devices"))

    for stream, expected in (("orders", orders), ("devices", devices)):
        ids = [r["id"] for r in result.records(stream)]
        assert len(ids) == expected, stream
        assert len(set(ids)) == expected, f"{stream}: duplicates {Counter(ids).most_common(2)}"
        data = sim_requests(sim, stream)
        offsets = [int(r["query"]["offset"]) for r in data]
        # Every planned offset exactly once (none skipped, none fetched twice); with one request
        # in flight they also come in order. Concurrent requests are answered in any order.
        assert sorted(offsets) == expected_offsets(expected, page_size), stream
        if concurrency == 1:
            assert offsets == expected_offsets(expected, page_size), stream
        # The overlap costs at most ~1% more requests than ceil(N / limit) (one at small N).
        plain = max(1, math.ceil(expected / page_size))
        assert len(data) <= plain + max(1, math.ceil(plain / 100)), stream
        assert {r["query"]["limit"] for r in data} == {str(page_size)}
    assert len(sim_requests(sim, "token")) == 1  # one token shared by both streams


def test_order_transforms_rows_keep_item_and_partition_per_group_by(make_simulator: Any) -> None:
    sim = make_simulator(orders=60, devices=1, rate_limit=10_000)
    result = run_tap(
        tap_config(sim, page_size=20, order_transform_group_by=["sowId", "partnerName"]),
        streams=("order_transforms",),
    )
    rows = result.records("order_transforms")
    assert {r["groupBy"] for r in rows} == {"sowId", "partnerName"}
    for row in rows:
        assert row["item"][row["groupBy"]] == row["value"]
    keys = [(r["groupBy"], r["value"]) for r in rows]
    assert len(keys) == len(set(keys))
    requests = sim_requests(sim, "orders/transform")
    by_group = Counter(r["query"]["group-by"] for r in requests)
    for group in ("sowId", "partnerName"):
        distinct = sum(1 for r in rows if r["groupBy"] == group)
        assert by_group[group] == max(1, math.ceil(distinct / 20))


def test_unknown_fields_dropped_and_updated_at_canonical(make_simulator: Any) -> None:
    sim = make_simulator(orders=5, devices=5, rate_limit=10_000)
    result = run_tap(tap_config(sim), streams=("devices",))
    schema = next(m for m in result.messages if m["type"] == "SCHEMA" and m["stream"] == "devices")
    props = set(schema["schema"]["properties"])
    for record in result.records("devices"):
        assert set(record) <= props
        assert record["updatedAt"].endswith("Z") and len(record["updatedAt"]) == 27
