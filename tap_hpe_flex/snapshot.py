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
import threading
import typing as t

from singer_sdk.streams.rest import PageContext

from tap_hpe_flex.drift import check_pays, overlap_extra
from tap_hpe_flex.errors import FlexAPIError
from tap_hpe_flex.incremental import (
    BOOKMARK_SAFETY_MARGIN_S,
    Strategy,
    parse_http_date,
    parse_timestamp,
)
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
        page = PageContext(stream_context=context, next_page_token=token)
        prepared = self.prepare(self.get_http_request(page=page))
        setattr(prepared, PLAN_ATTR, plan)
        return prepared

    def snapshot_start(
        self, context: Context | None, plan: Plan, body: dict[str, t.Any], date: str | None
    ) -> Snapshot | None:
        """Decide after a pass's first page whether a snapshot check replaces the overlap.

        None keeps the overlap: the pass is small, narrowed by ``sort`` (it stops early) or by
        the client, the API neither filters nor sorts on ``updatedAt``, or its ``Date`` is
        unknown. In ``auto``, before the run knows, probes of both forms settle it (and the run's
        strategy) when the check would still be cheaper than the overlap.
        """
        total = body.get("total")
        if not self.incremental or not isinstance(total, int) or isinstance(total, bool):
            return None
        if plan.strategy not in {Strategy.FULL, Strategy.FILTER}:
            return None
        server_now = parse_http_date(date)
        if server_now is None:
            return None
        before = server_now - dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S)
        known: dict[bool, bool | None] = {False: True, True: False}
        if plan.strategy is not Strategy.FILTER:  # a filter pass's own requests filter already
            accepts = self.runtime.strategies.accepts_updated
            known = {form: accepts(self.endpoint, sort=form) for form in (False, True)}
        unknown = [form for form in (False, True) if known[form] is None]
        if known[False] is not True and unknown:  # auto, not settled: probe if the check pays
            if not check_pays(total, self.page_size, probe_needed=True):
                return None
            known.update(self._probe(context, before, unknown))
        elif not check_pays(total, self.page_size, probe_needed=False):
            return None
        for by_sort in (False, True):  # the filter form first: it counts, the sort form infers
            if known[by_sort]:
                self.logger.info(
                    "%s: %d records: pages read without overlap, then one snapshot check "
                    "(updatedAt %s) instead of %d overlap requests",
                    self.name,
                    total,
                    "sort" if by_sort else "filter",
                    overlap_extra(total, self.page_size),
                )
                return Snapshot(before, by_sort)
        return None

    def _probe(
        self, context: Context | None, before: dt.datetime, forms: list[bool]
    ) -> dict[bool, bool]:
        """Probe the check's forms at once (one latency, not two); settle the strategy in order.

        Both forms of an unsettled endpoint go out together: the pass waits for them before its
        pages fan out. The filter form wins when both are accepted (the sort probe was then
        spent for nothing, which ``auto`` allows: one probe per strategy).
        """
        strategies = self.runtime.strategies
        with self.runtime.probe_lock(self.endpoint):
            settled = {form: strategies.accepts_updated(self.endpoint, sort=form) for form in forms}
            forms = [form for form in forms if settled[form] is None]
            if not forms or settled.get(False):  # another partition settled it meanwhile
                return {form: bool(known) for form, known in settled.items()}
            results: dict[bool, BaseException | None] = {}

            def probe(by_sort: bool) -> None:
                strategy = Strategy.SORT if by_sort else Strategy.FILTER
                plan = Plan(strategy, True, None, first_response_seen=True, settles=False)
                send = self.request_decorator(self._request)
                try:
                    send(
                        self.build_check_request(context, plan, Snapshot(before, by_sort)), context
                    )
                except BaseException as exc:  # a refusal, or an error _settle raises here
                    results[by_sort] = exc
                else:
                    results[by_sort] = None

            helpers = [threading.Thread(target=probe, args=(form,)) for form in forms[1:]]
            for helper in helpers:
                helper.start()
            probe(forms[0])
            for helper in helpers:
                helper.join()
            known = {form: bool(value) for form, value in settled.items() if value is not None}
            return {**known, **self._settle(results)}

    def _settle(self, results: dict[bool, BaseException | None]) -> dict[bool, bool]:
        """Record the probes' outcome in the run's strategy registry, filter before sort."""
        strategies = self.runtime.strategies
        outcome: dict[bool, bool] = {}
        for by_sort in sorted(results):
            error = results[by_sort]
            if error is not None and not isinstance(error, StrategyRejectedError):
                raise error
            outcome[by_sort] = error is None
        if outcome.get(False):
            strategies.accept(
                self.endpoint, Strategy.FILTER, "the API accepted an updatedAt filter"
            )
            return {False: True}
        for by_sort, error in sorted(results.items()):
            if isinstance(error, StrategyRejectedError):
                strategies.reject(self.endpoint, error.strategy, error.reason)
            elif by_sort:
                strategies.accept(
                    self.endpoint, Strategy.SORT, "the API accepted sort=updatedAt desc"
                )
        return outcome

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
