"""The tap's settings: the JSON Schema users configure, and one typed, frozen view of it.

Why parsed once, here: every other module reads a :class:`Settings` attribute instead of
``config.get(name) or default`` (two idioms that disagree on 0), and every mistake a JSON Schema
cannot catch (a number given as text by an environment variable, ``start_date: yesterday``, a
tenant ID that is not one, ``token_url`` needing an unset ``workspace_id``) fails here, at start-up,
with one line that names the setting and says what to write instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import typing as t

from singer_sdk import typing as th

from tap_hpe_flex import __version__
from tap_hpe_flex.auth import ApiClient, parse_api_clients
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.incremental import Strategy, canonical_timestamp
from tap_hpe_flex.sharding import check_shard_settings
from tap_hpe_flex.tenants import ALL_TENANTS, normalize_workspace_id

DEFAULT_TOKEN_URL = (
    "https://global.api.greenlake.hpe.com/authorization/v2/oauth2/{workspace_id}/token"
)
DEFAULT_API_URL = "https://us-west.api.greenlake.hpe.com"
DEFAULT_WORKSPACES_API_URL = "https://global.api.greenlake.hpe.com"
WORKSPACE_PLACEHOLDER = "{workspace_id}"
GROUP_BY_FIELDS = ("sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName")

#: Requests in flight per endpoint by default: HPE allows R = 100 per minute; keeping the limit
#: busy at latency L needs R x L / 60 in flight (2.5 at 1.5 s), so 8 covers answers of up to
#: ~4 s with margin. More in flight never means more than R per window (the limiter counts a
#: request from its send until its answer), only more threads waiting.
DEFAULT_CONCURRENCY = 8


def _number(name: str, description: str, default: float, *, positive: bool) -> th.Property:
    """Declare a number setting that also takes its value as text (env variables are text).

    The SDK parses ``TAP_HPE_FLEX_X=30`` into the string ``"30"`` for a ``number`` setting and
    its validator then refuses it; :meth:`Settings.from_config` converts and range-checks it.
    """
    bound = "exclusiveMinimum" if positive else "minimum"
    schema = {"type": ["number", "string"], bound: 0, "default": default}
    return th.Property(name, th.CustomType(schema), default=default, description=description)


CONFIG_SCHEMA: dict[str, t.Any] = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType,
        required=True,
        description="Client ID of the GreenLake personal API client.",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        required=True,
        secret=True,
        description="Client secret of the GreenLake personal API client.",
    ),
    th.Property(
        "workspace_id",
        th.StringType,
        description="GreenLake workspace ID; fills {workspace_id} in token_url.",
    ),
    th.Property(
        "token_url",
        th.StringType,
        default=DEFAULT_TOKEN_URL,
        description=(
            "OAuth2 token endpoint (client credentials). {workspace_id} is replaced by the "
            "workspace_id setting; the classic https://sso.common.cloud.hpe.com/as/"
            "token.oauth2 also works for some API clients."
        ),
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description="Base URL of the Flex API host.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description=(
            "Lower bound on updatedAt for the first sync (no bookmark yet); RFC 3339, e.g. "
            "2024-01-31T00:00:00Z, or a date (midnight UTC)."
        ),
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=100),
        default=100,
        description="Records per request (limit); the API allows at most 100.",
    ),
    th.Property(
        "requests_per_minute",
        th.IntegerType(minimum=1),
        default=100,
        description=(
            "Client-side pacing: at most this many requests per endpoint in any 60 s "
            "(HPE allows 100 per endpoint); retries count. Lowered for an endpoint when a "
            "429 announces a smaller X-RateLimit-Limit."
        ),
    ),
    _number(
        "rate_limit_window_seconds",
        "Length of the pacing window that requests_per_minute applies to. Leave at 60 "
        "for GreenLake; tests set a short window to match a simulator's.",
        60,
        positive=True,
    ),
    _number(
        "max_retry_seconds",
        "How long one request is retried after 429, 5xx, dropped connections, timeouts "
        "or cut-off answers before the sync fails with one line naming the endpoint, the "
        "last status and the debugId. Waits the server names are honoured exactly.",
        600,
        positive=False,
    ),
    _number(
        "retry_initial_wait_seconds",
        "First backoff wait when the server names none; doubles per failure, with "
        "jitter, up to retry_max_wait_seconds.",
        2,
        positive=True,
    ),
    _number(
        "retry_max_wait_seconds",
        "Longest single backoff wait when the server names none.",
        60,
        positive=True,
    ),
    th.Property(
        "orders_filter",
        th.StringType,
        description=(
            "OData filter for orders (and order_transforms): field eq|ne 'x', field in "
            "('a', 'b'), joined with and. Fields: id, billingAccountId, sowId, "
            "billingAccountName, customerName, resellerName, partnerName, distributorName, "
            "isFlexPartner (boolean). order_transforms cannot filter on id or isFlexPartner."
        ),
    ),
    th.Property(
        "devices_filter",
        th.StringType,
        description=(
            "OData filter for devices (same syntax). Fields: id, macAddress, serialNumber, "
            "resourceId, partNumber, name, type, model, make, billingAccountName, billingTier."
        ),
    ),
    th.Property(
        "order_transform_group_by",
        th.ArrayType(th.StringType(allowed_values=list(GROUP_BY_FIELDS))),
        default=list(GROUP_BY_FIELDS),
        description="Group-by fields for order_transforms; one partition (request set) each.",
    ),
    th.Property(
        "device_ids",
        th.ArrayType(th.StringType),
        description=(
            "Sync only these devices, one GET /devices/{id} each; an unknown id is a warning."
        ),
    ),
    th.Property(
        "incremental_strategy",
        th.StringType(allowed_values=[s.value for s in Strategy if s is not Strategy.FULL]),
        default="auto",
        description=(
            "How orders/devices read only changed records: filter (updatedAt ge bookmark on "
            "the server), sort (updatedAt desc, stop at the bookmark), client (read all, "
            "keep changed) or auto (probe filter, then sort, then client, once per run)."
        ),
    ),
    th.Property(
        "tenant_workspace_ids",
        th.ArrayType(th.StringType),
        description=(
            "Managed service providers: sync these tenant workspaces (IDs with or without "
            'hyphens), each with a token exchanged from the MSP workspace\'s token; ["*"] '
            "syncs every tenant listed by GET /workspaces/v1/msp-tenants. Records carry "
            "workspaceId, which joins the primary keys; bookmarks are kept per workspace. "
            "Unset: the workspace of the credentials only, as before."
        ),
    ),
    th.Property(
        "workspaces_api_url",
        th.StringType,
        default=DEFAULT_WORKSPACES_API_URL,
        description="Base URL of the GreenLake Workspace Management API (MSP tenant list).",
    ),
    th.Property(
        "tenant_list_page_size",
        th.IntegerType(minimum=1, maximum=300),
        default=100,
        description="Tenants per request when listing MSP tenants (the API allows 300).",
    ),
    th.Property(
        "shard",
        th.IntegerType(minimum=0),
        default=0,
        description=(
            "This job's shard of the MSP tenants (0 to shard_count - 1; a stable hash of the "
            "workspace ID). Give each shard its own state ID: --state-id-suffix shard-<k>."
        ),
    ),
    th.Property(
        "shard_count",
        th.IntegerType(minimum=1),
        default=1,
        description="Jobs that split tenant_workspace_ids (the same in every job); 1: no split.",
    ),
    th.Property(
        "rate_budget_url",
        th.StringType,
        secret=True,
        description=(
            "postgresql:// or redis:// store holding each API client's rate budget, shared by "
            "every tap process using it (no manual division of requests_per_minute). Needs "
            "tap-hpe-flex[shared-budget]; if the store fails, the process paces alone (one "
            "WARNING). Unset: each process paces alone."
        ),
    ),
    th.Property(
        "rate_budget_margin_seconds",
        th.CustomType({"type": ["number", "string"], "minimum": 0}),
        description="Added to the shared window (default 2% of it, at least 0.05 s).",
    ),
    th.Property(
        "additional_clients",
        # Also its JSON text (an environment variable), so a validation error never quotes it.
        th.CustomType({"type": ["array", "string"], "items": {"type": "object"}}),
        secret=True,
        description=(
            "More API clients of the same workspace, [{client_id, client_secret}]: requests "
            "are spread over all clients, each with its own budget and token; when 429s show "
            "the limit is shared, they are paced together (one WARNING)."
        ),
    ),
    th.Property(
        "fail_on_skipped_tenants",
        th.BooleanType,
        default=False,
        description=(
            "Exit non-zero at the end of a run in which a tenant was skipped (token exchange "
            "refused, or 401/403). Default: the other tenants complete, a WARNING names the "
            "skipped ones and the run exits 0."
        ),
    ),
    _number(
        "progress_interval_seconds",
        "Seconds between progress lines of a running stream partition (records, total, "
        "requests, pace, time left); 0 turns them off. Summaries are always logged.",
        30,
        positive=False,
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1, maximum=64),
        default=DEFAULT_CONCURRENCY,
        description=(
            "Requests in flight per endpoint. Pages of every selected stream are fetched "
            "ahead in parallel (still within requests_per_minute, never more) and written in "
            "order. Keeping the limit busy needs about requests_per_minute x latency / 60 in "
            "flight: the default 8 covers 100 per minute at up to ~4 s per answer with "
            "margin. 1 reads pages one at a time, stream after stream."
        ),
    ),
    _number("request_timeout", "Seconds to wait for each HTTP response.", 60, positive=True),
    th.Property(
        "user_agent",
        th.StringType,
        default=f"tap-hpe-flex/{__version__}",
        description="User-Agent header sent with every request.",
    ),
).to_dict()


def _float(config: t.Mapping[str, t.Any], name: str, default: float, *, positive: bool) -> float:
    value = config.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number > 0 if positive else number >= 0):  # also refuses NaN
        need = "a number above 0" if positive else "a number of at least 0"
        msg = f"{name}: {value!r} is not {need} (e.g. {name}={default:g})"
        raise FlexConfigError(msg)
    return number


def _int(config: t.Mapping[str, t.Any], name: str, default: int) -> int:
    value = config.get(name)
    return default if value is None or value == "" else int(value)


def _start_date(value: t.Any) -> str | None:
    """Return ``start_date`` in the bookmarks' canonical form; a bare date means midnight UTC."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            return canonical_timestamp(
                dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
            )
        return canonical_timestamp(text)
    except ValueError:
        msg = (
            f"start_date: {text!r} is not a date-time; write RFC 3339, e.g. "
            "start_date=2024-01-31T00:00:00Z (or a date such as 2024-01-31)"
        )
        raise FlexConfigError(msg) from None


def _strings(value: t.Any) -> tuple[str, ...]:
    return tuple(s for s in (str(v).strip() for v in value or []) if s)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of a run, converted and checked once (see the module docstring)."""

    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    workspace_id: str | None
    token_url_template: str
    api_url: str
    start_date: str | None
    page_size: int
    requests_per_minute: int
    rate_limit_window_s: float
    max_retry_s: float
    retry_initial_wait_s: float
    retry_max_wait_s: float
    filters: t.Mapping[str, str]
    order_transform_group_by: tuple[str, ...]
    device_ids: tuple[str, ...]
    incremental_strategy: Strategy
    tenant_workspace_ids: tuple[str, ...]
    workspaces_api_url: str
    tenant_list_page_size: int
    shard: int
    shard_count: int
    rate_budget_url: str | None = dataclasses.field(repr=False)
    rate_budget_margin_s: float | None
    additional_clients: tuple[ApiClient, ...] = dataclasses.field(repr=False)
    fail_on_skipped_tenants: bool
    progress_interval_s: float
    max_concurrent_requests: int
    request_timeout_s: float
    user_agent: str

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Convert and check ``config``; FlexConfigError names the first bad setting."""
        tenants = tuple(
            dict.fromkeys(
                v if v == ALL_TENANTS else normalize_workspace_id(v)
                for v in _strings(config.get("tenant_workspace_ids"))
            )
        )
        filters = {
            name: str(config[name]).strip()
            for name in ("orders_filter", "devices_filter")
            if str(config.get(name) or "").strip()
        }
        check_shard_settings(_int(config, "shard", 0), _int(config, "shard_count", 1), tenants)
        return cls(
            client_id=str(config.get("client_id") or ""),
            client_secret=str(config.get("client_secret") or ""),
            workspace_id=str(config.get("workspace_id") or "").strip() or None,
            token_url_template=str(config.get("token_url") or DEFAULT_TOKEN_URL),
            api_url=str(config.get("api_url") or DEFAULT_API_URL).rstrip("/"),
            start_date=_start_date(config.get("start_date")),
            page_size=_int(config, "page_size", 100),
            requests_per_minute=_int(config, "requests_per_minute", 100),
            rate_limit_window_s=_float(config, "rate_limit_window_seconds", 60, positive=True),
            max_retry_s=_float(config, "max_retry_seconds", 600, positive=False),
            retry_initial_wait_s=_float(config, "retry_initial_wait_seconds", 2, positive=True),
            retry_max_wait_s=_float(config, "retry_max_wait_seconds", 60, positive=True),
            filters=filters,
            order_transform_group_by=tuple(
                dict.fromkeys(_strings(config.get("order_transform_group_by")) or GROUP_BY_FIELDS)
            ),
            device_ids=_strings(config.get("device_ids")),
            incremental_strategy=Strategy(str(config.get("incremental_strategy") or "auto")),
            tenant_workspace_ids=tenants,
            workspaces_api_url=str(
                config.get("workspaces_api_url") or DEFAULT_WORKSPACES_API_URL
            ).rstrip("/"),
            tenant_list_page_size=_int(config, "tenant_list_page_size", 100),
            shard=_int(config, "shard", 0),
            shard_count=_int(config, "shard_count", 1),
            rate_budget_url=str(config.get("rate_budget_url") or "").strip() or None,
            rate_budget_margin_s=_float(config, "rate_budget_margin_seconds", -1, positive=False)
            if config.get("rate_budget_margin_seconds") not in {None, ""}
            else None,
            additional_clients=parse_api_clients(
                config.get("additional_clients"), main_client_id=str(config.get("client_id") or "")
            ),
            fail_on_skipped_tenants=bool(config.get("fail_on_skipped_tenants")),
            progress_interval_s=_float(config, "progress_interval_seconds", 30, positive=False),
            max_concurrent_requests=max(
                1, _int(config, "max_concurrent_requests", DEFAULT_CONCURRENCY)
            ),
            request_timeout_s=_float(config, "request_timeout", 60, positive=True),
            user_agent=str(config.get("user_agent") or f"tap-hpe-flex/{__version__}"),
        )

    @property
    def msp(self) -> bool:
        """True when the run syncs tenant workspaces (``tenant_workspace_ids`` is set)."""
        return bool(self.tenant_workspace_ids)

    @property
    def home_workspace(self) -> str | None:
        """``workspace_id`` in the normalised form; a non-UUID ID is used as given."""
        if self.workspace_id is None:
            return None
        try:
            return normalize_workspace_id(self.workspace_id, setting="workspace_id")
        except FlexConfigError:
            return self.workspace_id  # classic token URLs take other IDs

    def token_url(self) -> str:
        """``token_url`` with ``{workspace_id}`` filled in; fails clearly when it cannot be."""
        url = self.token_url_template
        if WORKSPACE_PLACEHOLDER in url:
            if not self.workspace_id:
                msg = (
                    "token_url contains {workspace_id} but workspace_id is not set: set "
                    "workspace_id (TAP_HPE_FLEX_WORKSPACE_ID) or give a full token_url"
                )
                raise FlexConfigError(msg)
            url = url.replace(WORKSPACE_PLACEHOLDER, self.workspace_id)
        return url

    def exchange_url(self, workspace: str) -> str:
        """Return the token-exchange URL of a tenant workspace (MSP mode needs the placeholder)."""
        if WORKSPACE_PLACEHOLDER not in self.token_url_template:
            msg = (
                "tenant_workspace_ids needs a token_url containing {workspace_id}: tenant tokens "
                "are exchanged at .../authorization/v2/oauth2/{workspace_id}/token"
            )
            raise FlexConfigError(msg)
        return self.token_url_template.replace(WORKSPACE_PLACEHOLDER, workspace)


def unknown_settings(config: t.Mapping[str, t.Any], known: t.Iterable[str]) -> list[str]:
    """Name each setting the tap does not know, with the closest known name when one is near.

    A misspelt setting (``requests_per_minut``) would otherwise be ignored in silence and the
    default used instead.
    """
    names = sorted(set(known))
    lines = []
    for name in sorted(set(config) - set(names)):
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"Unknown setting {name!r} is ignored{hint}")
    return lines
