"""Bad values in chosen fields: records that break the schema the way a drifting API might.

A spec such as ``devices.serialNumber=null@10,orders.generation=string@0.05`` spoils, in the
answers (never in the store), one field of some records: ``@N`` picks about one record in N,
``@P`` (a fraction with a decimal point) about that share of them; without a selector one in 10.
Which records is decided by a hash of (seed, resource, field, record id), so the same records are
bad on every request, on every page and through ``/devices/{id}``, whatever the sort, filter or
page size, and a record inserted later is spoiled or not by the same rule. Only fields a record
carries are spoiled (``select`` still decides what is returned).

Kinds: ``null`` (JSON null), ``missing`` (the field is left out), ``string`` (a non-string value as
a string: ``3`` becomes ``"3"``), ``number`` (an integer where a string belongs) and ``garbage``
(the string ``"not-a-date"``, which no date, number or boolean parser accepts).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .query import DEVICE_FIELDS, ORDER_FIELDS

KINDS = ("null", "missing", "string", "number", "garbage")
GARBAGE = "not-a-date"
DEFAULT_ONE_IN = 10
_SPEC = re.compile(
    r"(?P<resource>orders|devices)\.(?P<field>[A-Za-z]+)=(?P<kind>[a-z]+)"
    r"(?:@(?P<selector>[0-9.]+))?"
)


@dataclass(frozen=True)
class BadValue:
    """One field of one resource spoiled in about one record in ``one_in`` (or a ``rate``)."""

    resource: str
    field: str
    kind: str
    one_in: int = DEFAULT_ONE_IN
    rate: float | None = None

    def hits(self, record_id: str, seed: int) -> bool:
        """Tell whether this spec spoils the record with this ``id`` (stable for a seed)."""
        digest = zlib.crc32(f"{seed}:{self.resource}.{self.field}:{record_id}".encode())
        if self.rate is not None:
            return digest / 2**32 < self.rate
        return digest % self.one_in == 0

    def spoil(self, value: Any, record_id: str) -> Any:
        """Return the bad value that replaces ``value`` (``missing`` is handled by the caller)."""
        if self.kind == "null":
            return None
        if self.kind == "garbage":
            return GARBAGE
        if self.kind == "number":
            return zlib.crc32(record_id.encode()) % 100_000
        return value if isinstance(value, str) else json.dumps(value)


def parse_bad_values(text: str | None) -> tuple[BadValue, ...]:
    """Parse a comma-separated spec; a bad one raises ValueError naming the offending part."""
    fields = {"orders": ORDER_FIELDS, "devices": DEVICE_FIELDS}
    specs: list[BadValue] = []
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        match = _SPEC.fullmatch(part)
        if match is None:
            raise ValueError(
                f"bad_values entry {part!r}: expected RESOURCE.FIELD=KIND[@N|@P], e.g. "
                "devices.serialNumber=null@10"
            )
        resource, field, kind = match["resource"], match["field"], match["kind"]
        if field not in fields[resource]:
            raise ValueError(f"bad_values entry {part!r}: {resource} have no field {field!r}")
        if kind not in KINDS:
            raise ValueError(f"bad_values entry {part!r}: kind must be one of {', '.join(KINDS)}")
        specs.append(_with_selector(BadValue(resource, field, kind), match["selector"], part))
    return tuple(specs)


def _with_selector(spec: BadValue, selector: str | None, part: str) -> BadValue:
    if selector is None:
        return spec
    try:
        if "." in selector:
            rate = float(selector)
            if not 0.0 < rate <= 1.0:
                raise ValueError
            return BadValue(spec.resource, spec.field, spec.kind, rate=rate)
        one_in = int(selector)
        if one_in < 1:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"bad_values entry {part!r}: @N needs an integer N >= 1, @P a share 0 < P <= 1"
        ) from None
    return BadValue(spec.resource, spec.field, spec.kind, one_in=one_in)


def spoiled_fields(
    record: dict[str, Any], resource: str, specs: Iterable[BadValue], seed: int
) -> list[BadValue]:
    """Return the specs that spoil this record (fields it carries, selected by its ``id``)."""
    record_id = str(record.get("id", ""))
    return [
        s for s in specs if s.resource == resource and s.field in record and s.hits(record_id, seed)
    ]


def spoil_record(
    record: dict[str, Any], resource: str, specs: Iterable[BadValue], seed: int
) -> dict[str, Any]:
    """Return the record as a bad server would send it (a copy when anything changed)."""
    hits = spoiled_fields(record, resource, specs, seed)
    if not hits:
        return record
    record_id = str(record.get("id", ""))
    out = dict(record)
    for spec in hits:
        if spec.kind == "missing":
            out.pop(spec.field, None)
        else:
            out[spec.field] = spec.spoil(record[spec.field], record_id)
    return out
