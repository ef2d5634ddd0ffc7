"""Offset paging that notices when the list shifts under it and re-reads instead of skipping.

With ``limit``/``offset`` paging, a record deleted (or moved away) before the current offset while
a sync runs shifts every later record back by one, and the record that crosses the page boundary is
never read. Records that were *changed* during the sync do not matter here: their new ``updatedAt``
is after the sync's start, so the next sync reads them. The records at risk are unchanged ones that
slide back across the boundary.

Detection, free in a quiet API: consecutive pages overlap by one record. The page at offset
``o`` ends with record ``L`` at position ``p``; the next request asks for offset ``p``, so its
first record must be ``L`` again. The sort orders are total (the API breaks ties by ``id``) and
unchanged records keep their relative order, so if ``L`` is still at ``p``, every unchanged record
after ``L`` is still after ``p`` and nothing was skipped, whatever happened elsewhere (a delete
plus an insert before ``p`` cancel out and lose nothing). The overlap costs one record per page:
N records take ``1 + ceil((N - limit) / (limit - 1))`` requests instead of ``ceil(N / limit)``,
about 1% more at ``limit`` 100, and no extra request.

Recovery when ``L`` is not first:

* ``L`` is further down the page: records were inserted before it (or, under ``sort=updatedAt
  desc``, updated and moved to the front). Nothing was skipped; continue from this page.
* ``L`` is not in the page: records before it were deleted or moved. Re-read the range of the
  previous page (one request); the last record of the previous page still present there is the new
  anchor, and reading continues after it. If none of them is there (more than a page of churn),
  the pass restarts from offset 0; after ``max_restarts`` restarts the sync fails rather than
  risk a silent loss (its bookmark is not advanced, so a rerun loses nothing).

Every record read is emitted, including ones read twice: delivery is at-least-once.

**Snapshot check instead of overlap (large passes where ``updatedAt`` filters or sorts).** The
overlap costs one request per ``limit - 1`` pages (1/99: +1.01%), and no cheaper per-boundary
witness exists in a list response. One request can vouch for a whole pass instead: pages are read
without overlap, every page must report the same ``total`` T, and after the last page a check under
the same filter must find every record unchanged since T0 (the first page's server time minus the
bookmark margin): ``updatedAt lt '<T0>'`` counts T, or, where the API only sorts, the newest
record is older than T0 and ``total`` is T. Then no record existing at T0 was deleted, moved or
changed before the check, and no record added since was alive when a page was read (every page
saw T), so every page read the same list: nothing was skipped. Any other answer re-reads the pass
with overlapping pages. This rests on what the ``filter``/``sort`` strategies already rely on:
every change sets ``updatedAt``. The pass decides (``snapshot_check.py``, :func:`check_pays`).

**Tail-first instead of overlap (full passes whose overlap would cost a rate window):** see
``tail_first.py``; a tail-first pass that gives up is read again here, with overlap.
"""

from __future__ import annotations

import json
import logging
import math
import typing as t
from dataclasses import dataclass

from tap_hpe_flex.errors import FlexAPIError

logger = logging.getLogger("tap-hpe-flex")

Key = t.Hashable


def default_key(item: dict[str, t.Any]) -> Key:
    """Return a record's identity: its ``id``, else its whole content."""
    value = item.get("id")
    if value is not None:
        return str(value)
    return json.dumps(item, sort_keys=True, default=str)


@dataclass
class Step:
    """What to emit from the page just read and which offset to read next (None: done)."""

    items: list[dict[str, t.Any]]
    next_offset: int | None


def overlap_extra(total: int, page_size: int) -> int:
    """Count the requests the one-record overlap adds to a quiet pass of ``total`` records."""
    if page_size < 2 or total <= page_size:
        return 0
    overlapping = 1 + math.ceil((total - page_size) / (page_size - 1))
    return overlapping - math.ceil(total / page_size)


def fits_in_windows(requests: int, extra: int, per_window: int | None) -> bool:
    """Tell whether ``extra`` more requests leave a pass of ``requests`` in as many rate windows.

    Why: under the limit a request costs nothing while it fits in the last window's slack, and a
    whole window (a minute at GreenLake's limit) when it does not. ``per_window`` None: no limit.
    """
    if per_window is None or per_window <= 0 or extra <= 0:
        return True
    return math.ceil((requests + extra) / per_window) == math.ceil(max(1, requests) / per_window)


def check_pays(total: int, page_size: int, *, cost: int) -> bool:
    """Tell whether a snapshot check costing ``cost`` requests (probes included) beats the overlap.

    The check's cost grows with what changed (one request per page of changed records); the
    decision is made before the pass, for a quiet one.
    """
    return overlap_extra(total, page_size) > cost


class OffsetWalk:
    """The paging decisions of one pass over a list endpoint (no I/O; fed page by page)."""

    def __init__(
        self,
        page_size: int,
        *,
        name: str = "",
        key: t.Callable[[dict[str, t.Any]], Key] = default_key,
        max_restarts: int = 3,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.page_size = page_size
        self.name = name
        self.key = key
        self.max_restarts = max_restarts
        self.log = log or logger
        self._anchor: list[Key] = []  # keys of the last page accepted, in order
        self._check = False  # whether the next page must start with the anchor's last key
        self._recovering = False
        #: False: pages do not overlap and the pass ends with a snapshot check (module docstring).
        self.overlap = True
        self._totals: set[int | None] = set()
        self._pages = 0
        #: Set when the pass is read and its snapshot check is due (see :meth:`checked`).
        self.check_due = False
        #: Shifts detected, recovery re-reads and restarts (for logs, tests and the benchmark).
        self.drifts = 0
        self.rereads = 0
        self.restarts = 0
        #: Snapshot checks made and failed (each failure re-reads the pass with overlap).
        self.checks = 0
        self.check_failures = 0

    def use_snapshot_check(self) -> None:
        """Read the rest of this pass without overlap; a snapshot check ends it."""
        self.overlap = False
        self._check = False

    @property
    def total(self) -> int | None:
        """The ``total`` every page of this pass reported (None: unknown or not all equal)."""
        return next(iter(self._totals)) if len(self._totals) == 1 else None

    def checked(self, holds: bool) -> Step:
        """Take the snapshot check's verdict: finish the pass, or read it again with overlap."""
        self.check_due = False
        self.checks += 1
        if holds:
            return Step([], None)
        self.check_failures += 1
        self.log.info(
            "%s: the snapshot check found the list changed during the sync; reading it again "
            "with overlapping pages so that none is skipped",
            self.name,
        )
        return self._overlap_pass()

    def _overlap_pass(self) -> Step:
        self.overlap = True
        self._anchor, self._check, self._totals, self._pages = [], False, set(), 0
        return Step([], 0)

    def accept(self, offset: int, body: dict[str, t.Any]) -> Step:
        """Take the page read at ``offset``; say what to emit and where to read next."""
        items = [i for i in body.get("items") or [] if isinstance(i, dict)]
        keys = [self.key(i) for i in items]
        total = body.get("total")
        total = total if isinstance(total, int) and not isinstance(total, bool) else None
        if self._recovering:
            return self._recovered(offset, items, keys, total)
        if not self.overlap:
            return self._snapshot_page(offset, items, keys, total)
        if not self._check or not self._anchor:
            return self._advance(offset, items, keys, total, items)
        last = self._anchor[-1]
        if keys and keys[0] == last:
            return self._advance(offset, items, keys, total, items[1:])
        self.drifts += 1
        if last in keys:
            self.log.info(
                "%s: records were inserted before offset %d during the sync (the list shifted "
                "forward); nothing was skipped",
                self.name,
                offset,
            )
            return self._advance(offset, items, keys, total, items)
        back = max(0, offset - (self.page_size - 1))
        self.log.info(
            "%s: the list shifted back before offset %d during the sync (records deleted or "
            "moved); re-reading from offset %d so that none is skipped",
            self.name,
            offset,
            back,
        )
        self._recovering = True
        self.rereads += 1
        return Step(items, back)

    def _snapshot_page(
        self, offset: int, items: list[dict], keys: list[Key], total: int | None
    ) -> Step:
        self._totals.add(total)
        self._pages += 1
        if total is None or len(self._totals) > 1:
            self.drifts += 1
            self.log.info(
                "%s: the list's total changed during the sync (offset %d); reading it again "
                "with overlapping pages so that none is skipped",
                self.name,
                offset,
            )
            step = self._overlap_pass()
            return Step(items, step.next_offset)
        step = self._advance(offset, items, keys, total, items)
        self.check_due = step.next_offset is None and self._pages > 1
        return step

    def _recovered(
        self, offset: int, items: list[dict], keys: list[Key], total: int | None
    ) -> Step:
        self._recovering = False
        present = set(keys)
        anchor = next((k for k in reversed(self._anchor) if k in present), None)
        if anchor is not None:
            start = keys.index(anchor) + 1
            return self._advance(offset, items, keys, total, items[start:])
        self.restarts += 1
        if self.restarts > self.max_restarts:
            msg = (
                f"{self.name}: the list kept changing faster than offset paging can follow "
                f"({self.max_restarts} restarts); no bookmark was advanced, run the sync again"
            )
            raise FlexAPIError(msg)
        self.log.warning(
            "%s: more than a page of records moved during the sync; restarting the pass "
            "from offset 0 (restart %d of at most %d)",
            self.name,
            self.restarts,
            self.max_restarts,
        )
        if offset == 0:  # this page is already the first page of the new pass
            return self._advance(offset, items, keys, total, items)
        self._anchor, self._check = [], False
        return Step(items, 0)

    def _advance(
        self,
        offset: int,
        items: list[dict],
        keys: list[Key],
        total: int | None,
        emit: list[dict],
    ) -> Step:
        count = len(items)
        more = offset + count < total if total is not None else count >= self.page_size
        self._anchor = keys
        if count == 0 or not more:
            return Step(emit, None)
        if not self.overlap:
            return Step(emit, offset + count)
        self._check = count >= 2  # a one-record page cannot overlap and still advance
        return Step(emit, offset + count - 1 if self._check else offset + count)
