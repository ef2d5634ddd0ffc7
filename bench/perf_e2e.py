"""Section 5 of bench/perf.py: ``meltano run tap-hpe-flex target-duckdb`` end to end.

Each repetition runs Meltano (own system database, own DuckDB file, ``--full-refresh``) while
/proc is sampled to split CPU seconds between Meltano, the tap (discovery + sync) and the target;
then the tap alone to /dev/null and the target alone fed from a captured Singer file, so the wall
time of the pipeline can be set beside its two halves. Meltano builds the tap from the work tree
(editable install in its plugin venv) whatever ``--code`` says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import perf_proc
from perf_proc import PY, REPO, Run, Sim, run_measured, sim, write_json
from perf_table import med, row, spread

MELTANO = os.environ.get("MELTANO_BIN") or str(REPO / ".venv-meltano" / "bin" / "meltano")
TARGET_DUCKDB = REPO / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "target-duckdb"


def e2e(bench: Any) -> None:
    """Section 5: ``meltano run`` beside the tap alone and the target alone (see module doc)."""
    a = bench.args
    n, no = a.e2e_devices, a.e2e_orders
    print(f"\n[5] meltano run tap-hpe-flex target-duckdb: {n:,} devices, {no:,} orders")
    if not Path(MELTANO).exists() or not TARGET_DUCKDB.exists():
        row("5 e2e", "skipped", "", "", "", "", "run `meltano install` first")
        return
    runs: list[Run] = []
    taps: list[Run] = []
    targets: list[Run] = []
    labels = {"bin/meltano": "meltano", "tap-hpe-flex": "tap", "target-duckdb": "target"}
    with sim(devices=n, orders=no, rate_limit=0, db=bench.db(n, no)) as s:
        singer = bench.tmp / "singer.jsonl"
        bench.tap(s, out=singer)
        for rep in range(a.reps):
            work = bench.tmp / f"e2e-{rep}"
            work.mkdir()
            env = meltano_env(s, work)
            cmd = [
                MELTANO,
                "--log-format=plain",
                "run",
                "--full-refresh",
                "tap-hpe-flex",
                "target-duckdb",
            ]
            with (work / "meltano.log").open("wb") as log:
                run = run_measured(
                    cmd,
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=log,
                    timeout=a.timeout,
                    labels=labels,
                )
            if run.rc != 0:
                sys.stderr.write((work / "meltano.log").read_text()[-3000:])
                raise RuntimeError(f"meltano run exited with {run.rc}")
            loaded = count_rows(work / "flex.duckdb")
            if loaded != n:
                raise RuntimeError(f"DuckDB has {loaded} devices, expected {n}")
            runs.append(run)
            taps.append(bench.tap(s)[0])
            targets.append(target_alone(singer, work, a.timeout))
            print(
                f"    meltano {run.wall:.1f} s, tap alone {taps[-1].wall:.1f} s, "
                f"target alone {targets[-1].wall:.1f} s, CPU by process {run.tree}"
            )
    mw = med([r.wall for r in runs])
    tw = med([r.wall for r in taps])
    gw = med([r.wall for r in targets])
    cpu = {
        k: med([r.tree.get(k, {}).get("cpu", 0.0) for r in runs])
        for k in ("meltano", "tap", "target")
    }
    total_cpu = sum(cpu.values()) or 1.0
    row(
        "5 e2e",
        "meltano run wall (s)",
        f"{mw:.1f}",
        f"tap alone {tw:.1f}",
        f"{tw / mw:.2f}",
        "",
        f"target alone (from file) {gw:.1f} s [{spread([r.wall for r in runs])}]",
    )
    row(
        "5 e2e",
        "CPU s in meltano run",
        f"tap {cpu['tap']:.1f}",
        f"target {cpu['target']:.1f}",
        f"tap share {cpu['tap'] / total_cpu:.0%}",
        "",
        f"meltano itself {cpu['meltano']:.1f} s; peak RSS target "
        f"{med([r.tree.get('target', {}).get('rss_mb', 0) for r in runs]):.0f} MB",
    )


def meltano_env(s: Sim, work: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in perf_proc.CHILD_ENV.items()
        if not k.startswith(("TAP_HPE_FLEX_", "TARGET_DUCKDB_", "MELTANO_"))
    }
    env.update(
        MELTANO_DATABASE_URI=f"sqlite:///{work / 'meltano.db'}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_ENVIRONMENT="dev",
        TARGET_DUCKDB_PATH=str(work / "flex.duckdb"),
        TAP_HPE_FLEX_API_URL=s.url,
        TAP_HPE_FLEX_TOKEN_URL=s.token_url,
        TAP_HPE_FLEX_REQUESTS_PER_MINUTE=str(10**9),
        NO_COLOR="1",
    )
    return env


def target_alone(singer: Path, work: Path, timeout: float) -> Run:
    cfg = write_json(
        work / "target.json",
        {
            "path": str(work / "alone.duckdb"),
            "default_target_schema": "tap_hpe_flex",
            "batch_size_rows": 10000,
            "add_metadata_columns": True,
        },
    )
    with singer.open("rb") as fin:
        return run_measured([str(TARGET_DUCKDB), "--config", str(cfg)], stdin=fin, timeout=timeout)


def count_rows(db: Path) -> int:
    code = (
        "import duckdb,sys; print(duckdb.connect(sys.argv[1], read_only=True)"
        ".execute('select count(*) from tap_hpe_flex.devices').fetchone()[0])"
    )
    out = subprocess.run(
        [PY, "-c", code, str(db)], capture_output=True, text=True, check=True, timeout=120
    )
    return int(out.stdout.strip())
