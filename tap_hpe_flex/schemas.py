"""JSON Schemas of the Flex streams, following HPE's OpenAPI document (Order, Device, transforms).

Fields the spec requires are non-null, optional ones nullable. ``deviceType`` is a plain string
(the spec's enum would break on the first new value of this beta API). Fields the schema does not
know are dropped by the record conformance, which logs one warning per stream naming them (never
values), so a new API field cannot break a target that builds tables from the SCHEMA message.
"""

from __future__ import annotations

from singer_sdk import typing as th

from tap_hpe_flex.settings import GROUP_BY_FIELDS


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
