"""Record conformance at a fraction of the SDK's cost, with the schema's types guaranteed.

Why: the SDK's ``conform_record_data_types`` visits every value of every record through several
Python calls (42% of the default tap's CPU), although a record decoded from JSON can only hold
``str``/``int``/``float``/``bool``/``None``/``list``/``dict`` and almost every Flex record already
matches the schema. Here each stream compiles its schema once into a table of allowed Python types
per field; a record is checked with one set comparison of its keys and one ``type(value) in
allowed`` per value (about 1 µs per record). Only a record that differs (a field the schema does not
know, ``NaN``, a number where a boolean is expected) goes through the SDK's own conformance, so
unknown fields are still dropped with the SDK's one warning naming them (never their values).

A bad record never stops a sync and never vanishes in silence. What still does not match after
the SDK's conformance is repaired field by field: a value that fits after a lossless coercion is
coerced (``"42"`` for an integer, ``7`` for a string, ``"true"`` for a boolean); any other value
of a nullable field becomes ``null``; a record whose essential field (its key or ``updatedAt``,
the only non-nullable ones, see ``schemas.py``) is missing or unusable is skipped. Each kind is
counted per field, with the first record ids, in one WARNING per field and in :meth:`report`.
"""

from __future__ import annotations

import logging
import typing as t
from collections import Counter

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_hpe_flex.sdk_private import conform_record_data_types

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
}

Check = t.Callable[[t.Any], "str | None"]


def _types_of(schema: dict[str, t.Any]) -> tuple[type, ...]:
    declared = schema.get("type")
    names = [declared] if isinstance(declared, str) else list(declared or [])
    if not names:  # no type: anything goes
        return (str, int, float, bool, type(None), list, dict)
    found: list[type] = []
    for name in names:
        found.extend(_JSON_TYPES.get(name, ()))
    return tuple(dict.fromkeys(found))


def _type_name(value: t.Any) -> str:
    return "null" if value is None else type(value).__name__


def compile_schema(schema: dict[str, t.Any], path: str = "") -> Check:
    """Return a function that says where a value departs from ``schema`` (None: it matches).

    ``bool`` is never taken for an integer or a number (``type(...) in``, not ``isinstance``),
    and ``float`` values must be finite, as the SDK's conformance requires.
    """
    allowed = frozenset(_types_of(schema))
    props = schema.get("properties")
    items = schema.get("items")
    if dict in allowed and isinstance(props, dict):
        fields = {name: compile_schema(sub, f"{path}{name}.") for name, sub in props.items()}
        keys = frozenset(fields)
        extra_ok = bool(schema.get("additionalProperties"))

        def check_object(value: t.Any) -> str | None:
            kind = type(value)
            if kind is not dict:
                return None if kind in allowed else f"{path or 'record'}: {_type_name(value)}"
            if not extra_ok and not value.keys() <= keys:
                unknown = sorted(set(value) - keys)
                return f"{path}{unknown[0]}: not in the schema"
            for name, sub in value.items():
                check = fields.get(name)
                if check is not None and (problem := check(sub)) is not None:
                    return problem
            return None

        return check_object
    if list in allowed and isinstance(items, dict):
        check_item = compile_schema(items, path)

        def check_array(value: t.Any) -> str | None:
            if type(value) is not list:
                return None if type(value) in allowed else f"{path[:-1]}: {_type_name(value)}"
            for item in value:
                if (problem := check_item(item)) is not None:
                    return problem
            return None

        return check_array
    finite = float in allowed
    where = path[:-1] if path.endswith(".") else path

    def check_value(value: t.Any) -> str | None:
        kind = type(value)
        if kind not in allowed:
            return f"{where}: {_type_name(value)}, schema says {schema.get('type')}"
        if finite and kind is float and value - value != 0:  # NaN or infinity
            return f"{where}: not a finite number"
        return None

    return check_value


_NONE = type(None)


def compile_fast(schema: dict[str, t.Any]) -> t.Callable[[t.Any], bool]:
    """Return a yes/no version of :func:`compile_schema`'s check, built for speed.

    An object is judged by its shape: its keys and the types of its values, in order (records
    decoded from one API share a handful of shapes). A shape is judged once, field by field
    (:func:`_shape_plan`); afterwards an object of that shape costs two tuples built in C and a
    dict lookup, plus a look at the few values a type cannot vouch for (floats must be finite,
    nested objects and arrays have their own compiled check).
    """
    allowed = frozenset(_types_of(schema))
    props = schema.get("properties")
    items = schema.get("items")
    if dict in allowed and isinstance(props, dict):
        table = {name: _field(sub) for name, sub in props.items()}
        extra_ok = bool(schema.get("additionalProperties"))
        if len(table) <= _FEW_FIELDS:
            return _few_fields_ok(allowed, table, extra_ok)
        shapes: dict[tuple[tuple[t.Any, ...], tuple[type, ...]], _Plan] = {}

        def object_ok(value: t.Any) -> bool:
            if type(value) is not dict:
                return type(value) in allowed
            values = tuple(value.values())
            shape = (tuple(value), tuple(map(type, values)))
            plan = shapes.get(shape)
            if plan is None:
                plan = _shape_plan(table, extra_ok, *shape)
                if len(shapes) < _MAX_SHAPES:
                    shapes[shape] = plan
            if plan is False:
                return False
            for index, nested in plan:
                sub = values[index]
                if not (nested(sub) if nested is not None else sub - sub == 0):
                    return False
            return True

        return object_ok
    if list in allowed and isinstance(items, dict):
        item_ok = compile_fast(items)

        def array_ok(value: t.Any) -> bool:
            if type(value) is not list:
                return type(value) in allowed
            return all(map(item_ok, value))

        return array_ok

    def value_ok(value: t.Any) -> bool:
        kind = type(value)
        return kind in allowed and not (kind is float and value - value != 0)

    return value_ok


#: Up to this many properties, an object is checked field by field (cheaper than its shape).
_FEW_FIELDS = 4
_FieldTable = dict[str, tuple[frozenset[type], t.Callable[[t.Any], bool] | None]]


def _few_fields_ok(
    allowed: frozenset[type], table: _FieldTable, extra_ok: bool
) -> t.Callable[[t.Any], bool]:
    """Return the field-by-field check of a small object (e.g. a tag): one look per value."""
    keys = frozenset(table)
    get = table.get

    def object_ok(value: t.Any) -> bool:
        if type(value) is not dict:
            return type(value) in allowed
        if not extra_ok and not value.keys() <= keys:
            return False
        for name, sub in value.items():
            spec = get(name)
            if spec is None:
                continue
            kind = type(sub)
            if kind not in spec[0] or (kind is float and sub - sub != 0):
                return False
            nested = spec[1]
            if nested is not None and kind is not _NONE and not nested(sub):
                return False
        return True

    return object_ok


#: An object shape's verdict: False (it cannot match), or the positions of the values still to
#: look at, each with its nested check (None: a float, which must be finite).
_Plan = t.Literal[False] | tuple[tuple[int, t.Callable[[t.Any], bool] | None], ...]
#: Shapes remembered per compiled object (records of an odd API could otherwise vary endlessly).
_MAX_SHAPES = 256


def _shape_plan(
    table: _FieldTable,
    extra_ok: bool,
    keys: tuple[t.Any, ...],
    kinds: tuple[type, ...],
) -> _Plan:
    """Judge one shape (keys and value types in order) against an object schema's field table."""
    todo: list[tuple[int, t.Callable[[t.Any], bool] | None]] = []
    for index, (name, kind) in enumerate(zip(keys, kinds, strict=True)):
        spec = table.get(name)
        if spec is None:
            if not extra_ok:
                return False
            continue
        if kind not in spec[0]:
            return False
        if kind is float:
            todo.append((index, None))
        elif spec[1] is not None and kind is not _NONE:
            todo.append((index, spec[1]))
    return tuple(todo)


def _field(schema: dict[str, t.Any]) -> tuple[frozenset[type], t.Callable[[t.Any], bool] | None]:
    allowed = frozenset(_types_of(schema))
    structured = (dict in allowed and isinstance(schema.get("properties"), dict)) or (
        list in allowed and isinstance(schema.get("items"), dict)
    )
    return allowed, compile_fast(schema) if structured else None


_FAIL = object()
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def coerce(value: t.Any, schema: dict[str, t.Any]) -> t.Any:
    """Return ``value`` in one of the schema's types when that loses nothing, else ``_FAIL``."""
    allowed = _types_of(schema)
    kind = type(value)
    if int in allowed and kind is str and value.strip().lstrip("+-").isdigit():
        return int(value)
    if float in allowed and kind is str:
        try:
            number = float(value)
        except ValueError:
            return _FAIL
        return number if number - number == 0 else _FAIL
    if bool in allowed and kind is str and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if str in allowed and kind in {int, float} and not isinstance(value, bool):
        return str(value)
    if int in allowed and kind is float and value.is_integer():
        return int(value)
    return _FAIL


class RecordConformer:
    """One stream's compiled schema: the cheap check, the SDK fallback, and the repair policy."""

    def __init__(self, stream_name: str, schema: dict[str, t.Any], logger: logging.Logger) -> None:
        self.stream_name = stream_name
        self.schema = schema
        self.logger = logger
        self._check = compile_schema(schema)
        self._ok = compile_fast(schema)
        props = schema.get("properties") or {}
        self._fields = {name: (sub, compile_schema(sub, "")) for name, sub in props.items()}
        self._required = [n for n in schema.get("required") or [] if n in props]
        #: Records that needed the SDK's conformance (for tests and the benchmark).
        self.slow_path = 0
        #: Per field: values coerced, values set to null, records skipped; the first ids each.
        self.coerced: Counter[str] = Counter()
        self.nulled: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.examples: dict[tuple[str, str], list[str]] = {}

    def conform(self, record: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """Return the record as the schema promises it, repaired if need be; None: skip it."""
        if self._ok(record):
            for name in self._required:
                if record.get(name) is None:
                    break
            else:
                return record
        self.slow_path += 1
        fixed = conform_record_data_types(
            stream_name=self.stream_name,
            record=record,
            schema=self.schema,
            level=TypeConformanceLevel.RECURSIVE,
            logger=self.logger,
        )
        if self._check(fixed) is None and all(fixed.get(n) is not None for n in self._required):
            return fixed
        return self._repair(fixed)

    def _repair(self, record: dict[str, t.Any]) -> dict[str, t.Any] | None:
        ident = str(record.get("id") or record.get("value") or "?")
        for name in self._required:
            value = record.get(name)
            sub, check = self._fields[name]
            if value is None or (check(value) is not None and coerce(value, sub) is _FAIL):
                self._note("skipped", name, ident, f"skipped: its {name} is missing or unusable")
                return None
        for name, value in list(record.items()):
            field = self._fields.get(name)
            if field is None or field[1](value) is None:
                continue
            repaired = coerce(value, field[0])
            if repaired is not _FAIL and field[1](repaired) is None:
                record[name] = repaired
                self._note("coerced", name, ident, f"{name} coerced to the schema's type")
            else:
                record[name] = None
                self._note("set to null", name, ident, f"{name} did not fit the schema: null")
        return record

    def note_skipped(self, name: str, ident: str) -> None:
        """Count a record skipped by the caller because its essential ``name`` is unusable."""
        self._note("skipped", name, ident, f"skipped: its {name} is missing or unusable")

    def _note(self, label: str, name: str, ident: str, what: str) -> None:
        counts = {"skipped": self.skipped, "coerced": self.coerced}.get(label, self.nulled)
        counts[name] += 1
        examples = self.examples.setdefault((label, name), [])
        if len(examples) < 5:
            examples.append(ident)
        if counts[name] == 1:
            self.logger.warning(
                "%s: a record (id %s): %s; further ones are counted in the summary",
                self.stream_name,
                ident,
                what,
            )

    def report(self) -> str | None:
        """Return one line of what was repaired or skipped in this run (None: nothing was)."""
        parts = [
            f"{counts[name]} {label} for {name} (ids {', '.join(self.examples[label, name])})"
            for label, counts in (
                ("skipped", self.skipped),
                ("set to null", self.nulled),
                ("coerced", self.coerced),
            )
            for name in sorted(counts)
        ]
        if not parts:
            return None
        return f"{self.stream_name}: records the API sent out of shape: " + "; ".join(parts)
