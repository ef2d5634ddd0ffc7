"""SQLite-backed store of Flex orders and devices for the simulator (no HTTP here).

Layout: per resource a narrow table of comparable columns (one per filterable/sortable field,
timestamps as integer microseconds) and a side table with each record's JSON text, joined on an
integer ``rid``. Keeping the JSON out of the column table makes unindexed filter scans read a third
of the pages. Covering indexes ``(ws, sortkey, id)`` serve the default sorts; SQLite's ``OFFSET``
then skips index entries only (about 30 ms per million), and the page's JSON is fetched by ``rid``
afterwards. Totals are cached per data version (a seqlock-style counter bumped around each write),
so paging through one listing counts once.

Concurrency: one connection per thread (WAL: readers never block the writer, each list call reads
one snapshot), and one lock serialising writers.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from flex_simulator import query
from flex_simulator.data import FlexDataGenerator
from flex_simulator.odata import QueryError
from flex_simulator.query_mutations import MutationError, Mutator, row_of

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is Python 3.11+

__all__ = ["FlexStore", "MutationError", "Page", "QueryError"]

_COMMON = "rid INTEGER PRIMARY KEY, ws INTEGER NOT NULL, id TEXT NOT NULL, created_us INTEGER, "
_COMMON += "updated_us INTEGER, generation INTEGER, "
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS workspaces (ws INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
    seed INTEGER NOT NULL, orders_hint INTEGER NOT NULL, mutation_seq INTEGER NOT NULL DEFAULT 0,
    last_us INTEGER NOT NULL DEFAULT 0, next_order INTEGER NOT NULL DEFAULT 0,
    next_device INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS orders ({_COMMON} "billingAccountId" TEXT, "sowId" TEXT,
    "billingAccountName" TEXT, "customerName" TEXT, "resellerName" TEXT, "partnerName" TEXT,
    "distributorName" TEXT, "isFlexPartner" INTEGER, start_us INTEGER, end_us INTEGER);
CREATE TABLE IF NOT EXISTS devices ({_COMMON} "macAddress" TEXT, "serialNumber" TEXT,
    "resourceId" TEXT, "partNumber" TEXT, "name" TEXT, "type" TEXT, "model" TEXT, "make" TEXT,
    "billingAccountName" TEXT, "billingTier" TEXT, "deviceType" TEXT);
CREATE TABLE IF NOT EXISTS orders_doc (rid INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices_doc (rid INTEGER PRIMARY KEY, doc TEXT NOT NULL);
"""
# Built after bulk loads (dropped before them): name -> (table, columns).
INDEXES = {
    "ux_orders_id": ("orders", "ws, id"),
    "ix_orders_end": ("orders", "ws, end_us, id"),
    "ix_orders_updated": ("orders", "ws, updated_us, id"),
    "ux_devices_id": ("devices", "ws, id"),
    "ix_devices_rid": ("devices", 'ws, "resourceId", id'),
    "ix_devices_updated": ("devices", "ws, updated_us, id"),
    "ix_devices_mac": ("devices", 'ws, "macAddress"'),
    "ix_devices_serial": ("devices", 'ws, "serialNumber"'),
    "ix_devices_make": ("devices", 'ws, "make", "resourceId", id'),
    "ix_devices_model": ("devices", 'ws, "model", "resourceId", id'),
    "ix_devices_account": ("devices", 'ws, "billingAccountName", "resourceId", id'),
}
BATCH = 20_000


class ListOptions(TypedDict):
    """The keywords of ``list_orders``/``list_devices``, all required (``_list`` checks them)."""

    filter: str | None
    sort: str | None
    select: str | None
    limit: int
    offset: int
    updated_filter: bool | str
    updated_sort: bool | str
    single_key_sort: bool
    tie_salt: int | None


@dataclass(frozen=True)
class Page:
    """One page of a listing: JSON-ready items and the number of records matching the filter."""

    items: list[dict[str, Any]]
    total: int


class FlexStore:
    """Orders and devices of any number of workspaces, queried the way the Flex API answers."""

    def __init__(self, path: str | None = None) -> None:
        self._owned = path is None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="flex-sim-", suffix=".sqlite")
            os.close(fd)
        self.path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._version = 0  # odd while a write is in progress
        self._totals: OrderedDict[tuple[Any, ...], int] = OrderedDict()
        self._ws_ids: dict[str, int] = {}
        self._writer = self._connect(check_same_thread=False)
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.executescript(SCHEMA)
        self._create_indexes()
        for ws, name in self._writer.execute("SELECT ws, name FROM workspaces"):
            self._ws_ids[name] = ws
        self._closed = False

    # ---- connections -------------------------------------------------------------------------
    def _connect(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=check_same_thread, timeout=30
        )
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-32000")
        conn.execute("PRAGMA temp_store=MEMORY")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("FlexStore is closed")
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _create_indexes(self) -> None:
        for name, (table, cols) in INDEXES.items():
            unique = "UNIQUE " if name.startswith("ux_") else ""
            self._writer.execute(f"CREATE {unique}INDEX IF NOT EXISTS {name} ON {table} ({cols})")

    def close(self) -> None:
        """Close every connection; delete the database if the store created it."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.ProgrammingError):  # opened by a finished thread
                conn.close()
        if self._owned:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.remove(self.path + suffix)

    def __enter__(self) -> FlexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writes ------------------------------------------------------------------------------
    def _begin_write(self) -> None:
        self._version += 1
        self._totals.clear()

    def _end_write(self) -> None:
        self._version += 1

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        """One write transaction under the write lock: all of it or, on any error, none of it.

        The data version is odd for the whole time, so no reader caches a total meanwhile.
        The body commits (or rolls back a dry run) itself.
        """
        with self._write_lock:
            self._begin_write()
            w = self._writer
            try:
                w.execute(begin)
                yield w
            except BaseException:
                if w.in_transaction:
                    w.execute("ROLLBACK")
                raise
            finally:
                self._end_write()

    def generate(self, workspace_id: str, *, orders: int, devices: int, seed: int) -> None:
        """(Re)build a workspace's data; the same (orders, devices, seed) gives the same data."""
        with self._transaction("BEGIN") as w:
            ws = self._ws_ids.get(workspace_id)
            if ws is None:
                cur = w.execute(
                    "INSERT INTO workspaces (name, seed, orders_hint) VALUES (?, ?, ?)",
                    (workspace_id, seed, orders),
                )
                assert cur.lastrowid is not None
                ws = cur.lastrowid
            else:
                for table in ("orders", "devices"):
                    w.execute(
                        f"DELETE FROM {table}_doc WHERE rid IN "
                        f"(SELECT rid FROM {table} WHERE ws = ?)",
                        (ws,),
                    )
                    w.execute(f"DELETE FROM {table} WHERE ws = ?", (ws,))
                w.execute(
                    "UPDATE workspaces SET seed=?, orders_hint=?, mutation_seq=0, last_us=0,"
                    " next_order=0, next_device=0 WHERE ws=?",
                    (seed, orders, ws),
                )
            for name in INDEXES:
                w.execute(f"DROP INDEX IF EXISTS {name}")
            gen = FlexDataGenerator(seed, orders)
            self._bulk_insert(ws, "orders", gen.orders(orders))
            self._bulk_insert(ws, "devices", gen.devices(devices))
            w.execute(
                "UPDATE workspaces SET next_order=?, next_device=? WHERE ws=?",
                (orders, devices, ws),
            )
            self._create_indexes()
            w.execute("COMMIT")
            self._ws_ids[workspace_id] = ws

    def _bulk_insert(self, ws: int, table: str, records: Any) -> None:
        w = self._writer
        (start,) = w.execute(f"SELECT coalesce(max(rid), 0) + 1 FROM {table}").fetchone()
        rows: list[tuple[Any, ...]] = []
        docs: list[tuple[int, str]] = []
        marks = ", ".join("?" * len(row_of(table, 0, 0, {})))
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        for rid, rec in enumerate(records, start):
            rows.append(row_of(table, rid, ws, rec))
            for key in ("_c", "_u", "_s", "_e"):
                rec.pop(key, None)
            docs.append((rid, dumps(rec)))
            if len(rows) >= BATCH:
                w.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
                w.executemany(f"INSERT INTO {table}_doc VALUES (?, ?)", docs)
                rows.clear()
                docs.clear()
        if rows:
            w.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            w.executemany(f"INSERT INTO {table}_doc VALUES (?, ?)", docs)

    def apply_mutations(
        self, workspace_id: str, ops: list[dict[str, Any]], *, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Apply admin mutations atomically (all or none); one result per op.

        ``dry_run`` validates the ops against the current data and rolls back, so a mutation
        scheduled for later (``script_mutations``) is refused at once if it cannot apply now.
        """
        with self._write_lock:  # an RLock: _transaction takes it again
            ws = self._ws_ids.get(workspace_id)
            if ws is None:
                raise MutationError(f"Unknown workspace '{workspace_id}'")
            with self._transaction("BEGIN IMMEDIATE") as w:
                results = Mutator(w, ws).apply(ops)
                w.execute("ROLLBACK" if dry_run else "COMMIT")
                return results

    # ---- reads -------------------------------------------------------------------------------
    def workspaces(self) -> list[str]:
        """Workspace ids in creation order."""
        rows = self._reader().execute("SELECT name FROM workspaces ORDER BY ws").fetchall()
        return [name for (name,) in rows]

    def count(self, workspace_id: str, resource: str) -> int:
        """Count the records of ``resource`` ("orders" or "devices") in a workspace."""
        if resource not in ("orders", "devices"):
            raise ValueError(f"unknown resource {resource!r}")
        ws = self._ws_ids.get(workspace_id, -1)
        sql = f"SELECT count(*) FROM {resource} WHERE ws = ?"
        return int(self._reader().execute(sql, (ws,)).fetchone()[0])

    def get_device(self, workspace_id: str, device_id: str) -> dict[str, Any] | None:
        """Return the device whose ``id`` is ``device_id``, or None."""
        ws = self._ws_ids.get(workspace_id, -1)
        row = (
            self._reader()
            .execute(
                "SELECT d.doc FROM devices JOIN devices_doc d USING (rid) WHERE ws = ? AND id = ?",
                (ws, device_id),
            )
            .fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))

    def list_orders(self, workspace_id: str, **options: Unpack[ListOptions]) -> Page:
        """GET /flex/v1beta1/orders."""
        return self._list(query.ORDERS, workspace_id, options)

    def list_devices(self, workspace_id: str, **options: Unpack[ListOptions]) -> Page:
        """GET /flex/v1beta1/devices."""
        return self._list(query.DEVICES, workspace_id, options)

    def _total(
        self, conn: sqlite3.Connection, key: tuple[Any, ...], sql: str, params: list[Any]
    ) -> int:
        version = self._version
        if version % 2 == 0 and (hit := self._totals.get((version, *key))) is not None:
            return hit
        total = int(conn.execute(sql, params).fetchone()[0])
        if version % 2 == 0 and version == self._version:
            self._totals[(version, *key)] = total
            while len(self._totals) > 512:
                self._totals.popitem(last=False)
        return total

    def _list(self, ep: query.Endpoint, workspace_id: str, opts: ListOptions) -> Page:
        where, params = query.compile_filter(
            opts["filter"], ep, updated_filter=opts["updated_filter"]
        )
        _, order = query.compile_sort(
            opts["sort"],
            ep,
            updated_sort=opts["updated_sort"],
            single_key=opts["single_key_sort"],
            tie_salt=opts["tie_salt"],
        )
        fields = query.compile_select(opts["select"], ep)
        limit, offset = opts["limit"], opts["offset"]
        ws = self._ws_ids.get(workspace_id, -1)
        conn = self._reader()
        t = ep.table
        conn.execute("BEGIN")
        try:
            total = self._total(
                conn,
                (t, ws, where, tuple(params)),
                f"SELECT count(*) FROM {t} WHERE ws = ? AND ({where})",
                [ws, *params],
            )
            items: list[dict[str, Any]] = []
            if limit > 0 and offset < total:
                rids = [
                    r
                    for (r,) in conn.execute(
                        f"SELECT rid FROM {t} WHERE ws = ? AND ({where}) ORDER BY {order} "
                        "LIMIT ? OFFSET ?",
                        [ws, *params, limit, offset],
                    )
                ]
                marks = ", ".join("?" * len(rids))
                docs = dict(
                    conn.execute(
                        f"SELECT rid, doc FROM {t}_doc WHERE rid IN ({marks})", rids
                    ).fetchall()
                )
                items = [json.loads(docs[r]) for r in rids]
        finally:
            conn.execute("COMMIT")
        if fields is not None:
            items = [{f: rec[f] for f in fields if f in rec} for rec in items]
        return Page(items, total)

    def transform_orders(
        self,
        workspace_id: str,
        *,
        group_by: str | None,
        filter: str | None,
        sort: str | None,
        limit: int,
        offset: int,
        updated_filter: bool | str,
    ) -> Page:
        """GET /flex/v1beta1/orders/transform: distinct non-null values of the group-by field.

        The filter selects orders first; ``partnerName`` groups the union of ``resellerName``
        and ``distributorName`` (HPE's definition), not the order's own ``partnerName`` field.
        """
        field, desc = query.compile_transform(group_by, sort)
        where, params = query.compile_filter(filter, query.TRANSFORM, updated_filter=updated_filter)
        ws = self._ws_ids.get(workspace_id, -1)
        base = f"FROM orders WHERE ws = ? AND ({where})"
        if field == "partnerName":
            values = f'SELECT "resellerName" AS v {base} UNION SELECT "distributorName" AS v {base}'
            params = [ws, *params, ws, *params]
        else:
            values = f'SELECT DISTINCT "{field}" AS v {base}'
            params = [ws, *params]
        sql = f"SELECT v FROM ({values}) WHERE v IS NOT NULL"
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            total = int(conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
            rows = conn.execute(
                f"{sql} ORDER BY v {'DESC' if desc else 'ASC'} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return Page([{field: v} for (v,) in rows], total)
