"""Issue 5 benchmark: request efficiency, wall time at the rate-limit floor, CPU per record, memory
and the Meltano end-to-end run, each beside its baseline, in one command.

    .venv/bin/python bench/perf.py                       # everything, 3 repetitions
    .venv/bin/python bench/perf.py --only cpu,memory --reps 5 --memory-scales 10000,100000,1000000

Simulators run as subprocesses (their CPU never counts against the tap) and are killed on exit.
Large data sets are generated once into SQLite files under ``--cache-dir`` and reused. Timed
figures are medians over ``--reps`` runs, tap and baseline alternating, because this machine's speed
varies by ±30%; request counts are deterministic and measured once. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_e2e
import perf_proc
from peers_floor import physical_floor
from perf_proc import PY, REPO, Run, Sim, run_measured, sim, write_json
from perf_table import markdown, med, row, spread

TAP = str(REPO / ".venv" / "bin" / "tap-hpe-flex")
BASELINE = str(REPO / "bench" / "baseline.py")
GROUP_BY = ("sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName")


def probes_and_checks(log: list[dict[str, Any]], endpoint: str) -> tuple[int, int]:
    """Count a full sync's snapshot-check probes and checks (``tap_hpe_flex/snapshot.py``).

    Both are ``limit=0`` with ``updatedAt lt`` (filter form) or ``limit=1&sort=updatedAt desc``
    (sort form). Per form: a refused one is a probe; of two accepted, the first is the probe.
    """
    forms: dict[bool, list[int]] = {False: [], True: []}
    for entry in log:
        query = entry["query"]
        if entry["endpoint"] != endpoint or query.get("limit") not in {"0", "1"}:
            continue
        if query.get("sort") == "updatedAt desc":
            forms[True].append(entry["status"])
        elif "updatedAt lt" in query.get("filter", ""):
            forms[False].append(entry["status"])
    probes = checks = 0
    for statuses in forms.values():
        accepted = sum(status == 200 for status in statuses)
        probes += len(statuses) - accepted + (accepted > 1)
        checks += accepted - (accepted > 1)
    return probes, checks


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="flex-perf-"))
        self.cache = Path(args.cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)

    def db(self, devices: int, orders: int) -> Path:
        return self.cache / f"flex-d{devices}-o{orders}-s42.db"

    # --- runners ------------------------------------------------------------------------------
    def tap(
        self, s: Sim, *, out: Path | None = None, state: Path | None = None, **cfg: Any
    ) -> tuple[Run, dict[str, int]]:
        """Run the tap CLI; returns the run and records per stream (from its METRIC lines)."""
        config = write_json(self.tmp / "tap.json", s.tap_config(**cfg))
        cmd = [TAP, "--config", str(config)] + (["--state", str(state)] if state else [])
        err = self.tmp / "tap.err"
        with err.open("wb") as ferr, out.open("wb") if out else open(os.devnull, "wb") as fout:
            run = run_measured(cmd, stdout=fout, stderr=ferr, timeout=self.args.timeout)
        if run.rc != 0:
            sys.stderr.write(err.read_text()[-3000:])
            raise RuntimeError(f"tap exited with {run.rc}")
        counts: Counter[str] = Counter()
        for line in err.read_text().splitlines():
            if "METRIC" in line and '"record_count"' in line:
                m = json.loads(line[line.index("{") :])
                counts[m["tags"]["stream"]] += int(m["value"])
        return run, dict(counts)

    def baseline(self, s: Sim, *extra: str) -> Run:
        cmd = [PY, BASELINE, "--api-url", s.url, "--token-url", s.token_url, *extra]
        run = run_measured(cmd, timeout=self.args.timeout)
        if run.rc != 0:
            raise RuntimeError(f"baseline exited with {run.rc}")
        return run

    # --- 1. request efficiency ----------------------------------------------------------------
    def efficiency(self) -> None:
        a = self.args
        nd, no, k = a.eff_devices, a.eff_orders, a.eff_changed
        if not 0 < k <= min(nd, no):
            raise SystemExit("--eff-changed must be between 1 and min(--eff-devices, --eff-orders)")
        print(f"\n[1] request efficiency: {nd:,} devices, {no:,} orders, {k} changed of each")
        for label, flags in (
            ("filter", {"updated_filter": True}),
            ("sort", {"updated_sort": True}),
            ("neither", {}),
        ):
            with sim(devices=nd, orders=no, rate_limit=0, **flags) as s:
                transform = sum(
                    math.ceil(s.total("orders/transform", **{"group-by": g}) / 100) or 1
                    for g in GROUP_BY
                )
                s.clear()
                out = self.tmp / "full.jsonl"
                _, counts = self.tap(s, out=out)
                full = Counter(e["endpoint"] for e in s.requests())
                state = [ln for ln in out.read_text().splitlines() if '"type":"STATE"' in ln]
                state_file = write_json(self.tmp / "state.json", json.loads(state[-1])["value"])
                for ep, n in (("orders", no), ("devices", nd)):
                    want = math.ceil(n / 100)
                    probes, checks = probes_and_checks(s.requests(), ep)
                    pages = full[ep] - probes - checks
                    drift_cost = pages + checks - want
                    row(
                        f"1 full sync ({label})",
                        f"{ep} requests",
                        full[ep],
                        f"ceil(N/100) = {want}",
                        f"+{drift_cost / want:.2%}",
                        "≤ +1%",
                        f"{counts.get(ep, 0):,} records: {pages} pages + {checks} check "
                        f"+ {probes} probe (auto)",
                    )
                if label == "filter":
                    row(
                        "1 full sync",
                        "orders/transform requests",
                        full["orders/transform"],
                        f"Σ ceil(distinct/100) = {transform}",
                        "",
                        "",
                        "5 group-by partitions",
                    )
                    row("1 full sync", "token requests", full["token"], "1", "", "1", "")
                s.mutate(
                    [
                        {"op": "update", "resource": "devices", "count": k},
                        {"op": "update", "resource": "orders", "count": k},
                    ]
                )
                s.clear()
                _, counts = self.tap(s, state=state_file)
                inc = Counter(e["endpoint"] for e in s.requests())
                refused = Counter(e["endpoint"] for e in s.requests() if e["status"] == 400)
                for ep, size in (("orders", no), ("devices", nd)):
                    want_inc, formula = math.ceil(k / 100) + 1, "ceil(k/100)+1"
                    if label == "neither":  # the whole listing after two refused probes
                        want_inc, formula = math.ceil(size / 100) + 2, "ceil(N/100)+2"
                    row(
                        f"1 incremental ({label})",
                        f"{ep} requests (k={k})",
                        inc[ep],
                        f"≤ {formula} = {want_inc}",
                        f"{inc[ep] / want_inc:.2f}",
                        "≤ 1.00",
                        f"{counts.get(ep, 0):,} records, {refused[ep]} refused probes",
                    )
                row(
                    f"1 incremental ({label})",
                    "token + transform requests",
                    f"{inc['token']} + {inc['orders/transform']}",
                    "",
                    "",
                    "",
                    "",
                )

    # --- 2. wall time at the rate-limit floor -------------------------------------------------
    def floor(self) -> None:
        a = self.args
        scale = a.time_scale
        window = 60.0 / scale
        latency_ms = round(a.real_latency_s * 1000 / scale)
        rpm = round(a.real_rpm * scale)
        nd, no = a.floor_devices, a.floor_orders
        print(
            f"\n[2] rate-limit floor: {a.real_rpm}/min & L={a.real_latency_s}s scaled /{scale}: "
            f"{a.real_rpm} per {window:g} s (= {rpm}/min), L={latency_ms} ms; "
            f"{nd:,} devices, {no:,} orders"
        )
        threads = math.ceil(latency_ms / 1000 * a.real_rpm / window) + 2
        tap_ratio, base_ratio, tap_wall, base_wall, t429 = [], [], [], [], []
        # the physical floor of the data (not of a client's own request count): bench/peers_floor
        floor_s = physical_floor({"d": nd, "o": no}, a.real_rpm, window, latency_ms / 1000)
        with sim(
            devices=nd, orders=no, rate_limit=a.real_rpm, rate_window=window, latency_ms=latency_ms
        ) as s:
            for rep in range(a.reps):
                for who in ("tap", "base") if rep % 2 == 0 else ("base", "tap"):
                    time.sleep(window)  # let the previous run's window drain
                    s.clear()
                    if who == "tap":
                        # The tap paces with the simulator's own window (the same R per
                        # window), not a 60 s window at the scaled rate, which would let it
                        # burst a whole minute's worth into one simulator window.
                        run, _ = self.tap(
                            s,
                            requests_per_minute=a.real_rpm,
                            rate_limit_window_seconds=window,
                            max_concurrent_requests=a.tap_concurrency,
                        )
                    else:
                        run = self.baseline(
                            s,
                            "--endpoints",
                            "devices,orders",
                            "--concurrent",
                            "--rpm",
                            str(a.real_rpm),
                            "--window",
                            str(window),
                            "--threads",
                            str(threads),
                        )
                    log = s.requests()
                    ok = Counter(
                        e["endpoint"]
                        for e in log
                        if e["endpoint"] != "token" and e["status"] != 429
                    )
                    if who == "tap":
                        tap_wall.append(run.wall)
                        tap_ratio.append(run.wall / floor_s)
                        t429.append(sum(e["status"] == 429 for e in log))
                    else:
                        base_wall.append(run.wall)
                        base_ratio.append(run.wall / floor_s)
                    print(f"    {who}: {run.wall:.1f} s, floor {floor_s:.1f} s, {dict(ok)}")
        row(
            "2 rate floor",
            "wall / floor (tap)",
            f"{med(tap_ratio):.2f}",
            f"{med(base_ratio):.2f} (concurrent baseline, {threads} threads/endpoint)",
            f"{med(tap_ratio) / med(base_ratio):.2f}",
            "≤ 1.05",
            f"tap {med(tap_wall):.1f} s [{spread(tap_wall)}], baseline {med(base_wall):.1f} s, "
            f"floor {floor_s:.2f} s (physical), tap 429s: {max(t429)}",
        )

    # --- 3. CPU cost per record ---------------------------------------------------------------
    def cpu(self) -> None:
        a = self.args
        n = a.cpu_devices
        print(f"\n[3] CPU per record: {n:,} devices, page size 100, no limit, no latency")
        tap_runs: list[Run] = []
        base_runs: list[Run] = []
        with sim(devices=n, orders=0, rate_limit=0, db=self.db(n, 0)) as s:
            for rep in range(a.reps):
                for who in ("tap", "base") if rep % 2 == 0 else ("base", "tap"):
                    if who == "tap":
                        run, counts = self.tap(s)
                        if counts.get("devices") != n:
                            raise RuntimeError(f"tap emitted {counts} devices, expected {n}")
                        tap_runs.append(run)
                    else:
                        base_runs.append(self.baseline(s))
                    print(f"    {who}: {run.wall if who == 'tap' else base_runs[-1].wall:.1f} s")
        with sim(devices=0, orders=0, rate_limit=0) as s:
            fixed_tap = med([self.tap(s)[0].cpu for _ in range(a.reps)])
            fixed_base = med([self.baseline(s).cpu for _ in range(a.reps)])
        tw = [n / r.wall for r in tap_runs]
        bw = [n / r.wall for r in base_runs]
        tc = [r.cpu / n * 1e6 for r in tap_runs]
        bc = [r.cpu / n * 1e6 for r in base_runs]
        row(
            "3 CPU",
            "records/s wall",
            f"{med(tw):,.0f}",
            f"{med(bw):,.0f}",
            f"{med(tw) / med(bw):.2f}",
            "≥ 0.60",
            f"tap [{spread(tw)}], base [{spread(bw)}]",
        )
        row(
            "3 CPU",
            "CPU µs/record (client process)",
            f"{med(tc):.0f}",
            f"{med(bc):.0f}",
            f"{med(bc) / med(tc):.2f}",
            "≥ 0.60",
            "ratio = baseline/tap; includes start-up",
        )
        tn = [(r.cpu - fixed_tap) / n * 1e6 for r in tap_runs]
        bn = [(r.cpu - fixed_base) / n * 1e6 for r in base_runs]
        row(
            "3 CPU",
            "CPU µs/record, start-up subtracted",
            f"{med(tn):.0f}",
            f"{med(bn):.0f}",
            f"{med(bn) / med(tn):.2f}",
            "≥ 0.60",
            f"start-up CPU (0 records): tap {fixed_tap:.2f} s, baseline {fixed_base:.2f} s",
        )
        self.rss_200k = (
            med([r.maxrss_mb for r in tap_runs]),
            med([r.maxrss_mb for r in base_runs]),
        )

    # --- 4. memory ----------------------------------------------------------------------------
    def memory(self) -> None:
        a = self.args
        print(f"\n[4] peak RSS at {a.memory_scales}")
        for n in (int(x) for x in a.memory_scales.split(",")):
            with sim(devices=n, orders=0, rate_limit=0, db=self.db(n, 0)) as s:
                reps = a.reps if n <= 100_000 else 1
                tap_runs = [self.tap(s)[0] for _ in range(reps)]
                base = self.baseline(s)
            rss = med([r.maxrss_mb for r in tap_runs])
            row(
                "4 memory",
                f"peak RSS, {n:,} devices (MB)",
                f"{rss:.0f}",
                f"{base.maxrss_mb:.0f}",
                f"{rss / base.maxrss_mb:.2f}",
                "flat in N",
                f"tap {med([r.wall for r in tap_runs]):.1f} s wall, {reps} run(s)",
            )

    # --- 5. meltano end to end ----------------------------------------------------------------
    def e2e(self) -> None:
        perf_e2e.e2e(self)


def versions() -> str:
    parts = [f"Python {platform.python_version()}", f"{os.cpu_count()} CPUs"]
    for dist in ("singer-sdk", "requests", "msgspec", "tap-hpe-flex"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{dist} {metadata.version(dist)}")
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return ", ".join(parts) + (f", {cpu.group(1)}" if cpu else "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        default="efficiency,floor,cpu,memory,e2e",
        help="comma-separated sections (default: all)",
    )
    p.add_argument("--reps", type=int, default=3, help="repetitions of timed runs (median)")
    p.add_argument("--eff-devices", type=int, default=20_000)
    p.add_argument("--eff-orders", type=int, default=2_000)
    p.add_argument("--eff-changed", type=int, default=250, help="k records changed per stream")
    p.add_argument("--real-rpm", type=int, default=100, help="GreenLake: 100 per minute")
    p.add_argument("--real-latency-s", type=float, default=1.5)
    p.add_argument(
        "--time-scale",
        type=float,
        default=6.0,
        help="divide window and latency by this (same limit per window)",
    )
    p.add_argument(
        "--tap-concurrency",
        type=int,
        default=8,
        help="max_concurrent_requests of the tap in the floor section (8 = its default)",
    )
    p.add_argument("--floor-devices", type=int, default=30_000)
    p.add_argument("--floor-orders", type=int, default=3_000)
    p.add_argument("--cpu-devices", type=int, default=200_000)
    p.add_argument("--memory-scales", default="10000,100000")
    p.add_argument("--e2e-devices", type=int, default=200_000)
    p.add_argument("--e2e-orders", type=int, default=2_000)
    p.add_argument("--timeout", type=float, default=1800, help="seconds per child run")
    p.add_argument(
        "--code",
        default="worktree",
        help="worktree, or a git revision (e.g. HEAD) to snapshot and benchmark",
    )
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "flex-perf-cache"))
    args = p.parse_args()

    bench = Bench(args)
    code = "work tree"
    if args.code != "worktree":
        commit = perf_proc.use_code_snapshot(args.code, bench.tmp / "code")
        code = f"{args.code} = {commit[:10]} (snapshot; e2e runs the work tree)"
    check = subprocess.run(
        [TAP, "--about"],
        env=perf_proc.CHILD_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=bench.tmp,
        check=False,
    )
    if check.returncode != 0:
        sys.stderr.write(check.stderr[-2000:])
        shutil.rmtree(bench.tmp, ignore_errors=True)
        sys.exit(f"tap-hpe-flex does not start ({code}); try --code HEAD")
    print(versions() + f"; code: {code}")
    started = time.perf_counter()
    try:
        for section in args.only.split(","):
            getattr(bench, section.strip())()
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(f"\n{versions()}; code: {code}; reps={args.reps}; total {elapsed:.0f} s\n")
    print(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
