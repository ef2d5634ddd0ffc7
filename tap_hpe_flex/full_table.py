"""Full-table passes: one table version per run, key sets, deletion markers, ACTIVATE_VERSION.

Why a layer of its own: a full-table pass (``order_transforms`` always; ``orders``/``devices``
when the catalog says FULL_TABLE) is the only kind of pass that can see deletions, and what it
emits is a contract with the loaders (docs/deletions.md, measured by
tests/e2e/test_loader_deletions.py): every RECORD carries the run's version; after the run's
last record, only when the run succeeded, every partition of the stream was read to the end and
the guard allowed it, one deletion marker per vanished key (no version) and then
``ACTIVATE_VERSION``; the new key sets go into the run's final STATE only. The decisions
themselves are ``deletions.StreamPass`` (no SDK); this class connects them to the stream.
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t

import singer_sdk.singerlib as singer
from singer_sdk.mapper import RemoveRecordTransform

from tap_hpe_flex.deletions import PassOutcome, StreamPass
from tap_hpe_flex.keysets import scope_fingerprint
from tap_hpe_flex.sdk_private import FastRecordMessages

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_hpe_flex.settings import Settings

FULL_TABLE = "FULL_TABLE"


class VersionedPasses(FastRecordMessages):
    """The full-table side of a Flex stream (see the module docstring)."""

    settings: Settings
    flex_tap: Tap
    filter_setting: str | None
    #: This run's full-table pass (None until it starts, or when the stream is incremental).
    full_pass: StreamPass | None = None
    #: What the pass ended with (None until every partition was read or given up).
    pass_outcome: PassOutcome | None = None

    @property
    def full_table(self) -> bool:
        """Whether this run reads the stream whole (FULL_TABLE): versioned, with key sets."""
        return self.replication_method == FULL_TABLE

    @property
    def emit_activate_version_messages(self) -> bool:
        """Never the SDK's ACTIVATE_VERSION: it comes before the records and would empty a table.

        The tap sends its own after a complete pass (:meth:`finish_run`), whatever the config says.
        """
        return False

    def key_field(self, context: Context | None) -> str:
        """Return the field of a raw item that a partition's key set holds (its ``id``)."""
        return "id"

    @property
    def key_scope(self) -> str | None:
        """What the pass was asked for (its filter); a key set of another scope is not compared."""
        return scope_fingerprint(filter=self.settings.filters.get(self.filter_setting or ""))

    @property
    def key_universe(self) -> tuple[str, ...] | None:
        """The only keys that may be marked deleted (None: any)."""
        return None

    def begin_pass(self) -> StreamPass | None:
        """Start this run's full-table pass at its first partition (None when incremental)."""
        if self.full_pass is None and self.full_table:
            settings = self.settings
            self.table_version = int(time.time() * 1000)
            self.full_pass = StreamPass(
                self.name,
                self.primary_keys,
                self.stream_state.get("keysets"),
                partitions=len(self.partitions or ()),
                max_keys=settings.deletion_max_keys,
                max_share=settings.deletion_max_share,
                scope=self.key_scope,
                universe=self.key_universe,
            )
        return self.full_pass

    def end_pass(self, full_pass: StreamPass) -> None:
        """After the pass's last partition: judge it (log the guard's warnings now, once).

        What it may emit waits for the end of a successful run (:meth:`finish_run`).
        """
        outcome = self.pass_outcome = full_pass.finish(dt.datetime.now(tz=dt.timezone.utc))
        for line in outcome.notes:
            self.logger.info("%s", line)
        for line in outcome.warnings:
            self.logger.warning("%s", line)

    def finish_run(self) -> None:
        """At the end of a successful run: markers, then ACTIVATE_VERSION, then the key sets.

        Why at the run's end, after every stream's records: a run that fails or is interrupted
        anywhere sends no marker and no ACTIVATE_VERSION at all, so it deletes nothing. Markers
        carry only the key and ``_sdc_deleted_at`` and no version (docs/deletions.md); they are
        written directly, never through the record conformer. The key sets go into the state
        for the run's final STATE, which the tap writes next.
        """
        outcome = self.pass_outcome
        if outcome is None:
            return
        now = dt.datetime.now(tz=dt.timezone.utc)
        maps = [m for m in self.stream_maps if not isinstance(m, RemoveRecordTransform)]
        for marker in outcome.markers:
            for stream_map in maps:
                mapped = stream_map.transform(marker)
                if mapped is not None:
                    self.flex_tap.write_message(
                        singer.RecordMessage(
                            stream=stream_map.stream_alias, record=mapped, time_extracted=now
                        )
                    )
        if outcome.markers:
            self.logger.info(
                "%s: %d record(s) vanished since the last complete pass: marked deleted",
                self.name,
                len(outcome.markers),
            )
        if outcome.activate and self.table_version is not None:
            for stream_map in maps:
                self.flex_tap.write_message(
                    singer.ActivateVersionMessage(
                        stream=stream_map.stream_alias, version=self.table_version
                    )
                )
        if outcome.keysets is not None:
            self.stream_state["keysets"] = outcome.keysets
