"""End-to-end: deletions in the simulator leave the warehouse, through real `meltano run`.

The extractor is meltano.yml's `tap-hpe-flex-full-table` (orders and devices FULL_TABLE;
order_transforms always is). Between runs the simulator deletes a few devices and one partner's
orders (its admin API's `where` selectors, as the demo does), so that partner's order_transforms
values vanish too. Afterwards each loader holds exactly the live set:

- target-duckdb (`hard_delete`, meltano.yml's default) through the tap's deletion markers;
- target-postgres with `hard_delete` (rows deleted) and target-postgres-soft-delete (rows kept,
  `_sdc_deleted_at` set), through ACTIVATE_VERSION after the run's last record and the markers.

A run that fails halfway deletes nothing (no marker, no ACTIVATE_VERSION); the guard holds when
the simulator suddenly answers every list with no items. See docs/deletions.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import running_simulator
from tests.e2e.meltano_helpers import (
    REPO,
    RUN_TIMEOUT,
    SCHEMA,
    clean_env,
    meltano,
    meltano_bin,
    post_mutations,
    run_env,
    snapshot,
    tap_env,
    transform_values,
)
from tests.e2e.postgres_helpers import PgServer

pytestmark = pytest.mark.e2e

FULL = "tap-hpe-flex-full-table"
DELETED_AT = "_sdc_deleted_at"
LiveSet = dict[str, set[Any]]


@pytest.fixture(scope="module")
def installed() -> None:
    """Install the extractors and loaders once (`.meltano/`; inherited plugins share installs)."""
    meltano(
        [
            "install",
            *("tap-hpe-flex", FULL, "target-duckdb"),
            *("target-postgres", "target-postgres-soft-delete"),
        ],
        clean_env(),
    )


def _live(sim: FlexSimulator) -> LiveSet:
    """The API's keys now: order ids, device ids, (groupBy, value) pairs."""
    api = snapshot(sim)
    return {
        "orders": set(api["orders"]),
        "devices": set(api["devices"]),
        "order_transforms": transform_values(api["orders"]),
    }


def _delete_devices_and_a_partner(sim: FlexSimulator) -> LiveSet:
    """Delete 5 devices and every order of one partner; return what vanished."""
    before = snapshot(sim)
    partner = next(o["resellerName"] for o in before["orders"].values() if o.get("resellerName"))
    ops: list[dict[str, Any]] = [
        {"op": "delete", "resource": "devices", "ids": sorted(before["devices"])[:5]}
    ]
    ops += [
        {"op": "delete", "resource": "orders", "where": {role: partner}}
        for role in ("partnerName", "resellerName", "distributorName")
    ]
    previous = _live(sim)
    post_mutations(sim, ops)
    now = _live(sim)
    gone = {t: previous[t] - now[t] for t in previous}
    assert len(gone["devices"]) == 5 and gone["orders"]
    assert ("partnerName", partner) in gone["order_transforms"]
    return gone


def _duckdb_keys(db: Path) -> LiveSet:
    with duckdb.connect(str(db), read_only=True) as con:
        found: LiveSet = {
            t: {r[0] for r in con.execute(f"SELECT id FROM {SCHEMA}.{t}").fetchall()}
            for t in ("orders", "devices")
        }
        rows = con.execute(f'SELECT "groupBy", "value" FROM {SCHEMA}.order_transforms')
        found["order_transforms"] = {(r[0], r[1]) for r in rows.fetchall()}
    return found


def _meltano_fails(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run Meltano where it must fail (exit status not 0)."""
    proc = subprocess.run(
        [meltano_bin(), "--log-format=plain", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert proc.returncode != 0, "the run was meant to fail"
    return proc


def test_duckdb_holds_the_live_set_a_failed_run_and_an_empty_api_delete_nothing(
    installed: None, tmp_path: Path
) -> None:
    env = run_env(tmp_path, "TARGET_DUCKDB_")
    db = tmp_path / "flex.duckdb"
    env.update(
        TARGET_DUCKDB_PATH=str(db),
        TAP_HPE_FLEX_ORDER_TRANSFORM_GROUP_BY='["partnerName"]',
        TAP_HPE_FLEX_PAGE_SIZE="20",  # several pages: the failing run stops after the first
    )
    job = ["run", FULL, "target-duckdb"]
    with running_simulator(orders=60, devices=150, seed=31) as sim:
        env.update(tap_env(sim))
        meltano(job, env)
        first = _live(sim)
        first["order_transforms"] = {p for p in first["order_transforms"] if p[0] == "partnerName"}
        assert _duckdb_keys(db) == first

        gone = _delete_devices_and_a_partner(sim)
        # orders is synced last: devices and order_transforms are complete when it fails.
        # A 500 asking to retry after 700 s, beyond max_retry_seconds (600): the run gives up.
        sim.script_faults("orders", ["pass", "500:700"])
        failed = _meltano_fails(job, env)
        assert "giving up" in failed.stdout + failed.stderr
        assert _duckdb_keys(db) == first  # nothing deleted

        sim.faults.clear()
        meltano(job, env)
        live = _live(sim)
        live["order_transforms"] = {p for p in live["order_transforms"] if p[0] == "partnerName"}
        assert _duckdb_keys(db) == live
        assert all(gone[t] and not gone[t] & _duckdb_keys(db)[t] for t in gone)

        sim.update_config(empty_lists=True)  # the API answers every list with nothing
        guarded = meltano(job, env)
        assert "delivered no records" in guarded.stdout + guarded.stderr
        assert _duckdb_keys(db) == live


def _pg_keys(pg: PgServer, db: str, *, deleted: bool | None) -> LiveSet:
    """Keys of each table: all rows (None), marked rows (True) or unmarked rows (False)."""
    where = "" if deleted is None else f" WHERE {DELETED_AT} IS {'NOT ' if deleted else ''}NULL"
    found: LiveSet = {
        t: set(pg.sql(f'SELECT to_json("id") FROM {SCHEMA}.{t}{where}', db))
        for t in ("orders", "devices")
    }
    rows = pg.sql(
        f'SELECT json_build_array("groupBy", "value") FROM {SCHEMA}.order_transforms{where}', db
    )
    found["order_transforms"] = {(r[0], r[1]) for r in rows}
    return found


@pytest.mark.parametrize("loader", ["target-postgres", "target-postgres-soft-delete"])
def test_postgres_hard_and_soft_delete_hold_the_live_set(
    installed: None, pg_server: PgServer, database: str, tmp_path: Path, loader: str
) -> None:
    env = run_env(tmp_path, "TARGET_POSTGRES_") | pg_server.target_env(database)
    with running_simulator(orders=60, devices=150, seed=37) as sim:
        env.update(tap_env(sim))
        meltano(["run", FULL, loader], env)
        first = _live(sim)
        assert _pg_keys(pg_server, database, deleted=None) == first

        gone = _delete_devices_and_a_partner(sim)
        meltano(["run", FULL, loader], env)
        live = _live(sim)
        assert _pg_keys(pg_server, database, deleted=False) == live
        if loader == "target-postgres":  # hard: the rows are gone
            assert _pg_keys(pg_server, database, deleted=None) == live
        else:  # soft: the rows stay, marked
            assert _pg_keys(pg_server, database, deleted=True) == gone
            assert _pg_keys(pg_server, database, deleted=None) == first
