"""FlexStream: the singer-sdk hooks of every Flex stream, each handing off to a small part.

Why only hooks here: what a stream *is* (path, keys, schema, permission, filter) is declared in
``streams.py``; how a partition is read is ``reading.py``; how a request is sent is
``requester.py``. This class connects them to the SDK: partitions, records, bookmarks, progress
and tenant skips.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property, partial

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_hpe_flex.conform import RecordConformer
from tap_hpe_flex.drift import default_key
from tap_hpe_flex.errors import FlexAPIError, FlexUserError, TokenRefusedError
from tap_hpe_flex.full_table import VersionedPasses
from tap_hpe_flex.incremental import (
    canonical_timestamp,
    minus_margin,
    parse_http_date,
    parse_timestamp,
)
from tap_hpe_flex.odata import ODataFilter
from tap_hpe_flex.partition import ListPartition, PartitionRequests
from tap_hpe_flex.reading import (
    PageSource,
    PartitionReader,
    PrefetchedPages,
    Prefetcher,
    SequentialPages,
)
from tap_hpe_flex.redact import install as install_redactor
from tap_hpe_flex.tenants import WHOLE_TENANT, tenant_failure
from tap_hpe_flex.transport import endpoint_key

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_hpe_flex.drift import Key, OffsetWalk
    from tap_hpe_flex.progress import PartitionProgress
    from tap_hpe_flex.runtime import FlexRuntime

#: Records counted per progress update (one lock per batch instead of per record).
_PROGRESS_BATCH = 64


def context_key(context: Context | None) -> tuple[tuple[str, t.Any], ...]:
    """Return a partition's context as a hashable key."""
    return tuple(sorted((context or {}).items()))


class FlexStream(VersionedPasses):
    """The SDK hooks shared by the Flex streams (see the module docstring)."""

    #: API path under ``api_url``, e.g. ``/flex/v1beta1/orders``.
    path: str = ""
    #: The GreenLake permission the stream needs (a 403 names it; MSP skips that scope).
    permission: str = ""
    #: The setting holding the stream's OData filter, and the fields it may name.
    filter_setting: str | None = None
    filterable_fields: tuple[str, ...] = ()
    #: Whether the stream narrows syncs by ``updatedAt`` (orders, devices).
    incremental: bool = False
    #: The unique order its passes ask for and check (None: the API's default is unique).
    page_order: str | None = None

    #: The SDK's per-value conformance is replaced by ``conformer`` (see ``conform.py``).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, runtime: FlexRuntime) -> None:
        self.runtime = runtime
        self.flex_tap = tap
        self.settings = runtime.settings
        super().__init__(tap)
        if self.settings.msp:
            natural = t.cast("tuple[str, ...]", type(self).primary_keys)
            self.primary_keys = ("workspaceId", *natural)
        self.requester = runtime.requester(self.name, self.permission, self.logger)
        self.prefetcher = Prefetcher()
        #: The last partition's paging walk (drift counters for logs, tests and the benchmark).
        self.last_walk: OffsetWalk | None = None
        self._strategies: set[str] = set()
        self._old_state_warned = False
        if runtime.max_concurrent_requests > 1:
            runtime.at_run_start(self.start_prefetch)

    # --- declarations derived -------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """Rate-limit and strategy key of the stream's list endpoint, e.g. ``orders``."""
        return endpoint_key(self.path)

    @property
    def rate_limit_keys(self) -> tuple[str, ...]:
        """Rate-limit keys whose requests count for this stream."""
        return (self.endpoint,)

    @property
    def url(self) -> str:
        """The list endpoint's URL."""
        return self.settings.api_url + self.path

    @cached_property
    def user_filter(self) -> str | None:
        """The stream's OData filter as sent (FlexConfigError when the setting is invalid)."""
        text = self.settings.filters.get(self.filter_setting or "")
        if not text:
            return None
        parsed = ODataFilter.parse(
            text, self.endpoint, fields=self.filterable_fields, setting=str(self.filter_setting)
        )
        return parsed.render()

    def filter_problem(self) -> str | None:
        """Why the stream cannot run with the configured filter, when it is selected."""
        return None

    @cached_property
    def home_workspace(self) -> str | None:
        """The configured workspace, normalised once (every record outside MSP mode carries it)."""
        return self.settings.home_workspace

    @cached_property
    def conformer(self) -> RecordConformer:
        """Compile the schema check once per stream (SDK conformance only for what differs)."""
        return RecordConformer(self.name, self.schema, self.logger)

    # --- partitions -----------------------------------------------------------------------------
    @property
    def partitions(self) -> list[dict] | None:
        """One partition per workspace in MSP mode (the tenant list is read on first use)."""
        if not self.settings.msp:
            return None
        return [{"workspaceId": ws} for ws in self.runtime.workspaces()]

    def workspace_of(self, context: Context | None) -> str | None:
        """Return the tenant workspace of a partition (None outside MSP mode)."""
        return (context or {}).get("workspaceId") if self.settings.msp else None

    def record_key(self, context: Context | None) -> t.Callable[[dict[str, t.Any]], Key]:
        """How a raw item is recognised across overlapping pages (its ``id``)."""
        return default_key

    def list_partition(self, context: Context | None) -> ListPartition:
        """Describe, as data, what reading a partition needs."""
        return ListPartition(
            stream=self.name,
            url=self.url,
            page_size=self.settings.page_size,
            key=self.record_key(context),
            user_filter=self.user_filter,
            workspace=self.workspace_of(context),
            incremental=self.incremental,
            order=self.page_order,
        )

    def partition_requests(self, context: Context | None) -> PartitionRequests:
        """Return the request builder of one partition."""
        return PartitionRequests(
            self.list_partition(context),
            self.requester,
            self.runtime.strategies,
            self.runtime.probe_lock(self.endpoint),
            self.logger,
            per_window=self.runtime.per_window,
        )

    def partition_label(self, context: Context | None) -> str:
        """How progress lines name the partition."""
        parts = []
        if ws := (context or {}).get("workspaceId"):
            parts.append(f"workspace {self.runtime.skips.label(ws)}")
        parts.extend(f"{k}={v}" for k, v in (context or {}).items() if k != "workspaceId")
        return ", ".join(parts)

    # --- bookmarks ------------------------------------------------------------------------------
    def starting_bookmark(self, context: Context | None) -> dt.datetime | None:
        """Return the bookmark of the previous run, or ``start_date`` (whichever is later).

        None for a full-table pass: nothing may narrow it, or unread keys would look deleted.
        """
        if not self.incremental or self.full_table:
            return None
        previous = self.get_context_state(context).get("replication_key_value")
        found = [parse_timestamp(v) for v in (previous, self.settings.start_date) if v]
        return max(found) if found else None

    def get_replication_key_signpost(self, context: Context | None = None) -> t.Any:
        """Cap bookmarks at the run's start minus a margin (lowered to the server's Date)."""
        if not self.is_timestamp_replication_key or self.full_table:
            return None
        now = dt.datetime.now(tz=dt.timezone.utc)
        if self.runtime.started_at is not None:  # pages may have been read since then
            now = min(now, self.runtime.started_at)
        return canonical_timestamp(minus_margin(now))

    def cap_bookmark(self, context: Context | None, date: str | None) -> None:
        """Write the partition's own cap (the SDK writes only the stream's), lowered to ``Date``.

        A record updated while the run reads must be read again by the next run; without a cap
        in the partition's state, its bookmark would be its newest record.
        """
        if not self.is_timestamp_replication_key or self.full_table:
            return
        cap = self.get_replication_key_signpost(context)
        server_now = parse_http_date(date)
        if server_now is not None:
            cap = min(cap, canonical_timestamp(minus_margin(server_now)))
        current = self.get_context_state(context).get("replication_key_signpost")
        if current is None or cap < canonical_timestamp(current):
            self.state_manager.write_replication_key_signpost(cap, context=context)

    # --- records --------------------------------------------------------------------------------
    def start_prefetch(self) -> None:
        """Queue every partition's pages to be fetched ahead (at the run's start)."""
        if not self.selected:
            return
        contexts: list[dict | None] = [None]
        if self.partitions:
            contexts = list(self.partitions)
        self.prefetcher.plan((context_key(c), partial(self.prefetched, c)) for c in contexts)

    def prefetched(self, context: Context | None) -> PageSource:
        """Return a partition's pages, fetched ahead from its starting bookmark."""
        requests = self.partition_requests(context)
        plan = requests.starting_plan(self.starting_bookmark(context))
        pool = self.runtime.worker_pool(self.endpoint)
        return PrefetchedPages(requests, plan, pool, self.runtime.max_concurrent_requests)

    def read_partition(
        self, context: Context | None, part: PartitionProgress
    ) -> t.Iterator[dict[str, t.Any]]:
        """Read one partition of the list endpoint (see ``reading.py``)."""
        source = self.prefetcher.take(context_key(context))
        if source is None:
            requests = self.partition_requests(context)
            source = SequentialPages(
                requests, requests.starting_plan(self.starting_bookmark(context))
            )
        reader = PartitionReader(
            source.requests,
            source,
            on_page=lambda body: self.note_page(part, body),
            on_date=lambda date: self.cap_bookmark(context, date),
            log=self.logger,
        )
        self.last_walk = reader.walk
        try:
            yield from reader.records()
        finally:
            self.last_walk = reader.walk  # a pass read again has a walk of its own
            if reader.plan is not None:
                self._strategies.add(reader.plan.strategy.value)

    def note_page(self, part: PartitionProgress, body: dict[str, t.Any]) -> None:
        """Count a page read in the partition's progress."""
        total, offset = body.get("total"), body.get("offset")
        start = offset if isinstance(offset, int) else part.position
        position = start + len(body.get("items") or [])
        self.runtime.progress.request(
            part, total=total if isinstance(total, int) else None, position=position
        )

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Read a partition, counting progress; in MSP mode skip a tenant that refuses.

        In a full-table pass the partition's keys are collected (one list append per record)
        and the last partition ends the pass (:meth:`end_pass`); what that pass may emit waits
        for the end of the run (:meth:`finish_run`).
        """
        install_redactor()  # idempotent: covers handlers added after the tap was built
        self.runtime.begin_partition()
        full_pass = self.begin_pass()
        workspace = self.workspace_of(context)
        if workspace and self.runtime.skips.is_skipped(workspace, self.permission):
            self.logger.info("%s: tenant %s is skipped in this run", self.name, workspace)
            if (source := self.prefetcher.take(context_key(context))) is not None:
                source.close()
            if full_pass is not None and full_pass.unread(context):
                self.end_pass(full_pass)
            return
        self._warn_old_state()
        self.cap_bookmark(context, None)
        progress = self.runtime.progress
        part = progress.start(self.name, self.partition_label(context))
        keys = full_pass.begin() if full_pass is not None else None
        append = keys.batch.append if keys is not None else None
        field = self.key_field(context)
        pending = 0
        try:
            for record in self.read_partition(context, part):
                pending += 1
                if pending == _PROGRESS_BATCH:
                    progress.record(part, pending)
                    pending = 0
                    if keys is not None:
                        keys.absorb()
                if append is not None:  # a full-table pass: one list append per record
                    append(record.get(field))
                yield record
        except FlexUserError as exc:
            reason = tenant_failure(exc) if workspace else None
            if workspace is None or reason is None:
                raise
            whole = isinstance(exc, TokenRefusedError) or not (
                isinstance(exc, FlexAPIError) and exc.status == 403
            )
            self.runtime.skips.skip(workspace, WHOLE_TENANT if whole else self.permission, reason)
            # Records read before the failure were emitted, but the bookmark must not move.
            self.get_context_state(context).pop("progress_markers", None)
            keys = None  # not read to the end: the pass is incomplete
        finally:
            progress.record(part, pending)
            progress.finish(part, ", ".join(sorted(self._strategies)) or None)
        if full_pass is None:
            return
        ended = full_pass.unread(context) if keys is None else full_pass.complete(context, keys)
        if ended:
            self.end_pass(full_pass)

    def _warn_old_state(self) -> None:
        if self._old_state_warned or not self.settings.msp:
            return
        self._old_state_warned = True
        if self.stream_state.get("replication_key_value"):
            self.logger.warning(
                "%s: the state holds a bookmark from a run without tenant_workspace_ids; "
                "bookmarks are now kept per workspace, so it is not used (each workspace starts "
                "from start_date)",
                self.name,
            )

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> t.Iterable[Context | None]:
        """No child context for a stream without child streams (none of the tap's has any).

        Why: the SDK's default makes a context for every record and copies it (a copy of the
        record) for children that do not exist; a stream given children still gets them.
        """
        if not self.child_streams:
            return ()
        return super().generate_child_contexts(record, context)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Canonical ``updatedAt``, the record's ``workspaceId``, and the schema's types.

        A record whose ``updatedAt`` cannot be read is skipped and reported (``conform.py``):
        emitted, it would move the bookmark to a value no later run can compare.
        """
        if self.replication_key:
            try:
                row["updatedAt"] = canonical_timestamp(row["updatedAt"])
            except (KeyError, TypeError, ValueError, AttributeError):
                ident = str(row.get("id") or "?")
                self.conformer.note_skipped("updatedAt", ident)
                return None
        row["workspaceId"] = (context or {}).get("workspaceId") or self.home_workspace
        return self.conformer.conform(row)

    # --- --test ---------------------------------------------------------------------------------
    def check_params(self, context: Context | None) -> dict[str, t.Any]:
        """Query of the ``--test`` request: one record, as a sync would ask."""
        return {"limit": 1, "offset": 0, **self.list_partition(context).extra_params}

    def check_context(self, workspace: str | None) -> dict[str, t.Any] | None:
        """Return the partition ``--test`` checks (a workspace, and what the stream needs)."""
        return {"workspaceId": workspace} if workspace else None

    def check_access(self, workspace: str | None) -> str:
        """Make one cheap request as a sync would; raise FlexUserError if refused.

        Returns a note for the report ("" when there is nothing to add).
        """
        context = self.check_context(workspace)
        self.requester.get(self.url, self.check_params(context), workspace=workspace)
        return ""
