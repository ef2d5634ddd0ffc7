"""Every singer-sdk name the tap uses that the SDK does not publish, in this one module.

Why each is unavoidable, and what pins it (``tests/tap/test_sdk_private.py`` fails loudly when an
SDK release renames or stops calling one of them; ``pyproject.toml`` pins singer-sdk to the
releases those tests pass on):

1. ``Stream._generate_record_messages`` (overridden): the SDK applies the catalog's selection mask
   to every record even when every property is selected, and its conformance already ran in
   ``post_process`` (``conform.py``); skipping that work is a third of the per-record CPU.
2. ``Stream._stream_version``: the table version the SDK's ACTIVATE_VERSION announced, which every
   RECORD must carry (read only).
3. ``helpers._typing.conform_record_data_types``: the SDK's own conformance, used for the rare
   record that does not already match the schema, so unknown fields are dropped with the SDK's
   warning exactly as in any other SDK tap.
4. ``Tap.sync_all`` (marked final, extended): the SDK has no end-of-run hook; the extension only
   adds :meth:`RunHooks.after_sync` after the SDK's own sync, which logs the run's summaries.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import singer_sdk.singerlib as singer
from singer_sdk import Stream, Tap
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel

__all__ = ["FastRecordMessages", "RunHooks", "TypeConformanceLevel", "conform_record_data_types"]


class FastRecordMessages(Stream):
    """A stream whose RECORD messages skip the selection mask when every property is selected."""

    def _all_fields_selected(self) -> bool:
        mask = self.mask
        cached = self.__dict__.get("_flex_mask")
        if cached is None or cached[0] is not mask:
            cached = (mask, all(mask.values()))
            self.__dict__["_flex_mask"] = cached
        return bool(cached[1])

    def _generate_record_messages(
        self, record: dict
    ) -> t.Generator[singer.RecordMessage, None, None]:
        """Generate RECORD messages as the SDK does, minus the mask when nothing is deselected."""
        if not self._all_fields_selected():
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield singer.RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=dt.datetime.now(tz=dt.timezone.utc),
                )


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
