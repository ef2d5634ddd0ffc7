"""JSON Schemas of the Flex streams, following HPE's OpenAPI document (Order, Device, transforms).

Only the fields a record cannot do without are required and non-null: its key (``id``; ``groupBy``
and ``value`` of a transform row) and ``updatedAt``, the replication key. Every other field is
nullable even where HPE's spec marks it required: a beta API that sends one ``null`` (or a value
of another type, which ``conform.py`` turns into ``null`` when no lossless coercion fits) must not
stop a sync. ``deviceType`` is a plain string
(the spec's enum would break on the first new value of this beta API). Fields the schema does not
know are dropped by the record conformance, which logs one warning per stream naming them (never
values), so a new API field cannot break a target that builds tables from the SCHEMA message.
"""

from __future__ import annotations

from singer_sdk import typing as th

from tap_hpe_flex.config_schema import GROUP_BY_FIELDS

#: The fields a record cannot do without (see the module docstring); the spec's other required
#: fields are nullable here.
ESSENTIAL = frozenset({"id", "updatedAt", "groupBy", "value"})


def _s(name: str, description: str) -> th.Property:
    return th.Property(name, th.StringType, required=name in ESSENTIAL, description=description)


def _ts(name: str, description: str) -> th.Property:
    return th.Property(name, th.DateTimeType, required=name in ESSENTIAL, description=description)


_WORKSPACE = _s(
    "workspaceId",
    "GreenLake workspace the record was read from (32 hex digits; null when unknown)",
)

_COMMON = (
    _WORKSPACE,
    _s("id", "Unique ID of the resource"),
    _ts("createdAt", "Date of creation of the resource"),
    _ts("updatedAt", "Date of last update (canonical UTC form)"),
    _s("type", "Type of resource, e.g. flex/orders"),
    th.Property(
        "generation", th.IntegerType, description="Monotonically increasing update counter"
    ),
)

ORDER_SCHEMA = th.PropertiesList(
    *_COMMON,
    _s("billingAccountId", "Unique ID of the billing account"),
    _s("sowId", "Statement of Work (SOW) ID of the billing order"),
    _s("billingAccountName", "Name of the billing account"),
    _ts("orderStartDate", "Date of order creation"),
    _ts("orderEndDate", "Date of order expiration"),
    _s("customerName", "Name of the customer"),
    _s("resellerName", "Name of the reseller"),
    _s("distributorName", "Name of the distributor"),
    _s("partnerName", "Name of the partnered vendor"),
    th.Property("isFlexPartner", th.BooleanType, description="Whether it is a Flex Partner order"),
).to_dict()

DEVICE_SCHEMA = th.PropertiesList(
    *_COMMON,
    _s("macAddress", "MAC address of the device"),
    _s("serialNumber", "Serial number of the device"),
    _s("resourceId", "Unique resource ID of the device"),
    _s("partNumber", "Part number of the device"),
    _s("name", "Name of the device"),
    _s("deviceType", "Type of the device (open set: new values may appear)"),
    _s("model", "Model of the device"),
    _s("make", "Maker of the device"),
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
    _s("value", "A distinct value of the group-by field"),
    th.Property(
        "item",
        th.ObjectType(*(th.Property(f, th.StringType) for f in GROUP_BY_FIELDS)),
        description="The API's item object, as returned",
    ),
).to_dict()
