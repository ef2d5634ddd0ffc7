"""Retrying one HTTP request until it succeeds or a time budget runs out.

Why not the SDK's ``backoff`` decorator: it gives up after 5 tries (~30 s), shorter than one
60-second rate-limit window; it adds jitter on top of waits the server asked for; it reads neither
``Retry-After`` nor ``X-RateLimit-Reset``; and its ERROR log line quotes the call's arguments. Here
the budget is time (``max_retry_seconds``), a wait the server names is honoured exactly, every wait
is logged at INFO with its length and reason, and a 429 holds the endpoint in the shared limiter so
requests in flight elsewhere wait too.

The loop keeps all of its state in local variables and the policy is immutable, so several threads
may retry requests at the same time (the planned concurrent page fetches).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
import typing as t
from dataclasses import dataclass, field

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_hpe_flex.errors import FlexAPIError, decode_error_body, describe_error

if t.TYPE_CHECKING:
    from tap_hpe_flex.ratelimit import RateLimiter

logger = logging.getLogger("tap-hpe-flex")

#: Failures worth another attempt: the server or the network may do better next time.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

#: Epoch seconds look like this; smaller reset values are "seconds from now".
_EPOCH_THRESHOLD = 1_000_000_000

#: A server hint shorter than this on a repeated failure is taken as "no hint" (see below).
MIN_REPEATED_HINT_S = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying and how to wait when the server does not say.

    ``clock``, ``sleep`` and ``rng`` are injectable so unit tests can run without waiting.
    """

    max_retry_seconds: float = 600.0
    initial_wait_s: float = 2.0
    max_wait_s: float = 60.0
    clock: t.Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: t.Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: t.Callable[[], float] = field(default=random.random, compare=False)
    #: Told of every retry (rate-limit key, HTTP status or None) for progress counts; thread-safe.
    on_retry: t.Callable[[str | None, int | None], None] | None = field(default=None, compare=False)

    def backoff(self, failures: int) -> float:
        """Exponential wait for the n-th failure without a server hint, with "equal jitter".

        Half of the exponential step is fixed and half random, so clients that failed together
        spread out without any wait collapsing to zero.
        """
        step = min(self.max_wait_s, self.initial_wait_s * 2 ** max(0, failures - 1))
        return step / 2 + self.rng() * step / 2


def _seconds(value: str | None) -> float | None:
    """Parse delta seconds, epoch seconds or an HTTP date into seconds from now."""
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - time.time())
    if number >= _EPOCH_THRESHOLD:
        return max(0.0, number - time.time())
    return max(0.0, number)


def server_wait(response: requests.Response | None) -> tuple[float, str] | None:
    """Return the wait the server asks for and where it said so (None: it says nothing).

    Reads ``Retry-After``, ``X-RateLimit-Reset`` and ``RateLimit-Reset`` (header names are
    case-insensitive in ``requests``) and ``errorDetails[].retryAfterSeconds``; the longest wins.
    No jitter is added to these: the server already said when it can answer.
    """
    if response is None:
        return None
    hints: list[tuple[float, str]] = []
    for name in ("Retry-After", "X-RateLimit-Reset", "RateLimit-Reset"):
        seconds = _seconds(response.headers.get(name))
        if seconds is not None:
            hints.append((seconds, name))
    body = decode_error_body(response) if response.status_code >= 400 else None
    for detail in (body or {}).get("errorDetails") or []:
        value = detail.get("retryAfterSeconds") if isinstance(detail, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            hints.append((float(value), "retryAfterSeconds"))
    return max(hints, key=lambda hint: hint[0]) if hints else None  # ties: the first source


def failure_summary(
    exc: BaseException, *, quote_text: bool = True
) -> tuple[str, requests.Response | None]:
    """Describe a failed attempt on one line (status, API message, debugId; never a body)."""
    response = getattr(exc, "response", None)
    if isinstance(exc, RetriableAPIError) and isinstance(response, requests.Response):
        return describe_error(response, quote_text=quote_text), response
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer in time ({type(exc).__name__})", None
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the answer was cut off before its end (truncated body)", None
    return f"connection failed ({type(exc).__name__})", None


_Result = t.TypeVar("_Result")


def call_with_retries(
    attempt: t.Callable[[], _Result],
    *,
    what: str,
    key: str | None,
    policy: RetryPolicy,
    limiter: RateLimiter | None = None,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    on_give_up: type[Exception] = FlexAPIError,
    quote_text: bool = True,
) -> _Result:
    """Call ``attempt`` until it returns, retrying transient failures within the time budget.

    ``what`` names the request in logs (``orders: GET /flex/v1beta1/orders``); ``key`` is its
    rate-limit key, held in ``limiter`` after a 429. Non-transient exceptions propagate at once
    (400/403/422 fail fast). When the budget is spent, ``on_give_up`` is raised with one line
    naming the request, the number of attempts, the last status and its debugId.
    ``quote_text=False`` keeps the answers' free text out of logs and errors (token endpoint).
    """
    log = log or logger
    started = policy.clock()
    failures = 0
    while True:
        try:
            return attempt()
        except TRANSIENT_ERRORS as exc:
            failures += 1
            summary, response = failure_summary(exc, quote_text=quote_text)
            hint = server_wait(response)
            if hint is not None and (hint[0] >= MIN_REPEATED_HINT_S or failures == 1):
                wait, source = hint
                why = f"as the server asked: {source}"
            else:
                # No hint, or "retry now" again after a retry that failed: a server saying 0
                # forever would otherwise be hammered in a tight loop until the budget ends.
                wait = policy.backoff(failures - (hint is not None))
                why = "exponential backoff"
                if hint is not None:
                    why += f"; the server asked for {hint[0]:.1f} s again"
            elapsed = policy.clock() - started
            if elapsed + wait > policy.max_retry_seconds:
                msg = (
                    f"{what}: giving up after {failures} attempt{'s' if failures > 1 else ''} in "
                    f"{elapsed:.0f} s (max_retry_seconds={policy.max_retry_seconds:g}); "
                    f"last error: {summary}"
                )
                if hint is not None and wait > policy.max_retry_seconds:
                    msg += f"; the server asked to wait {wait:.0f} s"
                raise on_give_up(msg) from None
            if response is not None and response.status_code == 429 and limiter and key:
                limiter.block(key, wait)
                limit = _int_header(response, "X-RateLimit-Limit", "RateLimit-Limit")
                if limit:
                    limiter.lower_limit(key, limit)
            if policy.on_retry is not None:
                policy.on_retry(key, None if response is None else response.status_code)
            log.info(
                "%s: %s; waiting %.1f s (%s) before attempt %d",
                what,
                summary,
                wait,
                why,
                failures + 1,
            )
            policy.sleep(wait)


def _int_header(response: requests.Response, *names: str) -> int | None:
    for name in names:
        value = response.headers.get(name, "").split(",")[0].split(";")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None
