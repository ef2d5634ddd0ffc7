"""OAuth2 client-credentials tokens for GreenLake, one per tap run, refreshed before expiry.

Why a custom authenticator: the SDK's ``is_token_valid`` has no safety margin (a token could expire
between the check and the request), its error path logs the token endpoint's raw body, and a tap
run must share one token across streams (GreenLake tokens live 15 minutes; ``expires_in`` is read,
never assumed). The token endpoint gets the same retries as the API (5xx, 429, dropped or cut-off
answers, timeouts, non-JSON 200 pages) within ``max_retry_seconds``; its bodies are never quoted
beyond the OAuth error code, and each token is registered with the log redactor when issued.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import typing as t

import requests
from singer_sdk.authenticators import OAuthAuthenticator
from singer_sdk.exceptions import RetriableAPIError

from tap_hpe_flex.errors import (
    FlexAuthError,
    FlexConfigError,
    TokenEndpointUnavailableError,
    TokenRefusedError,
    decode_error_body,
)
from tap_hpe_flex.redact import REDACTOR
from tap_hpe_flex.retry import RetryPolicy, call_with_retries

#: RFC 8693 token exchange (MSP token -> tenant workspace token).
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

#: Refresh this many seconds before expiry at most ...
MAX_REFRESH_MARGIN_S = 60.0
#: ... and at most this share of the token's life (so a 2-second test token stays usable).
REFRESH_MARGIN_SHARE = 0.1


@dataclasses.dataclass(frozen=True)
class ApiClient:
    """One personal API client's credentials: a workspace may have several (issue 15).

    Why several: HPE limits requests per client, so each further client of the same workspace
    adds a budget of its own. The secret stays out of ``repr`` and is registered with the log
    redactor when the tap builds the client's authenticator.
    """

    client_id: str
    client_secret: str = dataclasses.field(repr=False)


def parse_api_clients(value: t.Any, *, main_client_id: str) -> tuple[ApiClient, ...]:
    """Read ``additional_clients`` (a list, or its JSON text from an environment variable).

    Errors name the item by its position, never its secret.
    """
    if value is None or value in ("", []):
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, list):
        msg = 'additional_clients must be a list: [{"client_id": ..., "client_secret": ...}]'
        raise FlexConfigError(msg)
    clients: list[ApiClient] = []
    seen = {main_client_id}
    for number, item in enumerate(value, start=1):
        cid = str(item.get("client_id") or "").strip() if isinstance(item, dict) else ""
        secret = str(item.get("client_secret") or "") if isinstance(item, dict) else ""
        if not cid or not secret:
            msg = f"additional_clients item {number} needs a client_id and a client_secret"
            raise FlexConfigError(msg)
        if cid in seen:
            msg = f"additional_clients item {number} repeats a client_id already configured"
            raise FlexConfigError(msg)
        seen.add(cid)
        REDACTOR.add(secret)
        clients.append(ApiClient(cid, secret))
    return tuple(clients)


class FlexAuthenticator(OAuthAuthenticator):
    """Bearer tokens from the GreenLake token endpoint (form-encoded client credentials)."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 60.0,
        user_agent: str | None = None,
        clock: t.Callable[[], float] = time.monotonic,
        retry_policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(auth_endpoint=token_url, client_id=client_id, client_secret=client_secret)
        #: The token endpoint's session (shared by a run's tenants: one pool of connections,
        #: not one per tenant) and headers; the API's sessions are paced apart.
        self.session = session or requests.Session()
        self.headers = {"Accept": "application/json"} | (
            {"User-Agent": user_agent} if user_agent else {}
        )
        self.logger = logging.getLogger("tap-hpe-flex.auth")
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.RLock()
        self._obtained_at: float | None = None
        self._retry_policy = retry_policy or RetryPolicy()
        REDACTOR.add(client_secret)
        #: Token requests made (successful or not); for logs and tests.
        self.token_requests = 0
        self._refused: TokenRefusedError | None = None

    @property
    def oauth_request_body(self) -> dict:
        """Client-credentials grant in the form body, as HPE's samples send it."""
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def refresh_margin(self) -> float:
        """Seconds before expiry at which the token counts as stale."""
        if not self.expires_in:
            return 0.0
        return min(MAX_REFRESH_MARGIN_S, self.expires_in * REFRESH_MARGIN_SHARE)

    def is_token_valid(self) -> bool:
        """Say whether the token has more than the safety margin left (monotonic clock)."""
        if self.access_token is None or self._obtained_at is None:
            return False
        if not self.expires_in:
            return True
        age = self._clock() - self._obtained_at
        return age < self.expires_in - self.refresh_margin()

    def current_token(self) -> str:
        """Return a token with more than the safety margin left, fetching one if needed."""
        with self._lock:
            if not self.is_token_valid():
                self.update_access_token()
            return str(self.access_token)

    def invalidate(self) -> None:
        """Forget the token (the API said 401), so the next request fetches a new one."""
        with self._lock:
            self.access_token = None
            self._obtained_at = None

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the bearer header, fetching a token first when none is fresh (thread-safe)."""
        with self._lock:
            if not self.is_token_valid():
                self.update_access_token()
            request.headers["Authorization"] = f"Bearer {self.access_token}"
        return request

    def update_access_token(self) -> None:
        """Fetch a token (retrying transient failures); errors are one line, without secrets."""
        with self._lock:
            if self._refused is not None:  # a refusal is final for the run: do not ask again
                raise self._refused
            self.logger.info("Requesting a new access token from %s", self.auth_endpoint)
            started = self._clock()
            try:
                response = call_with_retries(
                    self._post_once,
                    what=f"token endpoint {self.auth_endpoint}",
                    key=None,
                    policy=self._retry_policy,
                    log=self.logger,
                    on_give_up=TokenEndpointUnavailableError,
                    quote_text=False,
                )
            except TokenRefusedError as exc:
                # Pipelined partitions of one tenant ask at once; one refusal answers them all.
                self._refused = exc
                raise
            body = response.json()  # _post_once checked that it is JSON
            token = body.get("access_token") if isinstance(body, dict) else None
            if not token:
                msg = (
                    f"The token endpoint {self.auth_endpoint} answered HTTP 200 without an "
                    "access_token (is token_url right?)"
                )
                raise FlexAuthError(msg)
            expires = body.get("expires_in")
            REDACTOR.add(token)
            self.access_token = str(token)
            self.expires_in = int(expires) if expires else None
            self._obtained_at = started
            self.logger.info(
                "Got an access token valid for %s s (refreshing %.0f s early)",
                self.expires_in if self.expires_in else "unknown",
                self.refresh_margin(),
            )

    def _post_once(self) -> requests.Response:
        """One token request: transient failures raise RetriableAPIError, refusals FlexAuthError."""
        self.token_requests += 1
        response = self.session.post(
            self.auth_endpoint,
            headers=self.headers,
            data=self.oauth_request_payload,
            timeout=self._timeout,
        )
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetriableAPIError(f"HTTP {status} from the token endpoint", response)
        if status != 200:
            raise TokenRefusedError(self._failure_message(response), status=status)
        try:
            response.json()
        except ValueError:
            msg = "HTTP 200 from the token endpoint with a body that is not JSON"
            raise RetriableAPIError(msg, response) from None
        return response

    def _failure_message(self, response: requests.Response) -> str:
        # Only short codes and the debugId are quoted: free text could echo what was sent.
        body = decode_error_body(response) or {}
        code = body.get("error") or body.get("errorCode") or ""
        detail = f"debugId={body['debugId']}" if body.get("debugId") else ""
        status = response.status_code
        if status in {400, 401}:
            lead = "Authentication failed: the token endpoint rejected client_id/client_secret"
        elif status == 403:
            lead = "Authentication failed: the API client may not get tokens for this workspace"
        elif status == 404:
            lead = "Authentication failed: no token endpoint at token_url (check workspace_id)"
        else:
            lead = "Authentication failed: the token endpoint answered with an error"
        extra = REDACTOR.redact(
            "; ".join(" ".join(str(p).split())[:200] for p in (code, detail) if p)
        )
        return f"{lead} (HTTP {status} from {self.auth_endpoint}{': ' + extra if extra else ''})"


class TokenExchangeAuthenticator(FlexAuthenticator):
    """A tenant workspace's token, exchanged from the MSP token (RFC 8693), refreshed likewise.

    Why a subclass: the tenant token has its own life (``expires_in``) and is refreshed before
    expiry exactly like the MSP token, with the same retries; only the form body differs. The MSP
    token sent as ``subject_token`` is itself refreshed first when stale.
    """

    def __init__(
        self,
        *,
        subject: FlexAuthenticator,
        tenant_id: str,
        token_url: str,
        timeout: float = 60.0,
        user_agent: str | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            token_url=token_url,
            client_id=str(subject.client_id),
            client_secret=str(subject.client_secret),
            timeout=timeout,
            user_agent=user_agent,
            retry_policy=retry_policy,
            session=subject.session,
        )
        self.subject = subject
        self.tenant_id = tenant_id

    @property
    def oauth_request_body(self) -> dict:
        """The exchange grant: the MSP token as subject; no client credentials are sent."""
        return {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": self.subject.current_token(),
            "subject_token_type": ACCESS_TOKEN_TYPE,
        }

    def _post_once(self) -> requests.Response:
        try:
            return super()._post_once()
        except TokenRefusedError as exc:
            raise TokenRefusedError(str(exc), status=exc.status, tenant=self.tenant_id) from None

    def _failure_message(self, response: requests.Response) -> str:
        body = decode_error_body(response) or {}
        code = body.get("error") or body.get("errorCode") or ""
        detail = f"debugId={body['debugId']}" if body.get("debugId") else ""
        extra = REDACTOR.redact(
            "; ".join(" ".join(str(p).split())[:200] for p in (code, detail) if p)
        )
        status = response.status_code
        why = {
            401: "the MSP token was not accepted",
            403: "the MSP client may not act in this tenant workspace",
            400: "the exchange request was refused (is the tenant ID right?)",
        }.get(status, "the token endpoint answered with an error")
        return f"token exchange refused: {why} (HTTP {status}{': ' + extra if extra else ''})"


class WorkspaceAuth:
    """The token of each workspace of an MSP run: the MSP's own, or one exchanged per tenant.

    Why per request and not per stream: pages of several tenants are in flight at once, and a 401
    must renew only the token of the workspace it answered (:meth:`invalidate`), never every
    tenant's.
    """

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
