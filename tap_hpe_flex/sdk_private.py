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

    def _all_fields_selected(self) -> bool:
        mask = self.mask
        cached = self.__dict__.get("_flex_mask")
        if cached is None or cached[0] is not mask:
            cached = (mask, all(mask.values()))
            self.__dict__["_flex_mask"] = cached
        return bool(cached[1])

    def _record_maps(self) -> list[tuple[str, StreamMap | None]]:
        """Each stream map's alias, with None for a map that returns the record unchanged."""
        maps = self.stream_maps
        cached = self.__dict__.get("_flex_maps")
        if cached is None or cached[0] is not maps:
            plan = [(m.stream_alias, None if passes_through(m) else m) for m in maps]
            cached = (maps, plan)
            self.__dict__["_flex_maps"] = cached
        return t.cast("list[tuple[str, StreamMap | None]]", cached[1])

    def _time_extracted(self) -> dt.datetime:
        """Now in UTC, read from the clock at most once per millisecond.

        Why: reading and converting the clock per record costs more than encoding the record;
        records extracted within one millisecond (a page's, in practice) share the stamp.
        """
        now = time.time()
        cached = self.__dict__.get("_flex_extracted")
        if cached is None or not 0 <= now - cached[0] < 0.001:
            cached = (now, dt.datetime.fromtimestamp(now, tz=dt.timezone.utc))
            self.__dict__["_flex_extracted"] = cached
        return t.cast("dt.datetime", cached[1])

    def _generate_record_messages(
        self, record: dict
    ) -> t.Generator[singer.RecordMessage, None, None]:
        """Generate RECORD messages as the SDK does, minus the mask when nothing is deselected."""
        version = self.table_version
        if not self._all_fields_selected():
            for message in super()._generate_record_messages(record):
                message.version = version
                yield message
            return
        extracted = self._time_extracted()
        for alias, stream_map in self._record_maps():
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
