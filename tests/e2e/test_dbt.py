"""End-to-end: simulator -> tap -> target-duckdb -> dbt (transform/), all through Meltano.

`meltano run tap-hpe-flex target-duckdb dbt-duckdb:run dbt-duckdb:test` loads a simulator
workspace and builds the marts; the marts are then compared with aggregates computed here from
the simulator's API (read over HTTP, the test's oracle). A second run after data changes proves
that target-duckdb still writes the file after dbt-duckdb opened it (same duckdb, 1.2.2) and that
the marts follow the changes.

The Meltano project is the repository's (or `$MELTANO_PROJECT_ROOT`'s); its `meltano.yml` must
define the `dbt-duckdb` utility from docs/dbt.md. The DuckDB file, the system database and dbt's
target/log directories live in a temporary directory per test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import fetch_token, running_simulator
from tests.e2e.meltano_helpers import REPO, clean_env, meltano, read_all, run_env, tap_env

pytestmark = pytest.mark.e2e

PROJECT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or REPO)
MARTS = "flex_marts"
STAGING = "flex_staging"
PIPELINE = ["run", "tap-hpe-flex", "target-duckdb", "dbt-duckdb:run", "dbt-duckdb:test"]
DBT_DONE = re.compile(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DBT_PLAIN = {"MELTANO_PROJECT_ROOT": str(PROJECT), "DBT_USE_COLORS": "false"}


def _env(tmp: Path) -> dict[str, str]:
    """Environment for Meltano: this test's own state, DuckDB file and dbt artifacts."""
    env = run_env(tmp, "TARGET_DUCKDB_", "DBT_") | DBT_PLAIN
    db = str(tmp / "flex.duckdb")
    env.update(
        TARGET_DUCKDB_PATH=db,
        # Meltano reads a utility's settings from <NAMESPACE>_<SETTING> variables.
        DBT_DUCKDB_PATH=db,
        DBT_DUCKDB_TARGET_PATH=str(tmp / "dbt-target"),
        DBT_DUCKDB_LOG_PATH=str(tmp / "dbt-logs"),
    )
    return env


def _meltano(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return meltano(args, env, cwd=PROJECT)


@pytest.fixture(scope="module")
def installed() -> None:
    """Install the extractor, the DuckDB loader and the dbt utility (`.meltano/`, gitignored)."""
    if "name: dbt-duckdb" not in (PROJECT / "meltano.yml").read_text():
        pytest.fail("meltano.yml defines no dbt-duckdb utility: merge the snippet in docs/dbt.md")
    env = clean_env("TAP_HPE_FLEX_", "TARGET_DUCKDB_", "DBT_") | DBT_PLAIN
    _meltano(["install", "tap-hpe-flex", "target-duckdb", "dbt-duckdb"], env)


def _plugin_duckdb(kind: str, name: str) -> str:
    python = PROJECT / ".meltano" / kind / name / "venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", "import duckdb; print(duckdb.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_dbt_duckdb_uses_the_loaders_duckdb(installed: None) -> None:
    """One engine version for the file: dbt must not upgrade or re-encode what the loader reads."""
    loader = _plugin_duckdb("loaders", "target-duckdb")
    assert loader == "1.2.2"
    assert _plugin_duckdb("utilities", "dbt-duckdb") == loader == duckdb.__version__


# --- the oracle: aggregates computed from the API --------------------------------------------


def _expected(sim: FlexSimulator) -> dict[str, Counter[Any]]:
    """Each mart's grain -> count, from every order and device the API serves."""
    token = fetch_token(sim)
    orders = read_all(sim, token, "orders")
    devices = read_all(sim, token, "devices")
    roles: Counter[Any] = Counter()
    for o in orders:
        for role, field in (
            ("partner", "partnerName"),
            ("reseller", "resellerName"),
            ("distributor", "distributorName"),
        ):
            if o.get(field) is not None:
                roles[(o[field], role)] += 1
    device_accounts = Counter(d.get("billingAccountName") for d in devices)
    order_accounts = Counter(o["billingAccountName"] for o in orders)
    # Orders and devices meet on the billing account NAME (devices have no account ID).
    status: Counter[Any] = Counter()
    for name in order_accounts:
        status["matched" if name in device_accounts else "orders_only", name] = 1
    for name in device_accounts.keys() - order_accounts.keys():
        status["devices_only" if name is not None else "devices_without_account", name] = 1
    return {
        "devices_by_model": Counter(d["model"] for d in devices),
        "fleet": Counter(
            (d["model"], d["deviceType"], d["make"], d.get("billingTier")) for d in devices
        ),
        "tags": Counter(
            (t["name"], t["value"])
            for d in devices
            for t in {(x["name"], x["value"]): x for x in d.get("tags") or []}.values()
        ),
        "tag_rows": Counter({"rows": sum(len(d.get("tags") or []) for d in devices)}),
        "account_orders": order_accounts,
        "account_devices": device_accounts,
        "account_status": status,
        "sows": Counter(
            (o["billingAccountId"], o["billingAccountName"], o["sowId"]) for o in orders
        ),
        "partner_orders": Counter(
            (
                o.get("partnerName"),
                o.get("resellerName"),
                o.get("distributorName"),
                o["customerName"],
            )
            for o in orders
        ),
        "partner_roles": roles,
    }


QUERIES = {
    "devices_by_model": f"SELECT model, sum(device_count) FROM {MARTS}.fleet_devices GROUP BY 1",
    "fleet": (
        f"SELECT model, device_type, make, billing_tier, device_count FROM {MARTS}.fleet_devices"
    ),
    "tags": f"SELECT tag_name, tag_value, device_count FROM {MARTS}.fleet_device_tags",
    "tag_rows": f"SELECT 'rows', count(*) FROM {STAGING}.stg_flex__device_tags",
    "account_orders": (
        f"SELECT billing_account_name, order_count FROM {MARTS}.billing_account_reconciliation "
        "WHERE order_count > 0"
    ),
    "account_devices": (
        f"SELECT billing_account_name, device_count FROM {MARTS}.billing_account_reconciliation "
        "WHERE device_count > 0"
    ),
    "account_status": (
        f"SELECT reconciliation_status, billing_account_name, 1 "
        f"FROM {MARTS}.billing_account_reconciliation"
    ),
    "sows": (
        f"SELECT billing_account_id, billing_account_name, sow_id, order_count "
        f"FROM {MARTS}.billing_sow_orders"
    ),
    "partner_orders": (
        f"SELECT partner_name, reseller_name, distributor_name, customer_name, order_count "
        f"FROM {MARTS}.partner_orders"
    ),
    "partner_roles": (
        f"SELECT partner_name, role, n FROM {MARTS}.partner_summary UNPIVOT "
        "(n FOR role IN (orders_as_partner AS 'partner', orders_as_reseller AS 'reseller', "
        "orders_as_distributor AS 'distributor')) WHERE n > 0"
    ),
}


def _actual(db: Path) -> dict[str, Counter[Any]]:
    out: dict[str, Counter[Any]] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for name, sql in QUERIES.items():
            rows = con.execute(sql).fetchall()
            key = (lambda r: r[0]) if len(rows[0]) == 2 else (lambda r: tuple(r[:-1]))
            counts: Counter[Any] = Counter()
            for row in rows:
                assert key(row) not in counts, f"{name}: duplicate grain {key(row)}"
                counts[key(row)] = int(row[-1])
            out[name] = counts
    return out


def _assert_marts_match(db: Path, expected: dict[str, Counter[Any]]) -> None:
    actual = _actual(db)
    for name, want in expected.items():
        got = actual[name]
        diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got[k] != want[k]}
        assert not diff, (
            f"{name}: mart differs from the API (got, expected): {list(diff.items())[:5]}"
        )


def _dbt_summaries(proc: subprocess.CompletedProcess[str]) -> list[tuple[int, ...]]:
    text = ANSI.sub("", proc.stdout + proc.stderr)
    return [tuple(int(x) for x in m.groups()) for m in DBT_DONE.finditer(text)]


def _assert_dbt_passed(proc: subprocess.CompletedProcess[str]) -> None:
    """`dbt run` built every model and `dbt test` ran its tests, nothing warned or failed."""
    summaries = _dbt_summaries(proc)
    assert len(summaries) == 2, summaries  # one for run, one for test
    (run_pass, *run_rest), (test_pass, *test_rest) = summaries
    assert run_pass == 10 and run_rest == [0, 0, 0]
    assert test_pass >= 50 and test_rest == [0, 0, 0]


def test_meltano_run_builds_marts_matching_the_api(installed: None, tmp_path: Path) -> None:
    """Load, transform and test twice, with data changes in between; marts equal the API's."""
    env = _env(tmp_path)
    db = tmp_path / "flex.duckdb"
    with running_simulator(orders=200, devices=800, seed=11) as sim:
        env.update(tap_env(sim))
        before = _expected(sim)
        run1 = _meltano(PIPELINE, env)
        _assert_dbt_passed(run1)
        _assert_marts_match(db, before)
        assert sum(before["devices_by_model"].values()) == 800

        sim.mutate(
            [
                {"op": "update", "resource": "devices", "count": 40},
                {"op": "update", "resource": "orders", "count": 15},
                {"op": "insert", "resource": "orders", "count": 6},
                {"op": "insert", "resource": "devices", "count": 12},
            ]
        )
        after = _expected(sim)
        assert after != before
        # Incremental load into the file dbt just wrote to, then dbt again.
        run2 = _meltano(PIPELINE, env)
        _assert_dbt_passed(run2)
        _assert_marts_match(db, after)
        assert sum(after["devices_by_model"].values()) == 812

    with duckdb.connect(str(db), read_only=True) as con:
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert {"tap_hpe_flex", STAGING, MARTS} <= schemas
    assert (tmp_path / "dbt-target" / "run_results.json").exists()  # artifacts not in the tree
    for proc in (run1, run2):
        assert sim.config.client_secret not in proc.stdout + proc.stderr

    # The demo prints these marts: its queries must match the models' columns.
    demo = subprocess.run(
        [sys.executable, str(REPO / "scripts/demo_summary.py"), "marts", str(db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for title in ("Billing reconciliation", "Fleet by model", "Partner orders"):
        assert title in demo
    assert "reconciliation_status" in demo and "matched" in demo


def test_tenant_marts_keep_workspaces_apart(installed: None, tmp_path: Path) -> None:
    """An MSP's tenants through dbt: every grain and unique test carries workspace_id.

    Generated tenants share ids and names (one seed), so a model that dropped the workspace would
    show duplicate keys in dbt's tests and mix tenants' counts in the marts.
    """
    env = _env(tmp_path)
    db = tmp_path / "flex.duckdb"
    with running_simulator(orders=30, devices=60, seed=5, tenants=3) as sim:
        env.update(tap_env(sim))
        env.update(
            TAP_HPE_FLEX_TENANT_WORKSPACE_IDS='["*"]',
            TAP_HPE_FLEX_WORKSPACES_API_URL=sim.url,
            # Tenant tokens are exchanged at the token URL of each tenant's workspace.
            TAP_HPE_FLEX_TOKEN_URL=f"{sim.url}/authorization/v2/oauth2/{{workspace_id}}/token",
        )
        proc = _meltano(PIPELINE, env)
    _assert_dbt_passed(proc)
    with duckdb.connect(str(db), read_only=True) as con:

        def per_workspace(sql: str) -> dict[str, int]:
            return {str(w): int(n) for w, n in con.execute(sql).fetchall()}

        loaded = {
            table: per_workspace(
                f"SELECT workspaceid, count(*) FROM tap_hpe_flex.{table} GROUP BY 1"
            )
            for table in ("orders", "devices")
        }
        fleet = per_workspace(
            f"SELECT workspace_id, sum(device_count) FROM {MARTS}.fleet_devices GROUP BY 1"
        )
        sows = per_workspace(
            f"SELECT workspace_id, sum(order_count) FROM {MARTS}.billing_sow_orders GROUP BY 1"
        )
        accounts = per_workspace(
            f"SELECT workspace_id, sum(device_count) "
            f"FROM {MARTS}.billing_account_reconciliation GROUP BY 1"
        )
    assert len(loaded["devices"]) == 3, loaded  # the three tenants, each its own workspace
    assert fleet == accounts == loaded["devices"]
    assert sows == loaded["orders"]

    # DEMO_TENANTS=N prints these per-tenant figures: one row per workspace, the mart's devices.
    shown = subprocess.run(
        [sys.executable, str(REPO / "scripts/demo_summary.py"), "tenants", str(db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split() for line in shown.splitlines() if line.strip()[:32] in fleet]
    assert {r[0]: int(r[1]) for r in rows} == fleet, shown
