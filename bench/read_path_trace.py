"""Which of the tap's modules one steady page passes through, and how many calls cross modules.

Runs the tap in-process against a simulator twice (N and 2N devices, devices stream only, no rate
limit) under ``sys.setprofile``/``threading.setprofile`` and counts calls into ``tap_hpe_flex`` and
``singer_sdk`` code. The difference between the two runs, divided by the difference in pages, is the
cost of one steady page (its 100 records included): start-up, discovery and the last page cancel
out. A module counts as "passed through" when its calls grow with the number of pages.

    python bench/read_path_trace.py                 # 1 and 8 requests in flight
    python bench/read_path_trace.py --devices 3000 --in-flight 1
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flex_simulator.testing import running_simulator
from tap_hpe_flex.tap import TapHpeFlex
from tests.tap.helpers import CollectingWriter, tap_config

PACKAGES = ("tap_hpe_flex", "singer_sdk")


def _module_of(filename: str) -> str | None:
    parts = Path(filename).parts
    for package in PACKAGES:
        if package in parts:
            index = len(parts) - 1 - parts[::-1].index(package)
            return ".".join(parts[index:]).removesuffix(".py")
    return None


class CallCounter:
    """Counts calls per callee module and per (caller module, callee module) pair."""

    def __init__(self) -> None:
        self.modules: collections.Counter[str] = collections.Counter()
        self.edges: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, frame: t.Any, event: str, arg: t.Any) -> None:
        if event != "call":
            return
        callee = _module_of(frame.f_code.co_filename)
        if callee is None:
            return
        back = frame.f_back
        caller = _module_of(back.f_code.co_filename) if back is not None else None
        with self._lock:
            self.modules[callee] += 1
            if caller is not None and caller != callee:
                self.edges[caller, callee] += 1


def run(devices: int, in_flight: int) -> tuple[CallCounter, int]:
    """Sync ``devices`` devices under the profiler; return the counts and the pages read."""
    with running_simulator(orders=1, devices=devices, rate_limit=0) as sim:
        config = tap_config(sim, max_concurrent_requests=in_flight, progress_interval_seconds=0)
        tap = TapHpeFlex(config=config, message_writer=CollectingWriter())
        for name, stream in tap.streams.items():
            stream.selected = name == "devices"
        counter = CallCounter()
        threading.setprofile(counter)
        sys.setprofile(counter)
        try:
            tap.sync_all()
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
        pages = len(sim.requests("devices"))
    return counter, pages


def main() -> None:
    """Print the per-page modules and cross-module calls for each concurrency asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, action="append")
    args = parser.parse_args()
    for in_flight in args.in_flight or [1, 8]:
        small, small_pages = run(args.devices, in_flight)
        large, large_pages = run(2 * args.devices, in_flight)
        pages = large_pages - small_pages
        grown = {
            m: (large.modules[m] - small.modules[m]) / pages
            for m in large.modules
            if large.modules[m] - small.modules[m] >= pages
        }
        tap_modules = sorted(m for m in grown if m.startswith("tap_hpe_flex"))
        edges = sum(large.edges.values()) - sum(small.edges.values())
        print(f"== {in_flight} in flight: {pages} pages apart")
        print(f"tap modules per steady page: {len(tap_modules)}")
        for module in tap_modules:
            print(f"  {module:40s} {grown[module]:8.1f} calls/page")
        print(f"module-to-module calls per steady page: {edges / pages:.1f}")


if __name__ == "__main__":
    main()
