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

import logging
import math
import threading
import time
import typing as t

logger = logging.getLogger("tap-hpe-flex")


class Slot:
    """One counted attempt; ``at`` is infinite while the request is in flight."""

    __slots__ = ("at", "key")

    def __init__(self, key: str, at: float) -> None:
        self.key = key
        self.at = at


class RateLimiter(t.Protocol):
    """What pacing needs of a limiter: an EndpointRateLimiter, or a SharedRateBudget over one.

    Why a Protocol: the transport, the retry loop and the client lanes pace through either one
    (or a lane's view of one) without knowing which.
    """

    @property
    def window_s(self) -> float:
        """The pacing window in seconds."""
        ...

    def reserve(self, key: str) -> tuple[Slot, float]:
        """Wait until ``key`` may send; count an in-flight attempt; return it and the wait."""
        ...

    def complete(self, slot: Slot) -> None:
        """Stamp the attempt with the time its answer arrived."""
        ...

    def limit_for(self, key: str) -> int:
        """Return the limit in force for ``key``."""
        ...

    def block(self, key: str, seconds: float) -> None:
        """Hold ``key`` for ``seconds`` (a 429's wait)."""
        ...

    def lower_limit(self, key: str, limit: int) -> None:
        """Pace ``key`` at ``limit`` from now on if that is lower."""
        ...

    def in_window(self, key: str) -> int:
        """Count the attempts of ``key`` in the current window (in flight included)."""
        ...

    def wait_for(self, key: str) -> float:
        """Seconds until ``key`` could send now (0: at once; inf: when a request ends)."""
        ...


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

    def wait_for(self, key: str) -> float:
        """Seconds until ``key`` could send now (0: at once; inf: when a request ends)."""
        with self._cond:
            return self._wait_needed(key, self._clock())


class ClientLanes:
    """Spreads each endpoint's requests over several API clients, each with its own budget.

    Why: HPE limits requests per API client, so k clients of one workspace may send k times the
    limit. Lane 0 is the main client and keeps the plain endpoint key (the key a process with one
    client uses, so it shares that budget); lane i paces under ``<label_i>#<endpoint>``. When a
    429 comes to a lane whose own window was not full, the server counts the clients together:
    from then on every lane of that endpoint paces under the plain key (one WARNING).
    """

    def __init__(self, limiter: RateLimiter, labels: t.Sequence[str]) -> None:
        self.limiter = limiter
        self.labels = list(labels)
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self._shared: set[str] = set()
        self._suspects: dict[tuple[int, str], int] = {}

    def key(self, lane: int, endpoint: str) -> str:
        """Return the limiter key of ``endpoint`` on ``lane``."""
        if lane == 0 or endpoint in self._shared:
            return endpoint
        return f"{self.labels[lane]}#{endpoint}"

    def per_window(self, endpoint: str) -> int:
        """Return how many requests ``endpoint`` may send per window, all clients together."""
        if endpoint in self._shared:
            return self.limiter.limit_for(endpoint)
        return sum(self.limiter.limit_for(self.key(i, endpoint)) for i in range(len(self.labels)))

    def is_shared(self, endpoint: str) -> bool:
        """Whether the clients are paced together on ``endpoint`` (429s showed a shared limit)."""
        return endpoint in self._shared

    def pick(self, endpoint: str) -> int:
        """Return the lane to send ``endpoint``'s next request on: the one free soonest.

        Ties go round-robin, so each client's token and budget are used evenly.
        """
        self._judge_suspects(endpoint)
        with self._lock:
            start = self._next.get(endpoint, 0)
            lanes = len(self.labels)
            order = [(start + i) % lanes for i in range(lanes)]
            lane = min(order, key=lambda i: self.limiter.wait_for(self.key(i, endpoint)))
            self._next[endpoint] = (lane + 1) % lanes
            return lane

    def view(self, lane: int) -> LaneLimiter:
        """Return the limiter as ``lane``'s session sees it (its keys are that lane's)."""
        return LaneLimiter(self, lane)

    def note_429(self, lane: int, endpoint: str) -> None:
        """Remember how full ``lane``'s window was when the server refused it (judged later)."""
        if endpoint in self._shared:
            return
        with self._lock:
            self._suspects[lane, endpoint] = self.limiter.in_window(self.key(lane, endpoint))

    def _judge_suspects(self, endpoint: str) -> None:
        """Switch ``endpoint`` to one budget when a lane was refused below its own limit.

        Judged at the next pick, after any lower ``X-RateLimit-Limit`` of the 429 was applied: a
        server limit lower than configured is not a sign that the limit is shared.
        """
        with self._lock:
            found = [
                (lane, count)
                for (lane, name), count in self._suspects.items()
                if name == endpoint and count < self.limiter.limit_for(self.key(lane, endpoint))
            ]
            self._suspects = {k: v for k, v in self._suspects.items() if k[1] != endpoint}
            if not found or endpoint in self._shared:
                return
            self._shared.add(endpoint)
        logger.warning(
            "429s show that the rate limit of %s is shared by the %d API clients (one was "
            "refused after %d of its own %d requests per %g s); pacing them together at %d "
            "per %g s from now on",
            endpoint,
            len(self.labels),
            found[0][1],
            self.limiter.limit_for(self.key(found[0][0], endpoint)),
            self.limiter.window_s,
            self.limiter.limit_for(endpoint),
            self.limiter.window_s,
        )


class LaneLimiter:
    """One lane's view of the run's limiter: the same calls, keyed by that lane's client.

    Given to the lane's session (``reserve``/``complete``) and to the retry loop of a request
    sent on the lane (``block``/``lower_limit``; a 429 also tells the lanes, see ClientLanes).
    """

    def __init__(self, lanes: ClientLanes, lane: int) -> None:
        self.lanes = lanes
        self.lane = lane

    @property
    def window_s(self) -> float:
        """The pacing window in seconds."""
        return self.lanes.limiter.window_s

    def reserve(self, key: str) -> tuple[Slot, float]:
        """Reserve a slot under this lane's key."""
        return self.lanes.limiter.reserve(self.lanes.key(self.lane, key))

    def complete(self, slot: Slot) -> None:
        """Complete the slot (it carries its own key)."""
        self.lanes.limiter.complete(slot)

    def limit_for(self, key: str) -> int:
        """Return the limit in force on this lane's key."""
        return self.lanes.limiter.limit_for(self.lanes.key(self.lane, key))

    def block(self, key: str, seconds: float) -> None:
        """Hold this lane's key after a 429 (and tell the lanes, which judge if it is shared)."""
        self.lanes.note_429(self.lane, key)
        self.lanes.limiter.block(self.lanes.key(self.lane, key), seconds)

    def lower_limit(self, key: str, limit: int) -> None:
        """Lower the limit of this lane's key."""
        self.lanes.limiter.lower_limit(self.lanes.key(self.lane, key), limit)

    def in_window(self, key: str) -> int:
        """Count the attempts of this lane's key in the window."""
        return self.lanes.limiter.in_window(self.lanes.key(self.lane, key))

    def wait_for(self, key: str) -> float:
        """Return the seconds until this lane's key could send."""
        return self.lanes.limiter.wait_for(self.lanes.key(self.lane, key))
