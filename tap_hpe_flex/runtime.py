"""What one tap run shares across its streams: token, limiter, strategies, filters.

Held by the tap and handed to each stream, because per-stream copies would mean one token request
per stream (or per request) and limits that each stream counts on its own.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from functools import cached_property

from tap_hpe_flex import __version__
from tap_hpe_flex.auth import FlexAuthenticator
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.incremental import StrategyRegistry
from tap_hpe_flex.odata import ODataFilter
from tap_hpe_flex.ratelimit import EndpointRateLimiter
from tap_hpe_flex.redact import REDACTOR
from tap_hpe_flex.retry import RetryPolicy

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
        self.retry_policy = RetryPolicy(
            max_retry_seconds=float(_setting(config, "max_retry_seconds", 600.0)),
            initial_wait_s=float(config.get("retry_initial_wait_seconds") or 2.0),
            max_wait_s=float(config.get("retry_max_wait_seconds") or 60.0),
        )
        REDACTOR.add(config.get("client_secret"))
        self._deprecation_lock = threading.Lock()
        self._deprecation_warned: set[str] = set()

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
    def authenticator(self) -> FlexAuthenticator:
        """One authenticator (one token) for the whole run."""
        return FlexAuthenticator(
            token_url=resolve_token_url(self.config),
            client_id=str(self.config["client_id"]),
            client_secret=str(self.config["client_secret"]),
            timeout=float(self.config.get("request_timeout") or 60),
            user_agent=str(self.config.get("user_agent") or self.default_user_agent),
            retry_policy=self.retry_policy,
        )

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
