"""One reader reads a partition: one loop over its pages, fetched one by one or ahead.

Why one loop: paging, the drift walk (``drift.OffsetWalk``), narrowing to changed records and the
snapshot check are the same whether pages arrive from a request made just now
(:class:`SequentialPages`) or from a pipeline that fetched them ahead in worker threads
(:class:`PrefetchedPages`, ``prefetch.py``). The loop only asks its :class:`PageSource` for the
pass's first page (with the plan it settled) and then for offsets; each page's context travels
with it, never on shared objects.
"""

from __future__ import annotations

import dataclasses
import typing as t

from tap_hpe_flex.drift import OffsetWalk
from tap_hpe_flex.errors import FlexAPIError
from tap_hpe_flex.incremental import Strategy, narrow
from tap_hpe_flex.page_checks import PageChecker, ServerIgnoredError
from tap_hpe_flex.prefetch import Fetched, PagePipeline
from tap_hpe_flex.requester import Answer
from tap_hpe_flex.tail_first import TailFirstCheck
from tap_hpe_flex.transport import page_body

if t.TYPE_CHECKING:
    import logging

    from tap_hpe_flex.incremental import Plan
    from tap_hpe_flex.partition import PartitionRequests, PassStart
    from tap_hpe_flex.prefetch import WorkerPool
    from tap_hpe_flex.tail_first import TailFirst


class PageSource(t.Protocol):
    """Where a reader's pages come from."""

    #: The partition's request builder (the reader sends the snapshot check through it).
    requests: PartitionRequests

    def first(self) -> PassStart:
        """Return the pass's first page, with the plan and snapshot decision it settled."""
        ...

    def get(self, offset: int) -> Answer:
        """Return the page at ``offset`` under the settled plan."""
        ...

    def overlap(self) -> None:
        """Pages overlap by one record from now on (the snapshot check or tail-first given up)."""
        ...

    def close(self) -> None:
        """Stop fetching and free what was fetched ahead."""
        ...


class SequentialPages:
    """Pages requested one at a time, when the reader asks (``max_concurrent_requests`` 1)."""

    def __init__(self, requests: PartitionRequests, plan: Plan) -> None:
        self.requests = requests
        self._plan = plan
        self._tail: TailFirst | None = None

    def first(self) -> PassStart:  # noqa: D102
        start = self.requests.first(self._plan)
        self._plan, self._tail = start.plan, start.tail
        return start

    def get(self, offset: int) -> Answer:  # noqa: D102
        return self.requests.page(offset, self._plan, tail=self._tail)

    def overlap(self) -> None:
        """Nothing is planned ahead: the walk's next offset already overlaps."""
        self._tail = None

    def close(self) -> None:
        """Nothing is held."""


class PrefetchedPages:
    """Pages fetched ahead by the endpoint's worker threads and handed out in order.

    The first fetch settles the pass (:meth:`PartitionRequests.first`) and keeps the outcome, once,
    for the fetches planned after it; the pipeline plans no other page before that one is back.
    """

    def __init__(
        self, requests: PartitionRequests, plan: Plan, pool: WorkerPool, depth: int
    ) -> None:
        self.requests = requests
        self._plan = plan
        self._start: PassStart | None = None
        self._overlap = False  # set by the consumer when the snapshot check is given up
        page_size = requests.partition.page_size
        self._pipeline = PagePipeline(
            name=requests.partition.stream,
            pool=pool,
            fetch=self._fetch,
            first_total=self._first_total,
            page_size=page_size,
            depth=depth,
            ahead=max(4 * depth, 16),
            speculate=plan.strategy is not Strategy.SORT,
        )
        self._pipeline.start(0)

    def _fetch(self, offset: int) -> Fetched:
        if self._start is None:  # the pass's first request: settle its plan
            start = self._start = self.requests.first(self._plan)
            return Fetched(0, start.answer.raw, start.answer.date, {"start": start})
        start = self._start
        answer = self.requests.page(offset, start.plan, tail=start.tail, decode=False)
        return Fetched(offset, answer.raw, answer.date)

    def _first_total(self, fetched: Fetched) -> tuple[int, int | None]:
        """Return a run's first ``(count, total)``; set how the rest is planned (pipeline lock)."""
        start = self._start
        pipeline = self._pipeline
        if start is None or start.plan.strategy is Strategy.SORT:  # stops at the bookmark
            pipeline.speculate = False
            return 0, None
        page_size = pipeline.page_size
        unordered = start.plan.order is None and self.requests.partition.order is not None
        checked = start.snapshot is not None or start.tail is not None
        no_overlap = unordered or (checked and not self._overlap)
        pipeline.stride = page_size if no_overlap else max(1, page_size - 1)
        first = fetched.extra.get("start")
        body = first.answer.body if first is not None else page_body(fetched.body)
        total = body.get("total")
        ok = isinstance(total, int) and not isinstance(total, bool)
        return len(body.get("items") or []), (total if ok else None)

    def first(self) -> PassStart:  # noqa: D102
        start = self._pipeline.get(0).extra["start"]
        return t.cast("PassStart", start)

    def get(self, offset: int) -> Answer:  # noqa: D102
        fetched = self._pipeline.get(offset)
        try:
            return Answer(200, page_body(fetched.body), fetched.date)
        except ValueError:
            stream = self.requests.partition.stream
            msg = f"{stream}: the page at offset {offset} is not JSON"
            raise FlexAPIError(msg, status=200) from None

    def overlap(self) -> None:  # noqa: D102
        self._overlap = True
        if self._start is not None and self._start.tail is not None:  # offsets are plain again
            self._start = dataclasses.replace(self._start, tail=None)
        self._pipeline.set_stride(self._pipeline.page_size - 1)

    def close(self) -> None:  # noqa: D102
        self._pipeline.close()


class PartitionReader:
    """The loop over one partition's pages (see the module docstring).

    Every page is checked against what was asked (``page_checks.py``). When a page shows that the
    server accepted an order or a strategy without applying it, the reader abandons it for the
    run and reads the pass again under the next plan. Without an order the server honours, a
    pass ends only when the distinct records read match its ``total`` (re-read, bounded).
    """

    def __init__(
        self,
        requests: PartitionRequests,
        source: PageSource,
        *,
        on_page: t.Callable[[dict[str, t.Any]], None],
        on_date: t.Callable[[str | None], None],
        log: logging.Logger | logging.LoggerAdapter[t.Any],
        max_passes: int = 8,
    ) -> None:
        self.requests = requests
        self.source = source
        self.on_page = on_page
        self.on_date = on_date
        self.log = log
        self.max_passes = max_passes
        self.walk = self._new_walk()
        #: The plan the pass settled on (None until the first page is back).
        self.plan: Plan | None = None

    def _new_walk(self) -> OffsetWalk:
        part = self.requests.partition
        return OffsetWalk(part.page_size, name=part.stream, key=part.key, log=self.log)

    def records(self) -> t.Iterator[dict[str, t.Any]]:
        """Yield the partition's records in page order (changed ones, under incremental plans)."""
        source = self.source
        try:
            while True:
                try:
                    yield from self._read(source)
                    return
                except ServerIgnoredError as exc:
                    self.requests.abandon(exc.what, exc.reason)
                    source.close()
                    bookmark = self.plan.bookmark if self.plan is not None else None
                    source = SequentialPages(self.requests, self.requests.plan_for(bookmark))
                    self.walk = self._new_walk()
        finally:
            source.close()

    def _read(self, source: PageSource) -> t.Iterator[dict[str, t.Any]]:
        start = source.first()
        self.on_date(start.answer.date)
        self.plan = start.plan
        checker = PageChecker(start.plan, self.requests.partition.stream)
        if start.plan.order is None and self.requests.partition.order is not None:
            yield from self._read_unordered(source, start, checker)
            return
        if start.tail is not None:
            finished = yield from self._read_tail_first(source, start, checker)
            if finished:
                return
        yield from self._read_ordered(source, start, checker)

    def _read_tail_first(
        self, source: PageSource, start: PassStart, checker: PageChecker
    ) -> t.Generator[dict[str, t.Any], None, bool]:
        """Read a tail-first pass; False when it gave up (the pass is then read with overlap).

        The overlapping pass begins with the first page as it was read, so the walk's first
        boundary already checks what moved since. Records already yielded stay yielded: read
        again, they are duplicates, never losses.
        """
        layout = t.cast("TailFirst", start.tail)
        check = TailFirstCheck(layout)
        answer, offset = start.answer, 0
        while True:
            self.on_page({**answer.body, "offset": offset})  # progress: records read so far
            items = [i for i in answer.body.get("items") or [] if isinstance(i, dict)]
            checker.check(offset, items)
            problem = check.problem(offset, items, answer.body.get("total"))
            if problem is None or offset:  # the first page is yielded by the pass that follows
                yield from items
            if problem is not None:
                self.walk.drifts += 1
                self.log.info(
                    "%s: %s; reading the list again from its start with overlapping pages so "
                    "that none is skipped",
                    self.requests.partition.stream,
                    problem,
                )
                source.overlap()
                return False
            if layout.last(offset):
                return True
            offset += layout.page_size
            answer = source.get(offset)

    def _read_ordered(
        self, source: PageSource, start: PassStart, checker: PageChecker
    ) -> t.Iterator[dict[str, t.Any]]:
        walk, plan, snapshot = self.walk, start.plan, start.snapshot
        if snapshot is not None:
            walk.use_snapshot_check()
        answer, offset = start.answer, 0
        while True:
            self.on_page(answer.body)
            items = [i for i in answer.body.get("items") or [] if isinstance(i, dict)]
            checker.check(offset, items)
            step = walk.accept(offset, answer.body)
            kept, stop = narrow(step.items, plan)
            yield from kept
            if stop:
                return
            nxt = step.next_offset
            if walk.check_due and snapshot is not None:
                holds = self.requests.check(plan, snapshot, walk.total)
                nxt = walk.checked(holds).next_offset
            if snapshot is not None and walk.overlap:  # the check was given up
                snapshot = None
                source.overlap()
            if nxt is None:
                return
            offset = nxt
            answer = source.get(offset)

    def _read_unordered(
        self, source: PageSource, start: PassStart, checker: PageChecker
    ) -> t.Iterator[dict[str, t.Any]]:
        """Page in the server's own order until the distinct records reach ``total``."""
        part = self.requests.partition
        seen: set[t.Hashable] = set()
        total: int | None = None
        answer = start.answer
        for attempt in range(1, self.max_passes + 1):
            offset = 0
            if attempt > 1:
                answer = source.get(0)
            while True:
                self.on_page(answer.body)
                body = answer.body
                items = [i for i in body.get("items") or [] if isinstance(i, dict)]
                checker.check(offset, items)
                found = body.get("total")
                total = found if isinstance(found, int) and not isinstance(found, bool) else None
                new = [i for i in items if part.key(i) not in seen]
                seen.update(part.key(i) for i in new)
                yield from narrow(new, start.plan)[0]
                offset += len(items)
                more = offset < total if total is not None else len(items) >= part.page_size
                if not items or not more:
                    break
                answer = source.get(offset)
            if total is None or len(seen) >= total:
                return
            self.log.info(
                "%s: %d of %d distinct records after pass %d in the server's own order; "
                "reading the list again",
                part.stream,
                len(seen),
                total,
                attempt,
            )
        msg = (
            f"{part.stream}: the API returned {len(seen)} of {total} records after "
            f"{self.max_passes} passes: it ignores or refuses sort={part.order} and its own "
            "order changes between requests; no bookmark was advanced, run the sync again"
        )
        raise FlexAPIError(msg)


class Prefetcher:
    """Starts a stream's partition pipelines a few at a time, in the order they will be read.

    Why bounded: with hundreds of tenants, a pipeline per partition started at once would hold an
    open spool file and fetched pages for each; here at most ``lookahead`` partitions wait ahead
    of the one being read, each with a few pages.
    """

    def __init__(self, lookahead: int = 2) -> None:
        self.lookahead = lookahead
        self._pending: list[tuple[t.Hashable, t.Callable[[], PageSource]]] = []
        self._started: dict[t.Hashable, PageSource] = {}

    def plan(self, partitions: t.Iterable[tuple[t.Hashable, t.Callable[[], PageSource]]]) -> None:
        """Queue the partitions' sources (a key and a factory each) and start the first ones."""
        self._pending = list(partitions)
        self._fill()

    def take(self, key: t.Hashable) -> PageSource | None:
        """Return the source of the partition about to be read (None: it was never queued)."""
        source = self._started.pop(key, None)
        if source is None:
            for index, (queued, factory) in enumerate(self._pending):
                if queued == key:
                    del self._pending[index]
                    source = factory()
                    break
        self._fill()
        return source

    def _fill(self) -> None:
        while self._pending and len(self._started) < self.lookahead:
            key, factory = self._pending.pop(0)
            self._started[key] = factory()

    def close(self) -> None:
        """Drop every source not read (a failed run); their spools are deleted."""
        for source in self._started.values():
            source.close()
        self._started.clear()
        self._pending.clear()
