"""The three Flex streams, declared on top of ``FlexStream``.

Schemas follow HPE's OpenAPI document (Order, Device with Tag, OrderTransform): fields the spec
requires are non-null, optional ones nullable. ``deviceType`` is a plain string (the spec's enum
would break on the first new value of this beta API). Fields the schema does not know are dropped
by the SDK's record conformance, which logs one warning per stream naming them (never values), so
a new API field cannot break a target that builds tables from the SCHEMA message.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote

from singer_sdk import typing as th
from singer_sdk.streams.rest import PageContext

from tap_hpe_flex.auth import TokenRefusedError
from tap_hpe_flex.client import FlexStream
from tap_hpe_flex.errors import ENDPOINT_PERMISSIONS, FlexAPIError, FlexUserError, describe_error
from tap_hpe_flex.progress import PartitionProgress
from tap_hpe_flex.transport import IndexPaginator
from tap_hpe_flex.workspaces import WHOLE_TENANT, WORKSPACE_HEADER, tenant_failure

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context
    from singer_sdk.pagination import BaseAPIPaginator
    from singer_sdk.streams.rest import HTTPRequest

    from tap_hpe_flex.runtime import FlexRuntime
    from tap_hpe_flex.tap import TapHpeFlex

#: Records counted per progress update (one lock per batch instead of per record).
_PROGRESS_BATCH = 64

GROUP_BY_FIELDS = ("sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName")


def _s(name: str, description: str, *, required: bool = False) -> th.Property:
    return th.Property(name, th.StringType, required=required, description=description)


def _ts(name: str, description: str, *, required: bool = False) -> th.Property:
    return th.Property(name, th.DateTimeType, required=required, description=description)


_WORKSPACE = _s(
    "workspaceId",
    "GreenLake workspace the record was read from (32 hex digits; null when unknown)",
)

_COMMON = (
    _WORKSPACE,
    _s("id", "Unique ID of the resource", required=True),
    _ts("createdAt", "Date of creation of the resource", required=True),
    _ts("updatedAt", "Date of last update (canonical UTC form)", required=True),
    _s("type", "Type of resource, e.g. flex/orders", required=True),
    th.Property(
        "generation",
        th.IntegerType,
        required=True,
        description="Monotonically increasing update counter",
    ),
)

ORDER_SCHEMA = th.PropertiesList(
    *_COMMON,
    _s("billingAccountId", "Unique ID of the billing account", required=True),
    _s("sowId", "Statement of Work (SOW) ID of the billing order", required=True),
    _s("billingAccountName", "Name of the billing account", required=True),
    _ts("orderStartDate", "Date of order creation", required=True),
    _ts("orderEndDate", "Date of order expiration", required=True),
    _s("customerName", "Name of the customer", required=True),
    _s("resellerName", "Name of the reseller"),
    _s("distributorName", "Name of the distributor"),
    _s("partnerName", "Name of the partnered vendor"),
    th.Property("isFlexPartner", th.BooleanType, description="Whether it is a Flex Partner order"),
).to_dict()

DEVICE_SCHEMA = th.PropertiesList(
    *_COMMON,
    _s("macAddress", "MAC address of the device", required=True),
    _s("serialNumber", "Serial number of the device", required=True),
    _s("resourceId", "Unique resource ID of the device", required=True),
    _s("partNumber", "Part number of the device", required=True),
    _s("name", "Name of the device"),
    _s("deviceType", "Type of the device (open set: new values may appear)", required=True),
    _s("model", "Model of the device", required=True),
    _s("make", "Maker of the device", required=True),
    _s("billingAccountName", "Name of the associated billing account"),
    _s("billingTier", "Name of the associated distributor account"),
    th.Property(
        "tags",
        th.ArrayType(
            th.ObjectType(
                th.Property("name", th.StringType, required=True),
                th.Property("value", th.StringType, required=True),
            )
        ),
        description="Key/value tags of the device",
    ),
).to_dict()

ORDER_TRANSFORM_SCHEMA = th.PropertiesList(
    _WORKSPACE,
    th.Property(
        "groupBy",
        th.StringType(allowed_values=list(GROUP_BY_FIELDS)),
        required=True,
        description="The group-by field of this row",
    ),
    _s("value", "A distinct value of the group-by field", required=True),
    th.Property(
        "item",
        th.ObjectType(*(th.Property(f, th.StringType) for f in GROUP_BY_FIELDS)),
        description="The API's item object, as returned",
    ),
).to_dict()


def _context_key(context: Context | None) -> tuple[tuple[str, t.Any], ...]:
    return tuple(sorted((context or {}).items()))


class WorkspaceStream(FlexStream):
    """A Flex stream that knows its workspace(s): MSP partitions, skips, progress, ``--test``.

    With ``tenant_workspace_ids`` every workspace is a partition (its own bookmark) and
    ``workspaceId`` leads the primary key; without it the stream is unpartitioned as before and
    records carry the configured ``workspace_id``.
    """

    def __init__(self, tap: TapHpeFlex, runtime: FlexRuntime) -> None:
        if runtime.msp:
            natural = t.cast("tuple[str, ...]", type(self).primary_keys)
            self.primary_keys = ("workspaceId", *natural)
        self._parts: dict[tuple[tuple[str, t.Any], ...], PartitionProgress] = {}
        self._old_state_warned = False
        super().__init__(tap, runtime)

    @property
    def permission(self) -> str:
        """The GreenLake permission the stream needs (a 403 skips this scope of a tenant)."""
        return ENDPOINT_PERMISSIONS[self.endpoint]

    @property
    def rate_limit_keys(self) -> tuple[str, ...]:
        """Limiter keys whose retries count for this stream."""
        return (self.endpoint,)

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per workspace in MSP mode (the tenant list is read on first use)."""
        if not self.runtime.msp:
            return None
        return [{"workspaceId": ws} for ws in self.runtime.workspaces()]

    def partition_label(self, context: Context | None) -> str:
        """How progress lines name the partition."""
        parts = []
        if ws := (context or {}).get("workspaceId"):
            parts.append(f"workspace {self.runtime.skips.label(ws)}")
        parts.extend(f"{k}={v}" for k, v in (context or {}).items() if k != "workspaceId")
        return ", ".join(parts)

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """Tag the request with its workspace (``WorkspaceAuth`` picks the token from it)."""
        request = super().get_http_request(page=page)
        workspace = (page.stream_context or {}).get("workspaceId")
        if self.runtime.msp and workspace:
            request.headers[WORKSPACE_HEADER] = workspace
        return request

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Add ``workspaceId`` (the partition's, else the configured ``workspace_id``); conform."""
        result = super().post_process(row, context)
        if result is None:
            return None
        result["workspaceId"] = (context or {}).get("workspaceId") or self.runtime.home_workspace
        return self.conformer.conform(result)

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Count progress; in MSP mode skip a tenant that refuses (401/403) and go on."""
        workspace = (context or {}).get("workspaceId") if self.runtime.msp else None
        if workspace and self.runtime.skips.is_skipped(workspace, self.permission):
            self.logger.info("%s: tenant %s is skipped in this run", self.name, workspace)
            return
        self._warn_old_state()
        progress = self.runtime.progress
        part = progress.start(self.name, self.partition_label(context))
        self._parts[_context_key(context)] = part
        pending = 0
        try:
            for record in super().get_records(context):
                pending += 1
                if pending == _PROGRESS_BATCH:
                    progress.record(part, pending)
                    pending = 0
                yield record
        except FlexUserError as exc:
            reason = tenant_failure(exc) if workspace else None
            if workspace is None or reason is None:
                raise
            whole = isinstance(exc, TokenRefusedError) or not (
                isinstance(exc, FlexAPIError) and exc.status == 403
            )
            self.runtime.skips.skip(workspace, WHOLE_TENANT if whole else self.permission, reason)
            # Records read before the failure were emitted, but the bookmark must not move.
            self.get_context_state(context).pop("progress_markers", None)
        finally:
            progress.record(part, pending)
            progress.finish(part, self._plan.strategy.value if self._plan else None)

    def _warn_old_state(self) -> None:
        if self._old_state_warned or not self.runtime.msp:
            return
        self._old_state_warned = True
        if self.stream_state.get("replication_key_value"):
            self.logger.warning(
                "%s: the state holds a bookmark from a run without tenant_workspace_ids; "
                "bookmarks are now kept per workspace, so it is not used (each workspace starts "
                "from start_date)",
                self.name,
            )

    def update_sync_costs(
        self,
        request: requests.PreparedRequest,
        response: requests.Response,
        context: Context | None,
    ) -> dict[str, int]:
        """Also feed the partition's progress: one answered page and how far it reached."""
        costs = super().update_sync_costs(request, response, context)
        part = self._parts.get(_context_key(context))
        if part is not None:
            total, position = self.page_position(response, part)
            self.runtime.progress.request(part, total=total, position=position)
        return costs

    def note_page(self, body: dict[str, t.Any], context: Context | None) -> None:
        """Count a consumed pipelined page in the partition's progress."""
        part = self._parts.get(_context_key(context))
        if part is None:
            return
        total = body.get("total")
        offset = body.get("offset")
        start = offset if isinstance(offset, int) else part.position
        position = start + len(body.get("items") or [])
        self.runtime.progress.request(
            part, total=total if isinstance(total, int) else None, position=position
        )

    def page_position(
        self, response: requests.Response, part: PartitionProgress
    ) -> tuple[int | None, int]:
        """``(total, how far reading got)`` after ``response``."""
        body = self.page_payload(response) if response.status_code < 400 else {}
        total = body.get("total")
        offset = body.get("offset")
        count = len(body.get("items") or [])
        start = offset if isinstance(offset, int) else part.position
        return (total if isinstance(total, int) else None), start + count

    def check_context(self, workspace: str | None) -> dict[str, t.Any] | None:
        """Return the context of the ``--test`` request (a workspace, and what the stream needs)."""
        return {"workspaceId": workspace} if workspace else None

    def check_access(self, workspace: str | None) -> str:
        """Make one cheap request (``limit=1``) as a sync would; raise FlexUserError if refused.

        Returns a note for the report ("" when there is nothing to add).
        """
        self._plan = None
        context = self.check_context(workspace)
        http = self.get_http_request(page=PageContext(stream_context=context, next_page_token=0))
        if "limit" in http.params:
            http.params["limit"] = 1
        response = self.request_decorator(self._request)(self.prepare(http), context)
        if response.status_code == 404:
            return " (the first of device_ids was not found, but access is granted)"
        return ""


class FlexOrdersStream(WorkspaceStream):
    """Flex orders (GET /flex/v1beta1/orders), incremental on ``updatedAt``."""

    name = "orders"
    endpoint = "orders"
    path = "/flex/v1beta1/orders"
    primary_keys = ("id",)
    replication_key = "updatedAt"
    incremental = True
    schema = ORDER_SCHEMA


class FlexDevicesStream(WorkspaceStream):
    """Flex devices: the list endpoint, or GET /devices/{id} per ``device_ids`` entry."""

    name = "devices"
    endpoint = "devices"
    path = "/flex/v1beta1/devices"
    primary_keys = ("id",)
    replication_key = "updatedAt"
    incremental = True
    schema = DEVICE_SCHEMA

    @property
    def device_ids(self) -> list[str]:
        """The configured ids (empty: use the list endpoint)."""
        return [str(i) for i in self.config.get("device_ids") or []]

    @property
    def supports_server_narrowing(self) -> bool:
        """Single-device requests take no filter or sort: the bookmark is applied locally."""
        return not self.device_ids

    @property
    def offset_paging(self) -> bool:
        """The list endpoint pages by offset; ``device_ids`` mode walks the ids instead."""
        return not self.device_ids

    @property
    def rate_limit_keys(self) -> tuple[str, ...]:
        """The list endpoint and the single-device endpoint."""
        return ("devices", "devices/{id}")

    def page_position(
        self, response: requests.Response, part: PartitionProgress
    ) -> tuple[int | None, int]:
        """In ``device_ids`` mode progress counts ids requested out of the ids configured."""
        if ids := self.device_ids:
            return len(ids), part.requests + 1
        return super().page_position(response, part)

    def get_new_paginator(self) -> BaseAPIPaginator[t.Any]:
        """One request per id (used only in ``device_ids`` mode)."""
        return IndexPaginator(len(self.device_ids))

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """GET /devices/{id} for the id at the paginator's index."""
        request = super().get_http_request(page=page)
        if ids := self.device_ids:
            device_id = ids[page.next_page_token or 0]
            request.url = f"{self.url_base}{self.path}/{quote(device_id, safe='')}"
            request.params = {}
        return request

    def tolerate(self, response: requests.Response) -> bool:
        """Report an unknown device id (404) instead of failing."""
        return bool(self.device_ids) and response.status_code == 404

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """Yield the single device (or warn on a 404) in ``device_ids`` mode."""
        if not self.device_ids:
            yield from super().parse_response(response)
            return
        device_id = response.url.rsplit("/", 1)[-1]
        if response.status_code == 404:
            self.logger.warning(
                "devices: device id %s was not found; skipping it (%s)",
                device_id,
                describe_error(response),
            )
            return
        body = self.page_payload(response)
        yield from self.keep_changed([body])


class FlexOrderTransformsStream(WorkspaceStream):
    """Distinct order values per group-by field (GET /orders/transform), full table.

    One partition per ``order_transform_group_by`` field; each row keeps the API's item object
    (``item``) beside the key columns so no loader sees a stream made only of keys.
    """

    name = "order_transforms"
    endpoint = "orders/transform"
    path = "/flex/v1beta1/orders/transform"
    primary_keys = ("groupBy", "value")
    replication_key = None
    schema = ORDER_TRANSFORM_SCHEMA

    @property
    def group_by_fields(self) -> list[str]:
        """The configured group-by fields, in order, without repeats."""
        return list(dict.fromkeys(self.config.get("order_transform_group_by") or GROUP_BY_FIELDS))

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per group-by field (per workspace and group-by field in MSP mode)."""
        fields = self.group_by_fields
        if not self.runtime.msp:
            return [{"groupBy": f} for f in fields]
        workspaces = self.runtime.workspaces()
        return [{"workspaceId": ws, "groupBy": f} for ws in workspaces for f in fields]

    def check_context(self, workspace: str | None) -> dict[str, t.Any] | None:
        """``--test`` asks for the first group-by field."""
        return {**(super().check_context(workspace) or {}), "groupBy": self.group_by_fields[0]}

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        """Add ``group-by`` for the partition."""
        params = super().get_url_params(context, next_page_token)
        params["group-by"] = (context or {})["groupBy"]
        return params

    def record_key(self, item: dict[str, t.Any]) -> t.Hashable:
        """Rows have no id: the group-by value identifies one (it is unique per partition)."""
        field = (self.context or {}).get("groupBy")
        value = item.get(field) if field else None
        return super().record_key(item) if value is None else str(value)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Wrap the item as {groupBy, value, item}; skip an item without a value."""
        field = (context or {})["groupBy"]
        value = row.get(field)
        if value is None:
            self.logger.warning("order_transforms: an item without %s was skipped", field)
            return None
        return super().post_process({"groupBy": field, "value": str(value), "item": row}, context)
