"""Answer objects and the pieces every endpoint family shares: faults, 429s, paging parameters.

Kept apart from ``routes.py`` so the token, Flex, workspace and admin handlers (separate modules)
build their answers the same way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from . import errors
from .auth import TokenInfo, TokenStatus
from .faults import parse_fault

if TYPE_CHECKING:
    from .auth import Authority
    from .churn import Churn
    from .config import SimulatorConfig
    from .faults import FaultInjector
    from .ratelimit import RateLimiter
    from .requestlog import RequestLog
    from .scheduled import MutationScheduler, ScriptedMutation
    from .store import FlexStore
    from .ties import TieShuffler

_HTML_FAULTS = {
    "503-html": (503, "Service Temporarily Unavailable"),
    "502-html": (502, "Bad Gateway"),
}


@dataclass
class Response:
    """A complete answer; ``server._Handler`` writes it (or truncates it)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class RequestView(Protocol):
    """What routing needs from the HTTP handler."""

    command: str
    headers: Any

    def bearer_token(self) -> str | None:
        """Return the bearer token of the request, if any."""

    def is_loopback(self) -> bool:
        """Tell whether the client is on this machine."""


class SimulatorView(Protocol):
    """What the handlers need of ``server.FlexSimulator``.

    A Protocol rather than the class itself, so the handler modules never import ``server.py``
    (which imports them): no import cycle, not even a type-only one.
    """

    config: SimulatorConfig
    access_log: TextIO | None
    store: FlexStore
    authority: Authority
    limiter: RateLimiter
    faults: FaultInjector
    log: RequestLog
    scheduler: MutationScheduler
    ties: TieShuffler
    churn: Churn

    def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the simulator stops."""

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Return the logged requests, oldest first."""
        ...

    def mutate(self, ops: list[dict[str, Any]], workspace_id: str | None = None) -> list[dict]:
        """Apply store mutations now."""
        ...

    def script_mutations(
        self,
        endpoint: str,
        after_requests: int,
        ops: list[dict[str, Any]],
        workspace_id: str | None = None,
    ) -> ScriptedMutation:
        """Apply ``ops`` after the N-th 200 answer of ``endpoint``."""
        ...

    def script_faults(self, endpoint: str, faults: list[str]) -> None:
        """Queue faults for the next requests of ``endpoint``."""

    def update_config(self, **changes: Any) -> None:
        """Change runtime settings."""


class BadParam(Exception):
    """A query parameter the endpoint refuses; becomes a 400 whose issue names it."""

    def __init__(self, subject: str, description: str) -> None:
        super().__init__(description)
        self.subject = subject
        self.description = description


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    """Build a compact JSON answer."""
    return Response(status, errors.dumps(body), headers=headers or [])


def method_not_allowed(method: str, allow: str) -> Response:
    """405 with the ``Allow`` header RFC 9110 requires."""
    return json_response(405, errors.method_not_allowed(method, allow), [("Allow", allow)])


def fault_answer(
    sim: SimulatorView, fault: str | None, cfg: SimulatorConfig
) -> tuple[bool, Response | None]:
    """Return (True, answer) when a fault replaces the answer (None: drop); else (False, None)."""
    if fault is None or fault == "truncate":
        return False, None
    kind, arg = parse_fault(fault)
    if kind == "500":
        retry = cfg.server_error_retry_after_s if arg is None else int(arg)
        return True, json_response(500, errors.server_error(retry))
    if kind in _HTML_FAULTS:
        status, reason = _HTML_FAULTS[kind]
        return True, Response(status, errors.html_page(status, reason), "text/html")
    if kind == "drop":
        return True, None
    if kind == "429":
        reset = max(1, math.ceil(cfg.rate_window_s))
        return True, too_many(cfg, cfg.rate_limit, 0, reset)
    if kind == "timeout":
        sim.sleep(cfg.timeout_fault_s if arg is None else arg)
    return False, None


def token_refusal(status: TokenStatus, info: TokenInfo | None) -> Response | None:
    """401 for an expired, missing or unknown bearer token, as every API endpoint answers it.

    None when the token is valid and the endpoint goes on to its own permission checks.
    """
    if status is TokenStatus.EXPIRED:
        return json_response(401, errors.expired_token())
    if status is not TokenStatus.VALID or info is None:
        reason = (
            "Token is missing" if status is TokenStatus.MISSING else "Token provided is invalid"
        )
        return json_response(401, errors.unauthorized(reason))
    return None


def throttle(sim: SimulatorView, info: TokenInfo, endpoint: str) -> Response | None:
    """429 when the client's rate-limit window for the endpoint is full, else the latency.

    Counted per (client, workspace, endpoint), or per (workspace, endpoint) when
    ``rate_limit_scope`` is "workspace"; an allowed call then waits the configured latency.
    """
    cfg = sim.config
    client = info.client_id if cfg.rate_limit_scope == "client" else "*"
    decision = sim.limiter.check(
        (client, info.workspace_id, endpoint), cfg.rate_limit, cfg.rate_window_s
    )
    if not decision.allowed:
        return too_many(cfg, decision.limit, decision.remaining, decision.reset)
    sim.sleep(cfg.latency_ms / 1000)
    return None


def too_many(cfg: SimulatorConfig, limit: int, remaining: int, reset: int) -> Response:
    """429 with the three ``X-RateLimit-*`` headers the spec declares (``Retry-After`` opt-in)."""
    headers = [
        ("X-RateLimit-Limit", str(limit)),
        ("X-RateLimit-Remaining", str(remaining)),
        ("X-RateLimit-Reset", str(reset)),
    ]
    if cfg.retry_after:
        headers.append(("Retry-After", str(reset)))
    return json_response(429, errors.too_many_requests(), headers)


def int_param(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    """Parse a bounded integer query parameter; a bad one raises BadParam naming it."""
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,18}", raw.strip()):
        raise BadParam(name, f"{name} must be an integer, got {raw!r}.")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadParam(name, f"{name} must be {bound}, got {value}.")
    return value
