"""Incremental plans of a Flex stream: which strategy a partition uses, and its pages' requests.

Why a module of its own: a partition's plan (full pass, server filter, server sort, or client-side
narrowing; probing or settled) is decided once on the main thread from its bookmark, then carried by
every page request, including pages fetched ahead by worker threads (``PageToken``), so requests
of different partitions never mix plans. ``FlexStream`` (``client.py``) builds on it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import typing as t
from dataclasses import dataclass

from singer_sdk.streams.rest import PageContext

from tap_hpe_flex.drift import check_pays
from tap_hpe_flex.errors import FlexAPIError
from tap_hpe_flex.incremental import (
    BOOKMARK_SAFETY_MARGIN_S,
    UTC,
    Strategy,
    canonical_timestamp,
    parse_timestamp,
)
from tap_hpe_flex.prefetch import Fetched
from tap_hpe_flex.requesting import PLAN_ATTR, FlexRequests, StrategyRejectedError

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import HTTPRequest

    from tap_hpe_flex.pipelined import PlanHolder


@dataclass
class Plan:
    """How the current partition narrows to changed records (see ``incremental.py``)."""

    strategy: Strategy
    probing: bool
    bookmark: dt.datetime | None
    stop: bool = False
    first_response_seen: bool = False


@dataclass(frozen=True)
class PageToken:
    """A page token that carries its plan, so pages of different partitions build correctly."""

    offset: int
    plan: Plan


@dataclass(frozen=True)
class CheckToken:
    """The snapshot check of a pass (see ``drift.py``): count what is unchanged since ``before``.

    ``limit=0`` under the pass's own filter plus ``updatedAt lt '<before>'``; also sent, with a
    probing plan, to learn whether the API filters on ``updatedAt`` at all.
    """

    plan: Plan
    before: dt.datetime


class FlexPlanning(FlexRequests):
    """Plans per partition and the page requests built under them (see the module docstring)."""

    #: Whether the stream narrows syncs by ``updatedAt`` (orders, devices).
    incremental: bool = False

    @property
    def page_size(self) -> int:
        """``page_size`` setting (1-100)."""
        return int(self.config.get("page_size", 100))

    def build_page_request(
        self, context: Context | None, offset: int, plan: Plan | None
    ) -> requests.PreparedRequest:
        """Build the prepared request for the page at ``offset`` under ``plan`` (any thread)."""
        token = offset if plan is None else PageToken(offset, plan)
        http = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=token)
        )
        prepared = self.prepare(http)
        setattr(prepared, PLAN_ATTR, plan)
        return prepared

    def prepare(self, http: HTTPRequest) -> requests.PreparedRequest:
        """Turn the SDK's request description into a prepared request of this stream's session."""
        return self.build_prepared_request(
            method=http.method,
            url=http.url,
            params=http.encode_params(),
            headers=http.headers,
            json=http.data,
        )

    def build_check_request(
        self, context: Context | None, plan: Plan, before: dt.datetime
    ) -> requests.PreparedRequest:
        """Build the snapshot check (or its probe) for a pass under ``plan``."""
        http = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=CheckToken(plan, before))
        )
        prepared = self.prepare(http)
        setattr(prepared, PLAN_ATTR, plan)
        return prepared

    def snapshot_check_start(
        self, context: Context | None, plan: Plan, body: dict[str, t.Any], date: str | None
    ) -> dt.datetime | None:
        """Decide after a pass's first page whether a snapshot check replaces the overlap.

        Returns the instant the check counts from (the first page's server ``Date`` minus the
        bookmark margin), or None to keep the overlap: when the pass is small, the API does not
        filter on ``updatedAt``, or its ``Date`` is unknown. When ``auto`` has not yet learnt
        whether the filter works and the check would still pay for a probe, one ``limit=0``
        probe settles it (and the strategy for the rest of the run). Any thread.
        """
        total = body.get("total")
        if not self.incremental or not isinstance(total, int) or isinstance(total, bool):
            return None
        before = _server_time(date)
        if before is None:
            return None
        before -= dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S)
        strategies = self.runtime.strategies
        known = True if plan.strategy is Strategy.FILTER else None
        if known is None:
            known = strategies.accepts_updated_filter(self.endpoint)
        if known is False or not check_pays(total, self.page_size, probe_needed=known is None):
            return None
        if known is None and not self._probe_updated_filter(context, before):
            return None
        return before

    def _probe_updated_filter(self, context: Context | None, before: dt.datetime) -> bool:
        """Send the check once as a probe; True when the API accepted the ``updatedAt`` filter."""
        send = self.request_decorator(self._request)
        with self.runtime.probe_lock(self.endpoint):
            known = self.runtime.strategies.accepts_updated_filter(self.endpoint)
            if known is not None:  # another partition settled it meanwhile
                return known
            probe = Plan(Strategy.FILTER, probing=True, bookmark=None, first_response_seen=True)
            try:
                send(self.build_check_request(context, probe, before), context)
            except StrategyRejectedError as exc:
                self.runtime.strategies.reject(self.endpoint, exc.strategy, exc.reason)
                return False
            return True

    def snapshot_check(
        self, context: Context | None, plan: Plan, before: dt.datetime
    ) -> int | None:
        """Send the pass's snapshot check; return its count (None: no usable answer)."""
        send = self.request_decorator(self._request)
        try:
            response = send(self.build_check_request(context, plan, before), context)
        except FlexAPIError as exc:
            if exc.status not in {400, 422}:
                raise
            self.logger.info("%s: the snapshot check was refused (%s)", self.name, exc)
            return None
        total = self.page_payload(response).get("total")
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    def keep_changed(self, records: t.Iterable[dict]) -> t.Iterator[dict]:
        """Drop records older than the bookmark; under ``sort`` the first one ends paging."""
        plan = self._plan
        if plan is None or plan.bookmark is None:
            yield from records
            return
        for record in records:
            try:
                updated = parse_timestamp(record["updatedAt"])
            except (KeyError, TypeError, ValueError):
                yield record  # cannot judge: at-least-once beats losing it
                continue
            if updated >= plan.bookmark:
                yield record
            elif plan.strategy is Strategy.SORT:
                plan.stop = True
                return

    def starting_plan(self, context: Context | None) -> Plan:
        """Plan the partition from its starting bookmark (main thread: reads the state)."""
        if self.incremental:
            self._write_starting_replication_value(context)  # what sync() would write first
        return self._make_plan(context)

    def fetch_page(self, context: Context | None, offset: int, holder: PlanHolder) -> t.Any:
        """Fetch one page in a worker thread; a refused probe moves the plan to the next one.

        Probes of one endpoint take turns (``runtime.probe_lock``), so partitions of the same
        endpoint never probe a strategy twice.
        """
        response = self._fetch_under_plan(context, offset, holder)
        date = response.headers.get("Date")
        if offset == 0 and not holder.decided:  # the pass's first page: overlap or check?
            holder.decided = True
            body = self.page_payload(response)
            holder.before = self.snapshot_check_start(context, holder.plan, body, date)
        return Fetched(offset, response.content, date)

    def _fetch_under_plan(
        self, context: Context | None, offset: int, holder: PlanHolder
    ) -> requests.Response:
        send = self.request_decorator(self._request)
        while True:
            plan = holder.plan
            if not plan.probing:
                return send(self.build_page_request(context, offset, plan), context)
            with self.runtime.probe_lock(self.endpoint):
                if plan.bookmark is not None:  # another partition may have settled it
                    holder.plan = plan = self._plan_for(plan.bookmark)
                try:
                    return send(self.build_page_request(context, offset, plan), context)
                except StrategyRejectedError as exc:
                    nxt = self.runtime.strategies.reject(self.endpoint, exc.strategy, exc.reason)
                    _, probing = self.runtime.strategies.strategy_for(self.endpoint)
                    holder.plan = Plan(nxt, probing, plan.bookmark)

    def _make_plan(self, context: Context | None) -> Plan:
        if not self.incremental:
            return Plan(Strategy.FULL, probing=False, bookmark=None)
        start = self.get_starting_timestamp(context)
        if start is None:
            self.logger.info("%s: no bookmark and no start_date: full pass", self.name)
            return Plan(Strategy.FULL, probing=False, bookmark=None)
        return self._plan_for(parse_timestamp(start))

    def _plan_for(self, bookmark: dt.datetime) -> Plan:
        """Plan for a bookmark, from what the run knows of the endpoint's strategies."""
        strategy, probing = self.runtime.strategies.strategy_for(self.endpoint)
        if strategy is Strategy.CLIENT or not self.supports_server_narrowing:
            return Plan(Strategy.CLIENT, probing=False, bookmark=bookmark)
        if not probing:
            self.logger.info(
                "%s: incremental strategy %s from %s",
                self.name,
                strategy.value,
                canonical_timestamp(bookmark),
            )
        return Plan(strategy, probing, bookmark)

    @property
    def supports_server_narrowing(self) -> bool:
        """False where only client-side narrowing applies (e.g. single-object requests)."""
        return True

    def get_replication_key_signpost(self, context: Context | None = None) -> t.Any:
        """Cap bookmarks at the sync's start minus a margin (refined from the server's Date)."""
        if not self.is_timestamp_replication_key:
            return None
        now = dt.datetime.now(tz=UTC)
        started = self.runtime.pipelines_started_at  # pages may have been read since then
        if started is not None:
            now = min(now, started)
        return canonical_timestamp(now - dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S))


def _server_time(header: str | None) -> dt.datetime | None:
    """Parse an HTTP ``Date`` header to aware UTC (None when missing or unreadable)."""
    if not header:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
