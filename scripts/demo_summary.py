"""Helpers for scripts/demo.sh: summarise the DuckDB file, change simulator data, compare runs.

Run with the project's `.venv` Python (it has duckdb 1.2.2, the same version the loader is pinned
to, so the file it writes opens without an upgrade):

    python scripts/demo_summary.py summary output/flex.duckdb
    python scripts/demo_summary.py watermark output/flex.duckdb > output/run1.watermark.json
    python scripts/demo_summary.py mutate http://127.0.0.1:PORT '{"ops": [...]}'
    python scripts/demo_summary.py increment output/flex.duckdb output/run1.watermark.json \
        output/run1.log output/run2.log
    python scripts/demo_summary.py marts output/flex.duckdb
    python scripts/demo_summary.py tenants output/flex.duckdb   # DEMO_TENANTS=N: per workspace
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

SCHEMA = "tap_hpe_flex"
STREAMS = ("orders", "devices", "order_transforms")


def _table(con: duckdb.DuckDBPyConnection, title: str, sql: str, limit: int = 8) -> None:
    rows = con.execute(f"{sql} LIMIT {limit}").fetchall()
    print(f"\n{title}")
    width = max((len(str(r[0])) for r in rows), default=10)
    for label, count in rows:
        print(f"  {label if label is not None else '(none)':<{width}}  {count:>6,}")


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SCHEMA]
    ).fetchall()
    return {r[0] for r in rows}


def _rows(con: duckdb.DuckDBPyConnection, table: str, where: str = "", *params: Any) -> int:
    row = con.execute(f"SELECT count(*) FROM {SCHEMA}.{table} {where}", list(params)).fetchone()
    return int(row[0]) if row else 0


def summary(db: Path) -> None:
    """Print what a reader of the demo wants to see: volumes and the obvious breakdowns."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = _existing_tables(con)
        print(f"DuckDB file {db}, schema {SCHEMA}")
        print("\nRows per stream")
        for stream in STREAMS:
            n = _rows(con, stream) if stream in tables else 0
            print(f"  {stream:<17} {n:>8,}")
        if "devices" in tables:
            _table(
                con,
                "Devices by model (top 8)",
                f"SELECT model, count(*) AS n FROM {SCHEMA}.devices "
                "GROUP BY ALL ORDER BY n DESC, model",
            )
            _table(
                con,
                "Devices by billing tier (top 8)",
                f"SELECT billingtier, count(*) AS n FROM {SCHEMA}.devices "
                "GROUP BY ALL ORDER BY n DESC, billingtier",
            )
        if "orders" in tables:
            _table(
                con,
                "Orders by partner (top 8)",
                f"SELECT partnername, count(*) AS n FROM {SCHEMA}.orders "
                "GROUP BY ALL ORDER BY n DESC, partnername",
            )
        if "order_transforms" in tables:
            _table(
                con,
                "Order transforms: distinct values per group-by field",
                f"SELECT groupby, count(*) AS n FROM {SCHEMA}.order_transforms "
                "GROUP BY ALL ORDER BY groupby",
            )


def watermark(db: Path) -> dict[str, str | None]:
    """Latest `_sdc_batched_at` per table: rows stamped later were written by a later run."""
    marks: dict[str, str | None] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        tables = _existing_tables(con)
        for stream in STREAMS:
            if stream in tables:
                row = con.execute(f"SELECT max(_sdc_batched_at) FROM {SCHEMA}.{stream}").fetchone()
                marks[stream] = None if row is None or row[0] is None else row[0].isoformat()
    return marks


def _log_events(log: Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a `meltano --log-format=json` log, skipping other lines."""
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                yield event


def tap_metrics(log: Path) -> dict[str, dict[str, int]]:
    """Sum the tap's counters (`record_count`, `http_request_count`) per stream from a log.

    The SDK logs each counter periodically and at the end of a stream, resetting it each time, so
    the sum is the run's total. The tap logs in structured form and Meltano's JSON log keeps the
    point under `metric_info`; a plain `METRIC: {json}` line is understood too.
    """
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event in _log_events(log):
        point = event.get("metric_info")
        if point is None and str(event.get("event", "")).startswith("METRIC: "):
            try:
                point = json.loads(str(event["event"])[len("METRIC: ") :])
            except json.JSONDecodeError:
                continue
        if not isinstance(point, dict) or point.get("type") != "counter":
            continue
        stream = (point.get("tags") or {}).get("stream")
        if stream:
            totals[str(point.get("metric"))][stream] += int(point.get("value", 0))
    return {k: dict(v) for k, v in totals.items()}


def tap_notes(log: Path) -> list[str]:
    """Pick the tap's lines that explain a run's cost: incremental strategy, rate-limit waits."""
    notes = []
    for event in _log_events(log):
        text = str(event.get("event", ""))
        if event.get("string_id") == "tap-hpe-flex" and (
            text.startswith("Incremental strategy for") or "waiting" in text
        ):
            notes.append(text)
    return notes


def increment(db: Path, mark_file: Path, logs: list[Path]) -> None:
    """Compare runs: records the tap emitted (metrics) and rows the loader wrote after a mark."""
    runs = [tap_metrics(p) for p in logs]
    for i, log in enumerate(logs):
        for note in tap_notes(log):
            print(f"run {i + 1}: {note}")
    print("\nRecords emitted by the tap per run (its record_count metric)")
    header = "".join(f"{f'run {i + 1}':>10}" for i in range(len(runs)))
    print(f"  {'stream':<17}{header}")
    for stream in STREAMS:
        cells = "".join(f"{r.get('record_count', {}).get(stream, 0):>10,}" for r in runs)
        print(f"  {stream:<17}{cells}")
    if any("http_request_count" in r for r in runs):
        print("\nHTTP requests made by the tap per run (its http_request_count metric)")
        for stream in STREAMS:
            cells = "".join(f"{r.get('http_request_count', {}).get(stream, 0):>10,}" for r in runs)
            print(f"  {stream:<17}{cells}")
    marks: dict[str, str | None] = json.loads(mark_file.read_text(encoding="utf-8"))
    print("\nRows written by the last run / rows in the table (DuckDB, _sdc_batched_at)")
    with duckdb.connect(str(db), read_only=True) as con:
        for stream in STREAMS:
            mark = marks.get(stream)
            total = _rows(con, stream)
            if mark is None:
                new = total
            else:
                new = _rows(con, stream, "WHERE _sdc_batched_at > ?::TIMESTAMP", mark)
            print(f"  {stream:<17} {new:>8,} / {total:,}")


def mutate(url: str, ops_json: str) -> dict[str, Any]:
    """Change the simulator's data through its admin API (POST /__sim/mutations)."""
    body = json.loads(ops_json)
    req = urllib.request.Request(
        url.rstrip("/") + "/__sim/mutations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read() or b"{}")
    return result


def _grid(con: duckdb.DuckDBPyConnection, title: str, sql: str, limit: int = 5) -> None:
    """Print a query's first rows as aligned columns under its column names."""
    result = con.execute(f"{sql} LIMIT {limit}")
    header = [d[0] for d in result.description]
    rows = [
        ["(none)" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r]
        for r in result.fetchall()
    ]
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    for line in [header, *rows]:
        print(("  " + "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True))).rstrip())


def marts(db: Path) -> None:
    """Print a few lines from each use case's dbt mart (built by dbt-duckdb:run)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        _grid(
            con,
            "Billing reconciliation (flex_marts.billing_account_reconciliation)",
            "SELECT billing_account_name, order_count, device_count, reconciliation_status "
            "FROM flex_marts.billing_account_reconciliation "
            "ORDER BY device_count DESC NULLS LAST, billing_account_name",
        )
        _grid(
            con,
            "Fleet by model and billing tier (flex_marts.fleet_devices)",
            "SELECT model, coalesce(billing_tier, '(none)') AS billing_tier, "
            "sum(device_count)::BIGINT AS devices "
            "FROM flex_marts.fleet_devices GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
        )
        _grid(
            con,
            "Partner orders (flex_marts.partner_summary)",
            "SELECT partner_name, order_count, orders_as_reseller, orders_as_distributor "
            "FROM flex_marts.partner_summary ORDER BY order_count DESC, partner_name",
        )
    finally:
        con.close()


def tenants(db: Path) -> None:
    """Print the marts per tenant workspace (the MSP demo): each tenant's figures stay apart."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        _grid(
            con,
            "Per tenant workspace (flex_marts.*, grouped by workspace_id)",
            "SELECT f.workspace_id, f.devices, s.orders, s.sows, r.matched_accounts "
            "FROM (SELECT workspace_id, sum(device_count)::BIGINT AS devices "
            "      FROM flex_marts.fleet_devices GROUP BY 1) AS f "
            "JOIN (SELECT workspace_id, sum(order_count)::BIGINT AS orders, count(*) AS sows "
            "      FROM flex_marts.billing_sow_orders GROUP BY 1) AS s USING (workspace_id) "
            "JOIN (SELECT workspace_id, count(*) FILTER (WHERE reconciliation_status = 'matched')"
            "      AS matched_accounts FROM flex_marts.billing_account_reconciliation GROUP BY 1)"
            "      AS r USING (workspace_id) "
            "ORDER BY f.workspace_id",
            limit=1000,
        )
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    """Dispatch the demo's sub-commands (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("summary").add_argument("db", type=Path)
    sub.add_parser("watermark").add_argument("db", type=Path)
    sub.add_parser("marts").add_argument("db", type=Path)
    sub.add_parser("tenants").add_argument("db", type=Path)
    p = sub.add_parser("mutate")
    p.add_argument("url")
    p.add_argument("ops_json")
    p = sub.add_parser("increment")
    p.add_argument("db", type=Path)
    p.add_argument("mark_file", type=Path)
    p.add_argument("logs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.cmd == "summary":
        summary(args.db)
    elif args.cmd == "marts":
        marts(args.db)
    elif args.cmd == "tenants":
        tenants(args.db)
    elif args.cmd == "watermark":
        print(json.dumps(watermark(args.db)))
    elif args.cmd == "mutate":
        print(json.dumps(mutate(args.url, args.ops_json)))
    else:
        increment(args.db, args.mark_file, args.logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
