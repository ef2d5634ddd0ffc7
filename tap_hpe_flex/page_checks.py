"""Checks that a page is what the tap asked for: in the order asked, inside the filter asked.

Why: a 200 proves nothing about what the server did with a ``sort`` or a ``filter``. A server
that accepts ``sort=id asc`` but answers in its default order (ties reshuffled on every request),
or accepts ``updatedAt ge '<bookmark>'`` but returns older records, would otherwise make offset
paging skip records in silence. Every page read under an explicit order or an ``updatedAt``
strategy is checked here; the first page that shows the server did not do what was asked raises
:class:`ServerIgnoredError`, and the reader abandons that order or strategy for the run.

I/O-free and cheap: one comparison per record.
"""

from __future__ import annotations

import itertools
import typing as t

from tap_hpe_flex.incremental import ID_ORDER, Plan, Strategy, filter_timestamp, parse_timestamp

if t.TYPE_CHECKING:
    import datetime as dt


class ServerIgnoredError(Exception):
    """The server answered 200 without applying ``what`` (``order``, ``filter`` or ``sort``)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(reason)
        self.what = what
        self.reason = reason


def _updated(item: dict[str, t.Any]) -> dt.datetime | None:
    try:
        return parse_timestamp(item["updatedAt"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _id(item: dict[str, t.Any]) -> str | None:
    value = item.get("id")
    return None if value is None else str(value)


class PageChecker:
    """Checks each page of one pass on its own.

    Pages are not compared with each other: records inserted before the offset while the pass
    runs shift the list forward, so the next page may rightly begin before the last one ended
    (``drift.OffsetWalk`` handles that). A server that ignores the order shows it within a page.
    """

    def __init__(self, plan: Plan, stream: str) -> None:
        self.plan = plan
        self.stream = stream
        floor = None
        if plan.strategy is Strategy.FILTER and plan.bookmark is not None:
            floor = parse_timestamp(filter_timestamp(plan.bookmark))
        self._floor = floor
        self._key = self._sort_key()

    @property
    def active(self) -> bool:
        """Whether pages of this pass are checked at all."""
        sorted_by_update = self.plan.strategy is Strategy.SORT and self.plan.bookmark is not None
        return sorted_by_update or self.plan.order == ID_ORDER or self._floor is not None

    def check(self, offset: int, items: list[dict[str, t.Any]]) -> None:
        """Raise ServerIgnoredError when ``items`` (the page at ``offset``) break the plan."""
        if self._floor is not None:
            for item in items:
                updated = _updated(item)
                if updated is not None and updated < self._floor:
                    msg = (
                        f"{self.stream}: the API accepted the updatedAt filter but returned a "
                        f"record updated before the bookmark (id {_id(item)}); not using the "
                        "filter for the rest of the run and reading the pass again without it"
                    )
                    raise ServerIgnoredError(Strategy.FILTER.value, msg)
        if not items:
            return
        key = self._key
        if key is _id:  # the common case, inline: one comparison per record
            last = ""
            for item in items:
                ident = item.get("id")
                if isinstance(ident, str):
                    if ident < last:
                        raise ServerIgnoredError(*self._order_violation(offset))
                    last = ident
            return
        if key is None:
            return
        keys = [k for k in (key(item) for item in items) if k is not None]
        if any(b < a for a, b in itertools.pairwise(keys)):
            raise ServerIgnoredError(*self._order_violation(offset))

    def _sort_key(self) -> t.Callable[[dict[str, t.Any]], t.Any] | None:
        if self.plan.strategy is Strategy.SORT and self.plan.bookmark is not None:

            def newest_first(item: dict[str, t.Any]) -> t.Any:
                updated = _updated(item)
                return None if updated is None else -updated.timestamp()

            return newest_first
        if self.plan.order == ID_ORDER:
            return _id
        return None

    def _order_violation(self, offset: int) -> tuple[str, str]:
        if self.plan.strategy is Strategy.SORT and self.plan.bookmark is not None:
            return Strategy.SORT.value, (
                f"{self.stream}: the API accepted sort=updatedAt desc but the page at offset "
                f"{offset} is not newest first; not using the sort strategy for the rest of "
                "the run and reading the pass again without it"
            )
        return "order", (
            f"{self.stream}: the API accepted sort={self.plan.order} but the page at offset "
            f"{offset} is not in that order; paging in the server's own order for the rest of "
            "the run, with every pass checked for completeness (distinct ids against total)"
        )
