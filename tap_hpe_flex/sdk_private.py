"""Every singer-sdk name the tap uses that the SDK does not publish, in this one module.

Why each is unavoidable, and what pins it (``tests/tap/test_sdk_private.py`` fails loudly when an
SDK release renames or stops calling one of them; ``pyproject.toml`` pins singer-sdk to the
releases those tests pass on):

1. ``Stream._generate_record_messages`` (overridden): the SDK applies the catalog's selection mask
   to every record even when every property is selected, and its conformance already ran in
   ``post_process`` (``conform.py``); skipping that work is a third of the per-record CPU. The
   override also stamps the tap's own table version (:attr:`FastRecordMessages.table_version`,
   set for full-table passes) instead of the SDK's, whose ACTIVATE_VERSION would come before the
   records (the tap sends its own after them, see docs/deletions.md). Its records are
   :class:`~tap_hpe_flex.writer.PreparedRecord` messages, which the tap's writer encodes in one
   call; a map that passes records through unchanged (the SDK's ``SameRecordTransform`` without
   flattening, what every stream has unless ``stream_maps`` say otherwise) is not called.
2. ``helpers._typing.conform_record_data_types``: the SDK's own conformance, used for the rare
   record that does not already match the schema, so unknown fields are dropped with the SDK's
   warning exactly as in any other SDK tap.
3. ``Tap.sync_all`` (marked final, extended): the SDK has no end-of-run hook; the extension only
   adds :meth:`RunHooks.after_sync` after the SDK's own sync, which logs the run's summaries and
   writes the final STATE.
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t

from singer_sdk import Stream, Tap
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_hpe_flex.writer import PreparedRecord

if t.TYPE_CHECKING:
    import singer_sdk.singerlib as singer
    from singer_sdk.mapper import StreamMap

__all__ = ["FastRecordMessages", "RunHooks", "TypeConformanceLevel", "conform_record_data_types"]


class FastRecordMessages(Stream):
    """A stream whose RECORD messages skip the selection mask when every property is selected.

    Every RECORD carries :attr:`table_version` (None: no version, as for incremental passes).
    """

    #: The version of this run's full-table pass (milliseconds since the epoch), or None.
    table_version: int | None = None

    #: (selection mask, stream maps) the record plan was made for, and the plan: each map's
    #: alias with None for a map that returns the record unchanged; no plan when the mask
    #: deselects a property (the SDK's own method then builds the messages).
    _flex_plan: tuple[t.Any, t.Any, list[tuple[str, StreamMap | None]] | None] | None = None
    #: The last clock reading (``time.time()``) and the UTC stamp made from it.
    _flex_clock: float = -1.0
    _flex_stamp: dt.datetime = dt.datetime.fromtimestamp(0, tz=dt.timezone.utc)

    def _record_plan(self) -> list[tuple[str, StreamMap | None]] | None:
        """Return the fast path's map plan (None when a property is deselected)."""
        mask, maps = self.mask, self.stream_maps
        cached = self._flex_plan
        if cached is None or cached[0] is not mask or cached[1] is not maps:
            plan = None
            if all(mask.values()):
                plan = [(m.stream_alias, None if passes_through(m) else m) for m in maps]
            cached = self._flex_plan = (mask, maps, plan)
        return cached[2]

    def _time_extracted(self) -> dt.datetime:
        """Now in UTC, read from the clock at most once per millisecond.

        Why: reading and converting the clock per record costs more than encoding the record;
        records extracted within one millisecond (a page's, in practice) share the stamp.
        """
        now = time.time()
        if not 0 <= now - self._flex_clock < 0.001:
            self._flex_clock = now
            self._flex_stamp = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc)
        return self._flex_stamp

    def _generate_record_messages(
        self, record: dict
    ) -> t.Generator[singer.RecordMessage, None, None]:
        """Generate RECORD messages as the SDK does, minus the mask when nothing is deselected."""
        version = self.table_version
        plan = self._record_plan()
        if plan is None:
            for message in super()._generate_record_messages(record):
                message.version = version
                yield message
            return
        extracted = self._time_extracted()
        for alias, stream_map in plan:
            mapped = record if stream_map is None else stream_map.transform(record)
            if mapped is not None:
                yield PreparedRecord(alias, mapped, version, extracted)


def passes_through(stream_map: StreamMap) -> bool:
    """Say whether the map is the SDK's default one, which returns each record unchanged."""
    return type(stream_map) is SameRecordTransform and not stream_map.flattening_enabled


class RunHooks(Tap):
    """A tap with hooks around the SDK's whole-run sync (which the SDK marks final)."""

    def before_sync(self) -> None:
        """Run before the SDK syncs any stream."""

    def after_sync(self, *, failed: bool) -> None:
        """Run after the SDK's sync, also when it failed (the error propagates afterwards)."""

    def sync_all(self) -> None:  # type: ignore[misc]  # final in the SDK; extended, not replaced
        """Run the SDK's sync between :meth:`before_sync` and :meth:`after_sync`."""
        self.before_sync()
        try:
            super().sync_all()
        except BaseException:
            self.after_sync(failed=True)
            raise
        self.after_sync(failed=False)
