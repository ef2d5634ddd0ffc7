"""Scale check of the simulator store: 1,000,000 devices in a temporary SQLite file.

Prints build time, page latency (median of several runs) at offsets 0 / 500,000 / 999,900 with
and without filters, and peak RSS. Run: ``.venv/bin/python bench/simulator_scale.py [devices]``.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Any

from flex_simulator.store import FlexStore
from flex_simulator.testing import list_page


def timed(fn: Any, runs: int = 7) -> tuple[float, Any]:
    samples = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), result


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    orders = 20_000
    store = FlexStore()
    t0 = time.perf_counter()
    store.generate("bench", orders=orders, devices=devices, seed=42)
    print(f"build: {devices:,} devices + {orders:,} orders in {time.perf_counter() - t0:.1f} s")

    def page(offset: int, flt: str | None = None, sort: str | None = None, limit: int = 100):
        return lambda: list_page(
            store,
            "devices",
            "bench",
            filter=flt,
            sort=sort,
            limit=limit,
            offset=offset,
            updated_filter=True,
            updated_sort=True,
        )

    first_ms, _ = timed(page(0), runs=1)
    print(f"first request (counts total, cold cache): {first_ms:.1f} ms")
    for offset in (0, devices // 2, devices - 100):
        ms, p = timed(page(offset))
        print(
            f"devices offset {offset:>9,}: {ms:6.1f} ms median  ({len(p.items)} items, "
            f"total {p.total:,})"
        )
    for label, flt in (
        ("indexed filter make eq 'HPE'", "make eq 'HPE'"),
        (
            "unindexed filter billingTier eq 'HPE Distributions'",
            "billingTier eq 'HPE Distributions'",
        ),
        ("updatedAt gt '2026-01-01T00:00:00Z'", "updatedAt gt '2026-01-01T00:00:00Z'"),
    ):
        total = page(0, flt)().total
        for offset in (0, max(0, total - 100)):
            ms, p = timed(page(offset, flt), runs=5)
            print(f"{label} offset {offset:>9,}: {ms:6.1f} ms median (total {total:,})")
    ms, _ = timed(page(devices - 100, None, "updatedAt asc"), runs=5)
    print(f"sort updatedAt asc offset {devices - 100:,}: {ms:.1f} ms median")
    ms, _ = timed(page(devices - 100, None, "name desc"), runs=3)
    print(f"sort name desc (no index) offset {devices - 100:,}: {ms:.1f} ms median")
    ms, _ = timed(
        lambda: store.apply_mutations(
            "bench", [{"op": "update", "resource": "devices", "count": 100}]
        ),
        runs=3,
    )
    print(f"mutation update count=100: {ms:.1f} ms median")
    ms, _ = timed(page(devices - 100), runs=1)
    print(f"devices offset {devices - 100:,} right after a mutation (recount): {ms:.1f} ms")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MiB")
    store.close()


if __name__ == "__main__":
    main()
