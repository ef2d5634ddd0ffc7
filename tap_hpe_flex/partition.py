"""The requests of one stream partition: its pages, its first page, its snapshot check.

Why a module of its own: a pass begins with a decision made from its first answer (which strategy
the API accepts, falling back when a probe is refused; whether a snapshot check replaces the page
overlap) and every later request is built from that decision. :meth:`PartitionRequests.first`
makes it once and returns it as plain, immutable data (:class:`PassStart`) that travels with the
pages, whichever thread fetched them.
"""

from __future__ import annotations

import dataclasses
import threading
import typing as t
from dataclasses import dataclass

from tap_hpe_flex.drift import overlap_extra
from tap_hpe_flex.errors import FlexAPIError
from tap_hpe_flex.incremental import (
    FULL_PASS,
    ID_ORDER,
    Plan,
    Strategy,
    canonical_timestamp,
    names_sort,
)
from tap_hpe_flex.odata import combine
from tap_hpe_flex.requester import StrategyRejectedError
from tap_hpe_flex.snapshot_check import (
    ChangedSince,
    Snapshot,
    changed_params,
    choose,
    holds,
    probe_params,
    starting_instant,
    unchanged_params,
    wanted,
)
from tap_hpe_flex.tail_first import TailFirst, saves_a_window
from tap_hpe_flex.transport import endpoint_key

if t.TYPE_CHECKING:
    import datetime as dt
    import logging

    from tap_hpe_flex.drift import Key
    from tap_hpe_flex.incremental import StrategyRegistry
    from tap_hpe_flex.requester import Answer, Requester

_ACCEPTED = {
    Strategy.FILTER: "the API accepted an updatedAt filter",
    Strategy.SORT: "the API accepted sort=updatedAt desc",
}


@dataclass(frozen=True)
class ListPartition:
    """What reading one partition of a list endpoint needs to know (declared by its stream)."""

    stream: str
    url: str
    page_size: int
    key: t.Callable[[dict[str, t.Any]], Key]
    user_filter: str | None = None
    extra_params: t.Mapping[str, str] = dataclasses.field(default_factory=dict)
    workspace: str | None = None
    #: Whether the stream narrows by ``updatedAt`` (orders, devices; not order transforms).
    incremental: bool = False
    #: The unique order every pass asks for and checks (None: the server's default is unique).
    order: str | None = None


@dataclass(frozen=True)
class PassStart:
    """A pass's first page and what it settled: the plan, the snapshot check, tail-first paging."""

    answer: Answer
    plan: Plan
    snapshot: Snapshot | None
    #: Set when the rest of the pass is read from the end (``tail_first.py``).
    tail: TailFirst | None = None


class PartitionRequests:
    """Builds and sends a partition's requests (thread-safe; holds no mutable plan)."""

    def __init__(
        self,
        partition: ListPartition,
        requester: Requester,
        strategies: StrategyRegistry,
        probe_lock: threading.Lock,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        *,
        per_window: t.Callable[[str], int] | None = None,
    ) -> None:
        self.partition = partition
        self.requester = requester
        self.strategies = strategies
        self.probe_lock = probe_lock
        self.log = log
        self.endpoint = endpoint_key(partition.url)
        #: Requests the endpoint may send per rate window, all API clients together (None: no
        #: limit to plan for).
        self.per_window = per_window

    # --- plans ----------------------------------------------------------------------------------
    @property
    def order(self) -> str | None:
        """The explicit order of this partition's passes, while the server honours it."""
        if self.partition.order and self.strategies.trusts_order(self.endpoint):
            return self.partition.order
        return None

    def starting_plan(self, bookmark: dt.datetime | None) -> Plan:
        """Plan the partition's pass from its starting bookmark."""
        if not self.partition.incremental:
            return dataclasses.replace(FULL_PASS, order=self.order)
        if bookmark is None:
            self.log.info("%s: no bookmark and no start_date: full pass", self.partition.stream)
            return dataclasses.replace(FULL_PASS, order=self.order)
        return self.plan_for(bookmark)

    def plan_for(self, bookmark: dt.datetime | None) -> Plan:
        """Plan for a bookmark, from what the run knows of the endpoint's strategies."""
        if bookmark is None:
            return dataclasses.replace(FULL_PASS, order=self.order)
        strategy, probing = self.strategies.strategy_for(self.endpoint)
        if strategy is Strategy.CLIENT:
            return Plan(Strategy.CLIENT, probing=False, bookmark=bookmark, order=self.order)
        if not probing:
            self.log.info(
                "%s: incremental strategy %s from %s",
                self.partition.stream,
                strategy.value,
                canonical_timestamp(bookmark),
            )
        return Plan(strategy, probing, bookmark, order=self.order)

    def abandon(self, what: str, reason: str) -> None:
        """Stop trusting an order or strategy the server accepted but did not apply."""
        self.strategies.abandon(self.endpoint, what, reason)

    # --- requests -------------------------------------------------------------------------------
    def page(
        self,
        offset: int,
        plan: Plan,
        *,
        tail: TailFirst | None = None,
        probe: bool = False,
        decode: bool = True,
    ) -> Answer:
        """Request the page at ``offset`` (a reading offset under ``tail``) under ``plan``."""
        part = self.partition
        strategy_filter, sort = plan.params()
        limit = part.page_size
        if tail is not None:
            offset, limit = tail.request(offset)
        params: dict[str, t.Any] = {"limit": limit, "offset": offset}
        if sort:
            params["sort"] = sort
        if text := combine(part.user_filter, strategy_filter):
            params["filter"] = text
        params.update(part.extra_params)
        return self.requester.get(
            part.url,
            params,
            workspace=part.workspace,
            probe=plan.strategy if probe else None,
            narrowing=plan.strategy if plan.bookmark is not None else None,
            decode=decode,
        )

    def first(self, plan: Plan) -> PassStart:
        """Read the pass's first page, settling the strategy and the order it can ask for."""
        while True:
            try:
                return self._first(plan)
            except FlexAPIError as exc:
                if plan.order is None or not names_sort(exc.status, exc.body):
                    raise
                self.abandon(
                    "order",
                    f"{self.partition.stream}: the API refused sort={plan.order} ({exc}); paging "
                    "in the server's own order, with every pass checked for completeness",
                )
                plan = dataclasses.replace(plan, order=None)

    def _first(self, plan: Plan) -> PassStart:
        while plan.probing:
            with self.probe_lock:
                if plan.bookmark is not None:  # another partition may have settled it
                    plan = dataclasses.replace(self.plan_for(plan.bookmark), order=plan.order)
                if not plan.probing:
                    break
                try:
                    answer = self.page(0, plan, probe=True)
                except StrategyRejectedError as exc:
                    nxt = self.strategies.reject(self.endpoint, exc.strategy, exc.reason)
                    _, probing = self.strategies.strategy_for(self.endpoint)
                    plan = Plan(nxt, probing, plan.bookmark, order=plan.order)
                    continue
                self.strategies.accept(self.endpoint, plan.strategy, _ACCEPTED[plan.strategy])
                plan = dataclasses.replace(plan, probing=False)
                return self._settled(answer, plan)
        return self._settled(self.page(0, plan), plan)

    def _settled(self, answer: Answer, plan: Plan) -> PassStart:
        if (tail := self._tail_first(plan, answer)) is not None:
            return PassStart(answer, plan, None, tail)
        return PassStart(answer, plan, self._snapshot(plan, answer))

    def _tail_first(self, plan: Plan, answer: Answer) -> TailFirst | None:
        """Read the rest from the end when the overlap would cost a rate window (a full pass)."""
        part, total = self.partition, answer.body.get("total")
        if plan.bookmark is not None or plan.order != ID_ORDER or self.per_window is None:
            return None
        if not isinstance(total, int) or isinstance(total, bool):
            return None
        items = answer.body.get("items")
        if not isinstance(items, list) or len(items) != min(total, part.page_size):
            return None
        per_window = self.per_window(self.endpoint)
        started = starting_instant(answer.date)
        if started is None or not saves_a_window(total, part.page_size, per_window):
            return None
        self.log.info(
            "%s: %d records: reading the rest from the end of the list, without overlapping "
            "pages (%d overlap requests would cost another rate window of %d requests)",
            part.stream,
            total,
            overlap_extra(total, part.page_size),
            per_window,
        )
        watch = part.user_filter is not None
        return TailFirst(total, part.page_size, started, watch_updates=watch)

    def check(self, plan: Plan, snapshot: Snapshot, total: int | None) -> bool:
        """Send the pass's snapshot check; True when it vouches for a pass of ``total`` records.

        A check whose answers show the server ignored the clause or the sort abandons that form
        for the run and fails (the pass is then read again with overlapping pages).
        """
        part = self.partition
        try:
            unchanged = None
            if not snapshot.by_sort:
                count = self._get(unchanged_params(plan, snapshot, part.user_filter)).body
                unchanged = count.get("total") if isinstance(count.get("total"), int) else None
            changed = ChangedSince(snapshot)
            offset = 0
            while not changed.done:
                if offset and total is not None and changed.changed > total // 2:
                    return False  # more than half changed: reading it again costs less
                params = changed_params(plan, snapshot, part.user_filter, offset, part.page_size)
                problem = changed.take(self._get(params).body, part.page_size)
                if problem is not None:
                    form = Strategy.SORT if snapshot.by_sort else Strategy.FILTER
                    self.abandon(form.value, f"{part.stream}: {problem}; not using it again")
                    return False
                offset += part.page_size
        except FlexAPIError as exc:
            if exc.status not in {400, 422}:
                raise
            self.log.info("%s: the snapshot check was refused (%s)", part.stream, exc)
            return False
        return holds(total, unchanged, changed)

    def _get(self, params: dict[str, t.Any], *, probe: Strategy | None = None) -> Answer:
        part = self.partition
        query = {**params, **part.extra_params}
        return self.requester.get(part.url, query, workspace=part.workspace, probe=probe)

    def _send_check(
        self, plan: Plan, snapshot: Snapshot, *, probe: Strategy | None = None
    ) -> Answer:
        return self._get(probe_params(plan, snapshot, self.partition.user_filter), probe=probe)

    # --- the snapshot check's decision ----------------------------------------------------------
    def _snapshot(self, plan: Plan, answer: Answer) -> Snapshot | None:
        """Decide after the first page whether a snapshot check replaces the overlap."""
        total = answer.body.get("total")
        if not wanted(plan, total, self.partition.incremental):
            return None
        assert isinstance(total, int)  # wanted() checked it
        before = starting_instant(answer.date)
        if before is None:
            return None
        known: dict[bool, bool | None] = {False: True, True: False}
        if plan.strategy is not Strategy.FILTER:  # a filter pass's own requests filter already
            accepts = self.strategies.accepts_updated
            known = {form: accepts(self.endpoint, sort=form) for form in (False, True)}
        per_window = self.per_window(self.endpoint) if self.per_window is not None else None
        snapshot = choose(
            known,
            total,
            self.partition.page_size,
            before,
            lambda f: self._probe(before, f),
            per_window=per_window,
        )
        if snapshot is not None:
            self.log.info(
                "%s: %d records: pages read without overlap, then one snapshot check "
                "(updatedAt %s) instead of %d overlap requests",
                self.partition.stream,
                total,
                "sort" if snapshot.by_sort else "filter",
                overlap_extra(total, self.partition.page_size),
            )
        return snapshot

    def _probe(self, before: dt.datetime, forms: list[bool]) -> dict[bool, bool]:
        """Probe the check's forms at once (one latency, not two); settle the strategy in order.

        The filter form wins when both are accepted (the sort probe was then spent for nothing,
        which ``auto`` allows: one probe per strategy).
        """
        strategies = self.strategies
        with self.probe_lock:
            settled = {form: strategies.accepts_updated(self.endpoint, sort=form) for form in forms}
            forms = [form for form in forms if settled[form] is None]
            if not forms or settled.get(False):  # another partition settled it meanwhile
                return {form: bool(known) for form, known in settled.items()}
            results: dict[bool, BaseException | None] = {}

            def probe(by_sort: bool) -> None:
                strategy = Strategy.SORT if by_sort else Strategy.FILTER
                try:
                    self._send_check(FULL_PASS, Snapshot(before, by_sort), probe=strategy)
                except BaseException as exc:  # a refusal, or an error raised below
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
        strategies = self.strategies
        outcome: dict[bool, bool] = {}
        for by_sort in sorted(results):
            error = results[by_sort]
            if error is not None and not isinstance(error, StrategyRejectedError):
                raise error
            outcome[by_sort] = error is None
        if outcome.get(False):
            strategies.accept(self.endpoint, Strategy.FILTER, _ACCEPTED[Strategy.FILTER])
            return {False: True}
        for by_sort, error in sorted(results.items()):
            if isinstance(error, StrategyRejectedError):
                strategies.reject(self.endpoint, error.strategy, error.reason)
            elif by_sort:
                strategies.accept(self.endpoint, Strategy.SORT, _ACCEPTED[Strategy.SORT])
        return outcome
