"""Admin mutations (``POST /__sim/mutations``): the changes incremental syncs must pick up.

Every op gets its own mutation instant ``max(now, previous + 1 µs)``, so ``updatedAt`` strictly
increases across mutations even within one microsecond or after a clock step back; it is rendered
with microseconds (``...123456Z``) so the rendering keeps that order. Updates also bump
``generation``. Count-based ops pick records with a generator seeded from the workspace seed and
the mutation sequence number, so a scripted scenario replays identically. Fields the schema does not
know may be set or inserted (a beta API may grow fields); server-managed fields
(``id``, ``createdAt``, ``updatedAt``, ``generation``) may not be set.
"""

from __future__ import annotations

import json
import random
import sqlite3
from typing import Any

from flex_simulator.clock import now_ns
from flex_simulator.data import FlexDataGenerator, render_ts
from flex_simulator.odata import parse_rfc3339
from flex_simulator.query import DEVICE_TEXT_COLUMNS, ORDER_TEXT_COLUMNS

_PRIVATE = ("_c", "_u", "_s", "_e")
_PROTECTED = frozenset({"id", "createdAt", "updatedAt", "generation"})
# Fields an op's ``where`` may match (the column table's own columns), per resource.
_WHERE_FIELDS = {
    "orders": frozenset({"id", *ORDER_TEXT_COLUMNS, "isFlexPartner"}),
    "devices": frozenset({"id", *DEVICE_TEXT_COLUMNS}),
}
_STRING_FIELDS = frozenset(
    {"type", *ORDER_TEXT_COLUMNS, *DEVICE_TEXT_COLUMNS, "orderStartDate", "orderEndDate"}
)


class MutationError(ValueError):
    """A bad admin mutation request: the server answers 400 and nothing is applied."""


def _us(rec: dict[str, Any], private: str, field: str) -> int | None:
    if private in rec:
        return int(rec[private])
    text = rec.get(field)
    if text is None:
        return None
    try:
        return parse_rfc3339(str(text))
    except ValueError:
        raise MutationError(f"{field} {text!r} is not an RFC 3339 date-time") from None


def row_of(table: str, rid: int, ws: int, rec: dict[str, Any]) -> tuple[Any, ...]:
    """Return the column-table row of a record (canonical µs from ``_c``/``_u``/... if set)."""
    head = (
        rid,
        ws,
        rec.get("id"),
        _us(rec, "_c", "createdAt"),
        _us(rec, "_u", "updatedAt"),
        rec.get("generation"),
    )
    if table == "orders":
        flex = rec.get("isFlexPartner")
        return (
            *head,
            *(rec.get(c) for c in ORDER_TEXT_COLUMNS),
            None if flex is None else int(flex),
            _us(rec, "_s", "orderStartDate"),
            _us(rec, "_e", "orderEndDate"),
        )
    return (*head, *(rec.get(c) for c in DEVICE_TEXT_COLUMNS))


def _check_fields(values: Any, what: str, *, allow_id: bool = False) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise MutationError(f"'{what}' must be an object")
    for key, value in values.items():
        if key == "id" and allow_id:
            if not isinstance(value, str) or not value:
                raise MutationError(f"Field 'id' in '{what}' must be a non-empty string")
            continue
        if key in _PROTECTED or key.startswith("_"):
            raise MutationError(f"Field '{key}' in '{what}' is managed by the server")
        if value is None:
            continue
        ok = True
        if key in _STRING_FIELDS:
            ok = isinstance(value, str)
        elif key == "isFlexPartner":
            ok = isinstance(value, bool)
        elif key == "tags":
            ok = isinstance(value, list) and all(
                isinstance(t, dict)
                and isinstance(t.get("name"), str)
                and isinstance(t.get("value"), str)
                for t in value
            )
        if not ok:
            raise MutationError(f"Field '{key}' in '{what}' has the wrong type")
        if key in ("orderStartDate", "orderEndDate"):
            _us(values, "", key)
    return values


class Mutator:
    """Applies one batch of ops inside the caller's write transaction."""

    def __init__(self, conn: sqlite3.Connection, ws: int) -> None:
        self.conn = conn
        self.ws = ws
        row = conn.execute(
            "SELECT seed, orders_hint, mutation_seq, last_us, next_order, next_device "
            "FROM workspaces WHERE ws = ?",
            (ws,),
        ).fetchone()
        self.seed, hint, self.seq, self.last_us, next_order, next_device = row
        self.next_index = {"orders": next_order, "devices": next_device}
        self.gen = FlexDataGenerator(self.seed, hint)

    def apply(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply every op in order and persist the workspace's mutation state."""
        if not isinstance(ops, list):
            raise MutationError("ops must be a list")
        results = [self._one(i, op) for i, op in enumerate(ops)]
        self.conn.execute(
            "UPDATE workspaces SET mutation_seq=?, last_us=?, next_order=?, next_device=? "
            "WHERE ws=?",
            (
                self.seq,
                self.last_us,
                self.next_index["orders"],
                self.next_index["devices"],
                self.ws,
            ),
        )
        return results

    def _one(self, i: int, op: Any) -> dict[str, Any]:
        if not isinstance(op, dict):
            raise MutationError(f"op #{i} must be an object")
        kind, table = op.get("op"), op.get("resource")
        if kind not in ("update", "insert", "delete"):
            raise MutationError(f"op #{i}: unknown op {kind!r}; use update, insert or delete")
        if table not in ("orders", "devices"):
            raise MutationError(f"op #{i}: unknown resource {table!r}; use orders or devices")
        self.seq += 1
        self.last_us = max(now_ns() // 1000, self.last_us + 1)
        stamp = render_ts(self.last_us, 4)[0]
        rng = random.Random(f"mutation:{self.seed}:{self.seq}")
        if kind == "insert":
            ids = self._insert(i, table, op, rng)
        else:
            rids = self._targets(i, table, op, rng)
            if kind == "delete":
                ids = [self._doc(table, rid)["id"] for rid in rids]
                marks = ", ".join("?" * len(rids))
                self.conn.execute(f"DELETE FROM {table} WHERE rid IN ({marks})", rids)
                self.conn.execute(f"DELETE FROM {table}_doc WHERE rid IN ({marks})", rids)
            else:
                changes = _check_fields(op["set"], "set") if "set" in op else None
                ids = [self._update(table, rid, changes, rng) for rid in rids]
        return {"op": kind, "resource": table, "ids": ids, "updatedAt": stamp}

    def _doc(self, table: str, rid: int) -> dict[str, Any]:
        row = self.conn.execute(f"SELECT doc FROM {table}_doc WHERE rid = ?", (rid,)).fetchone()
        return dict(json.loads(row[0]))

    def _write(self, table: str, rid: int, rec: dict[str, Any], *, new: bool) -> None:
        row = row_of(table, rid, self.ws, rec)
        doc = json.dumps({k: v for k, v in rec.items() if k not in _PRIVATE})
        verb = "INSERT" if new else "REPLACE"
        try:
            self.conn.execute(f"{verb} INTO {table} VALUES ({', '.join('?' * len(row))})", row)
        except sqlite3.IntegrityError:
            raise MutationError(f"A {table[:-1]} with id {rec.get('id')!r} exists") from None
        self.conn.execute(f"REPLACE INTO {table}_doc VALUES (?, ?)", (rid, doc))

    def _targets(self, i: int, table: str, op: dict[str, Any], rng: random.Random) -> list[int]:
        given = [k for k in ("id", "ids", "count", "where") if k in op]
        if len(given) != 1:
            raise MutationError(f"op #{i}: give exactly one of id, ids, count or where")
        if given[0] == "where":
            return self._matching(i, table, op["where"])
        if given[0] == "count":
            k = op["count"]
            rids = [
                r
                for (r,) in self.conn.execute(
                    f"SELECT rid FROM {table} WHERE ws = ? ORDER BY rid", (self.ws,)
                )
            ]
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= len(rids):
                raise MutationError(f"op #{i}: count must be 0..{len(rids)}, got {k!r}")
            return sorted(rng.sample(rids, k))
        ids = [op["id"]] if given[0] == "id" else op["ids"]
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise MutationError(f"op #{i}: ids must be a list of strings")
        out = []
        for rec_id in ids:
            row = self.conn.execute(
                f"SELECT rid FROM {table} WHERE ws = ? AND id = ?", (self.ws, rec_id)
            ).fetchone()
            if row is None:
                raise MutationError(f"op #{i}: no {table[:-1]} with id {rec_id!r}")
            out.append(row[0])
        return out

    def _matching(self, i: int, table: str, where: Any) -> list[int]:
        """Return the rows whose fields equal every ``where`` value (None: absent); maybe none."""
        fields = _WHERE_FIELDS[table]
        if not isinstance(where, dict) or not where:
            raise MutationError(f"op #{i}: where must be a non-empty object of field values")
        sql = [f"SELECT rid FROM {table} WHERE ws = ?"]
        args: list[int | str] = [self.ws]
        for key, value in where.items():
            if key not in fields:
                raise MutationError(f"op #{i}: where cannot match {key!r}; use {sorted(fields)}")
            if value is None:
                sql.append(f'"{key}" IS NULL')
                continue
            if not isinstance(value, bool if key == "isFlexPartner" else str):
                raise MutationError(f"op #{i}: where {key!r} has the wrong type")
            sql.append(f'"{key}" = ?')
            args.append(int(value) if isinstance(value, bool) else value)
        query = " AND ".join(sql) + " ORDER BY rid"
        return [rid for (rid,) in self.conn.execute(query, args)]

    def _update(
        self, table: str, rid: int, changes: dict[str, Any] | None, rng: random.Random
    ) -> str:
        rec = self._doc(table, rid)
        if changes is None:
            changes = self._random_change(table, rec, rng)
        for key, value in changes.items():
            if value is None:
                rec.pop(key, None)
            else:
                rec[key] = value
        rec["updatedAt"] = render_ts(self.last_us, 4)[0]
        rec["_u"] = self.last_us
        rec["generation"] = int(rec.get("generation", 0)) + 1
        self._write(table, rid, rec, new=False)
        return str(rec["id"])

    def _random_change(self, table: str, rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        p = self.gen.pools
        r = rng.random()
        if table == "devices":
            if r < 0.4:
                return {"name": f"renamed-{self.seq}-{rng.randrange(10_000):04d}"}
            if r < 0.7:
                return {"billingTier": rng.choice(p.distributors)}
            return {"tags": [{"name": "env", "value": rng.choice(("prod", "dev", "test"))}]}
        if r < 0.4:
            return {"partnerName": rng.choice(p.resellers + p.distributors)}
        if r < 0.7:
            return {"resellerName": rng.choice(p.resellers)}
        return {"isFlexPartner": not rec.get("isFlexPartner", False)}

    def _insert(self, i: int, table: str, op: dict[str, Any], rng: random.Random) -> list[str]:
        k = op.get("count", 1)
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= 100_000:
            raise MutationError(f"op #{i}: count must be 0..100000, got {k!r}")
        record = dict(_check_fields(op.get("record", {}), "record", allow_id=True))
        if "id" in record and k != 1:
            raise MutationError(f"op #{i}: a record with an id can be inserted once (count 1)")
        if table == "devices" and "id" in record:
            record.setdefault("resourceId", record["id"])
        start = self.next_index[table]
        make = self.gen.orders if table == "orders" else self.gen.devices
        (rid,) = self.conn.execute(f"SELECT coalesce(max(rid), 0) FROM {table}").fetchone()
        ids = []
        for rec in make(k, start=start, salt=f"m{self.seq}"):
            rid += 1
            rec["generation"] = 1
            rec["createdAt"] = rec["updatedAt"] = render_ts(self.last_us, 4)[0]
            rec["_c"] = rec["_u"] = self.last_us
            rec.update(record)
            for key in [key for key, v in rec.items() if v is None]:
                del rec[key]
            if table == "orders":  # start/end are recomputed from the (possibly new) strings
                rec.pop("_s", None)
                rec.pop("_e", None)
            self._write(table, rid, rec, new=True)
            ids.append(str(rec["id"]))
        self.next_index[table] = start + k
        return ids
