"""Managed service providers: many tenant workspaces in one run.

An MSP's API client gets a token for its own workspace with its client credentials and exchanges
it (RFC 8693) for one token per tenant workspace. Each stream partition is one workspace, so each
tenant keeps its own bookmark: one tenant's failure or a new tenant never resets the others.

Which token a request carries is decided per request, not per stream: the stream tags the request
with a private header naming the workspace (``get_http_request``), and :class:`WorkspaceAuth`
removes the header before anything is sent, remembers the workspace on the prepared request and
adds that workspace's bearer token. That keeps the choice correct when pages of several tenants
are in flight at once (concurrent paging), and on every retry and re-authentication.
"""

from __future__ import annotations

import logging
import re
import threading
import typing as t

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_hpe_flex.auth import (
    FlexAuthenticator,
    TokenExchangeAuthenticator,
    TokenRefusedError,
)
from tap_hpe_flex.errors import FlexAPIError, FlexAuthError, FlexConfigError, describe_error

logger = logging.getLogger("tap-hpe-flex")

#: Private request header: the workspace a request belongs to (removed before sending).
WORKSPACE_HEADER = "X-Tap-Flex-Workspace"
#: Attribute of a prepared request holding its workspace once the header is removed.
_WORKSPACE_ATTR = "_flex_workspace"
#: Tenant list of the Workspace Management API (on the GreenLake global host).
MSP_TENANTS_PATH = "/workspaces/v1/msp-tenants"
#: Every tenant the MSP client can see (``tenant_workspace_ids: ["*"]``).
ALL_TENANTS = "*"
#: Skip scope meaning "every stream" (token exchange refused, or a 401).
WHOLE_TENANT = "*"

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def normalize_workspace_id(value: str, *, setting: str = "tenant_workspace_ids") -> str:
    """Return a workspace ID as 32 lower-case hex digits (the token-exchange URL's form).

    GreenLake lists workspace IDs as hyphenated UUIDs in places; exchange URLs take them without
    hyphens, so IDs are compared, stored in state and sent in that one form.
    """
    text = str(value).strip().replace("-", "").lower()
    if not _HEX32.match(text):
        msg = f"{setting}: {value!r} is not a workspace ID (32 hex digits, hyphens allowed)"
        raise FlexConfigError(msg)
    return text


def request_workspace(request: requests.PreparedRequest) -> str | None:
    """Return the workspace a prepared request was tagged with (None: the client's own)."""
    return t.cast("str | None", getattr(request, _WORKSPACE_ATTR, None))


class WorkspaceAuth(requests.auth.AuthBase):
    """Routes each request to its workspace's authenticator (MSP token or exchanged token)."""

    def __init__(
        self,
        home: FlexAuthenticator,
        home_workspace: str | None,
        exchange: t.Callable[[str], TokenExchangeAuthenticator],
    ) -> None:
        self.home = home
        self.home_workspace = home_workspace
        self._exchange = exchange
        self._lock = threading.Lock()
        self._tenants: dict[str, FlexAuthenticator] = {}

    def for_workspace(self, workspace: str | None) -> FlexAuthenticator:
        """Return the authenticator of ``workspace`` (created on first use; no request is made)."""
        if workspace is None or workspace == self.home_workspace:
            return self.home
        with self._lock:
            auth = self._tenants.get(workspace)
            if auth is None:
                auth = self._tenants[workspace] = self._exchange(workspace)
            return auth

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Take the workspace tag off the request and add that workspace's bearer token."""
        return self.authenticate_request(request)

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the bearer token of the request's workspace (fetched or exchanged if needed)."""
        tag = request.headers.pop(WORKSPACE_HEADER, None)
        if tag:
            setattr(request, _WORKSPACE_ATTR, str(tag))
        return self.for_workspace(request_workspace(request)).authenticate_request(request)

    def invalidate(self, request: requests.PreparedRequest | None = None) -> None:
        """Forget the request's token (all tokens when no request is named) after a 401."""
        if request is not None:
            self.for_workspace(request_workspace(request)).invalidate()
            return
        with self._lock:
            tenants = list(self._tenants.values())
        for auth in [self.home, *tenants]:
            auth.invalidate()

    @property
    def access_token(self) -> str | None:
        """The MSP token (for callers that inspect the run's token)."""
        return self.home.access_token

    @property
    def token_requests(self) -> int:
        """Token requests of the run: client credentials plus every exchange."""
        with self._lock:
            tenants = list(self._tenants.values())
        return self.home.token_requests + sum(a.token_requests for a in tenants)

    def exchanges(self, workspace: str) -> int:
        """Token exchanges made for ``workspace`` so far (0 when none was needed)."""
        with self._lock:
            auth = self._tenants.get(workspace)
        return auth.token_requests if auth is not None else 0


def tenant_failure(exc: BaseException) -> str | None:
    """Say why a tenant must be skipped, or None when ``exc`` must end the run.

    Skipped: a refused token exchange, and 401/403 from the API with a tenant token. Not
    skipped: the MSP's own credentials refused, the token endpoint down, any other API error.
    """
    if isinstance(exc, TokenRefusedError):
        return str(exc) if exc.tenant is not None else None
    if isinstance(exc, FlexAPIError):
        return str(exc) if exc.status in {401, 403} else None
    if type(exc) is FlexAuthError:  # the API rejected a freshly issued token (a 401 twice)
        return str(exc)
    return None


class TenantSkips:
    """Tenants (or a tenant's permission scope) skipped in this run, each warned about once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skips: dict[tuple[str, str], str] = {}
        self.names: dict[str, str] = {}

    def label(self, workspace: str) -> str:
        """``<id> (<name>)`` when the tenant list named it, else the ID."""
        name = self.names.get(workspace)
        return f"{workspace} ({name})" if name else workspace

    def skip(self, workspace: str, scope: str, reason: str) -> None:
        """Record a skip; the first one per (tenant, scope) logs one WARNING line."""
        with self._lock:
            if (workspace, scope) in self._skips:
                return
            self._skips[workspace, scope] = reason
        what = "all streams" if scope == WHOLE_TENANT else f"streams needing {scope}"
        logger.warning(
            "Tenant %s skipped for %s: %s", self.label(workspace), what, " ".join(reason.split())
        )

    def is_skipped(self, workspace: str, scope: str) -> bool:
        """Whether ``workspace`` is skipped as a whole or for ``scope``."""
        with self._lock:
            return (workspace, WHOLE_TENANT) in self._skips or (workspace, scope) in self._skips

    def summary(self) -> str | None:
        """One line naming every skipped tenant and why (None when none was skipped)."""
        with self._lock:
            items = sorted(self._skips.items())
        if not items:
            return None
        parts = [
            f"{self.label(ws)} [{'all streams' if scope == WHOLE_TENANT else scope}]: "
            + " ".join(reason.split())[:200]
            for (ws, scope), reason in items
        ]
        tenants = len({ws for (ws, _), _ in items})
        return f"{tenants} tenant(s) skipped in this run: " + "; ".join(parts)

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._skips)


def list_tenants(
    session: requests.Session,
    base_url: str,
    auth: FlexAuthenticator,
    *,
    page_size: int,
    timeout: float,
    send: t.Callable[[t.Callable[[], requests.Response], str], requests.Response],
) -> list[dict[str, t.Any]]:
    """Page through ``GET /workspaces/v1/msp-tenants`` with the MSP token; items in list order.

    ``send(attempt, what)`` wraps one request in the run's retry policy. A 401/403 ends the run:
    without the list there is nothing to sync.
    """
    url = base_url.rstrip("/") + MSP_TENANTS_PATH
    items: list[dict[str, t.Any]] = []
    seen: set[str] = set()
    offset = 0
    while True:
        params = {"limit": page_size, "offset": offset}

        def attempt(params: dict[str, int] = params) -> requests.Response:
            prepared = session.prepare_request(
                requests.Request("GET", url, params=params, headers={"Accept": "application/json"})
            )
            auth.authenticate_request(prepared)
            response = session.send(prepared, timeout=timeout)
            if response.status_code == 429 or response.status_code >= 500:
                raise RetriableAPIError(f"GET {MSP_TENANTS_PATH}", response)
            return response

        response = send(attempt, f"GET {MSP_TENANTS_PATH}")
        if response.status_code != 200:
            hint = (
                " (tenant_workspace_ids ['*'] needs an MSP workspace's API client with "
                "'Platform Customer Account: View'; or list the tenant IDs instead)"
                if response.status_code in {401, 403}
                else ""
            )
            msg = f"Listing MSP tenants failed: GET {url}: {describe_error(response)}{hint}"
            raise FlexAPIError(msg, status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            msg = f"Listing MSP tenants failed: GET {url} answered with a body that is not JSON"
            raise FlexAPIError(msg, status=200) from None
        page = [i for i in (body.get("items") or []) if isinstance(i, dict)]
        for item in page:
            key = str(item.get("id"))
            if key not in seen:
                seen.add(key)
                items.append(item)
        total = body.get("total") if isinstance(body.get("total"), int) else None
        offset += len(page)
        done = offset >= total if total is not None else len(page) < page_size
        if not page or done:
            return items
