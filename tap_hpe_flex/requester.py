"""Sending one Flex API request and judging its answer: retries, a 401's new token, clear errors.

Why one place: every request a stream makes (a page, a probe, a snapshot check, a single device,
``--test``) is retried the same way within ``max_retry_seconds``, renews only its own workspace's
token on a 401, and fails with one line naming the stream, the request, the status and the API's
``debugId``. Callers get a :class:`Answer`: the status, the decoded body and the server's ``Date``.
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from singer_sdk.exceptions import RetriableAPIError

from tap_hpe_flex.errors import (
    FlexAPIError,
    FlexAuthError,
    decode_error_body,
    describe_error,
)
from tap_hpe_flex.incremental import Strategy, is_strategy_rejection, rejection_reason
from tap_hpe_flex.retry import call_with_retries
from tap_hpe_flex.transport import endpoint_key, page_body

if t.TYPE_CHECKING:
    import requests

    from tap_hpe_flex.auth import FlexAuthenticator
    from tap_hpe_flex.ratelimit import LaneLimiter, RateLimiter
    from tap_hpe_flex.retry import RetryPolicy
    from tap_hpe_flex.transport import PacedSession


class Lanes(t.Protocol):
    """Several API clients (issue 15): which client sends a request, with its session and token."""

    def holds(self) -> LaneLimiter:
        """Return a per-request limiter view; its latest attempt's lane takes a 429's hold."""
        ...

    def route(
        self, url: str, holds: LaneLimiter
    ) -> tuple[PacedSession, t.Callable[[str | None], FlexAuthenticator]]:
        """Pick the client of the next attempt (set on ``holds``); its session and tokens."""
        ...


class StrategyRejectedError(Exception):
    """A probe's 400 says the strategy is unsupported; the pass falls back to the next one."""

    def __init__(self, strategy: Strategy, reason: str) -> None:
        super().__init__(reason)
        self.strategy = strategy
        self.reason = reason


class _TokenRejected(Exception):
    """HTTP 401 from the API: renew the workspace's token and re-send once."""


@dataclass(frozen=True)
class _Call:
    """One request as asked for, kept for its retries."""

    url: str
    params: t.Mapping[str, t.Any]
    workspace: str | None
    probe: Strategy | None
    narrowing: Strategy | None
    tolerate: frozenset[int]
    decode: bool


@dataclass(frozen=True)
class Answer:
    """One answered request: status, decoded JSON body (``{}`` for a tolerated error), Date."""

    status: int
    body: dict[str, t.Any]
    date: str | None
    raw: bytes = b""
    #: For a tolerated error: its one-line description (status, message, debugId).
    detail: str = ""


class Requester:
    """Sends requests for one stream (thread-safe: pages of several partitions share it)."""

    def __init__(
        self,
        *,
        stream: str,
        permission: str,
        session: PacedSession,
        auth_for: t.Callable[[str | None], FlexAuthenticator],
        policy: RetryPolicy,
        limiter: RateLimiter,
        timeout: float,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        lanes: Lanes | None = None,
    ) -> None:
        self.stream = stream
        self.permission = permission
        self.session = session
        self.auth_for = auth_for
        self.policy = policy
        self.limiter = limiter
        self.timeout = timeout
        self.log = log
        self.lanes = lanes

    def get(
        self,
        url: str,
        params: t.Mapping[str, t.Any] | None = None,
        *,
        workspace: str | None = None,
        probe: Strategy | None = None,
        narrowing: Strategy | None = None,
        tolerate: frozenset[int] = frozenset(),
        decode: bool = True,
    ) -> Answer:
        """GET ``url`` with retries; raise FlexUserError (or StrategyRejectedError) when refused.

        ``probe`` names the strategy this request tries (a 400 about it then means "unsupported"
        rather than an error); ``narrowing`` is the settled strategy of the pass (a refusal of
        it then says which setting to change); statuses in ``tolerate`` come back as an Answer
        with an empty body. ``decode=False`` keeps the raw body and only checks that it looks
        like JSON (pages read ahead are decoded once, by the consumer).
        """
        call = _Call(url, params or {}, workspace, probe, narrowing, tolerate, decode)
        path = urlsplit(url).path
        holds = None if self.lanes is None else self.lanes.holds()
        return call_with_retries(
            lambda: self._attempt(call, holds),
            what=f"{self.stream}: GET {path}",
            key=endpoint_key(path),
            policy=self.policy,
            limiter=self.limiter if holds is None else holds,
            log=self.log,
        )

    def _attempt(self, call: _Call, holds: LaneLimiter | None) -> Answer:
        session, auth_for = self.session, self.auth_for
        if self.lanes is not None and holds is not None:  # several API clients: pick one
            session, auth_for = self.lanes.route(call.url, holds)
        auth = auth_for(call.workspace)
        # A token before the slot: a shared budget stamps its unit at the slot, and a token
        # request between the two would let the request arrive later than the margin allows.
        auth.current_token()
        try:
            return self._judge(self._send(session, call, auth), call)
        except _TokenRejected:
            self.log.info("%s: the API answered 401; getting a new token", self.stream)
            auth.invalidate()  # this workspace's token only
        try:
            return self._judge(self._send(session, call, auth), call)
        except _TokenRejected as exc:
            msg = (
                f"{self.stream}: the API rejected a freshly issued access token ({exc}); "
                "check that token_url and workspace_id belong to this API host"
            )
            raise FlexAuthError(msg) from None

    def _send(
        self, session: PacedSession, call: _Call, auth: FlexAuthenticator
    ) -> requests.Response:
        return session.get_paced(call.url, call.params, auth, timeout=self.timeout)

    def _judge(self, response: requests.Response, call: _Call) -> Answer:
        status = response.status_code
        date = response.headers.get("Date")
        if status < 400:
            return self._success(response, date, call.decode)
        if status in call.tolerate:
            return Answer(status, {}, date, detail=describe_error(response))
        if status == 401:
            raise _TokenRejected(describe_error(response))
        if status == 429 or status >= 500:
            raise RetriableAPIError(self._message(response), response)
        body = decode_error_body(response)
        strategy = call.probe or call.narrowing
        rejected = strategy is not None and is_strategy_rejection(strategy, status, body)
        if call.probe is not None and rejected:
            raise StrategyRejectedError(call.probe, rejection_reason(body))
        msg = self._message(response)
        if status == 403:
            msg = (
                f"{self.stream}: permission denied: the API client needs the {self.permission} "
                f"permission in this workspace ({describe_error(response)})"
            )
        elif rejected and strategy is not None:
            msg += (
                f" (incremental_strategy={strategy.value} is not supported by this API; "
                "use auto or client)"
            )
        raise FlexAPIError(msg, status=status, body=body)

    def _success(self, response: requests.Response, date: str | None, decode: bool) -> Answer:
        raw = response.content
        if not decode:
            head, tail = raw.lstrip()[:1], raw.rstrip()[-1:]
            if head in {b"{", b"["} and tail in {b"}", b"]"}:
                return Answer(response.status_code, {}, date, raw)
        else:
            try:
                return Answer(response.status_code, page_body(raw), date, raw)
            except ValueError:
                pass
        path = urlsplit(response.url).path
        msg = f"{self.stream}: GET {path}: HTTP {response.status_code} with a non-JSON body"
        raise RetriableAPIError(msg, response)

    def _message(self, response: requests.Response) -> str:
        """Status, API message, issues and debugId; never headers or the raw body."""
        path = urlsplit(response.url).path
        return f"{self.stream}: GET {path}: {describe_error(response)}"
