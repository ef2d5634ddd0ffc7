"""A rate budget shared by several tap processes, held in PostgreSQL or Redis.

Why: HPE counts requests per API client and endpoint, not per process. Three taps that run at once
with one client each pace themselves to the whole limit on their own, so together they send three
times too much and meet 429s; dividing ``requests_per_minute`` by hand wastes the budget whenever
fewer jobs run. With one budget in a store that every process already can reach, each process takes
what is free, so N processes never exceed the limit together and one alone gets all of it.

Why pyrate-limiter's buckets and not our own locking: their check-and-count is atomic in the store
(PostgreSQL: an exclusive table lock around count and insert; Redis: one Lua script), maintained and
tested by others. This module routes keys to buckets, sleeps for the wait a bucket names (its own
loop, not the library's ``Limiter``: see :meth:`SharedRateBudget._take_unit`) and handles failure.

How it composes with :class:`~tap_hpe_flex.ratelimit.EndpointRateLimiter`: :class:`SharedRateBudget`
offers the same methods the tap uses (``reserve``/``complete``, ``limit_for``, ``window_s``,
``block``, ``lower_limit``) and wraps an in-process limiter. Each request takes a local slot first
(in-flight accounting, 429 holds, lowered limits: all unchanged), then one unit of the shared
budget. The shared window is ``window_s + margin_s``: the store stamps a unit when it is taken,
the server counts the request when it arrives, and the margin absorbs the spread of that delay
between requests (and small clock offsets between hosts; timestamps are wall-clock milliseconds).

When the store fails (unreachable, restarted, refused) the budget logs one WARNING and paces on the
local limiter alone for the rest of the run: safe, since 429s are honoured anyway. The store URL's
password never appears in a log line or error: it is masked in every message and registered with
the tap's log redactor. The API client ID is hashed before it goes into a key or table name.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import typing as t
from urllib.parse import urlsplit, urlunsplit

from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.ratelimit import EndpointRateLimiter, Slot
from tap_hpe_flex.redact import REDACTOR

if t.TYPE_CHECKING:
    from pyrate_limiter import AbstractBucket, Rate

logger = logging.getLogger("tap-hpe-flex")

EXTRA_HINT = "pip install 'tap-hpe-flex[shared-budget]'"
SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "redis": "redis", "rediss": "redis"}


def mask_url(url: str) -> str:
    """Return ``url`` with its password (if any) replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def client_hash(client_id: str) -> str:
    """Return a stable, non-reversible name for an API client (16 hex digits of SHA-256)."""
    return hashlib.sha256(client_id.encode("utf-8")).hexdigest()[:16]


def default_margin(window_s: float) -> float:
    """Return the default window margin: 2% of the window, at least 50 ms (1.2 s for 60 s)."""
    return max(0.05, 0.02 * window_s)


class _Store:
    """One store connection and the way it builds a bucket per key (PostgreSQL or Redis)."""

    def __init__(self, url: str, timeout_s: float, wall_ms: t.Callable[[], int]) -> None:
        self.kind = SCHEMES[urlsplit(url).scheme]
        self._wall_ms = wall_ms
        try:
            import pyrate_limiter  # noqa: F401, PLC0415 - optional extra

            if self.kind == "postgres":
                from psycopg_pool import ConnectionPool  # noqa: PLC0415 - optional extra
            else:
                from redis import Redis  # noqa: PLC0415 - optional extra
        except ImportError as exc:
            msg = f"rate_budget_url needs the optional packages ({exc.name}): {EXTRA_HINT}"
            raise FlexConfigError(msg) from None
        if self.kind == "postgres":
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=4,
                timeout=timeout_s,
                open=True,
                kwargs={"connect_timeout": max(1, round(timeout_s))},
                name="tap-hpe-flex-budget",
            )
        else:
            self._redis = Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )

    def bucket(self, name: str, rate: Rate) -> AbstractBucket:
        """Build (or attach to) the bucket ``name`` with ``rate``, stamped by the wall clock."""
        from pyrate_limiter import (  # noqa: PLC0415 - optional extra
            AbstractClock,
            PostgresBucket,
            RedisBucket,
        )

        wall_ms = self._wall_ms
        if self.kind == "postgres":

            class _Clock(AbstractClock):
                def now(self) -> int:
                    return wall_ms()

            # The table name is an identifier (63 bytes at most): hash the readable name.
            table = "flex_" + hashlib.sha256(name.encode()).hexdigest()[:24]
            bucket = PostgresBucket(self._pool, table, [rate])
            bucket._clock = _Clock()  # the documented way to give a PostgresBucket its clock
            return bucket

        class _WallClockRedisBucket(RedisBucket):
            def now(self) -> int:
                return wall_ms()

        return t.cast("AbstractBucket", _WallClockRedisBucket.init([rate], self._redis, name))

    def overfull(self, bucket: AbstractBucket, stamp_ms: int, rate: Rate) -> bool:
        """Say whether ``bucket`` holds more than ``rate`` allows from ``stamp_ms`` on (Redis).

        Why: RedisBucket's script counts the window up to the new unit's own stamp. A unit that
        another process stamped a moment later but stored first is not counted, so two units
        can both take the last place in a full window. Counting every stored unit newer than
        the window's start after the put finds that case; PostgreSQL's count has no upper bound
        and runs under its table lock, so it needs no second look.
        """
        if self.kind != "redis":
            return False
        key = t.cast("t.Any", bucket).bucket_key
        start = stamp_ms - rate.interval + 1
        return int(self._redis.zcount(key, start, "+inf")) > rate.limit

    def close(self) -> None:
        """Release the connections (errors ignored: the store may be gone)."""
        try:
            if self.kind == "postgres":
                self._pool.close(timeout=1.0)
            else:
                self._redis.close()
        except Exception:  # closing a broken store must not fail the run
            logger.debug("Closing the shared rate budget's store failed", exc_info=True)


class _SharedKey:
    """The bucket of one key, the limit it was built for, and its lock."""

    __slots__ = ("bucket", "leaked_at", "limit", "lock", "rate")

    def __init__(self, limit: int, bucket: AbstractBucket, rate: Rate) -> None:
        self.limit = limit
        self.bucket = bucket
        self.rate = rate
        self.lock = threading.Lock()
        self.leaked_at = -math.inf


class SharedRateBudget:
    """Per-client, per-endpoint budget in a store, over an in-process EndpointRateLimiter.

    A drop-in for ``EndpointRateLimiter`` where the tap uses one: ``reserve(key) -> (slot,
    waited)``, ``complete(slot)``, ``limit_for(key)``, ``window_s``, ``block(key, s)`` (the 429
    hold, kept per process), ``lower_limit(key, n)`` (applied to both). ``clock`` and ``sleep``
    drive the local limiter and the waits it reports; ``wall_ms`` stamps the shared units.
    """

    def __init__(
        self,
        store_url: str,
        client_id: str,
        limit: int,
        window_s: float = 60.0,
        *,
        margin_s: float | None = None,
        timeout_s: float = 5.0,
        namespace: str = "tap-hpe-flex",
        clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
        wall_ms: t.Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        scheme = urlsplit(store_url).scheme
        if scheme not in SCHEMES:
            msg = (
                f"rate_budget_url must start with postgresql:// or redis://, not "
                f"{mask_url(store_url)!r}"
            )
            raise FlexConfigError(msg)
        if not client_id:
            msg = "the shared rate budget needs the API client ID"
            raise FlexConfigError(msg)
        password = urlsplit(store_url).password
        REDACTOR.add(password)
        self._password = password or ""
        self.local = EndpointRateLimiter(limit, window_s, clock=clock, sleep=sleep)
        self.margin_s = default_margin(window_s) if margin_s is None else margin_s
        self.url = mask_url(store_url)
        self._clock = clock
        self._namespace = namespace
        self._prefix = f"{namespace}:{client_hash(client_id)}"
        self._lock = threading.Lock()
        self._sleep = sleep
        self._buckets: dict[str, _SharedKey] = {}
        self._store: _Store | None = None
        self.fallen_back = False
        try:
            self._store = _Store(store_url, timeout_s, wall_ms)
        except FlexConfigError:
            raise
        except Exception as exc:
            self._fall_back(exc)

    # --- the EndpointRateLimiter interface --------------------------------------------------

    @property
    def limit(self) -> int:
        """The configured limit per window (before any lowering)."""
        return self.local.limit

    @property
    def window_s(self) -> float:
        """The pacing window in seconds (the shared window adds ``margin_s``)."""
        return self.local.window_s

    def limit_for(self, key: str) -> int:
        """Return the limit in force for ``key`` (lowered if the server announced less)."""
        return self.local.limit_for(key)

    def reserve(self, key: str) -> tuple[Slot, float]:
        """Take a local slot, then a unit of the shared budget; return the slot and the wait."""
        slot, waited = self.local.reserve(key)
        if self._store is None:
            return slot, waited
        started = self._clock()
        try:
            self._take_unit(key)
        except Exception as exc:
            self._fall_back(exc)
        return slot, waited + max(0.0, self._clock() - started)

    def complete(self, slot: Slot) -> None:
        """Stamp the local attempt with the time its answer arrived."""
        self.local.complete(slot)

    def acquire(self, key: str) -> float:
        """Reserve and complete at once; return the seconds waited."""
        slot, waited = self.reserve(key)
        self.complete(slot)
        return waited

    def block(self, key: str, seconds: float) -> None:
        """Hold ``key`` in this process for ``seconds`` (a 429's wait)."""
        self.local.block(key, seconds)

    def lower_limit(self, key: str, limit: int) -> None:
        """Pace ``key`` at ``limit`` here and against the shared budget from now on."""
        self.local.lower_limit(key, limit)

    def in_window(self, key: str) -> int:
        """Count this process's attempts for ``key`` in the current window."""
        return self.local.in_window(key)

    def wait_for(self, key: str) -> float:
        """Seconds until ``key`` could send by this process's own count (the store's is unknown)."""
        return self.local.wait_for(key)

    def bucket_name(self, key: str) -> str:
        """Name ``key``'s budget in the store: ``<namespace>:<client hash>:<endpoint>``.

        A key ``<client hash>#<endpoint>`` (another API client's lane, see ClientLanes) names
        that client's own budget, so every process that uses that client shares it.
        """
        label, sep, endpoint = key.partition("#")
        if sep:
            return f"{self._namespace}:{label}:{endpoint}"
        return f"{self._prefix}:{key}"

    def close(self) -> None:
        """Release the store's connections."""
        with self._lock:
            store, self._store = self._store, None
            self._buckets.clear()
        if store is not None:
            store.close()

    # --- internals ----------------------------------------------------------------------------

    def _shared_key(self, key: str) -> _SharedKey:
        """Return the bucket of ``key`` at the limit in force (rebuilt when it was lowered)."""
        from pyrate_limiter import Rate  # noqa: PLC0415 - optional extra

        limit = self.local.limit_for(key)
        with self._lock:
            entry = self._buckets.get(key)
            if entry is not None and entry.limit == limit:
                return entry
            store = self._store
            if store is None:
                msg = "the shared rate budget is closed"
                raise RuntimeError(msg)
            interval_ms = round((self.window_s + self.margin_s) * 1000)
            rate = Rate(limit, interval_ms)
            bucket = store.bucket(self.bucket_name(key), rate)
            entry = self._buckets[key] = _SharedKey(limit, bucket, rate)
            return entry

    def _take_unit(self, key: str) -> None:
        """Wait until the shared budget of ``key`` has room, and take one unit of it.

        The bucket's put is the atomic check-and-count in the store. Each attempt is stamped
        with a fresh ``now`` (pyrate-limiter's own blocking loop advances the first stamp by the
        time it meant to sleep, so late wake-ups would stamp units early and let the window
        overflow). The lock keeps one thread's put and its wait together, as the library's
        Limiter does; the sleep happens outside it. A put that won a race for the last place
        (``_Store.overfull``) is not used: its unit stays counted and the loop waits again.
        """
        from pyrate_limiter import RateItem  # noqa: PLC0415 - optional extra

        entry = self._shared_key(key)
        store = self._store
        while True:
            with entry.lock:
                item = RateItem(key, t.cast("int", entry.bucket.now()))
                if entry.bucket.put(item):
                    rate = entry.rate
                    if store is None or not store.overfull(entry.bucket, item.timestamp, rate):
                        break
                    wait_ms = 0  # admitted in a race (see _Store.overfull): the unit counts
                else:
                    wait_ms = t.cast("int", entry.bucket.waiting(item))
            # One unit always fits a limit of at least 1, so a negative wait only means "now"; a
            # busy table lock (PostgreSQL) answers with no wait either: retry after a few ms.
            self._sleep(max(wait_ms, 5) / 1000)
        now = self._clock()
        if now - entry.leaked_at >= self.window_s:  # drop expired units once per window
            entry.leaked_at = now
            entry.bucket.leak(item.timestamp)

    def _fall_back(self, exc: BaseException) -> None:
        """Stop using the store for the rest of the run; say so once, without the password."""
        with self._lock:
            if self.fallen_back:
                return
            self.fallen_back = True
            store, self._store = self._store, None
        detail = f"{type(exc).__name__}: {exc}".strip()
        if self._password:
            detail = detail.replace(self._password, "***")
        logger.warning(
            "Shared rate budget at %s failed (%s); from now on this process paces "
            "alone at %d requests per %g s per endpoint, and honours any 429 it meets",
            self.url,
            detail.splitlines()[0][:300] if detail else "no detail",
            self.local.limit,
            self.window_s,
        )
        if store is not None:
            store.close()
