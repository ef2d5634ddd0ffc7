"""Rolling-window rate limiting per (client, workspace, endpoint).

GreenLake allows 100 requests a minute per Flex endpoint per API client. A rolling window (a log of
accepted request times) is the strictest reading: a client can never burst 2x across a window edge,
so a tap that passes here passes a fixed-window limiter too. Rejected requests are not recorded:
a client that backs off correctly recovers after ``reset`` seconds however often it was refused.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """The limiter's answer plus the values for the ``X-RateLimit-*`` headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # whole seconds (ceil) until the oldest counted request leaves the window


class RateLimiter:
    """Thread-safe sliding-log limiter; limit and window are read per call so they can change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: dict[tuple[str, ...], deque[float]] = {}

    def check(self, key: tuple[str, ...], limit: int, window_s: float) -> Decision:
        """Admit and record the request if a slot is free; ``limit <= 0`` disables limiting."""
        if limit <= 0:
            return Decision(True, 0, 0, 0)
        now = time.monotonic()
        with self._lock:
            log = self._log.setdefault(key, deque())
            while log and log[0] <= now - window_s:
                log.popleft()
            while len(log) > limit:  # the limit was lowered at runtime
                log.popleft()
            if len(log) < limit:
                log.append(now)
                reset = max(1, math.ceil(log[0] + window_s - now))
                return Decision(True, limit, limit - len(log), reset)
            reset = max(1, math.ceil(log[0] + window_s - now))
            return Decision(False, limit, 0, reset)

    def reset(self) -> None:
        """Forget every window (used when tests want a clean slate)."""
        with self._lock:
            self._log.clear()
