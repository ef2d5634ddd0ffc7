"""The template's ``Tap`` class: settings and the stream list."""

from __future__ import annotations

from singer_sdk import Tap
from singer_sdk import typing as th

from tap_flex_template import streams


class TapFlexTemplate(Tap):
    """Flex through the singer-sdk template, defaults everywhere else."""

    name = "tap-flex-template"
    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType, required=True),
        th.Property("token_url", th.StringType, required=True),
        th.Property("client_id", th.StringType, required=True),
        th.Property("client_secret", th.StringType, required=True, secret=True),
    ).to_dict()

    def discover_streams(self) -> list[streams.FlexStream]:
        """Orders and devices, the streams every peer of the benchmark syncs."""
        return [streams.OrdersStream(self), streams.DevicesStream(self)]
