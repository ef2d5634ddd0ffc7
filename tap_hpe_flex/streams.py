"""The Flex streams, declared: path, keys, schema, permission, filter. Nothing is computed here.

Adding an endpoint is one class below (with its schema in ``schemas.py``) and one line in
``TapHpeFlex.discover_streams``.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote

from tap_hpe_flex.client import FlexStream
from tap_hpe_flex.drift import default_key
from tap_hpe_flex.incremental import FULL_PASS, Plan, Strategy, narrow
from tap_hpe_flex.odata import ODataFilter
from tap_hpe_flex.partition import ListPartition
from tap_hpe_flex.schemas import DEVICE_SCHEMA, ORDER_SCHEMA, ORDER_TRANSFORM_SCHEMA

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_hpe_flex.drift import Key
    from tap_hpe_flex.progress import PartitionProgress

#: Fields the orders list filters on (HPE's guide and OpenAPI document).
ORDER_FILTER_FIELDS = (
    "id",
    "billingAccountId",
    "sowId",
    "billingAccountName",
    "customerName",
    "resellerName",
    "partnerName",
    "distributorName",
    "isFlexPartner",
)


class OrdersStream(FlexStream):
    """Flex orders (GET /flex/v1beta1/orders), incremental on ``updatedAt``."""

    name = "orders"
    path = "/flex/v1beta1/orders"
    primary_keys = ("id",)
    replication_key = "updatedAt"
    schema = ORDER_SCHEMA
    permission = "View on Orders"
    filter_setting = "orders_filter"
    filterable_fields = ORDER_FILTER_FIELDS
    incremental = True


class DevicesStream(FlexStream):
    """Flex devices (GET /flex/v1beta1/devices), incremental on ``updatedAt``."""

    name = "devices"
    path = "/flex/v1beta1/devices"
    primary_keys = ("id",)
    replication_key = "updatedAt"
    schema = DEVICE_SCHEMA
    permission = "View on Devices"
    filter_setting = "devices_filter"
    filterable_fields = (
        "id",
        "macAddress",
        "serialNumber",
        "resourceId",
        "partNumber",
        "name",
        "type",
        "model",
        "make",
        "billingAccountName",
        "billingTier",
    )
    incremental = True


class DevicesByIdStream(DevicesStream):
    """The devices of ``device_ids`` only: one GET /flex/v1beta1/devices/{id} each.

    Single-device requests take no filter or sort, so the bookmark is applied to each answer;
    an unknown id (404) is a warning, not an error.
    """

    @property
    def rate_limit_keys(self) -> tuple[str, ...]:
        """The single-device endpoint (and the list endpoint, for a run that used both)."""
        return ("devices", "devices/{id}")

    def start_prefetch(self) -> None:
        """Nothing is fetched ahead: each id is one request."""

    def read_partition(
        self, context: Context | None, part: PartitionProgress
    ) -> t.Iterator[dict[str, t.Any]]:
        """Request each configured id in turn; keep the devices changed since the bookmark."""
        ids = self.settings.device_ids
        bookmark = self.starting_bookmark(context)
        plan = FULL_PASS if bookmark is None else Plan(Strategy.CLIENT, False, bookmark)
        self._strategies.add(plan.strategy.value)
        for index, device_id in enumerate(ids):
            answer = self.requester.get(
                f"{self.url}/{quote(device_id, safe='')}",
                workspace=self.workspace_of(context),
                tolerate=frozenset({404}),
            )
            if index == 0:
                self.cap_bookmark(context, answer.date)
            self.runtime.progress.request(part, total=len(ids), position=index + 1)
            if answer.status == 404:
                self.logger.warning(
                    "devices: device id %s was not found; skipping it (%s)",
                    device_id,
                    answer.detail,
                )
                continue
            yield from narrow([answer.body], plan)[0]

    def check_access(self, workspace: str | None) -> str:
        """Ask for the first configured id; a 404 still shows that access is granted."""
        answer = self.requester.get(
            f"{self.url}/{quote(self.settings.device_ids[0], safe='')}",
            workspace=workspace,
            tolerate=frozenset({404}),
        )
        if answer.status == 404:
            return " (the first of device_ids was not found, but access is granted)"
        return ""


class OrderTransformsStream(FlexStream):
    """Distinct order values per group-by field (GET /orders/transform), full table.

    One partition per ``order_transform_group_by`` field; each row keeps the API's item object
    (``item``) beside the key columns so no loader sees a stream made only of keys.
    """

    name = "order_transforms"
    path = "/flex/v1beta1/orders/transform"
    primary_keys = ("groupBy", "value")
    replication_key = None
    schema = ORDER_TRANSFORM_SCHEMA
    permission = "View on Orders"
    filter_setting = "orders_filter"
    filterable_fields = ORDER_FILTER_FIELDS  # the orders filter; see filter_problem
    #: What GET /orders/transform itself filters on: the orders fields but id and isFlexPartner.
    transform_filter_fields = tuple(
        f for f in ORDER_FILTER_FIELDS if f not in {"id", "isFlexPartner"}
    )

    def filter_problem(self) -> str | None:
        """Say why the orders filter cannot apply to the transform endpoint, if it cannot."""
        text = self.user_filter
        if text is None:
            return None
        parsed = ODataFilter.parse(text, "orders", fields=ORDER_FILTER_FIELDS)
        bad = parsed.unsupported_fields(self.transform_filter_fields)
        if not bad:
            return None
        return (
            f"orders_filter uses {', '.join(bad)}, which GET /flex/v1beta1/orders/transform "
            "cannot filter on, so order_transforms would not match the filtered orders: "
            "drop that clause or deselect the order_transforms stream"
        )

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per group-by field (per workspace and group-by field in MSP mode)."""
        fields = self.settings.order_transform_group_by
        if not self.settings.msp:
            return [{"groupBy": f} for f in fields]
        return [
            {"workspaceId": ws, "groupBy": f} for ws in self.runtime.workspaces() for f in fields
        ]

    def record_key(self, context: Context | None) -> t.Callable[[dict[str, t.Any]], Key]:
        """Rows have no id: the group-by value identifies one (it is unique per partition)."""
        field = (context or {})["groupBy"]

        def key(item: dict[str, t.Any]) -> Key:
            value = item.get(field)
            return default_key(item) if value is None else str(value)

        return key

    def list_partition(self, context: Context | None) -> ListPartition:
        """Add ``group-by`` for the partition."""
        base = super().list_partition(context)
        return ListPartition(
            **{**base.__dict__, "extra_params": {"group-by": (context or {})["groupBy"]}}
        )

    def check_context(self, workspace: str | None) -> dict[str, t.Any] | None:
        """``--test`` asks for the first group-by field."""
        group_by = self.settings.order_transform_group_by[0]
        return {**(super().check_context(workspace) or {}), "groupBy": group_by}

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Wrap the item as {groupBy, value, item}; skip an item without a value."""
        field = (context or {})["groupBy"]
        value = row.get(field)
        if value is None:
            self.logger.warning("order_transforms: an item without %s was skipped", field)
            return None
        return super().post_process({"groupBy": field, "value": str(value), "item": row}, context)
