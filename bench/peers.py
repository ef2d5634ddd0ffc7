"""Issue 14 benchmark: tap-hpe-flex beside the tools a user would pick instead, against the
physical floor, in one run on the same simulator and data.

    .venv/bin/python bench/peers.py --profile all                 # rate-limited, cpu, drift
    .venv/bin/python bench/peers.py --profile all --reps 3 --json peers.json
    .venv/bin/python bench/peers.py --profile memory              # tap-hpe-flex at 10k/100k/1M
    .venv/bin/python bench/peers.py --profile cpu --clients tap,raw

Clients (``--clients``, keys): ``tap`` (this checkout's installed tap-hpe-flex), ``msdk``
(tap-rest-api-msdk), ``dlt`` (dlt rest_api), ``sdk`` (the singer-sdk template's shape),
``raw`` and ``raw-concurrent`` (bench/baseline.py). Peers install into bench/.venvs/ on first use.
Requests and 429s come from the simulator's request log; records from each client's output,
checked against the simulator's own listing. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers_report
from peers_clients import STREAMS, Client, Launch, Profile, all_clients, records
from peers_floor import account, drift_schedule, median_of, physical_floor
from perf_proc import CHILD_ENV, Sim, run_measured, sim


def listing(s: Sim) -> dict[str, list[str]]:
    """Every id the simulator holds per stream, in its order, listed with the bench's own token.

    Read with the limit and latency switched off (the limiter does not count requests then),
    and with nothing scheduled to fire: the listing is stable, so offset paging is exact here.
    """
    token = s.token()
    out: dict[str, list[str]] = {}
    for stream in STREAMS:
        ids: list[str] = []
        offset = 0
        while True:
            resp = s.http.get(
                f"{s.url}/flex/v1beta1/{stream}",
                params={"limit": "100", "offset": str(offset), "select": "id"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            )
            resp.raise_for_status()
            page = resp.json()
            ids.extend(str(item["id"]) for item in page["items"])
            offset += len(page["items"])
            if not page["items"] or offset >= int(page["total"]):
                break
        out[stream] = ids
    return out


def truth(s: Sim) -> dict[str, set[str]]:
    """The ids per stream as sets (what the accounting compares)."""
    return {stream: set(ids) for stream, ids in listing(s).items()}


class PeerBench:
    """Runs every selected client under each profile and collects one row per (profile, client)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="flex-peers-"))
        self.cache = Path(args.cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)
        wanted = args.clients.split(",")
        self.clients = [c for c in all_clients() if args.clients == "all" or c.key in wanted]
        self.rows: list[dict[str, Any]] = []
        self.runs = 0
        for client in self.clients:
            client.prepare(self.tmp)

    def db(self, devices: int, orders: int) -> Path:
        """Cached SQLite data set (the naming of bench/perf.py, so both share the files)."""
        return self.cache / f"flex-d{devices}-o{orders}-s42.db"

    # --- one measured run ------------------------------------------------------------------
    def measure(
        self,
        client: Client,
        s: Sim,
        profile: Profile,
        before: dict[str, set[str]],
        after: Callable[[], dict[str, set[str]]] | None = None,
    ) -> dict[str, Any]:
        """One sync by ``client``; figures from the simulator's log and the client's output."""
        work = self.tmp / f"{profile.name}-{client.key}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        launch: Launch = client.launch(s, profile, work)
        env = {k: v for k, v in CHILD_ENV.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(launch.env)
        s.clear()
        row: dict[str, Any] = {}
        with (
            open(launch.stdout or "/dev/null", "wb") as out,
            open(work / "stderr.txt", "wb") as err,
        ):
            try:
                run = run_measured(
                    launch.cmd,
                    env=env,
                    stdout=out,
                    stderr=err,
                    timeout=self.args.timeout,
                    cwd=work,
                    tree_rss=True,
                )
                if run.rc != 0:
                    row["error"] = f"exit {run.rc}"
            except TimeoutError as exc:
                row["error"] = str(exc)
        if row.get("error"):
            tail = (work / "stderr.txt").read_text(errors="replace")[-1500:]
            print(f"    {client.name} FAILED ({row['error']}):\n{tail}", flush=True)
            return row
        log = s.requests()
        self.runs += 1
        if self.args.dump_logs:
            dump = Path(self.args.dump_logs) / f"{profile.name}-{client.key}-{self.runs}.json"
            dump.parent.mkdir(parents=True, exist_ok=True)
            dump.write_text(json.dumps(log))
        final = after() if after is not None else before
        acc = account(records(launch), before, final)
        row.update(
            wall=run.wall,
            cpu=run.cpu,
            rss=run.tree_peak_mb,
            requests=sum(e["endpoint"] != "token" for e in log),
            token_requests=sum(e["endpoint"] == "token" for e in log),
            r429=sum(e["status"] == 429 for e in log),
            by_endpoint=dict(Counter(e["endpoint"] for e in log)),
            emitted=acc.emitted,
            delivered=acc.delivered,
            truth=acc.truth,
            lost=acc.lost,
            duplicates=acc.duplicates,
        )
        print(
            f"    {client.name}: {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, "
            f"{run.tree_peak_mb:.0f} MB, {row['requests']} requests ({row['r429']} x 429), "
            f"{acc.delivered:,}/{acc.truth:,} delivered, {acc.lost} lost, "
            f"{acc.duplicates} duplicates",
            flush=True,
        )
        shutil.rmtree(work, ignore_errors=True)
        return row

    def order(self, rep: int) -> list[Client]:
        """Clients rotated by repetition, so none always runs first (or last)."""
        k = rep % len(self.clients)
        return self.clients[k:] + self.clients[:k]

    def collect(self, profile: Profile, reps: dict[str, list[dict[str, Any]]], floor: float | None):
        """Medians per client into the table's rows."""
        raw = median_of([r for r in reps.get("raw", []) if not r.get("error")]).get("cpu")
        label = profile.name + (f" (floor {floor:.2f} s)" if floor else "")
        for client in self.clients:
            runs = reps.get(client.key, [])
            ok = [r for r in runs if not r.get("error")]
            row: dict[str, Any] = {"profile": label, "client": client.name, "reps": runs}
            if not ok:
                row["error"] = runs[0].get("error") if runs else "not run"
            row.update(median_of(ok))
            if ok and floor:
                row["floor_ratio"] = row["wall"] / floor
            if ok and raw:
                row["cpu_ratio"] = row["cpu"] / raw
            self.rows.append(row)

    # --- profiles ----------------------------------------------------------------------------
    def rate(self) -> None:
        """The live 100/min and 1.5 s latency, time-scaled: same R per window, W and L scaled."""
        a = self.args
        window, latency = a.real_window / a.time_scale, a.real_latency / a.time_scale
        profile = Profile("rate-limited", a.real_rpm, window, latency)
        nd, no = a.rate_devices, a.rate_orders
        print(
            f"\n[rate-limited] {a.real_rpm} requests per {window:g} s per endpoint, "
            f"latency {latency * 1000:.0f} ms; {nd:,} devices, {no:,} orders"
        )
        latency_ms = round(latency * 1000)
        reps: dict[str, list[dict[str, Any]]] = {}
        flags = {"rate_limit": a.real_rpm, "rate_window": window, "latency_ms": latency_ms}
        with sim(devices=nd, orders=no, db=self.db(nd, no), **flags) as s:
            s.settings(rate_limit=0, latency_ms=0)
            held = truth(s)
            s.settings(rate_limit=a.real_rpm, latency_ms=latency_ms)
            floor = physical_floor({k: len(v) for k, v in held.items()}, *profile_args(profile))
            print(f"  physical floor {floor:.2f} s ({', '.join(counts(held))})")
            for rep in range(a.reps):
                for client in self.order(rep):
                    time.sleep(window)  # the previous client's window drains
                    reps.setdefault(client.key, []).append(self.measure(client, s, profile, held))
        self.collect(profile, reps, floor)

    def cpu(self) -> None:
        """No limit, no latency: what each client costs per record."""
        a = self.args
        profile = Profile("cpu-bound", 0, 0.0, 0.0)
        nd, no = a.cpu_devices, a.cpu_orders
        print(f"\n[cpu-bound] no limit, no latency; {nd:,} devices, {no:,} orders")
        reps: dict[str, list[dict[str, Any]]] = {}
        with sim(devices=nd, orders=no, rate_limit=0, db=self.db(nd, no)) as s:
            held = truth(s)
            for rep in range(a.reps):
                for client in self.order(rep):
                    reps.setdefault(client.key, []).append(self.measure(client, s, profile, held))
        self.collect(profile, reps, None)

    def drift(self) -> None:
        """Deletes and inserts land mid-sync (after device answers); a fresh copy per run."""
        a = self.args
        profile = Profile("drift", 0, 0.0, 0.0)
        nd, no = a.drift_devices, a.drift_orders
        k, dels, ins = a.drift_batches, a.drift_deletes, a.drift_inserts
        print(f"\n[drift] {k} x ({dels} deletes + {ins} inserts) mid-sync; {nd:,} devices")
        plan = drift_schedule(nd, k, dels)
        source = self.db(nd, no)
        with sim(devices=nd, orders=no, rate_limit=0, db=source):
            pass  # generated once into the cache; every run starts from a copy
        reps: dict[str, list[dict[str, Any]]] = {}
        for rep in range(a.reps):
            for client in self.order(rep):
                copy = self.tmp / "drift.db"
                shutil.copyfile(source, copy)
                with sim(devices=nd, orders=no, rate_limit=0, db=copy) as s:
                    held = listing(s)
                    before = {stream: set(ids) for stream, ids in held.items()}
                    for answers, positions in plan:
                        ops = [
                            {
                                "op": "delete",
                                "resource": "devices",
                                "ids": [held["devices"][p] for p in positions],
                            },
                            {"op": "insert", "resource": "devices", "count": ins},
                        ]
                        after = {"endpoint": "devices", "requests": answers}
                        resp = s.http.post(
                            f"{s.url}/__sim/mutations", json={"ops": ops, "after": after}
                        )
                        resp.raise_for_status()
                    fired: list[int] = []

                    def settle(s: Sim = s, fired: list[int] = fired) -> dict[str, set[str]]:
                        # what fired, then drop the rest: the bench's own listing must not fire it
                        items = s.http.get(f"{s.url}/__sim/mutations", timeout=60).json()["items"]
                        fired.append(sum(m["applied"] for m in items))
                        s.http.delete(f"{s.url}/__sim/mutations", timeout=60).raise_for_status()
                        return truth(s)

                    row = self.measure(client, s, profile, before, settle)
                    if fired:
                        row["mutations_applied"] = fired[0]
                        if fired[0] < k:
                            print(f"    (only {fired[0]} of {k} mutation batches fired)")
                reps.setdefault(client.key, []).append(row)
                copy.unlink(missing_ok=True)
        self.collect(profile, reps, None)

    def memory(self) -> None:
        """Peak RSS of tap-hpe-flex alone at growing sizes (the raw loop beside it)."""
        import perf  # noqa: PLC0415 - bench/perf.py's runner, only for this profile

        settings = argparse.Namespace(cache_dir=str(self.cache), timeout=self.args.timeout)
        runner = perf.Bench(settings)
        try:
            for n in (int(x) for x in self.args.memory_scales.split(",")):
                print(f"\n[memory] {n:,} devices, no limit", flush=True)
                with sim(devices=n, orders=0, rate_limit=0, db=self.db(n, 0)) as s:
                    s.clear()
                    run, counts_ = runner.tap(s)
                    log = s.requests()
                    base = runner.baseline(s) if n <= 100_000 else None  # 1M: minutes more
                row = {
                    "profile": f"memory {n:,} devices",
                    "client": "tap-hpe-flex",
                    "wall": run.wall,
                    "cpu": run.cpu,
                    "rss": run.maxrss_mb,
                    "requests": sum(e["endpoint"] != "token" for e in log),
                    "r429": sum(e["status"] == 429 for e in log),
                    "delivered": float(counts_.get("devices", 0)),
                    "truth": float(n),
                    "baseline_rss": base.maxrss_mb if base else None,
                }
                print(
                    f"    tap-hpe-flex: {run.maxrss_mb:.0f} MB peak, {run.wall:.1f} s wall"
                    + (f"; raw loop {base.maxrss_mb:.0f} MB" if base else "")
                )
                self.rows.append(row)
        finally:
            shutil.rmtree(runner.tmp, ignore_errors=True)


def profile_args(p: Profile) -> tuple[int, float, float]:
    """(R, W, L) of a profile, for the floor."""
    return p.limit, p.window_s, p.latency_s


def counts(held: dict[str, set[str]]) -> list[str]:
    """``stream N`` labels."""
    return [f"{k} {len(v):,}" for k, v in held.items()]


def main() -> int:
    """Parse flags, run the profiles, print the table (and write the JSON)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="all", help="rate,cpu,drift (= all) and/or memory")
    p.add_argument("--clients", default="all", help="tap,msdk,dlt,sdk,raw,raw-concurrent")
    p.add_argument("--reps", type=int, default=1, help="repetitions (medians are printed)")
    p.add_argument("--json", help="also write the figures (and every repetition) here")
    p.add_argument("--dump-logs", help="directory for each run's simulator request log (JSON)")
    p.add_argument("--real-rpm", type=int, default=100, help="GreenLake: 100 per minute")
    p.add_argument("--real-window", type=float, default=60.0)
    p.add_argument("--real-latency", type=float, default=1.5)
    p.add_argument("--time-scale", type=float, default=10.0, help="W and L are divided by this")
    p.add_argument("--rate-devices", type=int, default=100_000)
    p.add_argument("--rate-orders", type=int, default=2_000)
    p.add_argument("--cpu-devices", type=int, default=50_000)
    p.add_argument("--cpu-orders", type=int, default=2_000)
    p.add_argument("--drift-devices", type=int, default=20_000)
    p.add_argument("--drift-orders", type=int, default=2_000)
    p.add_argument("--drift-batches", type=int, default=3)
    p.add_argument("--drift-deletes", type=int, default=20)
    p.add_argument("--drift-inserts", type=int, default=20)
    p.add_argument("--memory-scales", default="10000,100000,1000000")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per client run")
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "flex-perf-cache"))
    args = p.parse_args()
    names = args.profile.replace("all", "rate,cpu,drift").split(",")
    if unknown := set(names) - {"rate", "cpu", "drift", "memory"}:
        p.error(f"unknown profile(s): {', '.join(sorted(unknown))}")

    header: dict[str, Any] = {**peers_report.checkout(), "load_before": peers_report.load()}
    bench = PeerBench(args)
    header["clients"] = {c.name: c.version() for c in bench.clients}
    print(
        f"tap-hpe-flex at {header['commit']}{' (dirty tree)' if header['dirty'] else ''}; "
        f"load {header['load_before']}; "
        + "; ".join(f"{c.name}: {c.version()}" for c in bench.clients)
    )
    started = time.perf_counter()
    try:
        for name in names:
            getattr(bench, name)()
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    header.update(
        load_after=peers_report.load(),
        seconds=round(time.perf_counter() - started),
        reps=args.reps,
        command=" ".join(sys.argv),
    )
    print(
        f"\ntap-hpe-flex at {header['commit']}{' (dirty)' if header['dirty'] else ''}, "
        f"reps={args.reps} (medians), load {header['load_before']} → {header['load_after']}, "
        f"{header['seconds']} s\n"
    )
    print(peers_report.markdown(bench.rows))
    if args.json:
        peers_report.write_json(Path(args.json), header, bench.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
