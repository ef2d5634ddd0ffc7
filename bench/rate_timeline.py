"""Where the rate-limited profile's wall time goes: the tap's device requests, window by window.

    .venv/bin/python bench/rate_timeline.py                        # 100,000 devices, 2,000 orders
    .venv/bin/python bench/rate_timeline.py --concurrency 32        # max_concurrent_requests

The same simulator settings as ``bench/peers.py --profile rate`` (100 requests per 6 s per
endpoint, 150 ms latency) and the tap with its defaults. From the simulator's request log it
prints when each window of 100 device requests began and how long its requests took to leave,
then the wall time split into: the physical floor ((windows - 1) x W + L), what each window
starts late (the limiter frees a slot when its answer arrives, not when the request left: the
price of never a 429 whatever the latency), the last window's spread (requests leave as answers
come back, ``max_concurrent_requests`` at a time, and the simulator serves a burst one request
at a time on this machine), and the rest (process start-up before the first request, and the
end after the last).

It also prints the least wall any client reaches when, like the tap, it stamps a slot when the
answer arrives and keeps c requests in flight: every window after the first starts one latency
later than the floor assumes, and the first window's R requests leave over ceil(R / c) - 1
latencies, a spread every later window repeats. That bound, not the floor, is what start-up and
per-request costs are measured against.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers_floor import answer_stamped_bound
from perf_proc import REPO, selected_catalog, sim, write_json

from tap_hpe_flex.config_schema import DEFAULT_CONCURRENCY

TAP = str(REPO / ".venv" / "bin" / "tap-hpe-flex")


def main() -> None:
    """Run one rate-limited sync and print its timeline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the tap's")
    args = parser.parse_args()
    flags = {"rate_limit": args.limit, "rate_window": args.window, "latency_ms": args.latency_ms}
    extra = {"requests_per_minute": args.limit, "rate_limit_window_seconds": args.window}
    if args.concurrency:
        extra["max_concurrent_requests"] = args.concurrency
    with (
        sim(devices=args.devices, orders=args.orders, **flags) as s,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = write_json(Path(tmp) / "tap.json", s.tap_config(**extra))
        catalog_file = selected_catalog(
            TAP, config, {"orders", "devices"}, Path(tmp) / "catalog.json"
        )
        time.sleep(args.window + 0.5)  # a full window of quiet, as in bench/peers.py
        s.clear()
        started = time.perf_counter()
        subprocess.run(
            [TAP, "--config", str(config), "--catalog", str(catalog_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        wall = time.perf_counter() - started
        log = s.requests()
    devices = sorted(e["time"] for e in log if e["endpoint"] == "devices")
    first_any = min(e["time"] for e in log)
    windows = [devices[i : i + args.limit] for i in range(0, len(devices), args.limit)]
    latency = args.latency_ms / 1000
    print(f"{len(devices)} device requests, statuses {sorted({e['status'] for e in log})}")
    for k, w in enumerate(windows):
        print(
            f"  window {k:2d}: begins {w[0] - devices[0]:6.2f} s, requests leave over "
            f"{w[-1] - w[0]:.2f} s"
        )
    floor = (len(windows) - 1) * args.window + latency
    late = windows[-1][0] - devices[0] - (len(windows) - 1) * args.window
    spread = windows[-1][-1] - windows[-1][0]
    rest = wall - (windows[-1][-1] - devices[0]) - latency
    in_flight = args.concurrency or DEFAULT_CONCURRENCY
    bound = answer_stamped_bound(len(windows), len(windows[-1]), args.window, latency, in_flight)
    print(f"wall {wall:.2f} s = floor {floor:.2f} s ({wall / floor:.3f}x)")
    print(
        f"  least wall with slots freed at the answer, {in_flight} in flight: {bound:.2f} s "
        f"({bound / floor:.3f}x the floor); this run is {wall / bound:.3f}x that"
    )
    print(f"  + {late:.2f} s windows starting late ({late / (len(windows) - 1):.3f} s each)")
    print(f"  + {spread:.2f} s the last window's requests leaving")
    print(
        f"  + {rest:.2f} s start-up and end (the first device request came "
        f"{devices[0] - first_any:.2f} s after the run's first logged request)"
    )


if __name__ == "__main__":
    main()
