"""FlexStream: the REST stream base shared by orders, devices and order transforms.

Paging (``limit``/``offset`` with a one-record overlap that detects a list shifting under the sync,
see ``drift.py``), retries (``retry.py``), client-side pacing, token refresh on 401, error mapping
and the incremental strategies all live here so the stream classes in ``streams.py`` stay
declarative.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import typing as t
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.streams.rest import PageContext

from tap_hpe_flex.drift import OffsetWalk, default_key
from tap_hpe_flex.errors import (
    ENDPOINT_PERMISSIONS,
    FlexAPIError,
    FlexAuthError,
    decode_error_body,
    describe_error,
)
from tap_hpe_flex.incremental import (
    BOOKMARK_SAFETY_MARGIN_S,
    UPDATED_SORT,
    UTC,
    Strategy,
    canonical_timestamp,
    is_strategy_rejection,
    parse_timestamp,
    rejection_reason,
    updated_filter,
)
from tap_hpe_flex.odata import combine
from tap_hpe_flex.redact import install as install_redactor
from tap_hpe_flex.retry import call_with_retries
from tap_hpe_flex.transport import FlexHTTPRequest, PacedSession, endpoint_key

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.streams.rest import HTTPRequest

    from tap_hpe_flex.runtime import FlexRuntime
    from tap_hpe_flex.tap import TapHpeFlex


@dataclass
class _Plan:
    """How the current partition narrows to changed records (see ``incremental.py``)."""

    strategy: Strategy
    probing: bool
    bookmark: dt.datetime | None
    stop: bool = False
    first_response_seen: bool = False


#: Where a response's decoded JSON is kept (on the response itself, so threads never share it).
_PAYLOAD = "_flex_payload"


class _TokenRejectedError(Exception):
    """HTTP 401 from the API: refresh the token and re-send once."""


class _StrategyRejectedError(Exception):
    """A probe's 400 says the strategy is unsupported; the stream falls back to the next one."""

    def __init__(self, strategy: Strategy, reason: str) -> None:
        super().__init__(reason)
        self.strategy = strategy
        self.reason = reason


class FlexStream(RESTStream[t.Any]):
    """Base for Flex streams: paging, pacing, shared token, strategies, error mapping."""

    #: Rate-limit / strategy key, e.g. ``orders``.
    endpoint: str = ""
    #: Whether the stream narrows syncs by ``updatedAt`` (orders, devices).
    incremental: bool = False

    def __init__(self, tap: TapHpeFlex, runtime: FlexRuntime) -> None:
        self.runtime = runtime
        self._plan: _Plan | None = None
        #: The last pass's paging walk (drift counters for logs, tests and the benchmark).
        self.last_walk: OffsetWalk | None = None
        super().__init__(tap)

    # --- plumbing -----------------------------------------------------------------------------
    @property
    def url_base(self) -> str:
        """The API host from ``api_url``."""
        return str(self.config["api_url"]).rstrip("/")

    @property
    def authenticator(self) -> t.Any:
        """The tap-wide authenticator: one token shared by every stream."""
        return self.runtime.authenticator

    @cached_property
    def requests_session(self) -> requests.Session:
        """A session paced by the tap-wide per-endpoint limiter."""
        return PacedSession(self.runtime)

    @property
    def timeout(self) -> int:
        """``request_timeout`` seconds."""
        return t.cast("int", float(self.config.get("request_timeout", 60)))

    @cached_property
    def user_agent(self) -> str:
        """``user_agent`` setting (default ``tap-hpe-flex/<version>``)."""
        return str(self.config.get("user_agent") or self.runtime.default_user_agent)

    @property
    def page_size(self) -> int:
        """``page_size`` setting (1-100)."""
        return int(self.config.get("page_size", 100))

    @property
    def stop_paging(self) -> bool:
        """True once a ``sort`` pass has reached records older than the bookmark."""
        return bool(self._plan and self._plan.stop)

    def page_payload(self, response: requests.Response) -> dict[str, t.Any]:
        """Return the page's JSON, decoded once (``validate_response`` decodes every success)."""
        body = response.__dict__.get(_PAYLOAD)
        if body is None:
            try:
                decoded = response.json()
            except ValueError:
                msg = f"{self.name}: a page is not JSON ({describe_error(response)})"
                raise FlexAPIError(msg, status=response.status_code) from None
            body = decoded if isinstance(decoded, dict) else {"items": decoded}
            response.__dict__[_PAYLOAD] = body
        return t.cast("dict[str, t.Any]", body)

    @property
    def offset_paging(self) -> bool:
        """True when the stream pages a list with ``limit``/``offset`` (see ``drift.py``)."""
        return True

    def record_key(self, item: dict[str, t.Any]) -> t.Hashable:
        """Return a raw item's identity, to recognise it across overlapping pages."""
        return default_key(item)

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """Build the request with ``%20``-encoded query values."""
        request = super().get_http_request(page=page)
        return FlexHTTPRequest(
            url=request.url,
            method=request.method,
            params=request.params,
            headers={**request.headers, "Accept": "application/json"},
            data=request.data,
        )

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        """``limit``/``offset`` plus the user filter and the strategy's filter or sort."""
        params: dict[str, t.Any] = {"limit": self.page_size, "offset": next_page_token or 0}
        plan = self._plan
        strategy_filter = None
        if plan and plan.bookmark is not None:
            if plan.strategy is Strategy.FILTER:
                strategy_filter = updated_filter(plan.bookmark)
            elif plan.strategy is Strategy.SORT:
                params["sort"] = UPDATED_SORT
        user_filter = self.runtime.filter_text(self.endpoint)
        if text := combine(user_filter, strategy_filter):
            params["filter"] = text
        return params

    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        """Page through the list with overlapping pages; re-read when the list shifted."""
        if not self.offset_paging:
            yield from super().request_records(context)
            return
        send = self.request_decorator(self._request)
        self.last_walk = walk = OffsetWalk(
            self.page_size, name=self.name, key=self.record_key, log=self.logger
        )
        offset: int | None = 0
        with self.get_http_request_counter() as counter:
            counter.with_context(context)
            while offset is not None:
                http = self.get_http_request(
                    page=PageContext(stream_context=context, next_page_token=offset)
                )
                prepared = self.build_prepared_request(
                    method=http.method,
                    url=http.url,
                    params=http.encode_params(),
                    headers=http.headers,
                    json=http.data,
                )
                response = send(prepared, context)
                counter.increment()
                self.update_sync_costs(prepared, response, context)
                step = walk.accept(offset, self.page_payload(response))
                yield from self.keep_changed(step.items)
                if self.stop_paging:
                    return
                offset = step.next_offset

    # --- records ------------------------------------------------------------------------------
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """Yield the page's items, applying the bookmark locally (all strategies)."""
        items = self.page_payload(response).get("items") or []
        yield from self.keep_changed(item for item in items if isinstance(item, dict))

    def keep_changed(self, records: t.Iterable[dict]) -> t.Iterator[dict]:
        """Drop records older than the bookmark; under ``sort`` the first one ends paging."""
        plan = self._plan
        if plan is None or plan.bookmark is None:
            yield from records
            return
        for record in records:
            try:
                updated = parse_timestamp(record["updatedAt"])
            except (KeyError, TypeError, ValueError):
                yield record  # cannot judge: at-least-once beats losing it
                continue
            if updated >= plan.bookmark:
                yield record
            elif plan.strategy is Strategy.SORT:
                plan.stop = True
                return

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Write ``updatedAt`` in the canonical form the bookmarks use."""
        value = row.get("updatedAt")
        if isinstance(value, str):
            try:
                row["updatedAt"] = canonical_timestamp(value)
            except ValueError:
                self.logger.warning("%s: unparseable updatedAt %r kept as is", self.name, value)
        return row

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Run the partition with the planned strategy, falling back when a probe is refused."""
        install_redactor()  # idempotent: covers handlers added after the tap was built
        self._plan = plan = self._make_plan(context)
        while True:
            try:
                yield from self.request_records(context)
                return
            except _StrategyRejectedError as exc:
                nxt = self.runtime.strategies.reject(self.endpoint, exc.strategy, exc.reason)
                _, probing = self.runtime.strategies.strategy_for(self.endpoint)
                self._plan = plan = _Plan(nxt, probing, plan.bookmark)

    def _make_plan(self, context: Context | None) -> _Plan:
        if not self.incremental:
            return _Plan(Strategy.FULL, probing=False, bookmark=None)
        start = self.get_starting_timestamp(context)
        if start is None:
            self.logger.info("%s: no bookmark and no start_date: full pass", self.name)
            return _Plan(Strategy.FULL, probing=False, bookmark=None)
        bookmark = parse_timestamp(start)
        strategy, probing = self.runtime.strategies.strategy_for(self.endpoint)
        if strategy is Strategy.CLIENT or not self.supports_server_narrowing:
            return _Plan(Strategy.CLIENT, probing=False, bookmark=bookmark)
        if not probing:
            self.logger.info(
                "%s: incremental strategy %s from %s",
                self.name,
                strategy.value,
                canonical_timestamp(bookmark),
            )
        return _Plan(strategy, probing, bookmark)

    @property
    def supports_server_narrowing(self) -> bool:
        """False where only client-side narrowing applies (e.g. single-object requests)."""
        return True

    def get_replication_key_signpost(self, context: Context | None = None) -> t.Any:
        """Cap bookmarks at the sync's start minus a margin (refined from the server's Date)."""
        if not self.is_timestamp_replication_key:
            return None
        now = dt.datetime.now(tz=UTC) - dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S)
        return canonical_timestamp(now)

    def _note_server_clock(self, response: requests.Response, context: Context | None) -> None:
        """Lower the signpost to the server's ``Date`` minus the margin when that is earlier."""
        header = response.headers.get("Date")
        if not header or not self.is_timestamp_replication_key:
            return
        try:
            server_now = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return
        capped = canonical_timestamp(server_now - dt.timedelta(seconds=BOOKMARK_SAFETY_MARGIN_S))
        state = self.state_manager.get_context_state(context)
        current = state.get("replication_key_signpost")
        if current is None or capped < canonical_timestamp(current):
            self.state_manager.write_replication_key_signpost(capped, context=context)

    # --- requests and errors ------------------------------------------------------------------
    def _request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        """Send once; on 401 get a new token and re-send once; settle a successful probe."""
        try:
            response = super()._request(prepared_request, context)
        except _TokenRejectedError:
            self.logger.info("%s: the API answered 401; getting a new token", self.name)
            self.runtime.authenticator.invalidate()
            try:
                response = super()._request(prepared_request, context)
            except _TokenRejectedError as exc:
                msg = (
                    f"{self.name}: the API rejected a freshly issued access token ({exc}); "
                    "check that token_url and workspace_id belong to this API host"
                )
                raise FlexAuthError(msg) from None
        plan = self._plan
        if plan is not None:
            if plan.probing:
                plan.probing = False
                why = {
                    Strategy.FILTER: "the API accepted an updatedAt filter",
                    Strategy.SORT: "the API accepted sort=updatedAt desc",
                }.get(plan.strategy, "probe succeeded")
                self.runtime.strategies.accept(self.endpoint, plan.strategy, why)
            if not plan.first_response_seen:
                plan.first_response_seen = True
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
            raise _TokenRejectedError(describe_error(response))
        if status in self.extra_retry_statuses or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        body = decode_error_body(response)
        plan = self._plan
        rejected = plan is not None and is_strategy_rejection(plan.strategy, status, body)
        if plan is not None and plan.probing and rejected:
            raise _StrategyRejectedError(plan.strategy, rejection_reason(body))
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
