"""Incremental strategies on ``updatedAt`` and the run-wide memory of which one an endpoint takes.

HPE does not document ``updatedAt`` as filterable or sortable on Flex v1beta1 (sibling GreenLake
APIs accept ``updatedAt ge '...'``), so the tap adapts:

* ``filter``: the server returns only ``updatedAt ge '<bookmark>'`` (cheapest).
* ``sort``: ``sort=updatedAt desc``; paging stops at the first record older than the bookmark.
* ``client``: every page is read and records older than the bookmark are dropped locally.
* ``auto``: the first data request of an endpoint doubles as the probe (filter, then sort, then
  client); a 400 naming the parameter or ``updatedAt`` rules a strategy out. The outcome is kept
  for the run and shared by every stream using the endpoint.

Timestamps are normalised to one fixed-width UTC form so that string comparisons (which the SDK's
bookmark code uses) agree with time order.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import logging
import re
import threading
import typing as t
from dataclasses import dataclass

from tap_hpe_flex.errors import error_issues

logger = logging.getLogger("tap-hpe-flex")

UTC = dt.timezone.utc

#: Seconds subtracted from the sync's start time when capping a bookmark: a record committed
#: slightly late (clock skew, replica lag) must still be read by the next sync.
BOOKMARK_SAFETY_MARGIN_S = 30


def minus_margin(moment: dt.datetime) -> dt.datetime:
    """``moment`` minus the bookmark safety margin (read here, so one setting governs all)."""
    return moment - dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S)


_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


class Strategy(str, enum.Enum):
    """How a stream narrows a sync to records changed since the bookmark."""

    AUTO = "auto"
    FILTER = "filter"
    SORT = "sort"
    CLIENT = "client"
    FULL = "full"  # no bookmark: a plain full pass, no narrowing and no probe


PROBE_ORDER = (Strategy.FILTER, Strategy.SORT, Strategy.CLIENT)


def _fast_parse(text: str) -> dt.datetime | None:
    """``datetime.fromisoformat`` (C, ~10x faster) for the RFC 3339 shapes it reads like we do.

    Only strings shaped ``YYYY-MM-DDTHH:MM:SS`` plus fraction and ``Z``/offset are given to it
    (it also accepts forms RFC 3339 does not, e.g. a bare date); anything else, and anything it
    refuses, goes to the regular expression below.
    """
    if len(text) < 20 or text[10] != "T" or text[4] != "-" or text[19] not in ".Z+-":
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_timestamp(value: str | dt.datetime) -> dt.datetime:
    """Parse RFC 3339 (``Z`` or offset, any number of fractional digits) to aware UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif (fast := _fast_parse(value)) is not None:
        return fast.astimezone(UTC)
    else:
        match = _TIMESTAMP.match(value.strip())
        if not match:
            msg = f"not an RFC 3339 timestamp: {value!r}"
            raise ValueError(msg)
        year, month, day, hour, minute, second, frac, _z, sign, oh, om = match.groups()
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = UTC
        if sign:
            offset = dt.timedelta(hours=int(oh), minutes=int(om))
            tz = dt.timezone(offset if sign == "+" else -offset)
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_http_date(header: str | None) -> dt.datetime | None:
    """Parse an HTTP ``Date`` header to aware UTC (None when missing or unreadable)."""
    if not header:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


#: A UTC timestamp whose canonical form is its own text re-padded: ASCII digits, a year from 1000
#: (what ``canonical_timestamp`` pads alike), up to 6 fractional digits, ``Z`` or ``+00:00``.
_UTC_TEXT = re.compile(
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]{1,6}))?(?:Z|\+00:00)"
)


def canonical_timestamp(value: str | dt.datetime) -> str:
    """Write a timestamp in the one form bookmarks use: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Fixed width, so lexicographic order equals time order (``Z`` vs ``+00:00`` and a varying
    number of fractional digits would otherwise compare wrongly as strings).

    Fast path (nearly every API value): text already in UTC and shaped like the canonical form
    is re-padded as text once ``fromisoformat`` has vouched for its date and time (a month 13 or
    an hour 24 goes the long way, which refuses it), skipping the parse-convert-format round.
    """
    if type(value) is str and (shape := _UTC_TEXT.fullmatch(value)) is not None:
        try:
            dt.datetime.fromisoformat(value[:19])
        except ValueError:
            pass
        else:
            return f"{value[:19]}.{(shape.group(1) or '').ljust(6, '0')}Z"
    moment = parse_timestamp(value)
    if moment.year >= 1000:  # isoformat (C) pads years to 4 digits exactly like strftime here
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def filter_timestamp(value: str | dt.datetime) -> str:
    """Render the bookmark as a filter literal, HPE's sample style, milliseconds floored.

    Flooring keeps ``ge`` inclusive: the literal is never later than the bookmark.
    """
    moment = parse_timestamp(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def updated_filter(bookmark: str | dt.datetime) -> str:
    """Build the server-side clause (``ge``: a record equal to the bookmark is kept)."""
    return f"updatedAt ge '{filter_timestamp(bookmark)}'"


def updated_before_filter(moment: str | dt.datetime) -> str:
    """Build the snapshot check's clause: records unchanged since ``moment`` (drift.py)."""
    return f"updatedAt lt '{filter_timestamp(moment)}'"


#: The ``sort`` strategy's order: newest first, ties broken by the unique ``id``.
UPDATED_SORT = "updatedAt desc,id asc"
#: Every other list pass asks for this order: unique, and untouched by updates (see drift.py).
ID_ORDER = "id asc"


def is_strategy_rejection(strategy: Strategy, status: int, body: dict | None) -> bool:
    """Tell whether an error answer to a probe means "this strategy is not supported".

    Only a 400 (or 422) counts, and only when the error names what the probe added: the
    ``filter``/``sort`` parameter or ``updatedAt``. Anything else is a real error.
    """
    if status not in {400, 422} or strategy not in {Strategy.FILTER, Strategy.SORT}:
        return False
    words = {strategy.value, "updatedat"}
    texts = [str((body or {}).get("message", ""))]
    for issue in error_issues(body):
        texts.extend(str(issue.get(k, "")) for k in ("subject", "description", "source"))
    haystack = " ".join(texts).lower()
    return any(word in haystack for word in words)


def names_sort(status: int | None, body: dict | None) -> bool:
    """Tell whether an error answer (400/422) is about the ``sort`` parameter."""
    if status not in {400, 422}:
        return False
    texts = [str((body or {}).get("message", ""))]
    for issue in error_issues(body):
        texts.extend(str(issue.get(k, "")) for k in ("subject", "description", "source"))
    return "sort" in " ".join(texts).lower()


def rejection_reason(body: dict | None) -> str:
    """Summarise why a probe was rejected, for the log."""
    issues = [
        ": ".join(str(i[k]) for k in ("subject", "description") if i.get(k))
        for i in error_issues(body)
    ]
    return "; ".join(i for i in issues if i) or str((body or {}).get("message") or "HTTP 400")


class StrategyRegistry:
    """Per-endpoint strategy decisions for one run, shared by all streams (thread-safe)."""

    def __init__(self, configured: Strategy | str = Strategy.AUTO) -> None:
        self.configured = Strategy(configured)
        self._lock = threading.Lock()
        self._chosen: dict[str, Strategy] = {}
        self._rejected: dict[str, set[Strategy]] = {}
        self._abandoned: dict[str, set[str]] = {}

    def strategy_for(self, endpoint: str) -> tuple[Strategy, bool]:
        """Return (strategy to use, whether the next request is a probe)."""
        with self._lock:
            abandoned = self._abandoned.get(endpoint, set())
        if self.configured is not Strategy.AUTO:
            if self.configured.value in abandoned:
                return Strategy.CLIENT, False
            return self.configured, False
        with self._lock:
            if endpoint in self._chosen:
                return self._chosen[endpoint], False
            rejected = self._rejected.get(endpoint, set())
            for candidate in PROBE_ORDER:
                if candidate not in rejected:
                    return candidate, candidate is not Strategy.CLIENT
        return Strategy.CLIENT, False  # pragma: no cover - PROBE_ORDER ends with CLIENT

    def accepts_updated(self, endpoint: str, *, sort: bool = False) -> bool | None:
        """Tell whether ``endpoint`` filters (or, ``sort``: sorts) on ``updatedAt``.

        None: not known yet in ``auto``. Used by the snapshot check (``snapshot.py``).
        """
        strategy = Strategy.SORT if sort else Strategy.FILTER
        with self._lock:
            if strategy.value in self._abandoned.get(endpoint, set()):
                return False
        if self.configured is not Strategy.AUTO:
            return self.configured is strategy
        with self._lock:
            chosen = self._chosen.get(endpoint)
            if chosen is not None:
                return chosen is strategy
            return False if strategy in self._rejected.get(endpoint, set()) else None

    def chosen(self, endpoint: str) -> Strategy | None:
        """Return the strategy settled for ``endpoint`` in this run, if any."""
        with self._lock:
            return self._chosen.get(endpoint)

    def accept(self, endpoint: str, strategy: Strategy, why: str) -> None:
        """Remember that ``strategy`` works for ``endpoint`` (logged once)."""
        with self._lock:
            if endpoint in self._chosen:
                return
            self._chosen[endpoint] = strategy
        logger.info("Incremental strategy for %s: %s (%s)", endpoint, strategy.value, why)

    def reject(self, endpoint: str, strategy: Strategy, reason: str) -> Strategy:
        """Rule ``strategy`` out for ``endpoint`` and return the next one to try."""
        with self._lock:
            self._rejected.setdefault(endpoint, set()).add(strategy)
        nxt, _ = self.strategy_for(endpoint)
        logger.info(
            "The API rejected the %s strategy on %s (%s); trying %s",
            strategy.value,
            endpoint,
            reason,
            nxt.value,
        )
        if nxt is Strategy.CLIENT:
            self.accept(endpoint, nxt, "server supports neither updatedAt filter nor sort")
        return nxt

    def abandon(self, endpoint: str, what: str, reason: str) -> bool:
        """Stop trusting ``what`` (a strategy's value, or ``"order"``) on ``endpoint`` for the run.

        The server accepted it but did not do it (a page showed so). Returns True the first time,
        when the caller logs the one WARNING that says why.
        """
        with self._lock:
            gone = self._abandoned.setdefault(endpoint, set())
            if what in gone:
                return False
            gone.add(what)
            if self._chosen.get(endpoint) is not None and self._chosen[endpoint].value == what:
                self._chosen[endpoint] = Strategy.CLIENT
            if what in {s.value for s in PROBE_ORDER}:
                self._rejected.setdefault(endpoint, set()).add(Strategy(what))
        logger.warning("%s on %s: %s", endpoint, what, reason)
        return True

    def trusts_order(self, endpoint: str) -> bool:
        """Whether passes on ``endpoint`` still ask for (and check) an explicit order."""
        with self._lock:
            return "order" not in self._abandoned.get(endpoint, set())


@dataclass(frozen=True)
class Plan:
    """How one pass of a partition narrows to changed records (immutable: travels with pages)."""

    strategy: Strategy
    probing: bool
    bookmark: dt.datetime | None
    #: The explicit order the pass asks for and checks (None: the server's default order).
    order: str | None = None

    def params(self) -> tuple[str | None, str | None]:
        """Return the pass's ``(updatedAt filter clause, sort)``."""
        if self.bookmark is not None and self.strategy is Strategy.FILTER:
            return updated_filter(self.bookmark), self.order
        if self.bookmark is not None and self.strategy is Strategy.SORT:
            return None, UPDATED_SORT
        return None, self.order


FULL_PASS = Plan(Strategy.FULL, probing=False, bookmark=None)


def narrow(records: t.Iterable[dict], plan: Plan) -> tuple[list[dict], bool]:
    """Keep records changed since the bookmark; True when a ``sort`` pass reached older ones.

    A record whose ``updatedAt`` cannot be read is kept: at-least-once beats losing it.
    """
    if plan.bookmark is None:
        return list(records), False
    kept: list[dict] = []
    for record in records:
        try:
            updated = parse_timestamp(record["updatedAt"])
        except (KeyError, TypeError, ValueError, AttributeError):
            kept.append(record)
            continue
        if updated >= plan.bookmark:
            kept.append(record)
        elif plan.strategy is Strategy.SORT:
            return kept, True
    return kept, False
