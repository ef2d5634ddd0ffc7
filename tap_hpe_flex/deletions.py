"""What vanished between two complete passes, whether it is safe to say so, and how to say it.

The Flex API has no change feed: a record deleted upstream simply stops appearing. After a
complete pass the tap compares the partition's keys with the previous pass's (``keysets.py``
stores them) and tells targets that ignore ``ACTIVATE_VERSION`` (target-duckdb) with one
*deletion marker* per vanished key: a RECORD carrying only the key fields and ``_sdc_deleted_at``.

A pass that looks complete can still be wrong: an API that answers an empty list by mistake
would otherwise wipe the warehouse. :func:`judge` therefore refuses to mark more than a share of
the previous keys deleted (default 50%), and refuses an empty pass after a non-empty one; the
caller logs the verdict's ``warning`` once and emits no markers for that partition. A refused
pass keeps the union of both key sets, so the refusal repeats on every run until an operator
looks (raise the share for one run if the mass deletion is real), and no deletion that happened
meanwhile is forgotten.

:class:`StreamPass` ties it together for one stream's complete pass: the reader feeds each
partition's keys into a :class:`KeyCollector` (one list append per record), and
:meth:`StreamPass.finish` returns the markers, whether ``ACTIVATE_VERSION`` may follow them, and
the key sets the run's final STATE stores.

No I/O and no SDK imports.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tap_hpe_flex.keysets import (
    KeySetError,
    decode_keys,
    encode_keys,
    encoded_count,
    overflow_encoding,
)

#: The Singer/Stitch metadata column targets read as "this row is deleted".
DELETED_AT = "_sdc_deleted_at"
#: Default largest share of a partition's previous keys one pass may mark deleted.
DEFAULT_MAX_DELETED_SHARE = 0.5
#: Within one partition, the key field whose values a key set holds. The other key fields
#: (``workspaceId`` in MSP mode, ``groupBy`` of order_transforms) are the partition's context.
PARTITION_KEY_FIELD = {"orders": "id", "devices": "id", "order_transforms": "value"}


def with_deleted_at(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``schema`` plus the optional ``_sdc_deleted_at`` (nullable date-time) of markers.

    Declared in the SCHEMA of every stream that can carry markers: target-duckdb only creates the
    column when the schema has it (or its metadata settings add it), and without the column a
    marker would just blank its row's other columns (docs/deletions.md).
    """
    properties = {**schema.get("properties", {})}
    properties[DELETED_AT] = {"type": ["null", "string"], "format": "date-time"}
    return {**schema, "properties": properties}


def vanished(previous: Collection[str], current: Collection[str]) -> list[str]:
    """Return the keys of the previous pass that the current pass did not deliver, sorted."""
    now = current if isinstance(current, (set, frozenset)) else set(current)
    return sorted(k for k in previous if k not in now)


@dataclass(frozen=True)
class Verdict:
    """The guard's decision for one partition after a complete pass.

    ``to_mark`` are the keys to emit deletion markers for (empty when refused); ``keep`` is the
    key set to store for the next pass; ``warning`` (None when allowed) is the one line to log.
    """

    previous_count: int | None
    current_count: int
    vanished: tuple[str, ...]
    warning: str | None
    keep: frozenset[str]

    @property
    def refused(self) -> bool:
        """Whether the guard withheld the markers."""
        return self.warning is not None

    @property
    def to_mark(self) -> tuple[str, ...]:
        """Keys to emit deletion markers for."""
        return () if self.refused else self.vanished


def judge(
    previous: Collection[str] | None,
    current: Collection[str],
    *,
    max_share: float = DEFAULT_MAX_DELETED_SHARE,
    label: str = "partition",
) -> Verdict:
    """Decide which vanished keys of one partition may be marked deleted.

    ``previous`` is None when there is no usable previous key set (first pass, overflow, an
    unreadable encoding): nothing can be marked. Refused: an empty pass after a non-empty one, or
    more than ``max_share`` of the previous keys gone. ``max_share >= 1`` turns both refusals off
    (for the one run that must apply a real mass deletion). ``label`` names the partition in the
    warning (stream and partition; never record values).
    """
    now = frozenset(current)
    if previous is None:
        _check_share(max_share)
        return Verdict(None, len(now), (), None, now)
    before = frozenset(previous)
    gone = tuple(vanished(before, now))
    warning = refusal(len(before), len(now), len(gone), max_share=max_share, label=label)
    keep = now if warning is None else before | now
    return Verdict(len(before), len(now), gone, warning, keep)


def judge_counts(
    previous_count: int | None,
    current_count: int,
    *,
    max_share: float = DEFAULT_MAX_DELETED_SHARE,
    label: str = "partition",
) -> str | None:
    """Guard a partition that kept no key set (above the bound) by its record counts.

    Markers need keys, but ``ACTIVATE_VERSION`` does not: before sending it for a stream the tap
    must also check partitions that kept only their count. Returns the warning, or None.
    """
    if previous_count is None:
        _check_share(max_share)
        return None
    gone = max(previous_count - current_count, 0)
    return refusal(previous_count, current_count, gone, max_share=max_share, label=label)


def _check_share(max_share: float) -> None:
    if not max_share >= 0.0:
        raise ValueError("max_share must not be negative")


def refusal(previous: int, current: int, gone: int, *, max_share: float, label: str) -> str | None:
    """Return the guard's one-line warning for ``gone`` of ``previous`` records, or None."""
    _check_share(max_share)
    if not gone or max_share >= 1.0:
        return None
    if not current:
        return (
            f"{label}: the pass delivered no records although the previous complete pass "
            f"delivered {previous}; no record is marked deleted (an API answering an empty "
            "list by mistake must not empty the warehouse)"
        )
    if gone > max_share * previous:
        return (
            f"{label}: {gone} of the previous pass's {previous} records "
            f"({gone / previous:.0%}) are missing, more than the allowed "
            f"{max_share:.0%}; no record is marked deleted. If the deletion is real, run once "
            "with a larger share"
        )
    return None


def rfc3339_utc(moment: dt.datetime) -> str:
    """``moment`` as RFC 3339 in UTC with microseconds and ``Z`` (naive means UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    text = aware.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def deletion_marker(key_fields: Mapping[str, Any], deleted_at: dt.datetime) -> dict[str, Any]:
    """One deletion-marker record: the key fields plus ``_sdc_deleted_at``, nothing else."""
    if not key_fields:
        raise ValueError("a deletion marker needs the record's key fields")
    if DELETED_AT in key_fields:
        raise ValueError(f"{DELETED_AT} is not a key field")
    return {**key_fields, DELETED_AT: rfc3339_utc(deleted_at)}


def marker_for(
    stream: str,
    key: str,
    context: Mapping[str, Any] | None,
    deleted_at: dt.datetime,
    *,
    primary_keys: Collection[str] | None = None,
) -> dict[str, Any]:
    """Build the deletion marker of one vanished key of ``stream``'s partition ``context``.

    The key set holds the partition's own key field (:data:`PARTITION_KEY_FIELD`); the rest of
    the composite key comes from the context: ``groupBy`` for order_transforms, ``workspaceId``
    in MSP mode. ``primary_keys`` (the stream's, as the SCHEMA message states them) is checked
    when given, so a marker can never miss a key column the target merges on.
    """
    field = PARTITION_KEY_FIELD[stream]
    record = {k: v for k, v in (context or {}).items() if k != field}
    record[field] = key
    if primary_keys is not None:
        missing = [k for k in primary_keys if k not in record]
        if missing:
            raise ValueError(f"{stream}: the partition context lacks key field(s) {missing}")
        record = {k: record[k] for k in primary_keys}
    return deletion_marker(record, deleted_at)


def partition_id(context: Mapping[str, Any] | None) -> str:
    """Name a partition's key set in the state stably: ``""``, or the context as sorted JSON."""
    if not context:
        return ""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":"))


class KeyCollector:
    """The keys one partition's pass delivers, collected cheaply and kept up to ``max_keys``.

    Why a batch list: the reader appends each record's key to :attr:`batch` (a bound
    ``list.append``, the cheapest per-record step Python has) and calls :meth:`absorb` every few
    dozen records, which moves the batch into a set in one C-level ``update``. Past the bound
    the set is dropped (memory stays bounded) and only :attr:`delivered` keeps counting.
    """

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.batch: list[Any] = []
        self.delivered = 0
        self._keys: set[Any] | None = set()

    def absorb(self) -> None:
        """Move the batch into the key set (clears it in place: a bound ``append`` stays valid)."""
        batch = self.batch
        self.delivered += len(batch)
        if self._keys is not None:
            self._keys.update(batch)
            if len(self._keys) > self.max_keys + 1:  # +1: a None key may be among them
                self._keys = None
        batch.clear()

    @property
    def overflowed(self) -> bool:
        """Whether the partition delivered more keys than the bound (no key set is kept)."""
        return self.keys() is None

    def keys(self) -> frozenset[str] | None:
        """Return the distinct keys delivered (as text), or None above the bound."""
        self.absorb()
        if self._keys is None:
            return None
        found = frozenset(str(k) for k in self._keys if k is not None)
        if len(found) > self.max_keys:
            self._keys = None
            return None
        return found


@dataclass(frozen=True)
class PassOutcome:
    """How a stream's pass ends: markers, then ``ACTIVATE_VERSION`` if ``activate``, then state.

    ``keysets`` is the new ``bookmarks.<stream>.keysets`` for the run's final STATE (None: the
    pass was incomplete, keep the state's key sets as they are). ``warnings`` are the guard's
    refusals (log each once as WARNING), ``notes`` what else an operator should know (INFO).
    """

    markers: tuple[dict[str, Any], ...]
    activate: bool
    keysets: dict[str, dict[str, Any]] | None
    warnings: tuple[str, ...]
    notes: tuple[str, ...]


class StreamPass:
    """One complete-or-not pass of a stream over all its partitions (see the module docstring).

    ``previous`` is the state's ``bookmarks.<stream>.keysets``; ``partitions`` how many
    partitions the pass reads. ``universe`` (``device_ids`` mode) limits the comparison to the
    configured ids, so an id dropped from the configuration never reads as a deletion.
    ``ACTIVATE_VERSION`` may follow only a pass the guard could check everywhere: every
    partition complete, with a previous key set (or count) of the same scope, none refused.
    """

    def __init__(
        self,
        stream: str,
        primary_keys: Sequence[str],
        previous: Any,
        *,
        partitions: int,
        max_keys: int,
        max_share: float,
        scope: str | None = None,
        universe: Collection[str] | None = None,
    ) -> None:
        self.stream = stream
        self.primary_keys = tuple(primary_keys)
        self.previous: Mapping[str, Any] = previous if isinstance(previous, Mapping) else {}
        self.expected = max(partitions, 1)
        self.max_keys = max_keys
        self.max_share = max_share
        self.scope = scope
        self.universe = None if universe is None else {k.casefold() for k in universe}
        self._read: dict[str, tuple[Mapping[str, Any] | None, KeyCollector]] = {}
        self._unread: list[str] = []

    def begin(self) -> KeyCollector:
        """Return the collector of a partition about to be read."""
        return KeyCollector(self.max_keys)

    def complete(self, context: Mapping[str, Any] | None, collector: KeyCollector) -> bool:
        """Record a partition read to its end; True when it was the pass's last partition."""
        self._read[partition_id(context)] = (context, collector)
        return self.ended

    def unread(self, context: Mapping[str, Any] | None) -> bool:
        """Record a partition not read (a skipped tenant); True when it was the last one."""
        self._unread.append(partition_id(context) or self.stream)
        return self.ended

    @property
    def ended(self) -> bool:
        """Whether every partition of the pass was either read or given up."""
        return len(self._read) + len(self._unread) >= self.expected

    def _label(self, pid: str) -> str:
        return f"{self.stream} {pid}" if pid else self.stream

    def _encode(self, keys: Collection[str]) -> dict[str, Any]:
        return encode_keys(keys, max_keys=self.max_keys, scope=self.scope)

    def _previous(self, pid: str) -> tuple[frozenset[str] | None, int | None, str | None]:
        """Return the previous key set, its count, and why ACTIVATE_VERSION must wait (or None).

        The keys are None when the previous pass kept none (overflow) or cannot be compared
        (first pass, another scope, an unknown format); ids no longer configured are left out
        of the comparison, and then ``ACTIVATE_VERSION`` (which would delete their rows) waits.
        """
        encoded = self.previous.get(pid)
        if encoded is None:
            return None, None, "no previous complete pass"
        try:
            keys = decode_keys(encoded, scope=self.scope)
        except KeySetError as exc:
            return None, None, str(exc)
        if keys is None:
            return None, encoded_count(encoded), None
        if self.universe is not None:
            kept = frozenset(k for k in keys if k.casefold() in self.universe)
            if len(kept) < len(keys):
                return kept, len(kept), f"{len(keys) - len(kept)} key(s) are no longer configured"
        return keys, len(keys), None

    def finish(self, deleted_at: dt.datetime) -> PassOutcome:
        """Judge every partition and say what the pass may emit (call once, when ``ended``)."""
        if self._unread:
            note = (
                f"{self.stream}: {len(self._unread)} partition(s) not read in this run; no "
                "record is marked deleted and no ACTIVATE_VERSION is sent"
            )
            return PassOutcome((), False, None, (), (note,))
        markers: list[dict[str, Any]] = []
        allowed: dict[str, dict[str, Any]] = {}
        refused: dict[str, dict[str, Any]] = {}
        warnings: list[str] = []
        notes: list[str] = []
        activate = True
        for pid, (context, collector) in sorted(self._read.items()):
            label = self._label(pid)
            prev, prev_count, why = self._previous(pid)
            if why is not None:
                activate = False
                notes.append(f"{label}: {why}: no ACTIVATE_VERSION in this run")
            current = collector.keys()
            if current is None:
                notes.append(
                    f"{label}: {collector.delivered} records, more than deletion_max_keys "
                    f"({self.max_keys}): no key set is kept and no record is marked deleted"
                )
                allowed[pid] = overflow_encoding(self.max_keys, collector.delivered, self.scope)
                refused[pid] = self.previous.get(pid) or allowed[pid]
                count_now = collector.delivered
                warning = judge_counts(prev_count, count_now, max_share=self.max_share, label=label)
            elif prev is None:
                allowed[pid] = refused[pid] = self._encode(current)
                warning = judge_counts(
                    prev_count, len(current), max_share=self.max_share, label=label
                )
            else:
                verdict = judge(prev, current, max_share=self.max_share, label=label)
                warning = verdict.warning
                allowed[pid] = self._encode(current)
                refused[pid] = self._encode(prev | current)
                markers.extend(
                    marker_for(
                        self.stream, key, context, deleted_at, primary_keys=self.primary_keys
                    )
                    for key in verdict.vanished
                )
            if warning is not None:
                warnings.append(warning)
        if warnings:
            return PassOutcome((), False, refused, tuple(warnings), tuple(notes))
        return PassOutcome(tuple(markers), activate, allowed, (), tuple(notes))
