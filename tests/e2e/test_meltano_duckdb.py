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
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
import yaml

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token, running_simulator

REPO = Path(__file__).resolve().parents[2]
SCHEMA = "tap_hpe_flex"
RUN_TIMEOUT = 300


def _meltano_bin() -> str:
    path = os.environ.get("MELTANO_BIN") or str(REPO / ".venv-meltano" / "bin" / "meltano")
    if not Path(path).exists():
        pytest.fail(f"Meltano not found at {path}: run `source scripts/setup.sh` first")
    return path


def _base_env(tmp: Path) -> dict[str, str]:
    """Environment for one test's Meltano calls: own system database, own DuckDB file."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_HPE_FLEX_", "TARGET_DUCKDB_", "MELTANO_"))
    }
    env.update(
        MELTANO_DATABASE_URI=f"sqlite:///{tmp / 'meltano.db'}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_ENVIRONMENT="dev",
        TARGET_DUCKDB_PATH=str(tmp / "flex.duckdb"),
        NO_COLOR="1",
    )
    return env


def _meltano(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [_meltano_bin(), "--log-format=plain", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        pytest.fail(f"meltano {' '.join(args)} exited with {proc.returncode}")
    return proc


@pytest.fixture(scope="module")
def installed() -> None:
    """Install the extractor and the DuckDB loader once per module (`.meltano/`, gitignored)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTANO_")}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    _meltano(["install", "tap-hpe-flex", "target-duckdb"], env)


def _count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()
    assert row is not None
    return int(row[0])


# --- meltano.yml mirrors the tap ----------------------------------------------------------------

# JSON-schema type (with format/enum) -> the Meltano setting kind meltano.yml must declare.
_KINDS = {"string": "string", "integer": "integer", "number": "decimal", "boolean": "boolean"}
_KINDS |= {"array": "array", "object": "object"}


def _expected_kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "options"
    if prop.get("format") == "date-time":
        return "date_iso8601"
    types = prop.get("type", [])
    main = [t for t in ([types] if isinstance(types, str) else types) if t != "null"]
    return _KINDS[main[0]] if main else "object"


def test_meltano_yml_mirrors_tap_about() -> None:
    """Offline Meltano needs the whole plugin definition in meltano.yml: keep it in step."""
    about_bin = Path(sys.executable).parent / "tap-hpe-flex"
    about = json.loads(
        subprocess.run(
            [str(about_bin), "--about", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    assert "version" not in project  # deprecated in Meltano 4
    assert project["default_environment"] == "dev"  # without it, no state is stored
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-hpe-flex"]
    assert sorted(tap["capabilities"]) == sorted(about["capabilities"])

    props = about["settings"]["properties"]
    settings = {s["name"]: s for s in tap["settings"]}
    assert sorted(settings) == sorted(props)
    mismatched: list[tuple[str, str, Any, Any]] = []
    for name, prop in props.items():
        setting = settings[name]
        if setting.get("kind") != _expected_kind(prop):
            mismatched.append((name, "kind", setting.get("kind"), _expected_kind(prop)))
        if setting.get("value") != prop.get("default"):
            mismatched.append((name, "default", setting.get("value"), prop.get("default")))
        if bool(setting.get("sensitive")) != bool(prop.get("secret")):
            mismatched.append((name, "sensitive", setting.get("sensitive"), prop.get("secret")))
        if "enum" in prop and [o["value"] for o in setting.get("options", [])] != prop["enum"]:
            mismatched.append((name, "options", setting.get("options"), prop["enum"]))
        if not setting.get("label") or not setting.get("description"):
            mismatched.append((name, "label/description", None, None))
    assert not mismatched, mismatched
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
    proc = _meltano(["invoke", "target-duckdb"], env, stdin="\n".join(lines) + "\n")

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

GROUP_BY = ("sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName")
STATE_ID = "dev:tap-hpe-flex-to-target-duckdb"


def _utc_naive(value: str) -> datetime:
    """API timestamps as the loader stores them: naive UTC (Python 3.10 has no 'Z' parsing)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _read_all(sim: FlexSimulator, token: str, path: str) -> list[dict[str, Any]]:
    """Every record of a list endpoint, read over HTTP like a client (the test's oracle)."""
    items: list[dict[str, Any]] = []
    while True:
        resp = requests.get(
            f"{sim.url}/flex/v1beta1/{path}",
            params={"limit": 100, "offset": len(items)},
            headers=auth_headers(token),
            timeout=30,
        )
        resp.raise_for_status()
        page = resp.json()
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def _snapshot(sim: FlexSimulator) -> dict[str, dict[str, dict[str, Any]]]:
    token = fetch_token(sim)
    return {
        name: {r["id"]: r for r in _read_all(sim, token, name)} for name in ("orders", "devices")
    }


def _transform_values(orders: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """Distinct (groupBy, value) pairs; partnerName is the union of reseller and distributor."""
    pairs: set[tuple[str, str]] = set()
    for order in orders.values():
        for field in GROUP_BY[:4]:
            if order.get(field) is not None:
                pairs.add((field, order[field]))
        for field in ("resellerName", "distributorName"):
            if order.get(field) is not None:
                pairs.add(("partnerName", order[field]))
    return pairs


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


# Columns compared with the API for every row (lower-cased by the loader), beyond the key.
COMPARED = {
    "orders": ("generation", "updatedAt", "customerName", "partnerName", "isFlexPartner"),
    "devices": ("generation", "updatedAt", "model", "billingTier", "tags"),
}


def _as_loaded(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "updatedAt":
        return _utc_naive(value)
    return value


def _assert_matches_api(db: Path, snapshot: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Every API record is loaded exactly once with the API's current values."""
    for table, records in snapshot.items():
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
    out = _meltano(["state", "get", STATE_ID], env).stdout
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
        env.update(
            TAP_HPE_FLEX_API_URL=sim.url,
            TAP_HPE_FLEX_TOKEN_URL=sim.token_url,
            TAP_HPE_FLEX_CLIENT_ID=sim.config.client_id,
            TAP_HPE_FLEX_CLIENT_SECRET=sim.config.client_secret,
            TAP_HPE_FLEX_WORKSPACE_ID=sim.config.workspace_id,
        )
        before = _snapshot(sim)
        run1 = _meltano(["run", "tap-hpe-flex", "target-duckdb"], env)

        assert _count(db, "orders") == len(before["orders"]) == 300
        assert _count(db, "devices") == len(before["devices"]) == 1200
        transforms_before = _transform_values(before["orders"])
        assert _count(db, "order_transforms") == len(transforms_before)
        assert _loaded_transforms(db) == transforms_before
        _assert_matches_api(db, before)
        bookmarks = _bookmarks(env)  # default_environment: dev, so Meltano stored state

        resp = requests.post(
            f"{sim.url}/__sim/mutations",
            json={
                "ops": [
                    {"op": "update", "resource": "devices", "count": 20},
                    {"op": "update", "resource": "orders", "count": 5},
                    {"op": "insert", "resource": "orders", "count": 4},
                    {"op": "insert", "resource": "devices", "count": 6},
                ]
            },
            timeout=30,
        )
        resp.raise_for_status()
        after = _snapshot(sim)
        marks = {t: max(v[2] for v in _loaded(db, t).values()) for t in ("orders", "devices")}
        run2 = _meltano(["run", "tap-hpe-flex", "target-duckdb"], env)

        assert _count(db, "orders") == len(after["orders"]) == 304
        assert _count(db, "devices") == len(after["devices"]) == 1206
        _assert_matches_api(db, after)
        # A FULL_TABLE stream merged on its key: values that vanished stay, new ones arrive.
        assert _loaded_transforms(db) == transforms_before | _transform_values(after["orders"])

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
