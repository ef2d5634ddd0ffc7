"""OffsetWalk against an in-memory sorted list that changes between pages (no HTTP, no waiting)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from tap_hpe_flex.drift import OffsetWalk, check_pays, fits_in_windows, overlap_extra
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
    seen, _ = drive(walker, data, limit, between)
    return seen, walker


def drive(
    walker: OffsetWalk, data: ChangingList, limit: int, between: Any = None, unchanged: Any = None
) -> tuple[list[str], list[int]]:
    """Feed ``walker`` the pages it asks for; answer a due snapshot check with ``unchanged()``.

    ``unchanged()`` stands for the check's count of records unchanged since the pass began
    (default: the list's size, i.e. nothing changed). Returns the ids emitted and the offsets read.
    """
    seen: list[str] = []
    offsets: list[int] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        offsets.append(offset)
        step = walker.accept(offset, data.page(offset, limit))
        seen += [i["id"] for i in step.items]
        offset = step.next_offset
        pages += 1
        if between and offset is not None:
            between(pages)
        if walker.check_due:
            answer = unchanged() if unchanged else len(data.rows)
            offset = walker.checked(answer == walker.total).next_offset
        assert pages < 10_000
    return seen, offsets


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


# --- snapshot check instead of overlap (drift.py, "Snapshot check") ---------------------------


def snapshot_walk(
    data: ChangingList, limit: int, between: Any = None, unchanged: Any = None
) -> tuple[list[str], OffsetWalk, list[int]]:
    """Walk with a snapshot check instead of overlap (see :func:`drive`)."""
    walker = OffsetWalk(limit, name="t")
    walker.use_snapshot_check()
    seen, offsets = drive(walker, data, limit, between, unchanged)
    return seen, walker, offsets


def test_overlap_extra_and_when_a_check_pays() -> None:
    sizes = (0, 100, 101, 199, 200, 9_900, 20_000)
    assert [overlap_extra(n, 100) for n in sizes] == [0, 0, 0, 0, 1, 1, 3]
    assert overlap_extra(200_000, 100) == 21  # 2,021 overlapping pages instead of 2,000
    assert overlap_extra(1_000, 1) == 0  # page_size 1 cannot overlap
    assert not check_pays(9_900, 100, cost=1)  # overlap +1 = check +1: keep overlap
    assert check_pays(20_000, 100, cost=2)
    assert not check_pays(20_000, 100, cost=3)  # 3 = probe + two-request check
    assert check_pays(40_000, 100, cost=4)  # 5 > two probes + two-request check


def test_extra_requests_fit_while_they_leave_the_window_count_alone() -> None:
    assert fits_in_windows(990, 10, 100)  # 1,000: still 10 windows
    assert not fits_in_windows(1_000, 1, 100)  # 1,001: an 11th
    assert not fits_in_windows(1_000, 11, 100)
    assert fits_in_windows(1_011, 2, 100)  # 1,013: the 11th window has room
    assert fits_in_windows(1_000, 50, None)  # no limit
    assert fits_in_windows(5, 0, 1)


def test_quiet_list_read_without_overlap_then_checked_once() -> None:
    data = ChangingList(95, random.Random(5))
    seen, walker, offsets = snapshot_walk(data, 10)
    assert seen == data.rows  # every record exactly once
    assert offsets == list(range(0, 100, 10))  # ceil(95 / 10) pages, no overlap
    assert (walker.checks, walker.check_failures, walker.drifts) == (1, 0, 0)


def test_a_changed_total_falls_back_to_overlapping_pages_at_once() -> None:
    data = ChangingList(95, random.Random(6))
    original = list(data.rows)

    def delete_early(page: int) -> None:
        if page == 3:
            data.rows.remove(original[1])

    seen, walker, offsets = snapshot_walk(data, 10, between=delete_early)
    assert set(data.rows) <= set(seen)
    # deleted after the page at 20: the page at 30 reports a new total and the pass restarts
    assert offsets[:5] == [0, 10, 20, 30, 0]
    assert offsets[5] == 9 and walker.overlap and walker.checks == 0


def test_delete_plus_insert_keeps_the_total_but_fails_the_check() -> None:
    # The case a total cannot see: one record gone before the offset, one added after it.
    data = ChangingList(95, random.Random(7))
    original = list(data.rows)
    changed: set[str] = set()

    def delete_and_insert(page: int) -> None:
        if page == 3:
            data.rows.remove(original[1])
            data.rows.append("r999999n")
            changed.update({original[1], "r999999n"})

    naive = [r for r in original if r != original[1]]
    seen, walker, offsets = snapshot_walk(
        data,
        10,
        between=delete_and_insert,
        unchanged=lambda: sum(r not in changed for r in data.rows),
    )
    assert set(data.rows) <= set(seen)
    assert len(offsets) > 10 and naive[29] not in seen[:95]  # pass 1 (10 pages) skipped it
    assert (walker.checks, walker.check_failures) == (1, 1)
    assert offsets[10] == 0 and offsets[11] == 9  # re-read with overlapping pages


def test_no_answer_to_the_check_counts_as_a_failure() -> None:
    data = ChangingList(25, random.Random(8))
    seen, walker, _ = snapshot_walk(data, 10, unchanged=lambda: None)
    assert set(data.rows) <= set(seen) and walker.check_failures == 1 and walker.overlap
