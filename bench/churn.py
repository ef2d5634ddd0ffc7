"""A large pass under steady churn: requests against ceil(N/100), and records lost.

A live fleet changes every few seconds. This runs one full sync of N devices (default 200,000)
against a simulator that filters on ``updatedAt`` (so the tap vouches for the pass with a snapshot
check instead of overlapping pages) while one device is updated every ``--churn`` seconds, at the
live rate limit time-scaled 10x (100 requests per 6 s, 150 ms per answer). It prints the requests
the simulator answered for devices, their excess over ceil(N/100), the records delivered against
the simulator's records, and the snapshot checks' outcome.

    .venv/bin/python bench/churn.py                      # 200,000 devices, one update every 0.5 s
    .venv/bin/python bench/churn.py --devices 20000 --churn 0.5
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perf_proc import REPO, selected_catalog, sim

TAP = str(REPO / ".venv" / "bin" / "tap-hpe-flex")


def main() -> None:
    """Run the churned pass and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200_000)
    parser.add_argument("--churn", type=float, default=0.5, help="seconds between updates")
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "flex-perf-cache"))
    args = parser.parse_args()
    n = args.devices
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"flex-d{n}-o0-s42.db"  # shared with bench/perf.py's cache
    flags = {
        "rate_limit": 100,
        "rate_window": args.window,
        "latency_ms": args.latency_ms,
        "updated_filter": True,
    }
    with sim(devices=n, orders=0, db=db, **flags) as s:
        s.settings(churn_interval_s=args.churn)
        config = s.tap_config(requests_per_minute=100, rate_limit_window_seconds=args.window)
        with tempfile.TemporaryDirectory() as tmp:
            config_file = Path(tmp) / "config.json"
            config_file.write_text(json.dumps(config))
            catalog_file = selected_catalog(
                TAP, config_file, {"devices"}, Path(tmp) / "catalog.json"
            )
            s.clear()
            started = time.monotonic()
            proc = subprocess.run(
                [TAP, "--config", str(config_file), "--catalog", str(catalog_file)],
                capture_output=True,
                text=True,
                check=True,
            )
            wall = time.monotonic() - started
        s.settings(churn_interval_s=0)
        log = s.requests()
        s.settings(rate_limit=0, latency_ms=0)  # the bench's own count costs the tap nothing
        ids = set()
        for line in proc.stdout.splitlines():
            if line.startswith('{"type":"RECORD"') or line.startswith('{"type": "RECORD"'):
                ids.add(json.loads(line)["record"]["id"])
        alive = s.total("devices")
        churned = json.loads(s.http.get(f"{s.url}/__sim/churn", timeout=60).text)["count"]
    devices = [e for e in log if e["endpoint"] == "devices"]
    floor_requests = math.ceil(n / 100)
    excess = len(devices) - floor_requests
    checks = [e for e in devices if "updatedAt" in json.dumps(e)]
    throttled = sum(1 for e in devices if e["status"] == 429)
    print(f"devices: {n}, one update every {args.churn} s ({churned} updates during the run)")
    print(
        f"requests: {len(devices)} = ceil(N/100) {floor_requests} + {excess} "
        f"({100 * excess / floor_requests:+.2f}%), of which {len(checks)} ask about updatedAt; "
        f"{throttled} x 429"
    )
    lost = max(0, alive - len(ids))
    print(f"records: {len(ids)} distinct delivered, {alive} alive now, lost {lost}")
    print(f"wall: {wall:.1f} s")


if __name__ == "__main__":
    main()
