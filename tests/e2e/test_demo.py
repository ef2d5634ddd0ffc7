"""scripts/demo.sh in a copy of the project that a user has also set up for GreenLake.

The user stored real credentials the way Meltano suggests (`meltano config set`, which writes the
secret to `.env`), ran the demo, then ran the `dev` job against a simulator they started, as
docs/meltano.md describes. Three things must hold:

- the demo works and never sends the stored secret to its simulator (which accepts only its own
  demo client: a run that posted the stored secret fails with invalid_client);
- the "Explore the data" line the demo prints runs;
- the demo leaves nothing that changes the next documented run: the `dev` run reads every record
  (a demo bookmark under dev's state ID made it read none) into its own DuckDB file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import duckdb
import pytest

from flex_simulator.testing import running_simulator
from tests.e2e.meltano_helpers import clean_env, copy_project, meltano, tap_env

pytestmark = pytest.mark.e2e

STORED_SECRET = "greenlake-secret-7c1d"  # what the user stored for GreenLake (never sent here)
DEMO_ORDERS, DEMO_DEVICES = 20, 50


def _count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM tap_hpe_flex.{table}").fetchone()
    return int(row[0]) if row else 0


def test_demo_ignores_stored_credentials_and_leaves_dev_alone(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = clean_env("TAP_HPE_FLEX_", "TARGET_", "DBT_", "DEMO_")
    for setting, value in (("client_id", "greenlake-client"), ("client_secret", STORED_SECRET)):
        meltano(["config", "set", "tap-hpe-flex", setting, value], env, cwd=root)
    assert STORED_SECRET in (root / ".env").read_text()  # where Meltano 4.4 put it

    demo = subprocess.run(
        ["./scripts/demo.sh"],
        cwd=root,
        # dbt is the README test's part (its quick start runs the whole demo): skipped here.
        env=env
        | {"DEMO_ORDERS": str(DEMO_ORDERS), "DEMO_DEVICES": str(DEMO_DEVICES), "DEMO_DBT": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    logs = "".join(p.read_text(errors="replace") for p in (root / "output").glob("demo-*.log"))
    assert STORED_SECRET not in demo.stdout + demo.stderr + logs
    demo_db = root / "output" / "flex_demo.duckdb"
    # The demo inserts 3 orders, deletes one reseller's orders and 5 devices; its full-table
    # run 3 sees the deletions and the loader (hard_delete) removes those rows.
    vanished = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"(\w+): (\d+) record\(s\) vanished", demo.stdout)
    }
    assert vanished["devices"] == 5 and vanished["orders"] >= 1, demo.stdout[-2000:]
    demo_orders = DEMO_ORDERS + 3 - vanished["orders"]
    assert _count(demo_db, "orders") == demo_orders
    assert _count(demo_db, "devices") == DEMO_DEVICES - 5

    # The demo's last line is a command to explore its data: it runs as printed.
    explore = demo.stdout.strip().splitlines()[-1]
    assert explore.startswith(".venv/bin/python -c "), explore
    shown = subprocess.run(
        ["bash", "-c", explore], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "count_star()" in shown.stdout

    # Next, as docs/meltano.md says: `meltano run` in dev against a simulator of one's own, with
    # the same generated data as the demo's first run. Credentials as process environment
    # variables (above .env); the stored GreenLake secret would be refused by the simulator.
    with running_simulator(orders=DEMO_ORDERS, devices=DEMO_DEVICES, seed=42) as sim:
        run = meltano(["run", "tap-hpe-flex", "target-duckdb"], env | tap_env(sim), cwd=root)
    assert STORED_SECRET not in run.stdout + run.stderr
    dev_db = root / "output" / "flex.duckdb"
    assert _count(dev_db, "orders") == DEMO_ORDERS
    assert _count(dev_db, "devices") == DEMO_DEVICES
    assert _count(demo_db, "orders") == demo_orders  # the demo's file is untouched
