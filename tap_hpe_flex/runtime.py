"""The composition root of a run: what the tap's streams share, built once from the settings.

Why shared: per-stream copies would mean one token request per stream and rate limits that each
stream counts on its own. Nothing here parses settings (``settings.py``) or sends a request when
built; the authenticators, the tenant list and the worker pools are built on first use.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import typing as t
from functools import cached_property

import requests
import requests.adapters
from singer_sdk.exceptions import RetriableAPIError

from tap_hpe_flex.auth import (
    ApiClient,
    FlexAuthenticator,
    TokenExchangeAuthenticator,
    WorkspaceAuth,
)
from tap_hpe_flex.incremental import StrategyRegistry
from tap_hpe_flex.prefetch import WorkerPool
from tap_hpe_flex.progress import ProgressTracker
from tap_hpe_flex.ratelimit import ClientLanes, EndpointRateLimiter, LaneLimiter, RateLimiter
from tap_hpe_flex.redact import REDACTOR
from tap_hpe_flex.requester import Requester
from tap_hpe_flex.retry import RetryPolicy, call_with_retries
from tap_hpe_flex.shared_budget import client_hash
from tap_hpe_flex.tenants import MSP_TENANTS_PATH, TenantDirectory, TenantSkips, list_tenants
from tap_hpe_flex.transport import DeprecationNotices, PacedSession, endpoint_key

logger = logging.getLogger("tap-hpe-flex")

if t.TYPE_CHECKING:
    from tap_hpe_flex.settings import Settings


class FlexRuntime:
    """Limiter, retry policy, strategies, tokens, tenants, progress and pools of one run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        REDACTOR.add(settings.client_secret)
        self.strategies = StrategyRegistry(settings.incremental_strategy)
        self.limiter = build_limiter(settings)
        #: Several API clients (``additional_clients``): how requests are spread over them.
        self.lanes = (
            ClientLanes(self.limiter, [client_hash(c.client_id) for c in self.clients])
            if settings.additional_clients
            else None
        )
        self.progress = ProgressTracker(settings.progress_interval_s)
        self.retry_policy = RetryPolicy(
            max_retry_seconds=settings.max_retry_s,
            initial_wait_s=settings.retry_initial_wait_s,
            max_wait_s=settings.retry_max_wait_s,
            on_retry=self.progress.note_retry,
        )
        self.notices = DeprecationNotices()
        #: Tenants skipped in this run (token exchange refused, 401/403 with a tenant token).
        self.skips = TenantSkips()
        self.tenants = TenantDirectory(
            settings.tenant_workspace_ids,
            self.skips,
            self._list_all,
            shard=(settings.shard, settings.shard_count),
        )
        #: Requests in flight per endpoint (1: pages are read one by one, no prefetching).
        self.max_concurrent_requests = settings.max_concurrent_requests
        #: When the run's first partition began (bookmarks are capped at this time minus a margin).
        self.started_at: dt.datetime | None = None
        self._run_start: list[t.Callable[[], None]] = []
        self._armed = False
        self._lock = threading.Lock()
        self._pools: dict[str, WorkerPool] = {}
        self._probe_locks: dict[str, threading.Lock] = {}

    # --- the run --------------------------------------------------------------------------------
    def at_run_start(self, action: t.Callable[[], None]) -> None:
        """Do ``action`` when a whole-run sync's first partition begins (prefetching starts)."""
        self._run_start.append(action)

    def begin_run(self) -> None:
        """Arm the ``at_run_start`` actions: a whole-run sync begins."""
        self._armed = True

    def begin_partition(self) -> None:
        """Mark the run as started the first time a partition begins (main thread)."""
        if self.started_at is not None:
            return
        self.started_at = dt.datetime.now(tz=dt.timezone.utc)
        actions, self._run_start = (self._run_start if self._armed else []), []
        for action in actions:
            action()

    def worker_pool(self, endpoint: str) -> WorkerPool:
        """Return the endpoint's worker threads (one bounded pool per endpoint)."""
        with self._lock:
            pool = self._pools.get(endpoint)
            if pool is None:
                pool = self._pools[endpoint] = WorkerPool(endpoint, self.max_concurrent_requests)
            return pool

    def probe_lock(self, endpoint: str) -> threading.Lock:
        """Held while a partition probes ``endpoint``'s strategy (one probe at a time)."""
        with self._lock:
            return self._probe_locks.setdefault(endpoint, threading.Lock())

    def close(self) -> None:
        """Let the worker threads end (they are daemons: an exit never waits for them)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        close_budget = getattr(self.limiter, "close", None)
        if close_budget is not None:  # a shared budget's store connections
            close_budget()

    # --- HTTP -----------------------------------------------------------------------------------
    def session(self, limiter: RateLimiter | None = None) -> PacedSession:
        """Return a session paced by the run's limiter (or a lane's view), counting sends."""
        return PacedSession(
            limiter or self.limiter,
            notices=self.notices,
            on_sent=self.progress.note_sent,
            user_agent=self.settings.user_agent,
            pool_size=self.max_concurrent_requests + 2,
        )

    def requester(
        self, stream: str, permission: str, log: logging.Logger | logging.LoggerAdapter[t.Any]
    ) -> Requester:
        """Return the request sender of one stream (own connections, the run's limiter)."""
        return Requester(
            stream=stream,
            permission=permission,
            session=self.session(),
            auth_for=self.auth_for,
            policy=self.retry_policy,
            limiter=self.limiter,
            timeout=self.settings.request_timeout_s,
            log=log,
            lanes=None if self.lanes is None else _ClientRoutes(self),
        )

    def per_window(self, endpoint: str) -> int:
        """Return the requests ``endpoint`` may send per rate window (every API client's)."""
        if self.lanes is not None:
            return self.lanes.per_window(endpoint)
        return self.limiter.limit_for(endpoint)

    # --- tokens ---------------------------------------------------------------------------------
    @cached_property
    def clients(self) -> tuple[ApiClient, ...]:
        """Every API client of the run: the main one first, then ``additional_clients``."""
        main = ApiClient(self.settings.client_id, self.settings.client_secret)
        return (main, *self.settings.additional_clients)

    @cached_property
    def home_authenticator(self) -> FlexAuthenticator:
        """The client-credentials token of the configured workspace (the MSP's, in MSP mode)."""
        return self._client_authenticator(self.clients[0])

    def _client_authenticator(self, client: ApiClient) -> FlexAuthenticator:
        settings = self.settings
        return FlexAuthenticator(
            token_url=settings.token_url(),
            client_id=client.client_id,
            client_secret=client.client_secret,
            timeout=settings.request_timeout_s,
            user_agent=settings.user_agent,
            retry_policy=self.retry_policy,
            session=self._token_session(),
        )

    def _token_session(self) -> requests.Session:
        """One session for every token request of the run (its pool fits every worker)."""
        session = requests.Session()
        size = 3 * self.max_concurrent_requests + 2
        for prefix in ("https://", "http://"):
            session.mount(prefix, requests.adapters.HTTPAdapter(pool_maxsize=max(10, size)))
        return session

    @cached_property
    def authenticator(self) -> FlexAuthenticator | WorkspaceAuth:
        """One authenticator for the whole run: one token, or one per workspace (MSP)."""
        return self._workspace_auth(self.home_authenticator)

    @cached_property
    def lane_authenticators(self) -> list[FlexAuthenticator | WorkspaceAuth]:
        """One authenticator per API client (lane 0: :attr:`authenticator`); no request yet."""
        extra = [self._client_authenticator(c) for c in self.clients[1:]]
        return [self.authenticator, *(self._workspace_auth(a) for a in extra)]

    def _workspace_auth(self, home: FlexAuthenticator) -> FlexAuthenticator | WorkspaceAuth:
        settings = self.settings
        if not settings.msp:
            return home
        settings.exchange_url("")  # fails clearly when token_url has no {workspace_id}

        def exchange(workspace: str) -> TokenExchangeAuthenticator:
            return TokenExchangeAuthenticator(
                subject=home,
                tenant_id=workspace,
                token_url=settings.exchange_url(workspace),
                timeout=settings.request_timeout_s,
                user_agent=settings.user_agent,
                retry_policy=self.retry_policy,
            )

        return WorkspaceAuth(home, settings.home_workspace, exchange)

    def auth_for(self, workspace: str | None, lane: int = 0) -> FlexAuthenticator:
        """Return the authenticator of ``workspace`` (None: the configured one) on ``lane``."""
        auth = self.authenticator if lane == 0 else self.lane_authenticators[lane]
        return auth.for_workspace(workspace) if isinstance(auth, WorkspaceAuth) else auth

    # --- tenants --------------------------------------------------------------------------------
    def workspaces(self) -> list[str]:
        """Return the tenant workspaces this run syncs (MSP mode), resolved once."""
        return self.tenants.workspaces()

    def _list_all(self) -> list[dict[str, t.Any]]:
        url = self.settings.workspaces_api_url + MSP_TENANTS_PATH
        key = endpoint_key(MSP_TENANTS_PATH)
        session = self.session()

        def attempt(params: dict[str, int]) -> requests.Response:
            response = session.get_paced(
                url, params, self.home_authenticator, timeout=self.settings.request_timeout_s
            )
            if response.status_code == 429 or response.status_code >= 500:
                raise RetriableAPIError(f"GET {MSP_TENANTS_PATH}", response)
            return response

        def get(params: dict[str, int]) -> requests.Response:
            return call_with_retries(
                lambda: attempt(params),
                what=f"GET {MSP_TENANTS_PATH}",
                key=key,
                policy=self.retry_policy,
                limiter=self.limiter,
            )

        try:
            return list_tenants(get, url, page_size=self.settings.tenant_list_page_size)
        finally:
            session.close()


def build_limiter(settings: Settings) -> RateLimiter:
    """Build the run's limiter: in-process, or over a budget shared with other processes (issue 15).

    The shared budget's module is imported only when ``rate_budget_url`` is set, so a run without
    it needs none of its optional packages.
    """
    if not settings.rate_budget_url:
        return EndpointRateLimiter(settings.requests_per_minute, settings.rate_limit_window_s)
    from tap_hpe_flex.shared_budget import SharedRateBudget  # noqa: PLC0415 - optional extra

    budget = SharedRateBudget(
        settings.rate_budget_url,
        settings.client_id,
        settings.requests_per_minute,
        settings.rate_limit_window_s,
        margin_s=settings.rate_budget_margin_s,
        timeout_s=min(5.0, settings.request_timeout_s),
    )
    if not budget.fallen_back:
        logger.info(
            "Shared rate budget at %s: %d requests per %g s (+%g s margin) per endpoint and "
            "API client, shared by every process using it",
            budget.url,
            settings.requests_per_minute,
            settings.rate_limit_window_s,
            budget.margin_s,
        )
    return budget


class _ClientRoutes:
    """Which API client sends a stream's next request: that client's session, limiter, tokens.

    One session per client per stream (a lane's session reserves under that client's key).
    """

    def __init__(self, runtime: FlexRuntime) -> None:
        lanes = runtime.lanes
        assert lanes is not None
        self._lanes = lanes
        self._runtime = runtime
        _ = runtime.lane_authenticators  # built here, once, before worker threads ask for them
        self._sessions = [runtime.session(lanes.view(i)) for i in range(len(lanes.labels))]

    def holds(self) -> LaneLimiter:
        """Return a view whose lane follows the request's latest attempt (for its 429 hold)."""
        return self._lanes.view(0)

    def route(
        self, url: str, holds: LaneLimiter
    ) -> tuple[PacedSession, t.Callable[[str | None], FlexAuthenticator]]:
        """Pick the client free soonest for ``url``'s endpoint; its session and tokens."""
        lane = holds.lane = self._lanes.pick(endpoint_key(url))
        runtime = self._runtime
        return self._sessions[lane], lambda workspace: runtime.auth_for(workspace, lane)
