"""OffsetWalk against an in-memory sorted list that changes between pages (no HTTP, no waiting)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from tap_hpe_flex.drift import OffsetWalk
from tap_hpe_flex.errors import FlexAPIError


class ChangingList:
    """A sorted list served with limit/offset; ``churn`` changes it between two requests."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.rng = rng
        self.rows = [f"r{i:06d}" for i in range(0, size * 10, 10)]
        self.touched: set[str] = set()  # inserted, deleted or moved while the walk ran
        self.requests = 0

    def page(self, offset: int, limit: int) -> dict[str, Any]:
        self.requests += 1
        items = [{"id": r} for r in self.rows[offset : offset + limit]]
        return {"items": items, "count": len(items), "offset": offset, "total": len(self.rows)}

    def churn(self, deletes: int, inserts: int, moves: int) -> None:
        for _ in range(min(deletes, len(self.rows))):
            self.touched.add(self.rows.pop(self.rng.randrange(len(self.rows))))
        for _ in range(inserts):
            new = f"r{self.rng.randrange(10**6):06d}n"
            self.rows.append(new)
            self.touched.add(new)
        for _ in range(min(moves, len(self.rows))):  # an update that changes the sort key
            old = self.rows.pop(self.rng.randrange(len(self.rows)))
            new = f"r{self.rng.randrange(10**6):06d}m"
            self.rows.append(new)
            self.touched.update({old, new})
        self.rows.sort()


def walk(
    data: ChangingList, limit: int, between: Any = None, restarts: int = 3
) -> tuple[list[str], OffsetWalk]:
    walker = OffsetWalk(limit, name="t", max_restarts=restarts)
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        step = walker.accept(offset, data.page(offset, limit))
        seen += [i["id"] for i in step.items]
        offset = step.next_offset
        pages += 1
        if between and offset is not None:
            between(pages)
        assert pages < 10_000
    return seen, walker


@pytest.mark.parametrize(("size", "limit"), [(0, 10), (1, 10), (10, 10), (11, 10), (1000, 100)])
def test_quiet_list_every_record_once_with_one_record_overlap(size: int, limit: int) -> None:
    data = ChangingList(size, random.Random(1))
    seen, walker = walk(data, limit)
    assert seen == data.rows
    plain = max(1, math.ceil(size / limit))
    assert data.requests <= plain + math.ceil(plain / 100)
    assert walker.drifts == walker.rereads == walker.restarts == 0


def test_deletes_before_the_offset_are_detected_and_nothing_is_skipped() -> None:
    data = ChangingList(100, random.Random(2))
    original = list(data.rows)

    def delete_from_first_page(page: int) -> None:
        if page == 2:
            for row in original[:3]:
                data.rows.remove(row)

    seen, walker = walk(data, 10, delete_from_first_page)
    assert set(data.rows) <= set(seen)
    assert walker.drifts == 1 and walker.rereads == 1 and walker.restarts == 0


def test_a_naive_offset_walk_would_have_skipped_records() -> None:
    """The scenario above without overlap: the control that shows the failure is real."""
    data = ChangingList(100, random.Random(2))
    original = list(data.rows)
    seen: list[str] = []
    for page, offset in enumerate(range(0, 100, 10)):
        if page == 2:
            for row in original[:3]:
                data.rows.remove(row)
        seen += [i["id"] for i in data.page(offset, 10)["items"]]
    assert set(data.rows) - set(seen)


@pytest.mark.parametrize("seed", range(60))
def test_random_churn_loses_no_untouched_record(seed: int) -> None:
    rng = random.Random(seed)
    data = ChangingList(rng.randrange(50, 400), rng)
    limit = rng.choice([5, 10, 20, 100])
    heavy = seed % 10 == 0

    def churn(_page: int) -> None:
        if rng.random() < 0.5:
            scale = 30 if heavy else 3
            data.churn(rng.randrange(scale), rng.randrange(scale), rng.randrange(scale))

    try:
        seen, _ = walk(data, limit, churn, restarts=50)
    except FlexAPIError:
        return  # churn outran the restart budget: a clean failure (no bookmark), not a loss
    untouched = set(data.rows) - data.touched
    assert untouched <= set(seen)


def test_restart_budget_ends_in_a_clear_error() -> None:
    data = ChangingList(300, random.Random(3))
    with pytest.raises(FlexAPIError, match=r"kept changing .* no bookmark was advanced"):
        walk(data, 10, lambda _page: data.churn(40, 40, 0), restarts=1)
