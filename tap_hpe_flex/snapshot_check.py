"""The snapshot check: a few requests that vouch for a whole pass instead of overlapping its pages.

Why (see ``drift.py``, "Snapshot check"): overlapping pages by one record costs 1/99 more requests;
where the API filters or sorts on ``updatedAt``, a check after the last page can prove that no
page skipped a record. Pages are read in ``id`` order, which an update never changes: only a
delete (before the offset) can make an unchanged record slide back across a page boundary, and a
delete that leaves ``total`` unchanged needs an insert beside it. So the pass holds when every page
saw the same ``total`` T and, at the end, the records changed since T0 (the first page's server
time minus the bookmark margin) include no record *created* since T0, and the unchanged records
plus the changed ones are still T. Records changed during the pass therefore cost about what
changed (one request per 100 of them), not a second pass. Two forms, under the pass's own filter:

* the API filters on ``updatedAt``: ``limit=0`` with ``updatedAt lt '<T0>'`` counts the unchanged
  records; ``updatedAt ge '<T0>'`` lists the changed ones;
* it only sorts on it: ``sort=updatedAt desc`` lists the changed ones first, with ``total``.

Every record of a check's answer is checked against what was asked (a server ignoring the clause
or the sort is caught, see ``page_checks.py``). I/O-free: the caller sends the requests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import typing as t
from dataclasses import dataclass

from tap_hpe_flex.drift import check_pays, fits_in_windows, overlap_extra
from tap_hpe_flex.incremental import (
    ID_ORDER,
    UPDATED_SORT,
    Plan,
    Strategy,
    filter_timestamp,
    minus_margin,
    parse_http_date,
    parse_timestamp,
    updated_before_filter,
    updated_filter,
)
from tap_hpe_flex.odata import combine


@dataclass(frozen=True)
class Snapshot:
    """How a pass is vouched for: ``before`` is T0; ``by_sort`` asks for the newest record."""

    before: dt.datetime
    by_sort: bool = False


def _pass_filter(plan: Plan, user_filter: str | None) -> str | None:
    strategy_filter, _ = plan.params() if plan.strategy is Strategy.FILTER else (None, None)
    return combine(user_filter, strategy_filter)


def probe_params(plan: Plan, snapshot: Snapshot, user_filter: str | None) -> dict[str, t.Any]:
    """One request that shows whether the API takes the check's form at all."""
    if snapshot.by_sort:
        params: dict[str, t.Any] = {"limit": 1, "offset": 0, "sort": UPDATED_SORT}
        text = _pass_filter(plan, user_filter)
    else:
        params = {"limit": 0, "offset": 0}
        text = combine(_pass_filter(plan, user_filter), updated_before_filter(snapshot.before))
    if text:
        params["filter"] = text
    return params


def unchanged_params(plan: Plan, snapshot: Snapshot, user_filter: str | None) -> dict[str, t.Any]:
    """Filter form: count the records unchanged since T0."""
    return probe_params(plan, dataclasses.replace(snapshot, by_sort=False), user_filter)


def changed_params(
    plan: Plan, snapshot: Snapshot, user_filter: str | None, offset: int, limit: int
) -> dict[str, t.Any]:
    """List the records changed since T0 (filter form), or everything newest first (sort form)."""
    params: dict[str, t.Any] = {"limit": limit, "offset": offset}
    text = _pass_filter(plan, user_filter)
    if snapshot.by_sort:
        params["sort"] = UPDATED_SORT
    else:
        params["sort"] = ID_ORDER
        text = combine(text, updated_filter(snapshot.before))
    if text:
        params["filter"] = text
    return params


@dataclasses.dataclass
class ChangedSince:
    """What a check has seen of the records changed since T0, page by page."""

    snapshot: Snapshot
    changed: int = 0
    created: int = 0
    #: Sort form: the list's ``total`` as the check saw it (the filter form counts apart).
    total: int | None = None
    done: bool = False

    def take(self, body: dict[str, t.Any], limit: int) -> str | None:
        """Count one answer; return why the server did not do what was asked (None: it did)."""
        items = [i for i in body.get("items") or [] if isinstance(i, dict)]
        before = self.snapshot.before
        floor = parse_timestamp(filter_timestamp(before))
        times = [_time(i, "updatedAt") for i in items]
        if self.snapshot.by_sort:
            known = [x for x in times if x is not None]
            if any(b > a for a, b in itertools.pairwise(known)):
                return "the check's answer to sort=updatedAt desc is not newest first"
            total = body.get("total")
            self.total = total if isinstance(total, int) and not isinstance(total, bool) else None
        elif any(x is not None and x < floor for x in times):
            return "the check's updatedAt ge answer holds a record changed before it"
        for item, updated in zip(items, times, strict=False):
            if self.snapshot.by_sort and updated is not None and updated < before:
                self.done = True
                return None
            self.changed += 1
            created = _time(item, "createdAt")
            if created is None or created >= floor:
                self.created += 1
        self.done = len(items) < limit
        return None


def _time(item: dict[str, t.Any], field: str) -> dt.datetime | None:
    try:
        return parse_timestamp(item[field])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def holds(total: int | None, unchanged: int | None, changed: ChangedSince) -> bool:
    """Say whether the pass that saw ``total`` on every page skipped nothing."""
    if total is None or changed.created:
        return False
    if changed.snapshot.by_sort:
        return changed.total == total
    return unchanged is not None and unchanged + changed.changed == total


def starting_instant(date: str | None) -> dt.datetime | None:
    """T0: the first page's server time minus the bookmark margin (None: no usable ``Date``)."""
    server_now = parse_http_date(date)
    if server_now is None:
        return None
    return minus_margin(server_now)


def wanted(plan: Plan, total: t.Any, incremental: bool) -> bool:
    """Whether a pass could use the check at all (a full or ``filter`` pass with a total)."""
    if not incremental or not isinstance(total, int) or isinstance(total, bool):
        return False
    return plan.strategy in {Strategy.FULL, Strategy.FILTER}


def choose(
    known: dict[bool, bool | None],
    total: int,
    page_size: int,
    before: dt.datetime,
    probe: t.Callable[[list[bool]], dict[bool, bool]],
    *,
    per_window: int | None = None,
) -> Snapshot | None:
    """Pick the check's form from what the run knows (probing unknown forms when it pays).

    ``known[by_sort]``: True/False when settled, None when ``auto`` does not know yet; ``probe``
    sends probes of the given forms together and returns what they showed. Under a limit of
    ``per_window`` requests a window, probes are sent only where they fit: refused, they must not
    push the overlapping pass into another window.
    """
    known = dict(known)
    unknown = [form for form in (False, True) if known[form] is None]
    if known[False] is not True and unknown:  # probes of the unknown forms, then the dearer form
        if not check_pays(total, page_size, cost=len(unknown) + CHECK_COST[False]):
            return None
        overlapped = math.ceil(total / page_size) + overlap_extra(total, page_size)
        if not fits_in_windows(overlapped, len(unknown), per_window):
            return None
        known.update(probe(unknown))
    for by_sort in (False, True):  # the filter form first: it counts, the sort form infers
        if known[by_sort] and check_pays(total, page_size, cost=CHECK_COST[by_sort]):
            return Snapshot(before, by_sort)
    return None


#: Requests of a quiet pass's check: the filter form counts the unchanged records and lists the
#: changed ones (two requests); the sort form lists the newest records (one).
CHECK_COST = {False: 2, True: 1}
