"""End-to-end: records deleted upstream leave the dbt marts, whichever table shape the loader left.

Run 1 is the real chain (`meltano run tap-hpe-flex target-duckdb dbt-duckdb:run`) with
target-duckdb's metadata columns off, so the staging models meet tables without
`_sdc_deleted_at` (as before deletions existed, or after hard deletes). Then devices and one
partner's orders are deleted in the simulator through its admin API, as the demo does, and the
deletion markers the tap emits after a complete pass (tap_hpe_flex.deletions, the tap's own
SCHEMA) go through `meltano invoke target-duckdb` with hard_delete off: the rows stay, marked.
dbt runs again; every mart must equal the aggregates of the API's remaining records, the marked
rows must still be in the loaded tables, and no staging model may show them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flex_simulator.testing import running_simulator
from tap_hpe_flex.deletions import DELETED_AT, marker_for
from tests.e2e.meltano_helpers import (
    SCHEMA,
    clean_env,
    meltano,
    post_mutations,
    snapshot,
    tap_env,
    tap_schemas,
    transform_values,
)
from tests.e2e.test_dbt import (
    DBT_PLAIN,
    PROJECT,
    STAGING,
    _assert_dbt_passed,
    _assert_marts_match,
    _dbt_summaries,
    _env,
    _expected,
)

pytestmark = pytest.mark.e2e

DBT = ["run", "dbt-duckdb:run", "dbt-duckdb:test"]
WHEN = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def installed() -> None:
    """The extractor, the DuckDB loader and dbt (`.meltano/`, shared with the other modules)."""
    env = clean_env("TAP_HPE_FLEX_", "TARGET_DUCKDB_", "DBT_") | DBT_PLAIN
    meltano(["install", "tap-hpe-flex", "target-duckdb", "dbt-duckdb"], env, cwd=PROJECT)


def _columns(db: Path, table: str) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [SCHEMA, table],
        ).fetchall()
    return {r[0] for r in rows}


def _view_sql(db: Path, view: str) -> str:
    """The SQL dbt compiled a staging view to (which branch each macro took)."""
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT sql FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
            [STAGING, view],
        ).fetchone()
    assert row is not None, view
    return str(row[0])


def _ids(db: Path, sql: str) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {str(r[0]) for r in con.execute(sql).fetchall()}


def _markers(
    schemas: dict[str, dict[str, Any]],
    gone: dict[str, set[str]],
    gone_transforms: set[tuple[str, str]],
) -> str:
    """SCHEMA + one marker per vanished key, per stream, then a STATE: what the tap will send."""
    lines: list[dict[str, Any]] = []
    for stream in ("orders", "devices", "order_transforms"):
        entry = schemas[stream]
        keys = tuple(entry["key_properties"])
        lines.append(
            {"type": "SCHEMA", "stream": stream, "schema": entry["schema"], "key_properties": keys}
        )
        if stream == "order_transforms":
            records = [
                marker_for(stream, value, {"groupBy": field}, WHEN, primary_keys=keys)
                for field, value in sorted(gone_transforms)
            ]
        else:
            records = [
                marker_for(stream, i, None, WHEN, primary_keys=keys) for i in sorted(gone[stream])
            ]
        lines += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    lines.append({"type": "STATE", "value": {"bookmarks": {}}})
    return "".join(json.dumps(m) + "\n" for m in lines)


def test_deleted_records_leave_the_marts(installed: None, tmp_path: Path) -> None:
    env = _env(tmp_path)
    db = tmp_path / "flex.duckdb"
    schemas = tap_schemas(tmp_path)
    old_shape = {
        "TARGET_DUCKDB_ADD_METADATA_COLUMNS": "false",
        "TARGET_DUCKDB_HARD_DELETE": "false",
    }
    with running_simulator(orders=150, devices=400, seed=23) as sim:
        env.update(tap_env(sim))
        run1 = meltano(
            ["run", "tap-hpe-flex", "target-duckdb", "dbt-duckdb:run"], env | old_shape, cwd=PROJECT
        )
        assert _dbt_summaries(run1) == [(10, 0, 0, 0)]  # every model built, nothing else
        assert DELETED_AT not in _columns(db, "orders") | _columns(db, "devices")
        assert "_sdc_" not in _view_sql(db, "stg_flex__devices")  # both macros fell back
        _assert_marts_match(db, _expected(sim))

        before = snapshot(sim)
        partner = next(
            o["resellerName"] for o in before["orders"].values() if o.get("resellerName")
        )
        devices = sorted(before["devices"])[:7]
        post_mutations(
            sim,
            [
                {"op": "delete", "resource": "devices", "ids": devices},
                *(
                    {"op": "delete", "resource": "orders", "where": {role: partner}}
                    for role in ("partnerName", "resellerName", "distributorName")
                ),
            ],
        )
        after = snapshot(sim)
        gone = {t: set(before[t]) - set(after[t]) for t in ("orders", "devices")}
        gone_transforms = transform_values(before["orders"]) - transform_values(after["orders"])
        assert len(gone["devices"]) == 7 and gone["orders"]
        assert ("partnerName", partner) in gone_transforms

        meltano(
            ["invoke", "target-duckdb"],
            env | {"TARGET_DUCKDB_HARD_DELETE": "false"},
            cwd=PROJECT,
            stdin=_markers(schemas, gone, gone_transforms),
        )
        run2 = meltano(DBT, env, cwd=PROJECT)
        _assert_dbt_passed(run2)
        view = _view_sql(db, "stg_flex__devices")
        assert f"{DELETED_AT} is null" in view.lower()
        assert "_sdc_batched_at" in view
        _assert_marts_match(db, _expected(sim))

    # Soft delete: the rows are still loaded, marked; staging shows exactly the live set.
    for table, key in (("orders", "order_id"), ("devices", "device_id")):
        marked = _ids(db, f"SELECT id FROM {SCHEMA}.{table} WHERE {DELETED_AT} IS NOT NULL")
        assert marked == gone[table]
        staged = _ids(db, f"SELECT {key} FROM {STAGING}.stg_flex__{table}")
        assert staged == set(after[table])
    tagged = _ids(db, f"SELECT DISTINCT device_id FROM {STAGING}.stg_flex__device_tags")
    assert tagged and not tagged & gone["devices"]
    transforms = _ids(
        db, f"SELECT group_by || '|' || group_value FROM {STAGING}.stg_flex__order_transforms"
    )
    assert transforms == {f"{f}|{v}" for f, v in transform_values(after["orders"])}
