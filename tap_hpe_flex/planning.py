"""Incremental plans of a Flex stream: which strategy a partition uses, and its pages' requests.

Why a module of its own: a partition's plan (full pass, server filter, server sort, or client-side
narrowing; probing or settled) is decided once on the main thread from its bookmark, then carried by
every page request, including pages fetched ahead by worker threads (``PageToken``), so requests
of different partitions never mix plans. ``FlexStream`` (``client.py``) builds on it.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk.streams.rest import PageContext

from tap_hpe_flex.incremental import (
    BOOKMARK_SAFETY_MARGIN_S,
    UTC,
    Strategy,
    canonical_timestamp,
    parse_timestamp,
)
from tap_hpe_flex.plans import PageToken, Plan
from tap_hpe_flex.prefetch import Fetched
from tap_hpe_flex.requesting import PLAN_ATTR, StrategyRejectedError
from tap_hpe_flex.snapshot import SnapshotChecks

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

    from tap_hpe_flex.pipelined import PlanHolder


class FlexPlanning(SnapshotChecks):
    """Plans per partition and the page requests built under them (see the module docstring)."""

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
        endpoint never probe a strategy twice. After a pass's first page, and before its other
        pages are planned, it decides whether a snapshot check replaces the overlap
        (``snapshot.py``).
        """
        response = self._fetch_under_plan(context, offset, holder)
        date = response.headers.get("Date")
        if offset == 0 and not holder.decided:  # the pass's first page: overlap or check?
            holder.decided = True
            body = self.page_payload(response)
            holder.snapshot = self.snapshot_start(context, holder.plan, body, date)
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
