"""The pure arithmetic of ``bench/peers.py``: the physical floor and the record accounting.

Kept apart from the process plumbing so that ``tests/test_bench_floor.py`` can check it without
starting anything.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PAGE_SIZE = 100  # the most records one Flex list request returns


def fewest_requests(records: int, page_size: int = PAGE_SIZE) -> int:
    """Requests the most economical client needs to list ``records`` (an empty list costs one)."""
    return max(1, math.ceil(records / page_size))


def endpoint_floor(records: int, limit: int, window_s: float, latency_s: float) -> float:
    """Earliest finish of one endpoint: n requests, ``limit`` per sliding window, latency L.

    n = ceil(N/100) requests; a sliding window lets ``limit`` leave at once at t = 0, the next
    ``limit`` at t = W, and so on, so the last batch leaves at (ceil(n/R) - 1)·W and its answer
    arrives L later. ``limit <= 0`` means no limit: the floor is one latency.
    """
    n = fewest_requests(records)
    if limit <= 0:
        return latency_s
    return (math.ceil(n / limit) - 1) * window_s + latency_s


def answer_stamped_bound(
    windows: int, last_window: int, window_s: float, latency_s: float, in_flight: int
) -> float:
    """The least wall for ``windows`` windows when slots free at the answer, ``in_flight`` at once.

    ``last_window`` requests fill the last one; they follow the first window's first as many.

    Why a bound of its own: the physical floor lets a whole window leave at one instant and its
    slots free when the requests left, which no client that promises no 429 whatever the latency
    can do; the gap between the two is the price of that promise at this concurrency.
    """
    rounds = math.ceil(last_window / in_flight)
    return (windows - 1) * (window_s + latency_s) + rounds * latency_s


def physical_floor(
    records_by_endpoint: Mapping[str, int], limit: int, window_s: float, latency_s: float
) -> float:
    """The floor of a whole sync: endpoints have separate limits and run in parallel."""
    return max(
        (endpoint_floor(n, limit, window_s, latency_s) for n in records_by_endpoint.values()),
        default=0.0,
    )


def drift_schedule(records: int, batches: int, deletes: int) -> list[tuple[int, list[int]]]:
    """When each batch of mid-sync deletes fires, and the listing positions it deletes.

    Batch i of k fires after the ``round(i·pages/(k+1))``-th device answer, evenly through the
    sync. It deletes records a client has already read by then: ``deletes`` positions, 5 apart,
    from the middle of the part read (positions before every client's offset, whether it reads
    pages in order or 8 at a time), so each delete shifts every later record back by one, the
    drift that makes plain offset paging skip a record per delete. Batches never share a position.
    """
    pages = fewest_requests(records)
    plan = []
    for i in range(1, batches + 1):
        after = max(1, round(i * pages / (batches + 1)))
        start = after * PAGE_SIZE // 2
        plan.append((after, [p for p in range(start, start + 5 * deletes, 5) if p < records]))
    return plan


@dataclass(frozen=True)
class Accounting:
    """What one client delivered, against what the simulator held."""

    emitted: int  #: records written (all streams, repeats included)
    delivered: int  #: distinct (stream, id) pairs that are in the simulator at the end
    truth: int  #: records in the simulator at the end of the run
    lost: int  #: records present before and after the run (unchanged) that never arrived
    duplicates: int  #: records emitted more than once (emitted - distinct)


def account(
    emitted: Iterable[tuple[str, str]],
    before: Mapping[str, set[str]],
    after: Mapping[str, set[str]],
) -> Accounting:
    """Count deliveries, losses and duplicates of ``(stream, id)`` pairs a client emitted.

    ``before`` and ``after`` are the simulator's ids per stream when the client started and when
    it had finished. The benchmark's mutations only delete and insert, so a record in both is
    unchanged; one of those that never arrived is lost, however the client paged. Deleted or
    inserted records may or may not arrive: neither counts as lost.
    """
    total = 0
    seen: set[tuple[str, str]] = set()
    for pair in emitted:
        total += 1
        seen.add(pair)
    streams = set(before) | set(after)
    truth = {(s, i) for s in streams for i in after.get(s, set())}
    unchanged = {(s, i) for s in streams for i in before.get(s, set()) & after.get(s, set())}
    return Accounting(
        emitted=total,
        delivered=len(seen & truth),
        truth=len(truth),
        lost=len(unchanged - seen),
        duplicates=total - len(seen),
    )


def median_of(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per-key median of several repetitions' numeric figures (keys numeric in every row)."""
    if not rows:
        return {}

    def numeric(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    keys = {k for k in set(rows[0]).intersection(*rows[1:]) if all(numeric(r[k]) for r in rows)}
    return {k: statistics.median(r[k] for r in rows) for k in sorted(keys)}
