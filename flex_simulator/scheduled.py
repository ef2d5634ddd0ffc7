"""Mutations scripted to happen mid-sync, after the N-th successful answer of one endpoint.

Offset paging drifts when records before the current offset disappear (or appear) between pages.
A test of a tap's defence needs that to happen at an exact point of its sync, not at a time: so a
scripted mutation waits for the N-th 200 answer of an endpoint in a workspace and is applied right
after that answer was computed and before it is sent. The answer itself does not show the change;
every later request does, whichever connection it comes on. Each scripted mutation fires once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ENDPOINTS = ("orders", "orders/transform", "devices", "devices/{id}", "msp-tenants")


@dataclass
class ScriptedMutation:
    """One scheduled batch of ops and what became of it (``results`` or ``error`` once applied)."""

    id: int
    endpoint: str
    workspace_id: str
    after_requests: int
    ops: list[dict[str, Any]]
    seen: int = 0
    applied: bool = False
    results: list[dict[str, Any]] | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for ``GET /__sim/mutations``."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "workspace_id": self.workspace_id,
            "after_requests": self.after_requests,
            "seen": self.seen,
            "applied": self.applied,
            "results": self.results,
            "error": self.error,
            "ops": self.ops,
        }


Apply = Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]]


class MutationScheduler:
    """Counts successful answers per scripted mutation and applies each exactly once."""

    def __init__(self, apply: Apply) -> None:
        self._apply = apply
        self._lock = threading.Lock()
        self._items: list[ScriptedMutation] = []
        self._next_id = 1

    def add(
        self, endpoint: str, after_requests: int, ops: list[dict[str, Any]], workspace_id: str
    ) -> ScriptedMutation:
        """Schedule ``ops`` after the ``after_requests``-th 200 answer from now.

        The caller validates the ops first, so a bad op is refused when scripted, not mid-sync.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {', '.join(ENDPOINTS)}")
        if isinstance(after_requests, bool) or not isinstance(after_requests, int):
            raise ValueError("'requests' (after_requests) must be an integer")
        if after_requests < 1:
            raise ValueError("'requests' (after_requests) must be at least 1")
        with self._lock:
            item = ScriptedMutation(
                self._next_id, endpoint, workspace_id, after_requests, list(ops)
            )
            self._next_id += 1
            self._items.append(item)
        return item

    def on_answer(self, entry: dict[str, Any]) -> list[int]:
        """Count a finished request (log entry); apply what became due. Returns applied IDs.

        Counted: status 200 without a fault that spoils the body (a truncated 200 is not a
        success the client saw), to the scripted endpoint, for the scripted workspace.
        """
        if entry.get("status") != 200 or entry.get("fault") == "truncate":
            return []
        applied: list[int] = []
        with self._lock:  # applying under the lock keeps the order of due mutations stable
            for item in self._items:
                if item.applied or item.endpoint != entry.get("endpoint"):
                    continue
                if item.workspace_id != entry.get("workspace_id"):
                    continue
                item.seen += 1
                if item.seen < item.after_requests:
                    continue
                try:
                    item.results = self._apply(item.workspace_id, item.ops)
                except Exception as exc:  # recorded, never breaks the answer being sent
                    item.error = str(exc)
                item.applied = True
                item.done.set()
                applied.append(item.id)
        return applied

    def items(self) -> list[dict[str, Any]]:
        """Every scripted mutation, pending and applied, oldest first."""
        with self._lock:
            return [item.as_dict() for item in self._items]

    def pending(self) -> int:
        """How many scripted mutations have not fired yet."""
        with self._lock:
            return sum(not item.applied for item in self._items)

    def clear(self) -> int:
        """Forget every scripted mutation (pending ones never fire); returns how many."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
        return count
