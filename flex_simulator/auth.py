"""Clients and opaque bearer tokens: issue, exchange (RFC 8693), validate, expire.

Tokens are random strings kept in memory, so a token from another simulator (or a restarted one)
is unknown, exactly as a tap would see a revoked token. Tokens and secrets are never logged.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace
from enum import Enum

from .config import ClientSpec, TenantSpec, normalize_workspace_id


@dataclass(frozen=True)
class TokenInfo:
    """What a bearer token grants: whose it is, which workspace, which View permissions."""

    client_id: str
    workspace_id: str
    permissions: tuple[str, ...]
    expires_at: float  # time.monotonic()
    msp: bool = False

    def expired(self, now: float | None = None) -> bool:
        """Expiry is checked against the monotonic clock so wall-clock jumps cannot revive it."""
        return (time.monotonic() if now is None else now) >= self.expires_at


class TokenStatus(Enum):
    """Outcome of validating a bearer token."""

    VALID = "valid"
    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


class ExchangeError(Exception):
    """A token exchange that must be refused; carries the HTTP status and OAuth error code."""

    def __init__(self, status: int, oauth_error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.oauth_error = oauth_error
        self.message = message


class Authority:
    """The simulator's identity provider: registered clients plus the tokens issued to them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, ClientSpec] = {}
        self._tokens: dict[str, TokenInfo] = {}

    def add_client(self, client: ClientSpec) -> None:
        """Register (or replace) a client."""
        with self._lock:
            self._clients[client.client_id] = client

    def clients(self) -> list[ClientSpec]:
        """Every registered client (callers must not print the secrets)."""
        with self._lock:
            return list(self._clients.values())

    def client(self, client_id: str) -> ClientSpec | None:
        """Look a registered client up by ID (None if unknown)."""
        with self._lock:
            return self._clients.get(client_id)

    def authenticate(self, client_id: str, client_secret: str) -> ClientSpec | None:
        """Check credentials in constant time; None for an unknown client or a wrong secret."""
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            hmac.compare_digest(client_secret.encode(), b"x" * 16)  # same work either way
            return None
        if not hmac.compare_digest(client_secret.encode(), client.client_secret.encode()):
            return None
        return client

    def issue(self, client: ClientSpec, ttl: int) -> tuple[str, TokenInfo]:
        """Issue a fresh token for the client's own workspace."""
        info = TokenInfo(
            client_id=client.client_id,
            workspace_id=client.workspace_id,
            permissions=client.permissions,
            expires_at=time.monotonic() + ttl,
            msp=client.msp,
        )
        return self._store(info), info

    def exchange(self, subject_token: str, tenant_id: str, ttl: int) -> tuple[str, TokenInfo]:
        """Trade an MSP client's valid token for one scoped to a tenant workspace it manages."""
        status, info = self.validate(subject_token)
        if status is TokenStatus.EXPIRED:
            raise ExchangeError(401, "invalid_grant", "The subject token has expired.")
        if info is None:
            raise ExchangeError(401, "invalid_grant", "The subject token is not valid.")
        with self._lock:
            client = self._clients.get(info.client_id)
        tenant = _find_tenant(client, tenant_id) if client is not None and client.msp else None
        if tenant is None:
            raise ExchangeError(
                403,
                "invalid_target",
                f"Workspace {tenant_id} is not a tenant of the subject token's MSP workspace.",
            )
        assert client is not None
        if not tenant.exchange_allowed:
            raise ExchangeError(
                403,
                "invalid_target",
                f"The MSP client may not access tenant workspace {tenant.workspace_id}.",
            )
        perms = tenant.permissions if tenant.permissions is not None else client.permissions
        scoped = replace(
            info,
            workspace_id=tenant.workspace_id,
            permissions=perms,
            expires_at=time.monotonic() + ttl,
            msp=False,
        )
        return self._store(scoped), scoped

    def validate(self, token: str | None) -> tuple[TokenStatus, TokenInfo | None]:
        """Classify a bearer token; the info is returned for expired tokens too (for the log)."""
        if not token:
            return TokenStatus.MISSING, None
        with self._lock:
            info = self._tokens.get(token)
        if info is None:
            return TokenStatus.UNKNOWN, None
        if info.expired():
            return TokenStatus.EXPIRED, info
        return TokenStatus.VALID, info

    def expire_all(self) -> None:
        """Make every issued token expired now, to exercise a client's refresh path."""
        now = time.monotonic()
        with self._lock:
            self._tokens = {t: replace(i, expires_at=now) for t, i in self._tokens.items()}

    def _store(self, info: TokenInfo) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            # Drop long-expired tokens so a long-running simulator does not grow without bound,
            # but keep recently expired ones so they still answer "expired", not "unknown".
            if len(self._tokens) > 10_000:
                horizon = time.monotonic() - 3600
                self._tokens = {t: i for t, i in self._tokens.items() if i.expires_at > horizon}
            self._tokens[token] = info
        return token


def _find_tenant(client: ClientSpec, tenant_id: str) -> TenantSpec | None:
    wanted = normalize_workspace_id(tenant_id)
    return next((t for t in client.tenants if t.workspace_id == wanted), None)
