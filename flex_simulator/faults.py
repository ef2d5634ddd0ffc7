"""Fault injection: a deterministic per-endpoint script plus seeded random faults.

Scripted faults make a test say exactly what the next requests will meet ("500, then drop, then
pass"); random faults (off by default) give soak runs a reproducible amount of misery.
"""

from __future__ import annotations

import random
import threading
from collections import deque

KINDS = ("500", "503-html", "502-html", "drop", "truncate", "429", "timeout", "pass")
ENDPOINTS = ("token", "orders", "orders/transform", "devices", "devices/{id}", "msp-tenants")


def parse_fault(fault: str) -> tuple[str, float | None]:
    """Split ``"kind"`` or ``"kind:N"`` (seconds for 500 retryAfterSeconds and timeout stalls)."""
    kind, _, arg = str(fault).partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown fault {fault!r}; kinds: {', '.join(KINDS)}")
    if not arg:
        return kind, None
    if kind not in ("500", "timeout"):
        raise ValueError(f"fault {kind!r} takes no argument")
    try:
        value = float(arg)
    except ValueError:
        raise ValueError(f"fault argument must be a number: {fault!r}") from None
    if value < 0:
        raise ValueError(f"fault argument must not be negative: {fault!r}")
    return kind, value


class FaultInjector:
    """Thread-safe source of the fault (if any) each request meets."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str]] = {}
        self._random = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """Restart the random sequence so a run can be replayed."""
        with self._lock:
            self._random = random.Random(seed)

    def script(self, endpoint: str, faults: list[str]) -> None:
        """Queue faults for the next requests to ``endpoint``, after any already queued."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {', '.join(ENDPOINTS)}")
        for fault in faults:
            parse_fault(fault)
        with self._lock:
            self._scripts.setdefault(endpoint, deque()).extend(str(f) for f in faults)

    def pending(self) -> dict[str, list[str]]:
        """Scripted faults not yet consumed, per endpoint."""
        with self._lock:
            return {e: list(q) for e, q in self._scripts.items() if q}

    def clear(self) -> None:
        """Drop every scripted fault."""
        with self._lock:
            self._scripts.clear()

    def next_fault(
        self, endpoint: str, rates: tuple[float, float, float, float] | None
    ) -> str | None:
        """Pick the scripted fault for this request, else a random one from ``rates``.

        ``rates`` is (error, html_error, drop, truncate); None disables random faults (used for
        the token endpoint, where only scripted faults apply).
        """
        with self._lock:
            queue = self._scripts.get(endpoint)
            if queue:
                fault = queue.popleft()
                return None if fault == "pass" else fault
            if rates is None or not any(rates):
                return None
            draw = self._random.random()
        bound = 0.0
        for kind, rate in zip(("500", "503-html", "drop", "truncate"), rates, strict=True):
            bound += rate
            if draw < bound:
                return kind
        return None
