"""Tail-first paging's leaf: the page layout, when it pays, and what makes a pass give it up."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tap_hpe_flex.tail_first import TailFirst, TailFirstCheck, saves_a_window

T0 = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
OLD = "2026-05-01T00:00:00.000Z"


def _layout(total: int, size: int = 10, *, watch: bool = False) -> TailFirst:
    return TailFirst(total, size, T0, watch_updates=watch)


def _pages(layout: TailFirst) -> list[tuple[int, int]]:
    pages, reading = [], 0
    while True:
        pages.append(layout.request(reading))
        if layout.last(reading):
            return pages
        reading += layout.page_size


@pytest.mark.parametrize("total", [11, 19, 20, 21, 95, 100, 101, 1000, 1003])
def test_pages_tile_the_list_once_from_its_end_in_the_fewest_requests(total: int) -> None:
    pages = _pages(_layout(total))
    assert len(pages) == -(-total // 10)  # ceil(total / 10)
    assert pages[0] == (0, 10)
    covered = [p for offset, limit in pages for p in range(offset, offset + limit)]
    assert sorted(covered) == list(range(total))  # every position once
    tails = [offset for offset, _ in pages[1:]]
    assert tails == sorted(tails, reverse=True)  # from the end towards the start
    assert all(0 < limit <= 10 for _, limit in pages)


def test_the_overlap_is_avoided_only_where_it_would_cost_a_window() -> None:
    # 100,000 records at 100 a page: 1,000 requests fill 10 windows; 1,011 would need an 11th.
    assert saves_a_window(100_000, 100, 100)
    # 99,000 records: 990 requests, the overlap's 10 more fit in the 10th window.
    assert not saves_a_window(99_000, 100, 100)
    assert saves_a_window(9_950, 100, 100)  # 100 requests, or 101: a second window
    assert not saves_a_window(100_000, 100, 10**9)  # no limit to speak of
    assert not saves_a_window(100, 100, 1)  # one page: nothing overlaps


def _items(first: int, count: int, created: str = OLD, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"id-{n:05d}", "createdAt": created, "updatedAt": OLD, **extra}
        for n in range(first, first + count)
    ]


def test_a_quiet_pass_holds_page_by_page() -> None:
    check = TailFirstCheck(_layout(35))
    assert check.problem(0, _items(0, 10), 35) is None
    assert check.problem(10, _items(25, 10), 35) is None
    assert check.problem(20, _items(15, 10), 35) is None
    assert check.problem(30, _items(10, 5), 35) is None


def test_a_record_pulled_down_onto_the_next_page_gives_the_pass_up() -> None:
    check = TailFirstCheck(_layout(35))
    check.problem(0, _items(0, 10), 35)
    check.problem(10, _items(25, 10), 35)
    # A record before the unread part was deleted: the next page ends with id-25 again.
    assert "came back" in (check.problem(20, _items(16, 10), 35) or "")


def test_a_deletion_inside_the_first_page_shows_on_the_last_page() -> None:
    check = TailFirstCheck(_layout(25))
    check.problem(0, _items(0, 10), 25)
    check.problem(10, _items(15, 10), 25)
    # id-03 was deleted: the last page's offset 10 now starts at id-09, already read.
    assert "after the first page" in (check.problem(20, _items(9, 5), 25) or "")


def test_a_record_created_during_the_pass_gives_it_up() -> None:
    check = TailFirstCheck(_layout(35))
    check.problem(0, _items(0, 10), 35)
    new = _items(25, 10)
    new[3]["createdAt"] = "2026-06-01T12:00:00.500Z"  # after T0
    assert "id-00028 entered the list" in (check.problem(10, new, 35) or "")


@pytest.mark.parametrize("created", [None, "yesterday", 17, "0000-garbage-Z"])
def test_a_record_of_unknown_age_counts_as_new(created: Any) -> None:
    check = TailFirstCheck(_layout(35))
    items = _items(0, 10)
    items[0]["createdAt"] = created
    assert "entered the list" in (check.problem(0, items, 35) or "")


def test_under_a_users_filter_a_change_can_move_a_record_in() -> None:
    changed = _items(25, 10)
    changed[0]["updatedAt"] = "2026-06-01T12:00:01Z"
    plain = TailFirstCheck(_layout(35))
    plain.problem(0, _items(0, 10), 35)
    assert plain.problem(10, changed, 35) is None  # an update never moves a record in id order
    watched = TailFirstCheck(_layout(35, watch=True))
    watched.problem(0, _items(0, 10), 35)
    assert "entered the list" in (watched.problem(10, changed, 35) or "")


def test_a_changed_total_or_a_short_page_gives_it_up() -> None:
    check = TailFirstCheck(_layout(35))
    assert "total changed from 35 to 34" in (check.problem(0, _items(0, 10), 34) or "")
    check = TailFirstCheck(_layout(35))
    check.problem(0, _items(0, 10), 35)
    assert "returned 9 records" in (check.problem(10, _items(26, 9), 35) or "")
    check = TailFirstCheck(_layout(35))
    items = _items(0, 10)
    del items[4]["id"]
    assert "usable id" in (check.problem(0, items, 35) or "")
