"""Tail-first paging: a pass that skips nothing without overlapping pages, or says it may have.

Why: overlapping pages by one record (``drift.py``) costs 1 request in 99. Under the rate limit,
those extra requests are free while they fit in the last window's slack, but a pass whose plain
page count fills its windows exactly (100,000 devices: 1,000 pages, 10 windows of 100) pays a
whole extra window for them (+10% wall time), and a 100-page pass pays a second minute. Where the
overlap would cost a window, a pass in ``id`` order is read this way instead:

* the first page (offset 0) is read as usual; it gives ``total`` T;
* the rest is read from the end of the list towards its start: offsets T-100, T-200, ... down to
  100, every page asking for exactly the records between it and the page read before it.

Offsets count from the start of the list, and pages tile it. A record that is in the list
before and after the pass, and that no page returned, must have crossed the boundary between two
adjacent pages while they were read, after the read of one and before the read of the other:

* *downwards*, pulled by a deletion below it (the upper page read second): that deletion pulls
  every record above it down too, so some page read before it repeats on the page below it, read
  after it (a duplicate, seen), or, if no page above was read yet, ``total`` falls, unless a
  record entered in the part not yet read, which is then read: new;
* *upwards*, pushed by a record entering below it (the lower page read second): that record is
  read (its ``createdAt``, or under a user's filter its ``updatedAt``, is after T0), or it landed
  in a part already read, and then it pushed that part's last record onto a page read after it
  (a duplicate, seen).

A later change can undo one trace only by leaving another of the same kinds, so a pass in which
no page repeats a record of the page above it (or of the first page), no record is newer than T0
(the first page's server time minus the bookmark margin; a record whose ``createdAt`` cannot be
read counts as newer), every page reports T and holds the records asked for skipped nothing,
whichever order the server read its pages in (with pages in flight together, it may read a page
before the one above it). ``tests/tap/test_tail_first_adversary.py`` checks this against random
inserts and deletes anywhere, the parts already read included, between reads served in any
order. Any other page abandons tail-first paging for the pass, which is read again from offset 0
with overlapping pages (``drift.OffsetWalk``): at-least-once, never a silent loss.

A quiet pass of N records costs ``ceil(N / 100)`` requests, the fewest possible. I/O-free.
"""

from __future__ import annotations

import math
import re
import typing as t
from dataclasses import dataclass

from tap_hpe_flex.drift import fits_in_windows, overlap_extra
from tap_hpe_flex.incremental import parse_timestamp

if t.TYPE_CHECKING:
    import datetime as dt

_UTC_SECOND = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d")


def saves_a_window(total: int, page_size: int, per_window: int) -> bool:
    """Tell whether overlapping a pass of ``total`` records would cost one more rate window."""
    if per_window <= 0 or page_size < 2 or total <= page_size:
        return False
    plain = math.ceil(total / page_size)
    return not fits_in_windows(plain, overlap_extra(total, page_size), per_window)


@dataclass(frozen=True)
class TailFirst:
    """The layout of one tail-first pass (immutable: travels with the pages).

    Pages are numbered by a *reading offset* that grows by ``page_size`` from the first page (0),
    so the page pipeline plans, fetches and hands them out in order as for any pass;
    :meth:`request` turns one into the list offset and limit actually asked for.
    """

    total: int
    page_size: int
    #: T0: records created (or changed, with ``watch_updates``) at or after it are new.
    started: dt.datetime
    #: Also treat a record changed since T0 as new (a user's filter: changes move records in).
    watch_updates: bool = False

    def request(self, reading_offset: int) -> tuple[int, int]:
        """Return the ``(offset, limit)`` of the page read at ``reading_offset``."""
        size = self.page_size
        if reading_offset <= 0:
            return 0, size
        top = self.total - reading_offset + size
        low = max(size, top - size)
        return low, max(0, top - low)

    def last(self, reading_offset: int) -> bool:
        """Tell whether the page at ``reading_offset`` is the pass's last."""
        return reading_offset + self.page_size >= self.total


class TailFirstCheck:
    """Checks each page of a tail-first pass against what a quiet list would have returned."""

    def __init__(self, layout: TailFirst) -> None:
        self.layout = layout
        self._first_last: str | None = None  # the last id of the first page
        self._above: str | None = None  # the first id of the tail page read before

    def problem(
        self, reading_offset: int, items: list[dict[str, t.Any]], total: t.Any
    ) -> str | None:
        """Return why the page may hide a skipped record (None: the pass still holds)."""
        layout = self.layout
        if total != layout.total or isinstance(total, bool):
            return f"the list's total changed from {layout.total} to {total}"
        _, limit = layout.request(reading_offset)
        if len(items) != limit:
            return f"a page returned {len(items)} records where the list held {limit}"
        ids = [item.get("id") for item in items]
        if not all(isinstance(i, str) for i in ids):
            return "a record without a usable id"
        if new := self._new(items):
            return f"record {new} entered the list during the pass"
        keys = t.cast("list[str]", ids)
        if not keys:
            return None
        if reading_offset == 0:
            self._first_last = keys[-1]
            return None
        if self._above is not None and keys[-1] >= self._above:
            return f"record {keys[-1]} came back on the page below its own"
        if self._first_last is not None and keys[0] <= self._first_last:
            return f"record {keys[0]} came back after the first page"
        self._above = keys[0]
        return None

    def _new(self, items: list[dict[str, t.Any]]) -> str | None:
        started = self.layout.started
        fields = ("createdAt", "updatedAt") if self.layout.watch_updates else ("createdAt",)
        second = started.strftime("%Y-%m-%dT%H:%M:%S")  # UTC, as the API writes it
        for item in items:
            for field in fields:
                value = item.get(field)
                # Fast path: a UTC timestamp of an earlier second is older, without parsing.
                if (
                    isinstance(value, str)
                    and value[:19] < second
                    and value.endswith("Z")
                    and _UTC_SECOND.match(value)
                ):
                    continue
                try:
                    moment = parse_timestamp(value)  # type: ignore[arg-type]
                except (TypeError, ValueError, AttributeError):
                    return str(item.get("id"))  # unknown age: it may be new
                if moment >= started:
                    return str(item.get("id"))
        return None
