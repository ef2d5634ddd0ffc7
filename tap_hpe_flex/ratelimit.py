"""Client-side pacing per Flex endpoint (HPE: 100 requests per minute per endpoint).

Why pace on the client: a 429 costs a request and a wait of up to a minute; spacing requests so the
window never overflows costs nothing when the API is idle. One limiter is shared by all streams of
a tap (keyed by endpoint, e.g. ``devices`` and ``devices/{id}`` count separately) and counts every
attempt, retries included, because the server does.

Why a small limiter of our own rather than a library (``ratelimit``, ``pyrate-limiter``,
``limits``): the tap needs three things together that those do not offer as one: a *sliding* window
(the strictest reading of "100 per minute", so it also satisfies fixed windows), a slot that is
time-stamped when the answer has arrived rather than when the request left (the server counts a
request when it reaches it, which is later than the send; stamping at completion makes "never a
429 at the documented limit" hold exactly, whatever the latency), and a ``block`` that a 429 uses
to hold every thread using the endpoint. It is ~100 lines, thread-safe and unit-tested with a
hand-driven clock.
"""

from __future__ import annotations

import math
import threading
import time
import typing as t


class Slot:
    """One counted attempt; ``at`` is infinite while the request is in flight."""

    __slots__ = ("at", "key")

    def __init__(self, key: str, at: float) -> None:
        self.key = key
        self.at = at


class EndpointRateLimiter:
    """Sliding-window limiter: at most ``limit`` attempts per ``window_s`` for each key.

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
        self._cond = threading.Condition()
        self._events: dict[str, list[Slot]] = {}
        self._blocked_until: dict[str, float] = {}
        self._limits: dict[str, int] = {}

    def _prune(self, key: str, now: float) -> list[Slot]:
        horizon = now - self.window_s
        events = [s for s in self._events.get(key, ()) if s.at > horizon]
        self._events[key] = events
        return events

    def limit_for(self, key: str) -> int:
        """Return the limit in force for ``key`` (lowered if the server announced less)."""
        return self._limits.get(key, self.limit)

    def _wait_needed(self, key: str, now: float) -> float:
        """Seconds until ``key`` may send (0: now; inf: when an in-flight request ends)."""
        events = self._prune(key, now)
        wait = max(0.0, self._blocked_until.get(key, 0.0) - now)
        limit = self.limit_for(key)
        if len(events) >= limit:
            stamps = sorted(s.at for s in events)
            wait = max(wait, stamps[len(stamps) - limit] + self.window_s - now)
        return wait

    def reserve(self, key: str) -> tuple[Slot, float]:
        """Wait until ``key`` may send and count an in-flight attempt; return it and the wait.

        Call :meth:`complete` when the answer has arrived (or the attempt failed).
        """
        waited = 0.0
        while True:
            with self._cond:
                now = self._clock()
                wait = self._wait_needed(key, now)
                if wait <= 0:
                    slot = Slot(key, math.inf)
                    self._events[key].append(slot)
                    return slot, waited
                if math.isinf(wait):  # the window is full of requests still in flight
                    self._cond.wait(timeout=1.0)
                    waited += self._clock() - now
                    continue
            self._sleep(wait)
            waited += wait

    def complete(self, slot: Slot) -> None:
        """Stamp the attempt with the time its answer arrived (the window counts from there)."""
        with self._cond:
            slot.at = self._clock()
            self._cond.notify_all()

    def acquire(self, key: str) -> float:
        """Wait until ``key`` may send, count the attempt as of now; return the seconds waited."""
        slot, waited = self.reserve(key)
        self.complete(slot)
        return waited

    def try_acquire(self, key: str) -> bool:
        """Count an attempt for ``key`` if the window allows it now; never waits."""
        with self._cond:
            now = self._clock()
            if self._wait_needed(key, now) > 0:
                return False
            self._events[key].append(Slot(key, now))
            return True

    def block(self, key: str, seconds: float) -> None:
        """Hold ``key`` for ``seconds`` (e.g. from a 429's reset header), extending any hold."""
        with self._cond:
            until = self._clock() + max(0.0, seconds)
            self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), until)

    def lower_limit(self, key: str, limit: int) -> None:
        """Pace ``key`` at ``limit`` from now on if that is below the current limit."""
        with self._cond:
            if 1 <= limit < self.limit_for(key):
                self._limits[key] = limit

    def in_window(self, key: str) -> int:
        """Count the attempts recorded for ``key`` in the current window (in flight included)."""
        with self._cond:
            return len(self._prune(key, self._clock()))
