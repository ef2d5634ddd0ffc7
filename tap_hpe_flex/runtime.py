"""What one tap run shares across its streams: token, limiter, strategies, filters.

Held by the tap and handed to each stream, because per-stream copies would mean one token request
per stream (or per request) and limits that each stream counts on its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import typing as t
from functools import cached_property

from tap_hpe_flex import __version__
from tap_hpe_flex.auth import FlexAuthenticator, TokenExchangeAuthenticator
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.incremental import StrategyRegistry
from tap_hpe_flex.odata import ODataFilter
from tap_hpe_flex.prefetch import WorkerPool
from tap_hpe_flex.progress import ProgressTracker
from tap_hpe_flex.ratelimit import EndpointRateLimiter
from tap_hpe_flex.redact import REDACTOR
from tap_hpe_flex.retry import RetryPolicy, call_with_retries
from tap_hpe_flex.transport import PacedSession, endpoint_key
from tap_hpe_flex.workspaces import (
    ALL_TENANTS,
    MSP_TENANTS_PATH,
    TenantSkips,
    WorkspaceAuth,
    list_tenants,
    normalize_workspace_id,
)

if t.TYPE_CHECKING:
    import requests

logger = logging.getLogger("tap-hpe-flex")

#: Which setting filters which endpoint; the transform endpoint reuses the orders filter.
FILTER_SETTINGS = {
    "orders": "orders_filter",
    "orders/transform": "orders_filter",
    "devices": "devices_filter",
}

WORKSPACE_PLACEHOLDER = "{workspace_id}"


def resolve_token_url(config: t.Mapping[str, t.Any]) -> str:
    """Fill ``{workspace_id}`` in ``token_url``; fail clearly when it is needed but unset."""
    url = str(config.get("token_url") or "")
    if WORKSPACE_PLACEHOLDER in url:
        workspace = str(config.get("workspace_id") or "").strip()
        if not workspace:
            msg = (
                "token_url contains {workspace_id} but workspace_id is not set: set workspace_id "
                "(TAP_HPE_FLEX_WORKSPACE_ID) or give a full token_url"
            )
            raise FlexConfigError(msg)
        url = url.replace(WORKSPACE_PLACEHOLDER, workspace)
    return url


DEFAULT_WORKSPACES_API_URL = "https://global.api.greenlake.hpe.com"

#: Requests in flight per endpoint by default: HPE allows R = 100 per minute; keeping the limit
#: busy at latency L needs R x L / 60 in flight (2.5 at 1.5 s), so 8 covers answers of up to
#: ~4 s with margin. More in flight never means more than R per window (the limiter counts a
#: request from its send until its answer), only more threads waiting.
DEFAULT_CONCURRENCY = 8


def _setting(config: t.Mapping[str, t.Any], name: str, default: float) -> float:
    """Read a numeric setting where 0 is valid (``or default`` would replace it)."""
    value = config.get(name)
    return default if value is None else float(value)


class FlexRuntime:
    """Shared, lazily built run state (nothing here makes a request when created)."""

    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self.config = config
        self.default_user_agent = f"tap-hpe-flex/{__version__}"
        self.strategies = StrategyRegistry(str(config.get("incremental_strategy") or "auto"))
        self.limiter = EndpointRateLimiter(
            int(config.get("requests_per_minute") or 100),
            float(config.get("rate_limit_window_seconds") or 60.0),
        )
        self.progress = ProgressTracker(_setting(config, "progress_interval_seconds", 30.0))
        self.retry_policy = RetryPolicy(
            max_retry_seconds=float(_setting(config, "max_retry_seconds", 600.0)),
            initial_wait_s=float(config.get("retry_initial_wait_seconds") or 2.0),
            max_wait_s=float(config.get("retry_max_wait_seconds") or 60.0),
            on_retry=self.progress.note_retry,
        )
        REDACTOR.add(config.get("client_secret"))
        self._deprecation_lock = threading.Lock()
        self._deprecation_warned: set[str] = set()
        self._workspaces_lock = threading.Lock()
        self._workspaces: list[str] | None = None
        #: Tenants skipped in this run (token exchange refused, 401/403 with a tenant token).
        self.skips = TenantSkips()
        #: Requests in flight per endpoint (1: pages are read one by one, no pipelining).
        self.max_concurrent_requests = max(
            1, int(config.get("max_concurrent_requests") or DEFAULT_CONCURRENCY)
        )
        #: When the pipelines started reading (bookmarks are capped at this time minus a margin).
        self.pipelines_started_at: dt.datetime | None = None
        #: Called once, when the first stream partition of the run begins (starts pipelines).
        self.on_first_partition: t.Callable[[], None] | None = None
        self._pools: dict[str, WorkerPool] = {}
        self._pools_lock = threading.Lock()
        self._probe_locks: dict[str, threading.Lock] = {}

    # --- pipelining ---------------------------------------------------------------------------
    def begin_partition(self) -> None:
        """Run ``on_first_partition`` the first time a partition begins (main thread)."""
        callback, self.on_first_partition = self.on_first_partition, None
        if callback is not None:
            self.pipelines_started_at = dt.datetime.now(tz=dt.timezone.utc)
            callback()

    def worker_pool(self, endpoint: str) -> WorkerPool:
        """Return the endpoint's worker threads (one pool per endpoint, shared by partitions)."""
        with self._pools_lock:
            pool = self._pools.get(endpoint)
            if pool is None:
                pool = self._pools[endpoint] = WorkerPool(endpoint, self.max_concurrent_requests)
            return pool

    def probe_lock(self, endpoint: str) -> threading.Lock:
        """Held while a partition probes ``endpoint``'s strategy (one probe at a time)."""
        with self._pools_lock:
            return self._probe_locks.setdefault(endpoint, threading.Lock())

    def close_pools(self) -> None:
        """Let the worker threads end (they are daemons: an exit never waits for them)."""
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    # --- workspaces (MSP) ---------------------------------------------------------------------
    @cached_property
    def tenant_settings(self) -> list[str]:
        """``tenant_workspace_ids`` as given, validated ("*" kept; IDs normalised)."""
        raw = [str(v).strip() for v in self.config.get("tenant_workspace_ids") or []]
        return list(
            dict.fromkeys(v if v == ALL_TENANTS else normalize_workspace_id(v) for v in raw if v)
        )

    @property
    def msp(self) -> bool:
        """True when the run syncs tenant workspaces (``tenant_workspace_ids`` is set)."""
        return bool(self.tenant_settings)

    @cached_property
    def home_workspace(self) -> str | None:
        """The configured ``workspace_id`` in the normalised form (None when unset)."""
        value = str(self.config.get("workspace_id") or "").strip()
        if not value:
            return None
        try:
            return normalize_workspace_id(value, setting="workspace_id")
        except FlexConfigError:
            return value  # a non-UUID workspace ID is used as given (classic token URLs)

    def workspaces(self) -> list[str]:
        """Return the workspaces this run syncs, in order (lists the MSP tenants once for "*").

        Thread-safe and cached for the run, so every stream syncs the same tenants.
        """
        with self._workspaces_lock:
            if self._workspaces is None:
                self._workspaces = self._resolve_workspaces()
            return list(self._workspaces)

    def _resolve_workspaces(self) -> list[str]:
        result: list[str] = []
        for entry in self.tenant_settings:
            if entry != ALL_TENANTS:
                result.append(entry)
                continue
            for item in self._list_tenants():
                workspace = normalize_workspace_id(str(item.get("id")), setting="msp-tenants id")
                if item.get("workspaceName"):
                    self.skips.names[workspace] = str(item["workspaceName"])
                result.append(workspace)
            logger.info("MSP tenant list: %d tenant workspace(s)", len(result))
        return list(dict.fromkeys(result))

    def _list_tenants(self) -> list[dict[str, t.Any]]:
        base = str(self.config.get("workspaces_api_url") or DEFAULT_WORKSPACES_API_URL)
        key = endpoint_key(MSP_TENANTS_PATH)

        def send(attempt: t.Callable[[], requests.Response], what: str) -> requests.Response:
            return call_with_retries(
                attempt, what=what, key=key, policy=self.retry_policy, limiter=self.limiter
            )

        session = PacedSession(self)
        session.headers["User-Agent"] = self.user_agent
        try:
            return list_tenants(
                session,
                base,
                self.home_authenticator,
                page_size=int(self.config.get("tenant_list_page_size") or 100),
                timeout=float(self.config.get("request_timeout") or 60),
                send=send,
            )
        finally:
            session.close()

    @property
    def user_agent(self) -> str:
        """``user_agent`` setting (default ``tap-hpe-flex/<version>``)."""
        return str(self.config.get("user_agent") or self.default_user_agent)

    def note_deprecation(self, key: str, response: requests.Response) -> None:
        """Warn once per endpoint per run when the API announces a deprecation or a sunset."""
        headers = response.headers
        if "Deprecation" not in headers and "Sunset" not in headers:
            return
        with self._deprecation_lock:
            if key in self._deprecation_warned:
                return
            self._deprecation_warned.add(key)
        details = "; ".join(
            f"{name}: {' '.join(headers[name].split())[:200]}"
            for name in ("Deprecation", "Sunset", "Link")
            if name in headers
        )
        logger.warning(
            "The API announces that GET %s%s is deprecated (%s); upgrade tap-hpe-flex before "
            "the sunset date",
            "/flex/v1beta1/",
            key,
            details,
        )

    @cached_property
    def home_authenticator(self) -> FlexAuthenticator:
        """The client-credentials token of the configured workspace (the MSP's, in MSP mode)."""
        return FlexAuthenticator(
            token_url=resolve_token_url(self.config),
            client_id=str(self.config["client_id"]),
            client_secret=str(self.config["client_secret"]),
            timeout=float(self.config.get("request_timeout") or 60),
            user_agent=self.user_agent,
            retry_policy=self.retry_policy,
        )

    @cached_property
    def authenticator(self) -> FlexAuthenticator | WorkspaceAuth:
        """One authenticator for the whole run: one token, or one per workspace (MSP)."""
        home = self.home_authenticator
        if not self.msp:
            return home
        template = str(self.config.get("token_url") or "")
        if WORKSPACE_PLACEHOLDER not in template:
            msg = (
                "tenant_workspace_ids needs a token_url containing {workspace_id}: tenant tokens "
                "are exchanged at .../authorization/v2/oauth2/{workspace_id}/token"
            )
            raise FlexConfigError(msg)

        def exchange(workspace: str) -> TokenExchangeAuthenticator:
            return TokenExchangeAuthenticator(
                subject=home,
                tenant_id=workspace,
                token_url=template.replace(WORKSPACE_PLACEHOLDER, workspace),
                timeout=float(self.config.get("request_timeout") or 60),
                user_agent=self.user_agent,
                retry_policy=self.retry_policy,
            )

        return WorkspaceAuth(home, self.home_workspace, exchange)

    @cached_property
    def filters(self) -> dict[str, ODataFilter | None]:
        """Validated user filters per endpoint (FlexConfigError on the first invalid one)."""
        result: dict[str, ODataFilter | None] = {}
        parsed: dict[str, ODataFilter] = {}
        for setting in ("orders_filter", "devices_filter"):
            text = str(self.config.get(setting) or "").strip()
            if text:
                endpoint = "orders" if setting == "orders_filter" else "devices"
                parsed[setting] = ODataFilter.parse(text, endpoint, setting=setting)
        for endpoint, setting in FILTER_SETTINGS.items():
            result[endpoint] = parsed.get(setting)
        return result

    def filter_text(self, endpoint: str) -> str | None:
        """Return the user filter to send to ``endpoint`` (None when there is none)."""
        flt = self.filters.get(endpoint)
        return flt.render() if flt else None

    def transform_filter_problem(self) -> str | None:
        """Why the orders filter cannot apply to GET /orders/transform, if it cannot."""
        flt = self.filters.get("orders")
        if flt is None:
            return None
        bad = flt.unsupported_fields("orders/transform")
        if not bad:
            return None
        return (
            f"orders_filter uses {', '.join(bad)}, which GET /flex/v1beta1/orders/transform "
            "cannot filter on, so order_transforms would not match the filtered orders: "
            "drop that clause or deselect the order_transforms stream"
        )
