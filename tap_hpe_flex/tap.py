"""TapHpeFlex: settings, stream discovery and a CLI that reports operator mistakes in one line."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import typing as t
from functools import cached_property, partial

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.plugin_base import SingerCommand
from singer_sdk.tap_base import CliTestOptionValue

from tap_hpe_flex import __version__
from tap_hpe_flex.errors import FlexConfigError, FlexUserError
from tap_hpe_flex.incremental import Strategy
from tap_hpe_flex.redact import install as install_redactor
from tap_hpe_flex.runtime import DEFAULT_CONCURRENCY, DEFAULT_WORKSPACES_API_URL, FlexRuntime
from tap_hpe_flex.streams import (
    GROUP_BY_FIELDS,
    FlexDevicesStream,
    FlexOrdersStream,
    FlexOrderTransformsStream,
    WorkspaceStream,
)
from tap_hpe_flex.writer import FlexWriter

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.streams import Stream

DEFAULT_TOKEN_URL = (
    "https://global.api.greenlake.hpe.com/authorization/v2/oauth2/{workspace_id}/token"
)
DEFAULT_API_URL = "https://us-west.api.greenlake.hpe.com"
#: ``ctx.meta`` flag: ``--test`` was given (run after every option, the catalog included, is read).
_CONNECTION_TEST = "tap_hpe_flex.connection_test"


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
    message_writer_class = FlexWriter

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
            "fail_on_skipped_tenants",
            th.BooleanType,
            default=False,
            description=(
                "Exit non-zero at the end of a run in which a tenant was skipped (token exchange "
                "refused, or 401/403). Default: the other tenants complete, a WARNING names the "
                "skipped ones and the run exits 0."
            ),
        ),
        th.Property(
            "progress_interval_seconds",
            th.NumberType(minimum=0),
            default=30,
            description=(
                "Seconds between progress lines of a running stream partition (records, total, "
                "requests, pace, time left); 0 turns them off. Summaries are always logged."
            ),
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
        finalises bookmarks only at stream end), so a rerun from it loses nothing. A signal that
        arrives while a Singer line is half written waits for the line (``FlexWriter.deferred``).
        """
        writer = self.message_writer
        if isinstance(writer, FlexWriter) and writer.writing:
            writer.deferred = partial(self._handle_termination, signum, frame)
            return
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
        """Validate what JSON Schema cannot, before any request: filters, token_url, tenants."""
        runtime = self.runtime
        runtime.filters  # noqa: B018 - parsing raises FlexConfigError
        runtime.tenant_settings  # noqa: B018 - invalid workspace IDs raise FlexConfigError
        _ = runtime.authenticator  # resolves token_url's {workspace_id}
        problem = runtime.transform_filter_problem()
        if problem and self.streams["order_transforms"].selected:
            raise FlexConfigError(problem)

    def sync_all(self) -> None:  # type: ignore[misc]  # final in the SDK; extended, not replaced
        """Sync, then log one summary line per stream and, in MSP mode, the skipped tenants.

        Overridden although the SDK marks it final: the SDK offers no end-of-run hook, and this
        only adds lines after (and an exit status on top of) the SDK's own sync.
        """
        if self.runtime.max_concurrent_requests > 1:
            self.runtime.on_first_partition = self.start_pipelines
        try:
            super().sync_all()
        finally:
            for stream in self.streams.values():
                if isinstance(stream, WorkspaceStream):
                    stream.stop_pipelines()
            self.runtime.close_pools()
            self.log_summaries()
        if self.runtime.skips and self.config.get("fail_on_skipped_tenants"):
            msg = "Tenants were skipped and fail_on_skipped_tenants is set (see the WARNING lines)"
            raise FlexUserError(msg)

    def start_pipelines(self) -> None:
        """Start reading every selected stream partition's pages, so endpoints run together.

        Called when the first partition begins (after the SDK has reset its state markers);
        each stream then consumes its pipelines in its turn. See docs/concurrency.md.
        """
        for stream in self.streams.values():
            if isinstance(stream, WorkspaceStream) and stream.selected:
                contexts: list[dict | None] = [None]
                if stream.partitions:
                    contexts = list(stream.partitions)
                stream.start_pipelines(contexts)

    def log_summaries(self) -> None:
        """One INFO line per stream that ran; one WARNING line listing skipped tenants."""
        for stream in self.streams.values():
            if isinstance(stream, WorkspaceStream):
                line = self.runtime.progress.summary_line(stream.name, stream.rate_limit_keys)
                if line:
                    self.logger.info("%s", line)
        if summary := self.runtime.skips.summary():
            self.logger.warning("%s", summary)

    def run_flex_connection_test(self) -> bool:
        """Check credentials and permissions: one ``limit=1`` request per selected stream.

        One line per stream (per tenant in MSP mode): OK, or why not (a 403 names the missing
        permission). Returns False when any check failed.
        """
        streams = [s for s in self.streams.values() if s.selected]
        ok = True
        try:
            workspaces: list[str | None] = (
                list(self.runtime.workspaces()) if self.runtime.msp else [None]
            )
        except FlexUserError as exc:
            self.logger.error("Connection test: FAILED: %s", exc)
            return False
        for workspace in workspaces:
            where = f" [tenant {self.runtime.skips.label(workspace)}]" if workspace else ""
            for stream in streams:
                assert isinstance(stream, WorkspaceStream)
                try:
                    note = stream.check_access(workspace)
                except FlexUserError as exc:
                    ok = False
                    self.logger.error("Connection test %s%s: FAILED: %s", stream.name, where, exc)
                else:
                    self.logger.info("Connection test %s%s: OK%s", stream.name, where, note)
        return ok

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test``: defer to after option parsing (so ``--catalog`` is known); schema as is."""
        if value == CliTestOptionValue.All.value:
            ctx.meta[_CONNECTION_TEST] = True
            return
        super().cb_test(ctx, param, value)

    @classmethod
    def _connection_test_cli(cls, ctx: click.Context, params: dict[str, t.Any]) -> None:
        config = params.get("config")
        catalog = params.get("catalog")
        tap = cls(
            config=config.config if config else {},
            catalog=None if catalog is None else json.loads(catalog.read()),
            parse_env_config=bool(config and config.parse_env),
            validate_config=True,
        )
        ctx.exit(0 if tap.run_flex_connection_test() else 1)

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
        sync = command.callback
        assert sync is not None

        def callback(**params: t.Any) -> t.Any:
            ctx = click.get_current_context()
            if ctx.meta.get(_CONNECTION_TEST):
                cls._connection_test_cli(ctx, params)
            return sync(**params)

        command.callback = callback
        return command


logging.getLogger("tap-hpe-flex").addHandler(logging.NullHandler())

if __name__ == "__main__":  # pragma: no cover
    TapHpeFlex.cli()
