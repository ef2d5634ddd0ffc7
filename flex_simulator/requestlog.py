"""A thread-safe log of every request the simulator saw, for assertions in tests.

Tests assert on behaviour the tap cannot report itself (how many pages it fetched, whether it paced
itself under the rate limit, whether it refreshed its token), so every request is recorded,
including refused and faulted ones. Entries never hold tokens or secrets.
"""

from __future__ import annotations

import threading
from typing import Any

# Query parameters that could carry credentials are masked, should a client ever send them there.
_SENSITIVE = frozenset({"access_token", "client_secret", "subject_token", "token", "password"})


def redact_query(query: dict[str, str]) -> dict[str, str]:
    """Mask values of credential-looking parameters."""
    return {k: ("[REDACTED]" if k.lower() in _SENSITIVE else v) for k, v in query.items()}


class RequestLog:
    """Append-only list guarded by a lock; readers get copies."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._max = max_entries

    def add(self, entry: dict[str, Any]) -> None:
        """Record one finished request (oldest entries go first when the cap is reached)."""
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._max:
                del self._entries[: len(self._entries) - self._max]

    def entries(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the entries, optionally only those of one endpoint."""
        with self._lock:
            selected = [e for e in self._entries if endpoint is None or e["endpoint"] == endpoint]
        return [dict(e, query=dict(e["query"])) for e in selected]

    def clear(self) -> int:
        """Forget every entry; returns how many there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        return count
