"""The simulator's one wall clock.

``updatedAt`` of mutations and the HTTP ``Date`` header read the same clock, so a client can
compare a record's ``updatedAt`` with the ``Date`` of the answer that carried it (a tap choosing an
incremental bookmark, or a test checking one) without a skew the simulator itself introduced.
"""

from __future__ import annotations

import time
from email.utils import formatdate


def now_ns() -> int:
    """Nanoseconds since the Unix epoch (wall clock, not monotonic: it dates records)."""
    return time.time_ns()


def http_date(timestamp_s: float | None = None) -> str:
    """RFC 9110 IMF-fixdate, e.g. ``Tue, 01 Dec 2026 00:00:00 GMT``, of now (or a timestamp)."""
    return formatdate(now_ns() / 1e9 if timestamp_s is None else timestamp_s, usegmt=True)
