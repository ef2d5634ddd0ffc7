"""End-to-end: what the pinned loaders do with deletions, fed hand-written Singer streams.

No tap runs here: each loader of meltano.yml gets, through `meltano invoke`, the message shapes a
tap could emit, built from the tap's own SCHEMA (`tap-hpe-flex --discover`) and simulator-shaped
records. Run 1 loads every record of each scenario table with version V1 and ACTIVATE_VERSION V1;
run 2 sends one shape per table (fewer records, deletion markers from tap_hpe_flex.deletions,
ACTIVATE_VERSION before, after or never). The tables afterwards say which shapes each loader
honours, which is what the tap must emit (docs/deletions.md):

- target-duckdb 0.8.0 ignores ACTIVATE_VERSION and `version`; with `hard_delete` it deletes the
  rows of records that arrive with `_sdc_deleted_at`, without it it keeps them marked.
- meltanolabs-target-postgres 0.8.1 deletes (or marks) every row whose `_sdc_table_version` is
  older than ACTIVATE_VERSION's or NULL, so every record of the pass must carry the version and
  markers must not; markers alone only mark, even with `hard_delete`.
- A run that ends without ACTIVATE_VERSION and without markers deletes nothing anywhere; an
  ACTIVATE_VERSION sent before the records (the SDK's place) empties target-postgres's table
  first, so a run that then stops halfway loses rows.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flex_simulator.data import FlexDataGenerator
from tap_hpe_flex.deletions import DELETED_AT, marker_for
from tests.e2e.meltano_helpers import (
    SCHEMA,
    clean_env,
    meltano,
    meltano_bin,
    run_env,
    tap_schemas,
)
from tests.e2e.postgres_helpers import PgServer

pytestmark = pytest.mark.e2e

WS = "0f3a9c1e5b7d4e2f8a6c0b9d1e3f5a7c"
V1, V2 = 1_764_600_000_000, 1_764_600_100_000  # ms since the epoch, as the SDK stamps versions
DELETED = dt.datetime(2026, 12, 1, 21, 0, tzinfo=dt.timezone.utc)
DEVICE_IDS = [d["id"] for d in FlexDataGenerator(5, 12).devices(12)]
ALL, LIVE, GONE, HALF = (
    set(DEVICE_IDS),
    set(DEVICE_IDS[:9]),
    set(DEVICE_IDS[9:]),
    set(DEVICE_IDS[:5]),
)
PARTNERS = [f"Partner {c}" for c in "ABCDEFGH"]
P_ALL, P_LIVE, P_GONE = set(PARTNERS), set(PARTNERS[:6]), set(PARTNERS[6:])
NOTHING: set[str] = set()


@dataclass(frozen=True)
class Loader:
    """One loader configuration of meltano.yml: the plugin and the variables that adjust it."""

    name: str
    plugin: str
    env: tuple[tuple[str, str], ...] = ()

    @property
    def postgres(self) -> bool:
        """Whether it writes PostgreSQL (else DuckDB)."""
        return self.plugin.startswith("target-postgres")

    @property
    def hard(self) -> bool:
        """Whether deleted rows are removed (else kept with _sdc_deleted_at)."""
        return not self.name.endswith("soft")


LOADERS = [
    Loader("duckdb-hard", "target-duckdb"),
    Loader("duckdb-soft", "target-duckdb", (("TARGET_DUCKDB_HARD_DELETE", "false"),)),
    Loader("postgres-hard", "target-postgres"),
    Loader("postgres-soft", "target-postgres-soft-delete"),
]


@pytest.fixture(scope="module")
def installed() -> None:
    """Install the loaders once (`.meltano/`; the soft-delete variant shares the install)."""
    meltano(
        ["install", "target-duckdb", "target-postgres", "target-postgres-soft-delete"], clean_env()
    )


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The tap's SCHEMA per stream, from its own discovery (no request is made)."""
    return tap_schemas(tmp_path_factory.mktemp("tap"))


# --- the message streams --------------------------------------------------------------------


def _devices() -> dict[str, dict[str, Any]]:
    records = {}
    for device in FlexDataGenerator(5, 12).devices(12):
        record = {k: v for k, v in device.items() if not k.startswith("_")}
        records[record["id"]] = {"workspaceId": WS, **record}
    return records


def _schema(table: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": table,
        "schema": entry["schema"],
        "key_properties": entry["key_properties"],
    }


def _record(table: str, record: dict[str, Any], version: int | None) -> dict[str, Any]:
    message = {"type": "RECORD", "stream": table, "record": record}
    message["time_extracted"] = "2026-12-01T20:00:00+00:00"
    return message if version is None else {**message, "version": version}


def _activate(table: str, version: int) -> dict[str, Any]:
    return {"type": "ACTIVATE_VERSION", "stream": table, "version": version}


def _device_markers(table: str, ids: set[str], version: int | None) -> list[dict[str, Any]]:
    return [
        _record(table, marker_for("devices", i, None, DELETED, primary_keys=("id",)), version)
        for i in sorted(ids)
    ]


def _transform(value: str) -> dict[str, Any]:
    return {
        "workspaceId": WS,
        "groupBy": "partnerName",
        "value": value,
        "item": {"partnerName": value},
    }


# Scenario tables (all with the devices schema but order_transforms) and what run 2 sends.
COMPLETE = ("av_after", "tap_shape", "versioned_markers", "unversioned_records")
UNFINISHED = ("halfway", "activate_first")  # sent last: the input ends without their ACTIVATE


def _run1(schemas: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    devices = _devices()
    out: list[dict[str, Any]] = []
    for table in (*COMPLETE, *UNFINISHED):
        out.append(_schema(table, schemas["devices"]))
        out += [_record(table, devices[i], V1) for i in DEVICE_IDS]
        out.append(_activate(table, V1))
    out.append(_schema("order_transforms", schemas["order_transforms"]))
    out += [_record("order_transforms", _transform(v), V1) for v in PARTNERS]
    out.append(_activate("order_transforms", V1))
    out.append({"type": "STATE", "value": {"bookmarks": {"run": 1}}})
    return out


def _run2(schemas: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    devices = _devices()
    live = [devices[i] for i in DEVICE_IDS[:9]]
    out = [_schema(t, schemas["devices"]) for t in (*COMPLETE, *UNFINISHED)]
    out += [_record("av_after", r, V2) for r in live] + [_activate("av_after", V2)]
    out += [_record("tap_shape", r, V2) for r in live]
    out += [*_device_markers("tap_shape", GONE, None), _activate("tap_shape", V2)]
    out += [_record("versioned_markers", r, V2) for r in live]
    out += [*_device_markers("versioned_markers", GONE, V2), _activate("versioned_markers", V2)]
    out += [_record("unversioned_records", r, None) for r in live]
    out.append(_activate("unversioned_records", V2))
    # order_transforms in the tap's shape, with the composite key (groupBy, value) in its markers.
    out.append(_schema("order_transforms", schemas["order_transforms"]))
    out += [_record("order_transforms", _transform(v), V2) for v in PARTNERS[:6]]
    key = tuple(schemas["order_transforms"]["key_properties"])
    context = {"groupBy": "partnerName"}
    out += [
        _record(
            "order_transforms",
            marker_for("order_transforms", v, context, DELETED, primary_keys=key),
            None,
        )
        for v in PARTNERS[6:]
    ]
    out.append(_activate("order_transforms", V2))
    out.append({"type": "STATE", "value": {"bookmarks": {"run": 2}}})
    # Runs that stop halfway: the input ends after five records, no ACTIVATE_VERSION after them.
    out += [_record("halfway", devices[i], V2) for i in DEVICE_IDS[:5]]
    out.append(_activate("activate_first", V2))  # where the SDK puts it: before the records
    out += [_record("activate_first", devices[i], V2) for i in DEVICE_IDS[:5]]
    return out


def _lines(messages: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


# --- reading the tables -----------------------------------------------------------------------


def _duckdb_rows(db: Path, table: str, key: str) -> dict[str, tuple[Any, Any]]:
    """key -> (_sdc_deleted_at, a payload column) of every row."""
    payload = "model" if table != "order_transforms" else "item"
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            f"SELECT {key}, {DELETED_AT}, {payload} FROM {SCHEMA}.{table}"
        ).fetchall()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def _pg_rows(pg: PgServer, db: str, table: str, key: str) -> dict[str, tuple[Any, Any]]:
    payload = "model" if table != "order_transforms" else "item"
    rows = pg.sql(
        f'SELECT json_build_array("{key}", "{DELETED_AT}", "{payload}") FROM {SCHEMA}.{table}', db
    )
    return {str(r[0]): (r[1], r[2]) for r in rows}


def _expected(loader: Loader) -> dict[str, tuple[set[str], set[str]]]:
    """Scenario table -> (keys present, keys with _sdc_deleted_at) after run 2, per loader."""
    if not loader.postgres:  # ignores ACTIVATE_VERSION and `version`; honours markers
        marked = (LIVE, NOTHING) if loader.hard else (ALL, GONE)
        return {
            "av_after": (ALL, NOTHING),
            "tap_shape": marked,
            "versioned_markers": marked,
            "unversioned_records": (ALL, NOTHING),
            "halfway": (ALL, NOTHING),
            "activate_first": (ALL, NOTHING),
            "order_transforms": (P_LIVE, NOTHING) if loader.hard else (P_ALL, P_GONE),
        }
    if loader.hard:
        return {
            "av_after": (LIVE, NOTHING),
            "tap_shape": (LIVE, NOTHING),
            # Markers stamped with the new version survive its ACTIVATE_VERSION, only marked.
            "versioned_markers": (ALL, GONE),
            # Records without a version count as older than any: the whole table goes.
            "unversioned_records": (NOTHING, NOTHING),
            "halfway": (ALL, NOTHING),
            # ACTIVATE_VERSION first empties the table; only the five records sent after it stay.
            "activate_first": (HALF, NOTHING),
            "order_transforms": (P_LIVE, NOTHING),
        }
    return {
        "av_after": (ALL, GONE),
        "tap_shape": (ALL, GONE),
        "versioned_markers": (ALL, GONE),
        "unversioned_records": (ALL, ALL),
        "halfway": (ALL, NOTHING),
        "activate_first": (ALL, ALL - HALF),
        "order_transforms": (P_ALL, P_GONE),
    }


@pytest.mark.parametrize("loader", LOADERS, ids=[loader.name for loader in LOADERS])
def test_loader_deletions(
    loader: Loader,
    installed: None,
    schemas: dict[str, dict[str, Any]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Two runs of hand-written messages; each scenario table holds exactly the expected rows."""
    env = run_env(tmp_path, "TARGET_DUCKDB_", "TARGET_POSTGRES_") | dict(loader.env)
    if loader.postgres:
        pg: PgServer = request.getfixturevalue("pg_server")
        database: str = request.getfixturevalue("database")
        env |= pg.target_env(database)
    else:
        db = tmp_path / "flex.duckdb"
        env["TARGET_DUCKDB_PATH"] = str(db)

    meltano(["invoke", loader.plugin], env, stdin=_lines(_run1(schemas)))
    run2 = meltano(["invoke", loader.plugin], env, stdin=_lines(_run2(schemas)))
    assert '"run": 2' in run2.stdout  # the loader echoed run 2's STATE: it processed the input

    devices = _devices()
    for table, (present, marked) in _expected(loader).items():
        key = "value" if table == "order_transforms" else "id"
        if loader.postgres:
            rows = _pg_rows(pg, database, table, key)
        else:
            rows = _duckdb_rows(db, table, key)
        assert set(rows) == present, f"{loader.name} {table}: rows"
        assert {k for k, (deleted, _) in rows.items() if deleted is not None} == marked, (
            f"{loader.name} {table}: rows with {DELETED_AT}"
        )
        if table == "order_transforms":
            continue
        for k, (deleted, model) in rows.items():
            if deleted is None:  # live rows keep their values
                assert model == devices[k]["model"], f"{loader.name} {table} {k}"
    if not loader.hard:
        # A marker carries only the key: the loader's merge blanks every other column of the row
        # it marks, while ACTIVATE_VERSION's soft delete keeps them.
        marked_rows = (
            _pg_rows(pg, database, "tap_shape", "id")
            if loader.postgres
            else _duckdb_rows(db, "tap_shape", "id")
        )
        assert {marked_rows[k][1] for k in GONE} == {None}
        if loader.postgres:
            av_rows = _pg_rows(pg, database, "av_after", "id")
            assert {av_rows[k][1] for k in GONE} == {devices[k]["model"] for k in GONE}


def test_target_postgres_rejects_markers_when_it_validates_records(
    installed: None,
    schemas: dict[str, dict[str, Any]],
    pg_server: PgServer,
    database: str,
    tmp_path: Path,
) -> None:
    """Why meltano.yml sets validate_records: false: a marker lacks the schema's required fields."""
    env = run_env(tmp_path, "TARGET_POSTGRES_") | pg_server.target_env(database)
    env["TARGET_POSTGRES_VALIDATE_RECORDS"] = "true"
    marker = marker_for("devices", DEVICE_IDS[0], None, DELETED, primary_keys=("id",))
    lines = _lines([_schema("devices", schemas["devices"]), _record("devices", marker, None)])
    proc = subprocess.run(
        [meltano_bin(), "--log-format=plain", "invoke", "target-postgres"],
        env=env,
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0
    assert "is a required property" in proc.stdout + proc.stderr
