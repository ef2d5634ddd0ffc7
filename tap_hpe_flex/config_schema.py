"""The settings a user configures: the JSON Schema the SDK validates and ``--about`` prints.

Why apart from ``settings.py``: this is the declaration (names, types, defaults, descriptions,
which settings are secret), read by the SDK, Meltano's plugin definition and the README's settings
table; ``settings.py`` turns a config that passed it into the one typed view the tap uses.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_hpe_flex import __version__
from tap_hpe_flex.deletions import DEFAULT_MAX_DELETED_SHARE
from tap_hpe_flex.incremental import Strategy
from tap_hpe_flex.keysets import DEFAULT_MAX_KEYS

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
        "deletion_max_keys",
        th.IntegerType(minimum=0),
        default=DEFAULT_MAX_KEYS,
        description=(
            "Full-table passes keep each partition's primary keys in the state, up to this "
            "many, to send deletion markers for keys that vanish (docs/deletions.md); a larger "
            "partition keeps only its count and gets no markers (ACTIVATE_VERSION still works)."
        ),
    ),
    _number(
        "deletion_max_share",
        "Guard: the largest share of a partition's previous keys one pass may mark deleted "
        "(0.5 = 50%); above it, or for an empty pass after a non-empty one, nothing is marked, "
        "no ACTIVATE_VERSION is sent and a WARNING says so. 1 turns the guard off.",
        DEFAULT_MAX_DELETED_SHARE,
        positive=False,
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
