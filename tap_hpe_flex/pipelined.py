"""Glue between a Flex stream partition and its :class:`~tap_hpe_flex.prefetch.PagePipeline`.

Started on the main thread when the first partition of the run begins (so the bookmarks it reads
are the run's starting ones); consumed by the stream's ``request_records`` in page order with the
drift check of ``drift.py``. Kept apart from ``client.py`` so the sequential path reads on its own.
"""

from __future__ import annotations

import json
import typing as t

import msgspec

from tap_hpe_flex.drift import OffsetWalk
from tap_hpe_flex.plans import Snapshot
from tap_hpe_flex.prefetch import Fetched, PagePipeline

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_hpe_flex.client import FlexStream

_decoder = msgspec.json.Decoder()


def decode_json(raw: bytes) -> t.Any:
    """Decode a body with msgspec (about twice as fast), or ``json`` for what msgspec refuses.

    ``json`` accepts ``NaN``/``Infinity`` literals that msgspec does not; the record conformance
    turns those into nulls as the SDK would.
    """
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return json.loads(raw)


def page_body(raw: bytes) -> dict[str, t.Any]:
    """Decode a page's JSON as a dict (a bare list is taken as the items)."""
    decoded = decode_json(raw)
    return decoded if isinstance(decoded, dict) else {"items": decoded}


class PlanHolder:
    """The partition's current plan (a refused probe replaces it from a worker thread).

    Also whether the pass ends with a snapshot check instead of overlapping its pages
    (``snapshot.py``; decided once, on the first page, by the worker that fetched it).
    """

    def __init__(self, plan: t.Any) -> None:
        self.plan = plan
        self.decided = False
        self.snapshot: Snapshot | None = None


def _first_total(holder: PlanHolder, pipeline: list[PagePipeline]) -> t.Callable[..., t.Any]:
    def first_total(fetched: Fetched) -> tuple[int, int | None]:
        from tap_hpe_flex.incremental import Strategy  # noqa: PLC0415 - tiny, avoids a cycle

        if holder.plan.strategy is Strategy.SORT:  # stops at the bookmark: never read ahead
            pipeline[0].speculate = False
            return 0, None
        page_size = pipeline[0].page_size
        pipeline[0].stride = page_size if holder.snapshot is not None else max(1, page_size - 1)
        body = page_body(fetched.body)
        total = body.get("total")
        items = body.get("items") or []
        ok = isinstance(total, int) and not isinstance(total, bool)
        return len(items), (total if ok else None)

    return first_total


def start_pipeline(stream: FlexStream, context: Context | None) -> PagePipeline:
    """Plan the partition (main thread: reads its bookmark) and start fetching its first page."""
    holder = PlanHolder(stream.starting_plan(context))
    runtime = stream.runtime
    box: list[PagePipeline] = []
    depth = runtime.max_concurrent_requests
    pipeline = PagePipeline(
        name=stream.name,
        pool=runtime.worker_pool(stream.endpoint),
        fetch=lambda offset: stream.fetch_page(context, offset, holder),
        first_total=_first_total(holder, box),
        page_size=stream.page_size,
        depth=depth,
        ahead=max(4 * depth, 16),
        speculate=holder.plan.strategy.value != "sort",
    )
    box.append(pipeline)
    pipeline.holder = holder  # type: ignore[attr-defined]
    pipeline.start(0)
    return pipeline


def consume(
    stream: FlexStream, pipeline: PagePipeline, context: Context | None
) -> t.Iterator[dict[str, t.Any]]:
    """Hand out the partition's records in page order, checking page overlaps as they come."""
    holder: PlanHolder = pipeline.holder  # type: ignore[attr-defined]
    stream.last_walk = walk = OffsetWalk(
        stream.page_size, name=stream.name, key=stream.record_key, log=stream.logger
    )
    offset: int | None = 0
    first = True
    try:
        with stream.get_http_request_counter() as counter:
            counter.with_context(context)
            while offset is not None:
                fetched = pipeline.get(offset)
                stream._plan = holder.plan
                if first:
                    first = False
                    stream.note_server_date(fetched.date, context)
                    if holder.snapshot is not None:
                        walk.use_snapshot_check()
                body = page_body(fetched.body)
                counter.increment()
                stream.note_page(body, context)
                step = walk.accept(offset, body)
                yield from stream.keep_changed(step.items)
                if stream.stop_paging:
                    return
                offset = step.next_offset
                snapshot = holder.snapshot
                if walk.check_due and snapshot is not None:
                    counter.increment()
                    holds = stream.snapshot_holds(context, holder.plan, snapshot, walk.total)
                    offset = walk.checked(holds).next_offset
                if walk.overlap and snapshot is not None:  # the check failed: overlap from now
                    holder.snapshot = None
                    pipeline.stride = max(1, pipeline.page_size - 1)
    finally:
        pipeline.close()
