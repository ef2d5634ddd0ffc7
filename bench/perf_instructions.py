"""Instructions the tap CLI executes per sync, at several commits, counted by valgrind (callgrind).

    .venv/bin/python bench/perf_instructions.py 498a190 HEAD            # 100 and 5,000 devices
    .venv/bin/python bench/perf_instructions.py 498a190 work --devices 20000
    .venv/bin/python bench/perf_instructions.py HEAD raw        # beside the raw loop (baseline.py)

Why: on a shared 2-core machine CPU seconds of one run vary by ±30%, more than most single
optimisations save; an instruction count varies by well under 1% between runs, so two commits can
be compared change by change. Each revision (``work`` is the work tree) runs as the installed
``tap-hpe-flex`` CLI on a ``git archive`` of its ``tap_hpe_flex/`` put first on ``PYTHONPATH``,
against a simulator with no limit and no latency (the simulator's own work is not counted). Two
sizes split the count into a fixed part (start-up: imports, catalog, first requests) and a part
per record. valgrind runs threads one at a time, so GIL hand-offs between threads cost nothing
here: this measures the Python work, not the scheduling overhead that CPU seconds also include.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_clients import BENCH, TapHpeFlex
from perf_proc import REPO, sim, write_json


def code_for(rev: str, root: Path) -> Path:
    """Return a directory holding ``rev``'s ``tap_hpe_flex/`` sources (``work``: the work tree).

    Sources only, never a ``__pycache__``: every revision compiles its modules alike.
    """
    dest = root / rev.replace("/", "_")
    dest.mkdir(parents=True, exist_ok=True)
    if rev == "work":
        (dest / "tap_hpe_flex").mkdir()
        for source in (REPO / "tap_hpe_flex").glob("*.py"):
            (dest / "tap_hpe_flex" / source.name).write_bytes(source.read_bytes())
        return dest
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "tap_hpe_flex"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def instructions(cmd: list[str], code: Path, out: Path) -> int:
    """Run ``cmd`` under callgrind with ``code`` first on PYTHONPATH; return instructions run."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    with open(out, "wb") as stdout:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            check=True,
        )
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError("callgrind printed no instruction count")
    return int(match.group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "revs", nargs="+", help="commits to compare (work: the work tree; raw: the raw loop)"
    )
    p.add_argument("--devices", type=int, default=5000, help="the larger sync's devices")
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "flex-perf-cache"))
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="flex-instr-"))
    tap = TapHpeFlex()
    tap.prepare(work)
    codes = {rev: code_for(rev, work) for rev in args.revs if rev != "raw"}
    counts: dict[tuple[str, int], int] = {}
    for devices in (100, args.devices):
        db = Path(args.cache_dir) / f"flex-d{devices}-o0-s42.db"
        with sim(devices=devices, orders=0, rate_limit=0, db=db) as s:
            config = write_json(work / "tap.json", s.tap_config())
            cmd = [str(tap.exe), "--config", str(config), "--catalog", str(tap.catalog)]
            raw = [sys.executable, str(BENCH / "baseline.py"), "--api-url", s.url]
            raw += ["--token-url", s.token_url, "--endpoints", "devices,orders"]
            for rev in args.revs:
                out = work / "out.jsonl"
                if rev == "raw":
                    counts[rev, devices] = instructions(raw, work, out)
                else:
                    counts[rev, devices] = instructions(cmd, codes[rev], out)
                lines = sum(1 for line in out.read_bytes().splitlines() if b'"RECORD"' in line)
                if lines != devices:
                    raise RuntimeError(f"{rev}: {lines} RECORD lines for {devices} devices")
                print(f"{rev:>12} {devices:>7,} devices: {counts[rev, devices] / 1e9:.3f} G")
    print("\n| revision | fixed (G instructions) | per record (k instructions) |")
    print("|---|---:|---:|")
    for rev in args.revs:
        small, large = counts[rev, 100], counts[rev, args.devices]
        per_record = (large - small) / (args.devices - 100)
        print(f"| {rev} | {(small - 100 * per_record) / 1e9:.3f} | {per_record / 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
