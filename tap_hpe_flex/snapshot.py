"""Choosing and sending a pass's snapshot check, the cheaper alternative to overlapping pages.

Why a module of its own: the check (see ``drift.py``, "Snapshot check") needs a decision after the
first page of a pass (is the pass large enough, does the API filter or sort on ``updatedAt``, is a
probe worth it), one extra request at the end, and its own reading of that answer. The paging
code only asks :meth:`SnapshotChecks.snapshot_start` and :meth:`SnapshotChecks.snapshot_holds`.

Two forms, both under the pass's own filter:

* the API filters on ``updatedAt``: ``limit=0`` and ``updatedAt lt '<T0>'``, which must count
  the pass's total T (every record unchanged since T0);
* it only sorts on it: ``limit=1&sort=updatedAt desc``, whose ``total`` must be T and whose newest
  record must be older than T0 (nothing alive changed since T0).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import typing as t

from singer_sdk.streams.rest import PageContext

from tap_hpe_flex.drift import check_pays
from tap_hpe_flex.errors import FlexAPIError
from tap_hpe_flex.incremental import BOOKMARK_SAFETY_MARGIN_S, UTC, Strategy, parse_timestamp
from tap_hpe_flex.plans import CheckToken, Plan, Snapshot
from tap_hpe_flex.requesting import PLAN_ATTR, FlexRequests, StrategyRejectedError

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context


class SnapshotChecks(FlexRequests):
    """The snapshot check of a Flex stream's passes (see the module docstring)."""

    #: Whether the stream narrows syncs by ``updatedAt`` (orders, devices).
    incremental: bool = False

    @property
    def page_size(self) -> int:
        """``page_size`` setting (1-100)."""
        return int(self.config.get("page_size", 100))

    def build_check_request(
        self, context: Context | None, plan: Plan, snapshot: Snapshot
    ) -> requests.PreparedRequest:
        """Build the snapshot check (or its probe) for a pass under ``plan``."""
        token = CheckToken(plan, snapshot)
        http = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=token)
        )
        prepared = self.build_prepared_request(
            method=http.method,
            url=http.url,
            params=http.encode_params(),
            headers=http.headers,
            json=http.data,
        )
        setattr(prepared, PLAN_ATTR, plan)
        return prepared

    def snapshot_start(
        self, context: Context | None, plan: Plan, body: dict[str, t.Any], date: str | None
    ) -> Snapshot | None:
        """Decide after a pass's first page whether a snapshot check replaces the overlap.

        None keeps the overlap: the pass is small, narrowed by ``sort`` (it stops early) or by
        the client, the API neither filters nor sorts on ``updatedAt``, or its ``Date`` is
        unknown. In ``auto``, before the run knows, a ``limit=0`` probe per form settles it when
        the check would still be cheaper than the overlap (and settles the strategy too).
        """
        total = body.get("total")
        if not self.incremental or not isinstance(total, int) or isinstance(total, bool):
            return None
        if plan.strategy not in {Strategy.FULL, Strategy.FILTER}:
            return None
        server_now = _server_time(date)
        if server_now is None:
            return None
        before = server_now - dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S)
        strategies = self.runtime.strategies
        filtering = True if plan.strategy is Strategy.FILTER else None
        for by_sort in (False, True):
            if by_sort and plan.strategy is Strategy.FILTER:
                return None
            known = filtering if not by_sort else None
            if known is None:
                known = strategies.accepts_updated(self.endpoint, sort=by_sort)
            if known is None and check_pays(total, self.page_size, probe_needed=True):
                known = self._probe(context, Snapshot(before, by_sort))
            elif known and not check_pays(total, self.page_size, probe_needed=False):
                return None
            if known:
                return Snapshot(before, by_sort)
        return None

    def _probe(self, context: Context | None, snapshot: Snapshot) -> bool:
        """Send the check once as a probe; True when the API accepted it (one probe at a time)."""
        send = self.request_decorator(self._request)
        strategy = Strategy.SORT if snapshot.by_sort else Strategy.FILTER
        with self.runtime.probe_lock(self.endpoint):
            known = self.runtime.strategies.accepts_updated(self.endpoint, sort=snapshot.by_sort)
            if known is not None:  # another partition settled it meanwhile
                return known
            probe = Plan(strategy, probing=True, bookmark=None, first_response_seen=True)
            try:
                send(self.build_check_request(context, probe, snapshot), context)
            except StrategyRejectedError as exc:
                self.runtime.strategies.reject(self.endpoint, exc.strategy, exc.reason)
                return False
            return True

    def snapshot_holds(
        self, context: Context | None, plan: Plan, snapshot: Snapshot, total: int | None
    ) -> bool:
        """Send the pass's snapshot check; True when it vouches for a pass of ``total`` records."""
        send = self.request_decorator(self._request)
        try:
            response = send(self.build_check_request(context, plan, snapshot), context)
        except FlexAPIError as exc:
            if exc.status not in {400, 422}:
                raise
            self.logger.info("%s: the snapshot check was refused (%s)", self.name, exc)
            return False
        body = self.page_payload(response)
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
        except (KeyError, TypeError, ValueError):
            return False


def _server_time(header: str | None) -> dt.datetime | None:
    """Parse an HTTP ``Date`` header to aware UTC (None when missing or unreadable)."""
    if not header:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
