"""FlexStream: the REST stream base shared by orders, devices and order transforms.

Paging (``limit``/``offset`` with a one-record overlap, or a snapshot check, that detects a list
shifting under the sync, see ``drift.py``; pipelined in ``pipelined.py``), the cheap record path and
the URL parameters live here; incremental plans in ``planning.py``, the snapshot check in
``snapshot.py``, sending and error mapping in ``requesting.py``. The stream classes in
``streams.py`` stay declarative.
"""

from __future__ import annotations

import typing as t
from functools import cached_property

import requests
import singer_sdk.singerlib as singer
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams.rest import PageContext

from tap_hpe_flex.conform import RecordConformer
from tap_hpe_flex.drift import OffsetWalk, default_key
from tap_hpe_flex.incremental import (
    UPDATED_SORT,
    Strategy,
    canonical_timestamp,
    updated_before_filter,
    updated_filter,
)
from tap_hpe_flex.odata import combine
from tap_hpe_flex.pipelined import consume, start_pipeline
from tap_hpe_flex.planning import FlexPlanning
from tap_hpe_flex.plans import CheckToken, PageToken, Plan, Snapshot
from tap_hpe_flex.prefetch import PagePipeline
from tap_hpe_flex.redact import install as install_redactor
from tap_hpe_flex.requesting import StrategyRejectedError
from tap_hpe_flex.transport import FlexHTTPRequest, PacedSession

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import HTTPRequest

    from tap_hpe_flex.runtime import FlexRuntime
    from tap_hpe_flex.tap import TapHpeFlex

#: Kept for code that imported them from here before the split.
__all__ = ["FlexStream", "PageToken", "Plan"]


def _context_key(context: Context | None) -> t.Hashable:
    return tuple(sorted((context or {}).items()))


class FlexStream(FlexPlanning):
    """Base for Flex streams: paging, pacing, shared token, strategies, error mapping."""

    #: Rate-limit / strategy key, e.g. ``orders``.
    endpoint: str = ""

    def __init__(self, tap: TapHpeFlex, runtime: FlexRuntime) -> None:
        self.runtime = runtime
        self._plan: Plan | None = None
        #: The last pass's paging walk (drift counters for logs, tests and the benchmark).
        self.last_walk: OffsetWalk | None = None
        self._pipelines: dict[t.Hashable, PagePipeline] = {}
        self._mask_seen: t.Any = None
        self._mask_full = False
        super().__init__(tap)

    # --- plumbing -----------------------------------------------------------------------------
    @property
    def url_base(self) -> str:
        """The API host from ``api_url``."""
        return str(self.config["api_url"]).rstrip("/")

    @property
    def authenticator(self) -> t.Any:
        """The tap-wide authenticator: one token shared by every stream."""
        return self.runtime.authenticator

    @cached_property
    def requests_session(self) -> requests.Session:
        """A session paced by the tap-wide per-endpoint limiter."""
        return PacedSession(self.runtime, pool_size=self.runtime.max_concurrent_requests + 2)

    @property
    def timeout(self) -> int:
        """``request_timeout`` seconds."""
        return t.cast("int", float(self.config.get("request_timeout", 60)))

    @cached_property
    def user_agent(self) -> str:
        """``user_agent`` setting (default ``tap-hpe-flex/<version>``)."""
        return str(self.config.get("user_agent") or self.runtime.default_user_agent)

    @property
    def stop_paging(self) -> bool:
        """True once a ``sort`` pass has reached records older than the bookmark."""
        return bool(self._plan and self._plan.stop)

    @property
    def offset_paging(self) -> bool:
        """True when the stream pages a list with ``limit``/``offset`` (see ``drift.py``)."""
        return True

    def record_key(self, item: dict[str, t.Any]) -> t.Hashable:
        """Return a raw item's identity, to recognise it across overlapping pages."""
        return default_key(item)

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """Build the request with ``%20``-encoded query values."""
        request = super().get_http_request(page=page)
        return FlexHTTPRequest(
            url=request.url,
            method=request.method,
            params=request.params,
            headers={**request.headers, "Accept": "application/json"},
            data=request.data,
        )

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        """``limit``/``offset`` plus the user filter and the strategy's filter or sort."""
        plan = self._plan
        if isinstance(next_page_token, PageToken):  # a pipelined page carries its own plan
            plan, next_page_token = next_page_token.plan, next_page_token.offset
        elif isinstance(next_page_token, CheckToken):  # a pass's snapshot check (snapshot.py)
            return self._check_params(next_page_token)
        params: dict[str, t.Any] = {"limit": self.page_size, "offset": next_page_token or 0}
        strategy_filter = None
        if plan and plan.bookmark is not None:
            if plan.strategy is Strategy.FILTER:
                strategy_filter = updated_filter(plan.bookmark)
            elif plan.strategy is Strategy.SORT:
                params["sort"] = UPDATED_SORT
        user_filter = self.runtime.filter_text(self.endpoint)
        if text := combine(user_filter, strategy_filter):
            params["filter"] = text
        return params

    def _check_params(self, token: CheckToken) -> dict[str, t.Any]:
        """Build a snapshot check: the pass's filter plus ``updatedAt lt T0``, or the newest."""
        plan, snapshot = token.plan, token.snapshot
        params: dict[str, t.Any] = {"limit": 1 if snapshot.by_sort else 0, "offset": 0}
        strategy_filter = None
        if plan.bookmark is not None and plan.strategy is Strategy.FILTER:
            strategy_filter = updated_filter(plan.bookmark)
        check_filter = None if snapshot.by_sort else updated_before_filter(snapshot.before)
        if snapshot.by_sort:
            params["sort"] = UPDATED_SORT
        user_filter = self.runtime.filter_text(self.endpoint)
        if text := combine(user_filter, strategy_filter, check_filter):
            params["filter"] = text
        return params

    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        """Page through the list with overlapping pages; re-read when the list shifted."""
        if not self.offset_paging:
            yield from super().request_records(context)
            return
        pipeline = self._pipelines.pop(_context_key(context), None)
        if pipeline is not None:
            yield from consume(self, pipeline, context)
            return
        send = self.request_decorator(self._request)
        self.last_walk = walk = OffsetWalk(
            self.page_size, name=self.name, key=self.record_key, log=self.logger
        )
        offset: int | None = 0
        snapshot: Snapshot | None = None
        decided = False  # whether a snapshot check replaces the overlap (decided once per pass)
        with self.get_http_request_counter() as counter:
            counter.with_context(context)
            while offset is not None:
                prepared = self.build_page_request(context, offset, None)
                response = send(prepared, context)
                counter.increment()
                self.update_sync_costs(prepared, response, context)
                body = self.page_payload(response)
                if not decided and self._plan is not None:
                    decided = True
                    date = response.headers.get("Date")
                    snapshot = self.snapshot_start(context, self._plan, body, date)
                    if snapshot is not None:
                        walk.use_snapshot_check()
                step = walk.accept(offset, body)
                yield from self.keep_changed(step.items)
                if self.stop_paging:
                    return
                offset = step.next_offset
                if walk.check_due and snapshot is not None and self._plan is not None:
                    counter.increment()
                    holds = self.snapshot_holds(context, self._plan, snapshot, walk.total)
                    offset = walk.checked(holds).next_offset

    # --- records ------------------------------------------------------------------------------
    #: The SDK's per-value conformance is replaced by ``conformer`` (see ``conform.py``).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @cached_property
    def conformer(self) -> RecordConformer:
        """Compile the schema check once per stream (SDK conformance only for what differs)."""
        return RecordConformer(self.name, self.schema, self.logger)

    def _all_fields_selected(self) -> bool:
        mask = self.mask
        if self._mask_seen is not mask:
            self._mask_seen = mask
            self._mask_full = all(mask.values())
        return self._mask_full

    def _generate_record_messages(
        self, record: dict
    ) -> t.Generator[singer.RecordMessage, None, None]:
        """Generate RECORD messages as the SDK does, minus the work that changes nothing.

        Private SDK method (0.54.9), pinned by ``tests/performance``: the selection mask is
        applied only when some property is deselected, and type conformance already happened in
        ``post_process`` (``conformer``). Stream maps, version and ``time_extracted`` are as in
        the SDK.
        """
        if not self._all_fields_selected():
            pop_deselected_record_properties(record, self.schema, self.mask)
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield singer.RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=utc_now(),
                )

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """Yield the page's items, applying the bookmark locally (all strategies)."""
        items = self.page_payload(response).get("items") or []
        yield from self.keep_changed(item for item in items if isinstance(item, dict))

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Write ``updatedAt`` in the canonical form the bookmarks use."""
        value = row.get("updatedAt")
        if isinstance(value, str):
            try:
                row["updatedAt"] = canonical_timestamp(value)
            except ValueError:
                self.logger.warning("%s: unparseable updatedAt %r kept as is", self.name, value)
        return row

    # --- pipelined paging (see prefetch.py) ----------------------------------------------------
    def start_pipelines(self, contexts: t.Iterable[Context | None]) -> None:
        """Start fetching every partition's pages now (main thread, at the run's start)."""
        if not self.offset_paging:
            return
        for context in contexts:
            self._pipelines[_context_key(context)] = start_pipeline(self, context)

    def stop_pipelines(self) -> None:
        """Drop pipelines never consumed (a failed run); their spools are deleted."""
        for pipeline in self._pipelines.values():
            pipeline.close()
        self._pipelines.clear()

    def note_page(self, body: dict[str, t.Any], context: Context | None) -> None:
        """Told of each page consumed from a pipeline (progress counting in subclasses)."""

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Run the partition with the planned strategy, falling back when a probe is refused."""
        install_redactor()  # idempotent: covers handlers added after the tap was built
        self.runtime.begin_partition()
        pipeline = self._pipelines.get(_context_key(context))
        if pipeline is not None:
            self._plan = pipeline.holder.plan  # type: ignore[attr-defined]
            yield from self.request_records(context)
            return
        self._plan = plan = self._make_plan(context)
        while True:
            try:
                yield from self.request_records(context)
                return
            except StrategyRejectedError as exc:
                nxt = self.runtime.strategies.reject(self.endpoint, exc.strategy, exc.reason)
                _, probing = self.runtime.strategies.strategy_for(self.endpoint)
                self._plan = plan = Plan(nxt, probing, plan.bookmark)

    # --- requests and errors ------------------------------------------------------------------
