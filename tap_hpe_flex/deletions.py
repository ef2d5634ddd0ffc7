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

No I/O and no SDK imports.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

#: The Singer/Stitch metadata column targets read as "this row is deleted".
DELETED_AT = "_sdc_deleted_at"
#: Default largest share of a partition's previous keys one pass may mark deleted.
DEFAULT_MAX_DELETED_SHARE = 0.5
#: Within one partition, the key field whose values a key set holds. The other key fields
#: (``workspaceId`` in MSP mode, ``groupBy`` of order_transforms) are the partition's context.
PARTITION_KEY_FIELD = {"orders": "id", "devices": "id", "order_transforms": "value"}


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
