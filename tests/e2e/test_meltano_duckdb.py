"""End-to-end: the real Meltano project (meltano.yml) loading the simulator into DuckDB.

The tests marked `e2e` run the same commands as the README's demo: `meltano install`,
`meltano invoke target-duckdb` and `meltano run tap-hpe-flex target-duckdb`, each as a subprocess
of the Meltano in `.venv-meltano` (or `$MELTANO_BIN`), against a simulator started in this
process. The system database (state) and the DuckDB file live in a temporary directory per test;
the plugin installs under `.meltano/` are shared with the demo. One fast unmarked test checks
that meltano.yml still mirrors the tap's `--about`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flex_simulator.testing import running_simulator
from tests.e2e.meltano_helpers import (
    COMPARED,
    INCREMENT,
    SCHEMA,
    clean_env,
    meltano,
    meltano_yml,
    meltano_yml_tap,
    post_mutations,
    run_env,
    settings_differences,
    snapshot,
    tap_env,
    transform_values,
)


def _base_env(tmp: Path) -> dict[str, str]:
    """Environment for one test's Meltano calls: own system database, own DuckDB file."""
    env = run_env(tmp, "TARGET_DUCKDB_")
    env["TARGET_DUCKDB_PATH"] = str(tmp / "flex.duckdb")
    return env


@pytest.fixture(scope="module")
def installed() -> None:
    """Install the extractor and the DuckDB loader once per module (`.meltano/`, gitignored)."""
    meltano(["install", "tap-hpe-flex", "target-duckdb"], clean_env())


def _count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()
    assert row is not None
    return int(row[0])


# --- meltano.yml mirrors the tap ----------------------------------------------------------------


def test_meltano_yml_mirrors_tap_about(about: dict[str, Any]) -> None:
    """Offline Meltano needs the whole plugin definition in meltano.yml: keep it in step."""
    project = meltano_yml()
    assert "version" not in project  # deprecated in Meltano 4
    assert project["default_environment"] == "dev"  # without it, no state is stored
    tap = meltano_yml_tap(project)
    assert sorted(tap["capabilities"]) == sorted(about["capabilities"])
    problems = settings_differences(tap["settings"], about)
    problems += [
        f"{s['name']}: no label or no description"
        for s in tap["settings"]
        if not s.get("label") or not s.get("description")
    ]
    assert not problems, "meltano.yml's tap-hpe-flex differs from --about:\n" + "\n".join(problems)
    required = set(about["settings"].get("required", []))
    assert set(tap["settings_group_validation"][0]) == required


# --- the loader pin -----------------------------------------------------------------------------


def _singer_lines(stream: str, n: int, start: datetime) -> Iterator[str]:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "model": {"type": ["string", "null"]},
            "generation": {"type": "integer"},
            "tags": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                },
            },
        },
    }
    yield json.dumps(
        {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": ["id"]}
    )
    for i in range(n):
        record = {
            "id": f"{stream}-{i:06d}",
            "updatedAt": (start + timedelta(seconds=i)).isoformat(),
            "model": None if i % 7 == 0 else f"model-{i % 13}",
            "generation": i % 5 + 1,
            "tags": [{"name": "site", "value": f"s{i % 3}"}],
        }
        yield json.dumps({"type": "RECORD", "stream": stream, "record": record})


@pytest.mark.e2e
def test_target_duckdb_pin_loads_every_row(installed: None, tmp_path: Path) -> None:
    """target-duckdb 0.8.0 with duckdb >= 1.3 drops one row per stream per batch: guard the pin.

    2,500 records in batches of 1,000 (three batches) plus 1,000 in one batch; the unpinned
    combination loads 2,497 and 999.
    """
    env = _base_env(tmp_path)
    env["TARGET_DUCKDB_BATCH_SIZE_ROWS"] = "1000"
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    state = {"bookmarks": {"pin_devices": {"replication_key_value": "2025-01-01T00:41:39+00:00"}}}
    lines = [
        *_singer_lines("pin_devices", 2500, start),
        *_singer_lines("pin_orders", 1000, start),
        json.dumps({"type": "STATE", "value": state}),
    ]
    proc = meltano(["invoke", "target-duckdb"], env, stdin="\n".join(lines) + "\n")

    db = tmp_path / "flex.duckdb"
    assert _count(db, "pin_devices") == 2500
    assert _count(db, "pin_orders") == 1000
    with duckdb.connect(str(db), read_only=True) as con:
        distinct = con.execute(f"SELECT count(DISTINCT id) FROM {SCHEMA}.pin_devices").fetchone()
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = 'pin_devices'",
                [SCHEMA],
            ).fetchall()
        )
    assert distinct == (2500,)
    # The loader's documented quirks that the demo's queries rely on.
    assert types["updatedat"] == "TIMESTAMP"
    assert types["tags"] == "JSON"
    # The target echoes the last state after loading; Meltano would store exactly this.
    emitted = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert emitted[-1] == state


# --- the tap through Meltano against the simulator ---------------------------------------------

STATE_ID = "dev:tap-hpe-flex-to-target-duckdb"


def _utc_naive(value: str) -> datetime:
    """API timestamps as the loader stores them: naive UTC (Python 3.10 has no 'Z' parsing)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _loaded(db: Path, table: str) -> dict[str, tuple[int, datetime, datetime]]:
    """id -> (generation, updatedAt, _sdc_batched_at) as loaded."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            f"SELECT id, generation, updatedat, _sdc_batched_at FROM {SCHEMA}.{table}"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _loaded_transforms(db: Path) -> set[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(f"SELECT groupby, value FROM {SCHEMA}.order_transforms").fetchall()
    return {(r[0], r[1]) for r in rows}


def _as_loaded(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "updatedAt":
        return _utc_naive(value)
    return value


def _assert_matches_api(db: Path, api: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Every API record is loaded exactly once with the API's current values."""
    for table, records in api.items():
        fields = COMPARED[table]
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute(
                f"SELECT id, {', '.join(f.lower() for f in fields)} FROM {SCHEMA}.{table}"
            ).fetchall()
        loaded = {r[0]: r[1:] for r in rows}
        assert len(loaded) == len(rows), f"duplicate ids in {table}"
        assert set(loaded) == set(records), f"{table}: loaded ids differ from the API's"
        wrong = []
        for i, record in records.items():
            expected = tuple(_as_loaded(f, record.get(f)) for f in fields)
            got = tuple(
                json.loads(v) if f == "tags" and v is not None else v
                for f, v in zip(fields, loaded[i], strict=True)
            )
            if got != expected:
                wrong.append((i, got, expected))
        assert not wrong, f"{table}: {len(wrong)} rows differ from the API, e.g. {wrong[:2]}"


def _bookmarks(env: dict[str, str]) -> dict[str, str]:
    out = meltano(["state", "get", STATE_ID], env).stdout
    state = json.loads(out[out.index("{") :])
    bookmarks = state["singer_state"]["bookmarks"]
    return {s: bookmarks[s]["replication_key_value"] for s in ("orders", "devices")}


@pytest.mark.e2e
def test_meltano_run_loads_simulator_then_increment(installed: None, tmp_path: Path) -> None:
    """Two `meltano run tap-hpe-flex target-duckdb` runs with a data change in between."""
    env = _base_env(tmp_path)
    env["TARGET_DUCKDB_BATCH_SIZE_ROWS"] = "500"  # several batches: a lost row would show
    db = tmp_path / "flex.duckdb"
    secret = f"e2e-{secrets.token_hex(12)}"  # distinctive, so a leak cannot hide in a log
    with running_simulator(orders=300, devices=1200, seed=7, client_secret=secret) as sim:
        env.update(tap_env(sim))
        before = snapshot(sim)
        run1 = meltano(["run", "tap-hpe-flex", "target-duckdb"], env)

        assert _count(db, "orders") == len(before["orders"]) == 300
        assert _count(db, "devices") == len(before["devices"]) == 1200
        transforms_before = transform_values(before["orders"])
        assert _count(db, "order_transforms") == len(transforms_before)
        assert _loaded_transforms(db) == transforms_before
        _assert_matches_api(db, before)
        bookmarks = _bookmarks(env)  # default_environment: dev, so Meltano stored state

        post_mutations(sim, INCREMENT)
        after = snapshot(sim)
        marks = {t: max(v[2] for v in _loaded(db, t).values()) for t in ("orders", "devices")}
        run2 = meltano(["run", "tap-hpe-flex", "target-duckdb"], env)

        assert _count(db, "orders") == len(after["orders"]) == 304
        assert _count(db, "devices") == len(after["devices"]) == 1206
        _assert_matches_api(db, after)
        # A FULL_TABLE stream merged on its key: values that vanished stay, new ones arrive.
        assert _loaded_transforms(db) == transforms_before | transform_values(after["orders"])

        for table in ("orders", "devices"):
            old, new = before[table], after[table]
            changed = {
                i for i, r in new.items() if i not in old or old[i]["generation"] != r["generation"]
            }
            assert len(changed) == {"orders": 9, "devices": 26}[table]
            rewritten = {i for i, v in _loaded(db, table).items() if v[2] > marks[table]}
            # The second run is incremental: it writes the changes and otherwise only records
            # at or after the first run's bookmark (inclusive: those on the bookmark instant).
            bookmark = _utc_naive(bookmarks[table])
            since = {i for i, r in new.items() if _utc_naive(r["updatedAt"]) >= bookmark}
            assert changed <= rewritten <= since, table
            assert len(since - changed) < 10, f"{table}: the bookmark is not the latest change"

    for proc in (run1, run2):
        assert secret not in proc.stdout + proc.stderr
