"""The snapshot check: one request that vouches for a whole pass instead of overlapping its pages.

Why (see ``drift.py``, "Snapshot check"): overlapping pages by one record costs 1/99 more requests;
where the API filters or sorts on ``updatedAt``, one request after the last page can prove that no
page was skipped. Two forms, both under the pass's own filter:

* the API filters on ``updatedAt``: ``limit=0`` and ``updatedAt lt '<T0>'``, which must count
  the pass's total T (every record unchanged since T0);
* it only sorts on it: ``limit=1&sort=updatedAt desc``, whose ``total`` must be T and whose newest
  record must be older than T0 (nothing alive changed since T0).

I/O-free: the caller sends the requests (``partition.py``).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from tap_hpe_flex.drift import check_pays
from tap_hpe_flex.incremental import (
    UPDATED_SORT,
    Plan,
    Strategy,
    minus_margin,
    parse_http_date,
    parse_timestamp,
    updated_before_filter,
)
from tap_hpe_flex.odata import combine


@dataclass(frozen=True)
class Snapshot:
    """How a pass is vouched for: ``before`` is T0; ``by_sort`` asks for the newest record."""

    before: dt.datetime
    by_sort: bool = False


def check_params(plan: Plan, snapshot: Snapshot, user_filter: str | None) -> dict[str, t.Any]:
    """Query of the check: the pass's own filter plus ``updatedAt lt T0``, or the newest record."""
    strategy_filter, _ = plan.params() if plan.strategy is Strategy.FILTER else (None, None)
    params: dict[str, t.Any] = {"limit": 1 if snapshot.by_sort else 0, "offset": 0}
    check_filter = None if snapshot.by_sort else updated_before_filter(snapshot.before)
    if snapshot.by_sort:
        params["sort"] = UPDATED_SORT
    if text := combine(user_filter, strategy_filter, check_filter):
        params["filter"] = text
    return params


def holds(body: dict[str, t.Any], snapshot: Snapshot, total: int | None) -> bool:
    """Say whether the check's answer vouches for a pass that saw ``total`` on every page."""
    count = body.get("total")
    if total is None or count != total or isinstance(count, bool):
        return False
    if not snapshot.by_sort:
        return True
    items = [i for i in body.get("items") or [] if isinstance(i, dict)]
    if not items:
        return total == 0
    try:
        return parse_timestamp(items[0]["updatedAt"]) < snapshot.before
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


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
) -> Snapshot | None:
    """Pick the check's form from what the run knows (probing unknown forms when it pays).

    ``known[by_sort]``: True/False when settled, None when ``auto`` does not know yet; ``probe``
    sends probes of the given forms together and returns what they showed.
    """
    known = dict(known)
    unknown = [form for form in (False, True) if known[form] is None]
    if known[False] is not True and unknown:
        if not check_pays(total, page_size, probe_needed=True):
            return None
        known.update(probe(unknown))
    elif not check_pays(total, page_size, probe_needed=False):
        return None
    for by_sort in (False, True):  # the filter form first: it counts, the sort form infers
        if known[by_sort]:
            return Snapshot(before, by_sort)
    return None
