"""Steady churn: a live fleet where something changes every few seconds.

With ``churn_interval_s`` > 0 a background thread applies, every that many seconds, one update of
a record of ``churn_resource`` in the demo workspace, picked by the mutation generator (seeded by
the workspace seed and the mutation count, so a run replays the same picks). The update changes a
field that is no sort key of the default order and bumps ``updatedAt`` and ``generation``, so it
moves nothing in the default order. ``churn_mode="shift"`` also deletes one record and inserts one
in each tick, which shifts offsets. ``tick()`` applies one tick at once, so a test need not wait.

The thread waits on an event, not in ``time.sleep``: a settings change restarts its schedule and
``stop()`` ends it at once, before the store closes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .config import SimulatorConfig
from .store import MutationError

Mutate = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class Churn:
    """The churn thread and the log of what it changed (``events()``)."""

    def __init__(self, config: Callable[[], SimulatorConfig], mutate: Mutate) -> None:
        self._config = config
        self._mutate = mutate
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque(maxlen=100_000)

    def ops(self) -> list[dict[str, Any]]:
        """Return the mutation ops of one tick under the current settings."""
        cfg = self._config()
        ops: list[dict[str, Any]] = [{"op": "update", "resource": cfg.churn_resource, "count": 1}]
        if cfg.churn_mode == "shift":
            ops.append({"op": "delete", "resource": cfg.churn_resource, "count": 1})
            ops.append({"op": "insert", "resource": cfg.churn_resource, "count": 1})
        return ops

    def tick(self) -> dict[str, Any]:
        """Apply one tick now; return (and log) ``{"time", "results"}`` or ``{"time", "error"}``."""
        event: dict[str, Any] = {"time": time.monotonic()}
        try:
            event["results"] = self._mutate(self.ops())
        except MutationError as exc:  # e.g. an empty resource: nothing to update
            event["error"] = str(exc)
        with self._lock:
            self._events.append(event)
        return event

    def events(self) -> list[dict[str, Any]]:
        """Every tick so far, oldest first (results as ``POST /__sim/mutations`` shows them)."""
        with self._lock:
            return list(self._events)

    def start(self) -> None:
        """Start the thread (idle while ``churn_interval_s`` is 0)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="flex-sim-churn", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Re-read the settings (they changed) and restart the schedule."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        """Whether this churn's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """End the thread and wait for a tick in progress to finish."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            interval = self._config().churn_interval_s
            deadline = time.monotonic() + interval
            woken = False
            while not woken and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if interval > 0 and left <= 0:
                    break
                woken = self._wake.wait(left if interval > 0 else None)
            self._wake.clear()
            if woken or self._stopping.is_set():
                continue
            self.tick()
