"""End-to-end: `meltano run tap-hpe-flex target-postgres` against a real PostgreSQL server.

The server is the loopback one of `scripts/postgres.sh` (scripts/test.sh starts it before pytest
and stops it after). Run alone, this module starts it itself and stops it again when it was not
already running. Each test loads into a database of its own, dropped afterwards, with Meltano's
system database (state) in a temporary directory, as in test_meltano_duckdb.py.

The point of `load_method: upsert`: the tap delivers at least once (its bookmark is inclusive),
so the second run re-sends records the table already holds; they must merge, not duplicate.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from flex_simulator.testing import running_simulator
from tests.e2e.meltano_helpers import (
    COMPARED,
    INCREMENT,
    SCHEMA,
    clean_env,
    meltano,
    meltano_yml,
    post_mutations,
    run_env,
    snapshot,
    tap_env,
    transform_values,
)
from tests.e2e.postgres_helpers import PgServer

KEYS = {"orders": ("id",), "devices": ("id",), "order_transforms": ("groupBy", "value")}


@pytest.fixture(scope="module")
def installed() -> None:
    """Install the extractor and the PostgreSQL loader once (`.meltano/`, gitignored)."""
    meltano(["install", "tap-hpe-flex", "target-postgres"], clean_env())


def _env(tmp: Path, pg: PgServer, database: str) -> dict[str, str]:
    return run_env(tmp, "TARGET_POSTGRES_") | pg.target_env(database)


def _counts(pg: PgServer, db: str, table: str) -> tuple[int, int]:
    """(rows, distinct primary keys) of one loaded table."""
    key = ", ".join(f'"{k}"' for k in KEYS[table])
    (row,) = pg.sql(
        f"SELECT json_build_array(count(*), count(DISTINCT ({key}))) FROM {SCHEMA}.{table}", db
    )
    return int(row[0]), int(row[1])


def _rows(pg: PgServer, db: str, table: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    cols = ", ".join(f'"{c}"' for c in columns)
    return pg.sql(f"SELECT row_to_json(t) FROM (SELECT {cols} FROM {SCHEMA}.{table}) t", db)


def _instant(value: str) -> datetime:
    """A timestamp as an aware UTC datetime; naive values (the loader's) are UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=moment.tzinfo or timezone.utc).astimezone(timezone.utc)


def _assert_matches_api(pg: PgServer, db: str, api: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Every API record is loaded exactly once, with the API's current values."""
    for table, records in api.items():
        fields = COMPARED[table]
        rows = _rows(pg, db, table, ("id", *fields))
        loaded = {r["id"]: r for r in rows}
        assert len(loaded) == len(rows), f"duplicate ids in {table}"
        assert set(loaded) == set(records), f"{table}: loaded ids differ from the API's"
        wrong = []
        for i, record in records.items():
            for field in fields:
                got, want = loaded[i][field], record.get(field)
                if field == "updatedAt" and got is not None and want is not None:
                    got, want = _instant(got), _instant(want)
                if got != want:
                    wrong.append((i, field, got, want))
        assert not wrong, f"{table}: {len(wrong)} values differ from the API, e.g. {wrong[:3]}"


def _transforms(pg: PgServer, db: str) -> dict[tuple[str, str], datetime]:
    """(groupBy, value) -> when the loader last wrote that row (_sdc_batched_at)."""
    rows = pg.sql(
        'SELECT json_build_array("groupBy", "value", "_sdc_batched_at") '
        f"FROM {SCHEMA}.order_transforms",
        db,
    )
    return {(r[0], r[1]): _instant(r[2]) for r in rows}


@pytest.mark.e2e
def test_meltano_run_upserts_into_postgres(
    installed: None, pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    """Two runs with updates and inserts in between: exact counts, no duplicates, new values."""
    env = _env(tmp_path, pg_server, database)
    secret = f"e2e-{secrets.token_hex(12)}"  # distinctive, so a leak cannot hide in a log
    with running_simulator(orders=300, devices=1200, seed=11, client_secret=secret) as sim:
        env.update(tap_env(sim))
        before = snapshot(sim)
        transforms_before = transform_values(before["orders"])
        run1 = meltano(["run", "tap-hpe-flex", "target-postgres"], env)

        assert _counts(pg_server, database, "orders") == (300, 300)
        assert _counts(pg_server, database, "devices") == (1200, 1200)
        n = len(transforms_before)
        assert _counts(pg_server, database, "order_transforms") == (n, n)
        assert set(_transforms(pg_server, database)) == transforms_before
        _assert_matches_api(pg_server, database, before)

        # An order whose sowId no other order has gets a new one: its old order_transforms
        # value disappears from the API (the table keeps it, see below), a new one appears.
        sows = [o["sowId"] for o in before["orders"].values()]
        lone = next(
            o for o in before["orders"].values() if o["sowId"] and sows.count(o["sowId"]) == 1
        )
        rename = {"sowId": "SOW-E2E-RENAMED"}
        post_mutations(
            sim,
            [{"op": "update", "resource": "orders", "id": lone["id"], "set": rename}, *INCREMENT],
        )
        after = snapshot(sim)
        changed = {
            t: {
                i
                for i, r in after[t].items()
                if before[t].get(i, {}).get("generation") != r["generation"]
            }
            for t in ("orders", "devices")
        }
        assert {t: len(v) for t, v in changed.items()} == {"orders": 10, "devices": 26}
        run2_started = datetime.now(timezone.utc)
        run2 = meltano(["run", "tap-hpe-flex", "target-postgres"], env)

        # Run 2 re-sends the changed records (most already in the table) and the ones on the
        # inclusive bookmark: merged on the key, not duplicated.
        assert _counts(pg_server, database, "orders") == (304, 304)
        assert _counts(pg_server, database, "devices") == (1206, 1206)
        _assert_matches_api(pg_server, database, after)
        for table in ("orders", "devices"):
            rows = pg_server.sql(
                f'SELECT json_build_array("id", "_sdc_batched_at") FROM {SCHEMA}.{table}', database
            )
            rewritten = {r[0] for r in rows if _instant(r[1]) >= run2_started}
            assert changed[table] <= rewritten, table
            assert len(rewritten - changed[table]) < 10, f"{table}: run 2 was not incremental"
        # order_transforms is FULL_TABLE, merged on its key. The tap sends no ACTIVATE_VERSION
        # (the SDK's default), so a value that vanished from the API stays as a row; it is the
        # one row run 2 did not rewrite.
        transforms_after = transform_values(after["orders"])
        assert ("sowId", lone["sowId"]) in transforms_before - transforms_after
        assert ("sowId", "SOW-E2E-RENAMED") in transforms_after - transforms_before
        everything = transforms_before | transforms_after
        m = len(everything)
        assert _counts(pg_server, database, "order_transforms") == (m, m)
        loaded = _transforms(pg_server, database)
        assert set(loaded) == everything
        stale = {k for k, batched in loaded.items() if batched < run2_started}
        assert stale == transforms_before - transforms_after

    for proc in (run1, run2):
        output = proc.stdout + proc.stderr
        assert secret not in output
        assert pg_server.password not in output


def test_meltano_yml_defines_target_postgres() -> None:
    """The loader the e2e test relies on: the pin, upsert, loopback defaults and the job."""
    project = meltano_yml()
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-postgres"]
    assert loader["variant"] == "meltanolabs"
    assert loader["pip_url"] == "meltanolabs-target-postgres~=0.8.1"
    assert loader["config"]["load_method"] == "upsert"
    defaults = {s["name"]: s.get("value") for s in loader["settings"]}
    assert (defaults["host"], defaults["port"]) == ("127.0.0.1", 54329)
    assert {s["name"] for s in loader["settings"] if s.get("sensitive")} >= {"password"}
    assert "password" not in loader.get("config", {})  # only the dev environment's throwaway
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    assert jobs["flex-to-postgres"] == ["tap-hpe-flex target-postgres"]
