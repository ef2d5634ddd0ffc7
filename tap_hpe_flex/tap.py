"""TapHpeFlex: settings, stream discovery and a CLI that reports operator mistakes in one line."""

from __future__ import annotations

import contextlib
import logging
import sys
import typing as t
from functools import cached_property

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.plugin_base import SingerCommand

from tap_hpe_flex import __version__
from tap_hpe_flex.errors import FlexConfigError, FlexUserError
from tap_hpe_flex.incremental import Strategy
from tap_hpe_flex.redact import install as install_redactor
from tap_hpe_flex.runtime import FlexRuntime
from tap_hpe_flex.streams import (
    GROUP_BY_FIELDS,
    FlexDevicesStream,
    FlexOrdersStream,
    FlexOrderTransformsStream,
)

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.streams import Stream

DEFAULT_TOKEN_URL = (
    "https://global.api.greenlake.hpe.com/authorization/v2/oauth2/{workspace_id}/token"
)
DEFAULT_API_URL = "https://us-west.api.greenlake.hpe.com"


class FlexSingerCommand(SingerCommand):
    """The SDK command, but a FlexUserError ends the run with one ERROR line and exit code 1.

    ``main`` is wrapped (not only ``invoke``) so errors raised from ``--test``/``--discover``
    callbacks are covered too.
    """

    def main(self, *args: t.Any, **kwargs: t.Any) -> t.Any:  # noqa: D102
        try:
            return super().main(*args, **kwargs)
        except FlexUserError as exc:
            self.logger.error("%s", exc)
            sys.exit(1)

    def invoke(self, ctx: click.Context) -> t.Any:  # noqa: D102
        try:
            return super().invoke(ctx)
        except FlexUserError as exc:
            self.logger.error("%s", exc)
            ctx.exit(1)


class TapHpeFlex(Tap):
    """Singer tap for the HPE GreenLake Flex Solutions API (orders, order transforms, devices)."""

    name = "tap-hpe-flex"
    message_writer_class = MsgSpecWriter

    config_jsonschema = th.PropertiesList(
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
            description="Lower bound on updatedAt for the first sync (no bookmark yet).",
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
        th.Property(
            "rate_limit_window_seconds",
            th.NumberType(exclusive_minimum=0),
            default=60,
            description=(
                "Length of the pacing window that requests_per_minute applies to. Leave at 60 "
                "for GreenLake; tests set a short window to match a simulator's."
            ),
        ),
        th.Property(
            "max_retry_seconds",
            th.NumberType(minimum=0),
            default=600,
            description=(
                "How long one request is retried after 429, 5xx, dropped connections, timeouts "
                "or cut-off answers before the sync fails with one line naming the endpoint, the "
                "last status and the debugId. Waits the server names are honoured exactly."
            ),
        ),
        th.Property(
            "retry_initial_wait_seconds",
            th.NumberType(exclusive_minimum=0),
            default=2,
            description=(
                "First backoff wait when the server names none; doubles per failure, with "
                "jitter, up to retry_max_wait_seconds."
            ),
        ),
        th.Property(
            "retry_max_wait_seconds",
            th.NumberType(exclusive_minimum=0),
            default=60,
            description="Longest single backoff wait when the server names none.",
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
            "request_timeout",
            th.NumberType(exclusive_minimum=0),
            default=60,
            description="Seconds to wait for each HTTP response.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            default=f"tap-hpe-flex/{__version__}",
            description="User-Agent header sent with every request.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, validate_config: bool = True, **kwargs: t.Any) -> None:
        super().__init__(*args, validate_config=validate_config, **kwargs)
        _ = self.runtime  # registers the client secret with the log redactor
        install_redactor()
        if validate_config:
            self.check_settings()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT: write the state (as the SDK does), then exit non-zero.

        The SDK exits with status 0, which tells an orchestrator that an interrupted sync
        succeeded. The state written here never holds an unfinished stream's bookmark (the SDK
        finalises bookmarks only at stream end), so a rerun from it loses nothing.
        """
        with contextlib.suppress(SystemExit):
            super()._handle_termination(signum, frame)
        self.logger.warning(
            "Interrupted by signal %d: the last STATE keeps the previous bookmark of any "
            "unfinished stream; run the sync again to resume",
            signum,
        )
        sys.exit(128 + signum)

    @cached_property
    def runtime(self) -> FlexRuntime:
        """State shared by the streams of this run (token, limiter, strategies, filters)."""
        return FlexRuntime(self.config)

    def check_settings(self) -> None:
        """Validate what JSON Schema cannot, before any request: filters and token_url."""
        runtime = self.runtime
        runtime.filters  # noqa: B018 - parsing raises FlexConfigError
        _ = runtime.authenticator  # resolves token_url's {workspace_id}
        problem = runtime.transform_filter_problem()
        if problem and self.streams["order_transforms"].selected:
            raise FlexConfigError(problem)

    def discover_streams(self) -> list[Stream]:
        """Return the three Flex streams, sharing one runtime."""
        return [
            FlexOrdersStream(self, self.runtime),
            FlexDevicesStream(self, self.runtime),
            FlexOrderTransformsStream(self, self.runtime),
        ]

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """Return the SDK's command with one-line handling of operator errors."""
        command = super().get_singer_command()
        command.__class__ = FlexSingerCommand
        return command


logging.getLogger("tap-hpe-flex").addHandler(logging.NullHandler())

if __name__ == "__main__":  # pragma: no cover
    TapHpeFlex.cli()
