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

from tap_hpe_flex.client import FlexStream
from tap_hpe_flex.errors import describe_error
from tap_hpe_flex.transport import IndexPaginator

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context
    from singer_sdk.pagination import BaseAPIPaginator
    from singer_sdk.streams.rest import HTTPRequest, PageContext

GROUP_BY_FIELDS = ("sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName")


def _s(name: str, description: str, *, required: bool = False) -> th.Property:
    return th.Property(name, th.StringType, required=required, description=description)


def _ts(name: str, description: str, *, required: bool = False) -> th.Property:
    return th.Property(name, th.DateTimeType, required=required, description=description)


_COMMON = (
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


class FlexOrdersStream(FlexStream):
    """Flex orders (GET /flex/v1beta1/orders), incremental on ``updatedAt``."""

    name = "orders"
    endpoint = "orders"
    path = "/flex/v1beta1/orders"
    primary_keys = ("id",)
    replication_key = "updatedAt"
    incremental = True
    schema = ORDER_SCHEMA


class FlexDevicesStream(FlexStream):
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


class FlexOrderTransformsStream(FlexStream):
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
    def partitions(self) -> list[dict] | None:
        """One partition per configured group-by field."""
        fields = self.config.get("order_transform_group_by") or list(GROUP_BY_FIELDS)
        return [{"groupBy": f} for f in dict.fromkeys(fields)]

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
        return {"groupBy": field, "value": str(value), "item": row}
