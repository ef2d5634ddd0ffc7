"""Client-side pacing per Flex endpoint (HPE: 100 requests per minute per endpoint).

Why pace on the client: a 429 costs a request and, with the SDK's backoff, up to half a minute;
spacing requests so the window never overflows costs nothing when the API is idle. One limiter is
shared by all streams of a tap (keyed by endpoint, e.g. ``devices`` and ``devices/{id}`` count
separately) and counts every attempt, retries included, because the server does.
"""

from __future__ import annotations

import collections
import threading
import time
import typing as t


class EndpointRateLimiter:
    """Sliding-window limiter: at most ``limit`` acquisitions per ``window_s`` for each key.

    Thread-safe; ``clock`` and ``sleep`` are injectable so tests can drive time by hand.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        *,
        clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            msg = "limit must be at least 1"
            raise ValueError(msg)
        if window_s <= 0:
            msg = "window_s must be positive"
            raise ValueError(msg)
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._events: dict[str, collections.deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def _prune(self, key: str, now: float) -> collections.deque[float]:
        events = self._events.setdefault(key, collections.deque())
        horizon = now - self.window_s
        while events and events[0] <= horizon:
            events.popleft()
        return events

    def _wait_needed(self, key: str, now: float) -> float:
        """Seconds until ``key`` may send again (0 when it may send now); lock held."""
        events = self._prune(key, now)
        wait = max(0.0, self._blocked_until.get(key, 0.0) - now)
        if len(events) >= self.limit:
            wait = max(wait, events[len(events) - self.limit] + self.window_s - now)
        return wait

    def try_acquire(self, key: str) -> bool:
        """Record an attempt for ``key`` if the window allows it now; never waits."""
        with self._lock:
            now = self._clock()
            if self._wait_needed(key, now) > 0:
                return False
            self._events[key].append(now)
            return True

    def acquire(self, key: str) -> float:
        """Wait until ``key`` may send, record the attempt, and return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(key, now)
                if wait <= 0:
                    self._events[key].append(now)
                    return waited
            self._sleep(wait)
            waited += wait

    def block(self, key: str, seconds: float) -> None:
        """Hold ``key`` for ``seconds`` (e.g. from a 429's reset header), extending any hold."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), until)

    def in_window(self, key: str) -> int:
        """Count the attempts recorded for ``key`` in the current window."""
        with self._lock:
            return len(self._prune(key, self._clock()))
