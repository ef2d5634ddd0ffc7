"""Progress lines for long runs, and one summary line per stream at the end.

Why: a sync of 100,000 devices at 100 requests per minute takes over ten minutes per workspace;
an operator watching the log must be able to tell "slow but moving" from "stuck", and how long is
left. Every ``progress_interval_seconds`` each running partition logs records so far, how far it
has read of the API's ``total``, requests made, its pace and an estimate of the time left. At the
end each stream logs records, requests, retries, 429s, duration and the incremental strategy.

Counters are guarded by one lock: pages may be fetched by several threads at once, and retries are
reported from whichever thread retried (``RetryPolicy.on_retry``).
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from collections import Counter
from dataclasses import dataclass, field

logger = logging.getLogger("tap-hpe-flex")


@dataclass
class PartitionProgress:
    """Counters of one stream partition (one workspace, or one workspace and group-by field)."""

    stream: str
    label: str
    started: float
    next_due: float
    records: int = 0
    requests: int = 0
    total: int | None = None
    position: int = 0
    finished: float | None = None


@dataclass
class _StreamTotals:
    records: int = 0
    requests: int = 0
    partitions: int = 0
    started: float | None = None
    ended: float | None = None
    strategies: set[str] = field(default_factory=set)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


class ProgressTracker:
    """Run-wide, thread-safe progress counters and their log lines."""

    def __init__(
        self,
        interval_s: float = 30.0,
        *,
        clock: t.Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        #: Seconds between progress lines of a partition; 0 turns them off (summaries stay).
        self.interval_s = interval_s
        self._clock = clock
        self._log = log or logger
        self._lock = threading.Lock()
        self._streams: dict[str, _StreamTotals] = {}
        self.retries: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        #: Requests sent per rate-limit key, as the server saw them (fetched ahead, probes,
        #: checks, retries and 401 re-sends included).
        self.sent: Counter[str] = Counter()

    # --- hooks --------------------------------------------------------------------------------
    def note_retry(self, key: str | None, status: int | None) -> None:
        """Count one retried attempt of endpoint ``key`` (``RetryPolicy.on_retry``)."""
        name = key or "token"
        with self._lock:
            self.retries[name] += 1
            if status == 429:
                self.throttled[name] += 1

    def note_sent(self, key: str) -> None:
        """Count one request sent to endpoint ``key`` (``PacedSession.on_sent``)."""
        with self._lock:
            self.sent[key] += 1

    def start(self, stream: str, label: str) -> PartitionProgress:
        """Begin counting a partition."""
        now = self._clock()
        with self._lock:
            totals = self._streams.setdefault(stream, _StreamTotals())
            totals.partitions += 1
            if totals.started is None:
                totals.started = now
        due = now + self.interval_s if self.interval_s > 0 else float("inf")
        return PartitionProgress(stream, label, now, due)

    def request(self, part: PartitionProgress, *, total: int | None, position: int) -> None:
        """Count one answered page; ``position`` is how far into ``total`` reading has got."""
        with self._lock:
            part.requests += 1
            self._streams[part.stream].requests += 1
            if total is not None:
                part.total = total
            part.position = max(part.position, position)
        self._maybe_log(part)

    def record(self, part: PartitionProgress, count: int = 1) -> None:
        """Count ``count`` records emitted (callers batch them: one lock per batch)."""
        with self._lock:
            part.records += count
            self._streams[part.stream].records += count
        if self._clock() >= part.next_due:
            self._maybe_log(part)

    def finish(self, part: PartitionProgress, strategy: str | None) -> None:
        """End a partition (also after a failure or a skip)."""
        now = self._clock()
        with self._lock:
            part.finished = now
            totals = self._streams[part.stream]
            totals.ended = now
            if strategy:
                totals.strategies.add(strategy)

    # --- lines --------------------------------------------------------------------------------
    def _maybe_log(self, part: PartitionProgress) -> None:
        now = self._clock()
        with self._lock:
            if now < part.next_due or part.finished is not None:
                return
            part.next_due = now + self.interval_s
            line = self.progress_line(part, now)
        self._log.info("%s", line)

    @staticmethod
    def progress_line(part: PartitionProgress, now: float) -> str:
        """``Progress orders [workspace …]: 1200 records, read 1300 of 5000 (26%), …``."""
        elapsed = max(now - part.started, 1e-9)
        where = f" [{part.label}]" if part.label else ""
        if part.total is not None:
            share = part.position / part.total if part.total else 1.0
            read = f"read {part.position} of {part.total} ({share:.0%})"
        else:
            read = f"read {part.position} of an unknown total"
        pace = (
            f"{part.records / elapsed:.1f} records/s, "
            f"{part.requests * 60 / elapsed:.1f} requests/min"
        )
        if part.total is not None and part.position > 0:
            left = (part.total - part.position) * elapsed / part.position
            eta = f"about {_duration(left)} left"
        else:
            eta = "time left unknown"
        return (
            f"Progress {part.stream}{where}: {part.records} records so far, {read}, "
            f"{part.requests} requests in {_duration(elapsed)}; {pace}; {eta}"
        )

    def summary_line(self, stream: str, keys: t.Iterable[str]) -> str | None:
        """``Summary orders: N records, N requests, N retries, N 429s, duration, strategy``."""
        with self._lock:
            totals = self._streams.get(stream)
            if totals is None or totals.started is None:
                return None
            keys = list(keys)
            retries = sum(self.retries[k] for k in keys)
            sent = sum(self.sent[k] for k in keys)
            throttled = sum(self.throttled[k] for k in keys)
            duration = (totals.ended or self._clock()) - totals.started
            strategy = ", ".join(sorted(totals.strategies)) or "none"
            return (
                f"Summary {stream}: {totals.records} records, {sent} requests, "
                f"{retries} retries, {throttled} 429s, {_duration(duration)}, "
                f"{totals.partitions} partition(s), strategy {strategy}"
            )
