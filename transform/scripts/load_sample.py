"""Build a development DuckDB file for the dbt project: simulator -> tap -> target-duckdb.

Run it with the project's `.venv` Python (it imports ``flex_simulator``)::

    .venv/bin/python transform/scripts/load_sample.py output/flex.duckdb --devices 2000

It writes exactly what `meltano run tap-hpe-flex target-duckdb` writes (same loader, same
settings as meltano.yml: schema ``tap_hpe_flex``, metadata columns), without needing Meltano, so
dbt models can be developed against real table and column shapes. The loader must be the pinned
one (target-duckdb 0.8.0 with duckdb 1.2.2); by default the one Meltano installed is used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from flex_simulator.testing import running_simulator

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TARGET = REPO / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "target-duckdb"
DEFAULT_TAP = REPO / ".venv" / "bin" / "tap-hpe-flex"


def main(argv: list[str] | None = None) -> int:
    """Load one simulator workspace into a DuckDB file; returns the pipeline's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="DuckDB file to write (parent must exist)")
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--schema", default="tap_hpe_flex")
    parser.add_argument("--tap", type=Path, default=DEFAULT_TAP)
    parser.add_argument("--target", type=Path, default=DEFAULT_TARGET)
    args = parser.parse_args(argv)

    with (
        running_simulator(orders=args.orders, devices=args.devices, seed=args.seed) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        tap_cfg = Path(tmp) / "tap.json"
        target_cfg = Path(tmp) / "target.json"
        tap_cfg.write_text(
            json.dumps(
                {
                    "api_url": sim.url,
                    "token_url": sim.token_url,
                    "client_id": sim.config.client_id,
                    "client_secret": sim.config.client_secret,
                    "workspace_id": sim.config.workspace_id,
                }
            )
        )
        target_cfg.write_text(
            json.dumps(
                {
                    "path": str(args.path.resolve()),
                    "default_target_schema": args.schema,
                    "add_metadata_columns": True,
                    "batch_size_rows": 10000,
                }
            )
        )
        with subprocess.Popen(
            [str(args.tap), "--config", str(tap_cfg)], stdout=subprocess.PIPE
        ) as tap:
            target = subprocess.run(
                [str(args.target), "--config", str(target_cfg)],
                stdin=tap.stdout,
                stdout=subprocess.DEVNULL,
                check=False,
            )
        if tap.returncode or target.returncode:
            print(f"tap exited {tap.returncode}, target {target.returncode}", file=sys.stderr)
            return 1
    print(f"loaded {args.orders} orders and {args.devices} devices into {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
