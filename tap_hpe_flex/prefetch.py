"""Pipelined page fetching: several requests in flight per endpoint, consumed in page order.

Why: at 100 requests per minute and 1.5 s per answer, a sequential client waits on latency
(40 pages/min), not on the limit. With overlap-by-one offset paging every offset is known once the
first page says ``total``, so a :class:`PagePipeline` per stream partition fetches them through a
small per-endpoint worker pool (``max_concurrent_requests`` threads, each request still gated by
the shared :class:`~tap_hpe_flex.ratelimit.EndpointRateLimiter`), and writes each answer's raw bytes
to a temporary spool file. The SDK's single-threaded ``get_records`` asks for pages in order
(:meth:`PagePipeline.get`) and runs the drift check (``drift.OffsetWalk``) on them as before; if
the walk wants a different offset than planned (the list shifted), the pipeline drops what it
fetched ahead and starts a new run from there. Singer output, state and bookmarks stay on the main
thread; pipelines of all selected streams start together, so endpoints run concurrently.

Memory and disk stay flat: pages wait on disk (in 64 MB segments deleted once read); while the
consumer is reading a partition the pipeline stays at most ``ahead`` pages in front of it, and a
partition not yet being read fetches at most ``depth`` pages. Any failure in a worker (a request
that failed for good, a spool file that cannot be created) is handed to the consumer, which raises
it when it asks for that page: nothing waits for ever.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import tempfile
import threading
import typing as t
from dataclasses import dataclass, field

from tap_hpe_flex.errors import FlexUserError

logger = logging.getLogger("tap-hpe-flex")

SEGMENT_BYTES = 64 * 1024 * 1024


class WorkerPool:
    """``size`` daemon threads running tasks for one endpoint (daemon: never block exit)."""

    def __init__(self, name: str, size: int) -> None:
        self._tasks: queue.SimpleQueue[t.Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"flex-{name}-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, task: t.Callable[[], None]) -> None:
        """Queue ``task`` (FIFO)."""
        self._tasks.put(task)

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            try:
                task()
            except BaseException:  # tasks hand their errors to the consumer; this is a bug
                logger.exception("prefetch worker failed")

    def alive(self) -> bool:
        """Tell whether a worker thread still runs (a consumer must not wait on a dead pool)."""
        return any(thread.is_alive() for thread in self._threads)

    def close(self) -> None:
        """Let the threads end after the tasks already queued."""
        for _ in self._threads:
            self._tasks.put(None)


@dataclass
class _Segment:
    fd: int
    size: int = 0
    live: int = 0  # pages stored here and not yet read or dropped
    writing: int = 0  # pwrite calls under way (the fd must stay open)


@dataclass
class Fetched:
    """One page as fetched: its offset, raw body and the server's ``Date`` header."""

    offset: int
    body: bytes
    date: str | None = None
    extra: dict[str, t.Any] = field(default_factory=dict)


class PagePipeline:
    """Pages of one partition pass, fetched ahead in parallel and handed out in order.

    ``fetch(offset)`` does one page request (retries, pacing, token included) in a worker thread
    and returns a :class:`Fetched`; ``first_total(fetched)`` reads ``(count, total)`` from the
    first page of a run. ``speculate=False`` fetches only the offsets asked for (the ``sort``
    strategy, whose pass stops at the bookmark: reading ahead would waste requests).
    """

    def __init__(
        self,
        *,
        name: str,
        pool: WorkerPool,
        fetch: t.Callable[[int], Fetched],
        first_total: t.Callable[[Fetched], tuple[int, int | None]],
        page_size: int,
        depth: int,
        ahead: int,
        speculate: bool = True,
    ) -> None:
        self.name = name
        self._pool = pool
        self._fetch = fetch
        self._first_total = first_total
        self.page_size = page_size
        self.stride = page_size - 1 if page_size > 1 else 1
        self.depth = max(1, depth)
        self.ahead = max(ahead, self.depth)
        self.speculate = speculate
        self._cond = threading.Condition()
        self._run = 0
        self._queue: list[int] = []  # offsets still to request in this run, ascending
        self._inflight: set[tuple[int, int]] = set()  # (run, offset): stale runs hold workers
        self._done: dict[int, tuple[_Segment, int, int, Fetched]] = {}
        self._errors: dict[int, BaseException] = {}
        self._first_pending: int | None = None
        self._active = False
        self._closed = False
        self._segments: list[_Segment] = []
        #: Requests made, and pages fetched but thrown away after a drift (for tests and logs).
        self.requests = 0
        self.wasted = 0

    # --- consumer side (main thread) ----------------------------------------------------------
    def start(self, offset: int = 0) -> None:
        """Begin fetching at ``offset`` (called at sync start for the first page)."""
        with self._cond:
            self._new_run(offset)
        self._pump()

    def get(self, offset: int) -> Fetched:
        """Return the page at ``offset``, waiting for it; a page not planned starts a new run."""
        with self._cond:
            self._active = True
            planned = (
                offset in self._done
                or offset in self._errors
                or (self._run, offset) in self._inflight
                or offset in self._queue
                or offset == self._first_pending
            )
            if not planned:
                self._new_run(offset)
        self._pump()
        with self._cond:
            while offset not in self._done and offset not in self._errors:
                self._cond.wait(timeout=1.0)
                if not self._pool.alive() and offset not in self._done:
                    msg = f"{self.name}: the worker threads fetching pages have stopped"
                    raise FlexUserError(msg)
            if offset in self._errors:
                raise self._errors.pop(offset)
            segment, pos, length, meta = self._done.pop(offset)
            self._drop_below(offset)
        body = os.pread(segment.fd, length, pos)
        with self._cond:
            segment.live -= 1
            self._release(segment)
        self._pump()
        return Fetched(offset, body, meta.date, meta.extra)

    def set_stride(self, stride: int) -> None:
        """Change the distance between planned offsets (overlap by one, or none)."""
        with self._cond:
            self.stride = max(1, stride)

    def stop_speculating(self) -> None:
        """Fetch only the offsets asked for from now on (a pass that stops early)."""
        with self._cond:
            self.speculate = False
            self._queue.clear()

    def close(self) -> None:
        """Stop fetching; delete the spool once nothing is in flight."""
        with self._cond:
            self._closed = True
            self._run += 1
            self._queue.clear()
            self._done.clear()
            self._errors.clear()
            for segment in self._segments:
                segment.live = 0
            for segment in list(self._segments):
                self._release(segment, force=True)

    # --- internals ----------------------------------------------------------------------------
    def _new_run(self, offset: int) -> None:
        if self._first_pending is not None or self._done or self._inflight or self._queue:
            self.wasted += len(self._done)
        self._run += 1
        self._queue = [offset]
        self._first_pending = offset if self.speculate else None
        for _, pos_seg in list(self._done.items()):
            pos_seg[0].live -= 1
        self._done.clear()
        self._errors.clear()
        for segment in list(self._segments):
            self._release(segment)

    def _drop_below(self, offset: int) -> None:
        stale = [o for o in self._done if o < offset]
        for o in stale:
            self._done.pop(o)[0].live -= 1

    def _pump(self) -> None:
        tasks: list[tuple[int, int]] = []
        with self._cond:
            if self._closed:
                return
            # Ahead of the consumer, or, before it starts reading this partition, a few pages.
            limit = self.ahead if self._active else self.depth
            while self._queue and len(self._inflight) < self.depth:
                if len(self._done) + len(self._inflight) >= limit:
                    break
                offset = self._queue.pop(0)
                self._inflight.add((self._run, offset))
                tasks.append((self._run, offset))
        for run, offset in tasks:
            self._pool.submit(functools.partial(self._task, run, offset))

    def _is_stale(self, run: int) -> bool:
        return run != self._run or self._closed

    def _task(self, run: int, offset: int) -> None:
        """Fetch one page in a worker thread and spool it (a stale run's answer is dropped)."""
        with self._cond:
            if self._is_stale(run):
                self._inflight.discard((run, offset))
                self._cond.notify_all()
                return
        try:
            self._store(run, offset, self._fetch(offset))
        except BaseException as exc:
            if isinstance(exc, OSError):  # the spool: no file could be created or written
                msg = (
                    f"{self.name}: cannot keep a fetched page in a temporary file ({exc}); "
                    "raise the open-files limit (ulimit -n) or free space in the temp directory"
                )
                exc = FlexUserError(msg)
            with self._cond:
                self._inflight.discard((run, offset))
                if run == self._run:
                    self._errors[offset] = exc
                self._cond.notify_all()
        self._pump()

    def _store(self, run: int, offset: int, fetched: Fetched) -> None:
        """Write a fetched page to the spool and make it available to the consumer."""
        with self._cond:
            self.requests += 1
            if self._is_stale(run):
                self._inflight.discard((run, offset))
                self.wasted += 1
                self._cond.notify_all()
                return
            if offset == self._first_pending:
                self._first_pending = None
                count, total = self._first_total(fetched)
                self._plan_rest(offset, count, total)
            segment = self._segment_for(len(fetched.body))
            pos = segment.size
            segment.size += len(fetched.body)
            segment.live += 1
            segment.writing += 1
        error: FlexUserError | None = None
        try:
            os.pwrite(segment.fd, fetched.body, pos)
        except OSError as exc:
            error = FlexUserError(
                f"{self.name}: cannot write a fetched page to a temporary file ({exc}); "
                "free space in the temp directory"
            )
        with self._cond:
            # In flight until stored: a consumer asking for it meanwhile must wait, not re-plan.
            self._inflight.discard((run, offset))
            segment.writing -= 1
            if self._is_stale(run):
                segment.live -= 1
                self._release(segment)
            elif error is not None:
                segment.live -= 1
                self._errors[offset] = error
                self._release(segment)
            else:
                meta = Fetched(offset, b"", fetched.date, fetched.extra)  # the body is spooled
                self._done[offset] = (segment, pos, len(fetched.body), meta)
            self._cond.notify_all()

    def _plan_rest(self, offset: int, count: int, total: int | None) -> None:
        """After a run's first page: queue every offset up to ``total`` (overlap by one)."""
        if total is None or count < self.page_size:
            return
        rest: list[int] = []
        previous = offset
        while previous + self.page_size < total:
            previous += self.stride
            rest.append(previous)
        self._queue.extend(rest)

    def _segment_for(self, size: int) -> _Segment:
        current = self._segments[-1] if self._segments else None
        if current is None or (current.size + size > SEGMENT_BYTES and current.size > 0):
            fd, path = tempfile.mkstemp(prefix="tap-hpe-flex-")
            os.unlink(path)  # deleted on close; the name never lingers
            current = _Segment(fd)
            self._segments.append(current)
        return current

    def _release(self, segment: _Segment, *, force: bool = False) -> None:
        last = self._segments and self._segments[-1] is segment
        if segment.live > 0 or segment.writing > 0 or (last and not force and not self._closed):
            return
        if segment in self._segments:
            self._segments.remove(segment)
            os.close(segment.fd)
