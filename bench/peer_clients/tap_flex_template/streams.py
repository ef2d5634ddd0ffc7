"""The two streams, with schemas converted from HPE's OpenAPI document (``schemas/``)."""

from __future__ import annotations

from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_flex_template.client import SCHEMAS_DIR, FlexStream

SCHEMAS = SchemaDirectory(SCHEMAS_DIR)


class OrdersStream(FlexStream):
    """``GET /orders``."""

    name = "orders"
    path = "/orders"
    primary_keys = ("id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)


class DevicesStream(FlexStream):
    """``GET /devices``."""

    name = "devices"
    path = "/devices"
    primary_keys = ("id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)
