"""Tenant sharding without coordination: which 1/n of the MSP tenants one job syncs.

Why a pure function of the workspace ID: n Meltano jobs (one state ID each) can then split the
tenants between them with nothing shared but the two settings ``shard`` and ``shard_count``. Every
job computes the same answer from the ID alone, so the tenants are covered exactly once, whatever
order the tenant list comes in and whichever job starts first.

Why not Python's ``hash()``: it is salted per process (``PYTHONHASHSEED``) for ``str``, so two jobs
would disagree. The key is the first 8 bytes of SHA-256 of the workspace ID in its one canonical
form (32 lower-case hex digits, :func:`~tap_hpe_flex.tenants.normalize_workspace_id`), the same
on every machine and Python version.

Why jump consistent hashing (Lamping and Veach, 2014) rather than ``key % n``: going from n to n+1
shards moves only about 1/(n+1) of the tenants (``key % n`` moves about n/(n+1) of them). A tenant
that changes shard starts without a bookmark in its new shard's state (a full read, or one from
``start_date``), so moving few tenants keeps a re-shard cheap.
"""

from __future__ import annotations

import hashlib
import typing as t

from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.tenants import normalize_workspace_id

_MASK64 = (1 << 64) - 1
_LCG_MULTIPLIER = 2862933555777941757  # the 64-bit linear congruential step of the paper


def workspace_key(workspace_id: str) -> int:
    """Return the stable 64-bit key of a workspace ID (hyphens and case do not matter)."""
    canonical = normalize_workspace_id(workspace_id, setting="shard")
    return int.from_bytes(hashlib.sha256(canonical.encode("ascii")).digest()[:8], "big")


def _jump(key: int, buckets: int) -> int:
    """Jump consistent hash: a bucket in [0, buckets) that few keys leave when buckets grows."""
    bucket, candidate = -1, 0
    while candidate < buckets:
        bucket = candidate
        key = (key * _LCG_MULTIPLIER + 1) & _MASK64
        candidate = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def check_shard(index: int, count: int) -> None:
    """Raise FlexConfigError unless ``0 <= index < count`` (settings ``shard``, ``shard_count``)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        msg = f"shard_count must be a whole number of at least 1, not {count!r}"
        raise FlexConfigError(msg)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        msg = f"shard must be a whole number from 0 to shard_count - 1 ({count - 1}), not {index!r}"
        raise FlexConfigError(msg)


def check_shard_settings(index: int, count: int, tenants: t.Sequence[str]) -> None:
    """Check ``shard``/``shard_count``; splitting needs tenants (a single workspace cannot)."""
    check_shard(index, count)
    if count > 1 and not tenants:
        msg = (
            f"shard_count={count} splits the tenants of tenant_workspace_ids, which is not set: "
            'a single workspace cannot be split; set tenant_workspace_ids (e.g. ["*"]) or '
            "leave shard_count at 1"
        )
        raise FlexConfigError(msg)


def shard_of(workspace_id: str, count: int) -> int:
    """Return the shard (0 to ``count - 1``) that syncs ``workspace_id`` out of ``count``."""
    check_shard(0, count)
    return _jump(workspace_key(workspace_id), count)


def select(workspaces: t.Iterable[str], index: int, count: int) -> list[str]:
    """Return the workspaces of shard ``index`` of ``count``, in their given order.

    Applied to the tenant list (``tenant_workspace_ids``, or what ``["*"]`` lists), so the n jobs
    ``shard=0..n-1`` with the same ``shard_count`` together sync every tenant exactly once.
    """
    check_shard(index, count)
    return [w for w in workspaces if _jump(workspace_key(w), count) == index]
