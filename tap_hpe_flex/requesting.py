"""Requests and answers of a Flex stream: token refresh on 401, retries, error mapping.

Why a module of its own: how one request is sent and how its answer is judged (retry it, refresh
the token, fall back from a refused strategy probe, fail with one clear line) is independent of
paging and planning, and reads best on its own. ``FlexStream`` (``client.py``) builds on it.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import urlsplit

import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError

from tap_hpe_flex.errors import (
    ENDPOINT_PERMISSIONS,
    FlexAPIError,
    FlexAuthError,
    decode_error_body,
    describe_error,
)
from tap_hpe_flex.incremental import (
    BOOKMARK_SAFETY_MARGIN_S,
    Strategy,
    canonical_timestamp,
    is_strategy_rejection,
    parse_http_date,
    rejection_reason,
)
from tap_hpe_flex.pipelined import decode_json
from tap_hpe_flex.retry import call_with_retries
from tap_hpe_flex.transport import endpoint_key

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.streams.rest import HTTPRequest

    from tap_hpe_flex.planning import Plan
    from tap_hpe_flex.runtime import FlexRuntime

#: Attribute of a prepared request naming the plan it was built for (pipelined pages).
PLAN_ATTR = "_flex_plan"

#: Where a response's decoded JSON is kept (on the response itself, so threads never share it).
_PAYLOAD = "_flex_payload"


class TokenRejectedError(Exception):
    """HTTP 401 from the API: refresh the token and re-send once."""


class StrategyRejectedError(Exception):
    """A probe's 400 says the strategy is unsupported; the stream falls back to the next one."""

    def __init__(self, strategy: Strategy, reason: str) -> None:
        super().__init__(reason)
        self.strategy = strategy
        self.reason = reason


class FlexRequests(RESTStream[t.Any]):
    """Sending one request and judging its answer (see the module docstring)."""

    runtime: FlexRuntime
    endpoint: str
    _plan: Plan | None

    def page_payload(self, response: requests.Response) -> dict[str, t.Any]:
        """Return the page's JSON, decoded once (``validate_response`` decodes every success)."""
        body = response.__dict__.get(_PAYLOAD)
        if body is None:
            try:
                decoded = decode_json(response.content)
            except ValueError:
                msg = f"{self.name}: a page is not JSON ({describe_error(response)})"
                raise FlexAPIError(msg, status=response.status_code) from None
            body = decoded if isinstance(decoded, dict) else {"items": decoded}
            response.__dict__[_PAYLOAD] = body
        return t.cast("dict[str, t.Any]", body)

    def prepare(self, http: HTTPRequest) -> requests.PreparedRequest:
        """Turn the SDK's request description into a prepared request of this stream's session."""
        return self.build_prepared_request(
            method=http.method,
            url=http.url,
            params=http.encode_params(),
            headers=http.headers,
            json=http.data,
        )

    def _note_server_clock(self, response: requests.Response, context: Context | None) -> None:
        """Lower the signpost to the server's ``Date`` minus the margin when that is earlier."""
        self.note_server_date(response.headers.get("Date"), context)

    def note_server_date(self, header: str | None, context: Context | None) -> None:
        """Lower the signpost to a ``Date`` header's time minus the margin (main thread)."""
        server_now = parse_http_date(header)
        if server_now is None or not self.is_timestamp_replication_key:
            return
        capped = canonical_timestamp(server_now - dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S))
        state = self.state_manager.get_context_state(context)
        current = state.get("replication_key_signpost")
        if current is None or capped < canonical_timestamp(current):
            self.state_manager.write_replication_key_signpost(capped, context=context)

    def _request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        """Send once; on 401 get a new token and re-send once; settle a successful probe."""
        try:
            response = super()._request(prepared_request, context)
        except TokenRejectedError:
            self.logger.info("%s: the API answered 401; getting a new token", self.name)
            self.runtime.authenticator.invalidate()
            try:
                response = super()._request(prepared_request, context)
            except TokenRejectedError as exc:
                msg = (
                    f"{self.name}: the API rejected a freshly issued access token ({exc}); "
                    "check that token_url and workspace_id belong to this API host"
                )
                raise FlexAuthError(msg) from None
        plan = getattr(prepared_request, PLAN_ATTR, None) or self._plan
        if plan is not None:
            if plan.probing and plan.settles:
                plan.probing = False
                why = {
                    Strategy.FILTER: "the API accepted an updatedAt filter",
                    Strategy.SORT: "the API accepted sort=updatedAt desc",
                }.get(plan.strategy, "probe succeeded")
                self.runtime.strategies.accept(self.endpoint, plan.strategy, why)
            if not plan.first_response_seen and not getattr(prepared_request, PLAN_ATTR, None):
                plan.first_response_seen = True  # pipelined pages: the consumer notes the Date
                self._note_server_clock(response, context)
        return response

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """Retry transient failures within ``max_retry_seconds`` (see ``retry.py``).

        Each attempt re-runs ``_request``, which re-checks the token first, so a token that
        expired during a long wait is replaced before the next attempt.
        """

        def call(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            path = urlsplit(prepared_request.url or "").path or self.path
            return call_with_retries(
                lambda: func(prepared_request, context),
                what=f"{self.name}: GET {path}",
                key=endpoint_key(path),
                policy=self.runtime.retry_policy,
                limiter=self.runtime.limiter,
                log=self.logger,
            )

        return call

    def response_error_message(self, response: requests.Response) -> str:
        """Status, API message, issues and debugId; never headers or the raw body."""
        path = urlsplit(response.url).path or self.path
        return f"{self.name}: GET {path}: {describe_error(response)}"

    def validate_response(self, response: requests.Response) -> None:
        """401 refresh, 429/5xx retry, probe rejection; every other error is fatal and clear."""
        status = response.status_code
        if status < 400:
            self._check_json(response)
            return
        if self.tolerate(response):
            return
        if status == 401:
            raise TokenRejectedError(describe_error(response))
        if status in self.extra_retry_statuses or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        body = decode_error_body(response)
        plan = getattr(response.request, PLAN_ATTR, None) or self._plan
        rejected = plan is not None and is_strategy_rejection(plan.strategy, status, body)
        if plan is not None and plan.probing and rejected:
            raise StrategyRejectedError(plan.strategy, rejection_reason(body))
        msg = self.response_error_message(response)
        if status == 403:
            permission = ENDPOINT_PERMISSIONS.get(endpoint_key(response.url), "View")
            msg = (
                f"{self.name}: permission denied: the API client needs the {permission} "
                f"permission in this workspace ({describe_error(response)})"
            )
        elif rejected and plan is not None:
            msg += (
                f" (incremental_strategy={plan.strategy.value} is not supported by this API; "
                "use auto or client)"
            )
        raise FlexAPIError(msg, status=status)

    def _check_json(self, response: requests.Response) -> None:
        """Raise a retriable error for a success whose body is not JSON (cut off, gateway page)."""
        try:
            self.page_payload(response)
        except FlexAPIError:
            path = urlsplit(response.url).path or self.path
            msg = f"{self.name}: GET {path}: HTTP {response.status_code} with a non-JSON body"
            raise RetriableAPIError(msg, response) from None

    def tolerate(self, response: requests.Response) -> bool:
        """Error responses the stream handles itself (e.g. a missing device id)."""
        return False
