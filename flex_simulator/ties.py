"""Unstable ties: a backend paging ``ORDER BY orderEndDate LIMIT … OFFSET …`` with no unique key.

SQL leaves the order of rows that tie on every sort key undefined, and a real backend's order of
them changes from one query to the next (parallel scans, different plans, rows moved by vacuum).
With ``unstable_ties`` on, each list request draws a fresh salt and rows tied on every key of the
effective sort are ordered by a salted hash of their row number instead of by ``id``: consistent
within one answer, different on the next. A sort that names ``id`` has no ties and stays stable.
The salts come from one generator seeded with the data seed, so a sequential client meets the
same reshuffles on every run.
"""

from __future__ import annotations

import random
import threading

_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: spreads consecutive row numbers
_MASK = 2**32 - 1


def shuffled_tiebreak(salt: int) -> str:
    """Return an SQL ORDER BY term: a hash of ``rid`` XOR ``salt`` (SQLite has no XOR operator)."""
    salt &= _MASK
    hashed = f"((rid * {_MULTIPLIER}) & {_MASK})"
    return f"(({hashed} | {salt}) - ({hashed} & {salt}))"


class TieShuffler:
    """Hands each list request its own salt, from a seeded generator (thread-safe)."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(f"ties:{seed}")

    def salt(self) -> int:
        """Draw a fresh 32-bit salt."""
        with self._lock:
            return self._random.getrandbits(32)
