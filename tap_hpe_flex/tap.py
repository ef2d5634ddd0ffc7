"""TapHpeFlex: stream discovery, the sync's start and end, ``--test``, and a one-line CLI.

Settings are declared and parsed in ``settings.py``, shared run state is built in ``runtime.py``,
streams are declared in ``streams.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import threading
import typing as t
from functools import cached_property

import click
import singer_sdk.singerlib as singer
from singer_sdk.plugin_base import SingerCommand
from singer_sdk.tap_base import CliTestOptionValue

from tap_hpe_flex.client import FlexStream
from tap_hpe_flex.config_schema import CONFIG_SCHEMA
from tap_hpe_flex.errors import FlexConfigError, FlexUserError, TokenEndpointUnavailableError
from tap_hpe_flex.redact import REDACTOR
from tap_hpe_flex.redact import install as install_redactor
from tap_hpe_flex.runtime import FlexRuntime
from tap_hpe_flex.sdk_private import RunHooks
from tap_hpe_flex.settings import Settings, unknown_settings
from tap_hpe_flex.streams import (
    DevicesByIdStream,
    DevicesStream,
    OrdersStream,
    OrderTransformsStream,
)
from tap_hpe_flex.writer import FlexWriter

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.streams import Stream

#: Longest a ``--test`` request is retried (and waited for): a check, not a sync.
TEST_RETRY_BUDGET_S = 15.0


def _verdict(line: str) -> None:
    """Print one plain ``--test`` verdict line on stdout (the log keeps its own line)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


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


class TapHpeFlex(RunHooks):
    """Singer tap for the HPE GreenLake Flex Solutions API (orders, order transforms, devices)."""

    name = "tap-hpe-flex"
    message_writer_class = FlexWriter

    config_jsonschema = CONFIG_SCHEMA

    def __init__(
        self,
        *args: t.Any,
        validate_config: bool = True,
        connection_test: bool = False,
        **kwargs: t.Any,
    ) -> None:
        #: False for --about/--discover: settings then fall back to defaults instead of failing.
        self.validating = validate_config
        #: ``--test``: a short retry budget, so an unreachable host is reported in seconds.
        self.connection_test = connection_test
        super().__init__(*args, validate_config=validate_config, **kwargs)
        REDACTOR.add(self.config.get("client_secret"))
        install_redactor()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self.handle_termination)
        if validate_config:
            for line in unknown_settings(self.config, self.config_jsonschema["properties"]):
                self.logger.warning("%s", line)
            self.check_settings()

    def handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT: write the state (as the SDK does), then exit non-zero.

        The SDK exits with status 0, which tells an orchestrator that an interrupted sync
        succeeded. The state written here never holds an unfinished stream's bookmark (the SDK
        finalises bookmarks only at stream end), so a rerun from it loses nothing. A signal that
        arrives while a Singer line is half written waits for the line (``FlexWriter.deferred``).
        """
        writer = self.message_writer
        if isinstance(writer, FlexWriter) and writer.writing:
            writer.deferred = lambda: self.handle_termination(signum, frame)
            return
        self.write_message(singer.StateMessage(value=self.state))
        self.logger.warning(
            "Interrupted by signal %d: the last STATE keeps the previous bookmark of any "
            "unfinished stream; run the sync again to resume",
            signum,
        )
        sys.exit(128 + signum)

    @cached_property
    def settings(self) -> Settings:
        """The run's settings, parsed once (FlexConfigError names the first bad one)."""
        try:
            settings = Settings.from_config(self.config)
        except FlexConfigError:
            if self.validating:
                raise
            return Settings.from_config({})  # --about/--discover need no valid settings
        if self.connection_test:
            settings = dataclasses.replace(
                settings,
                max_retry_s=min(settings.max_retry_s, TEST_RETRY_BUDGET_S),
                request_timeout_s=min(settings.request_timeout_s, TEST_RETRY_BUDGET_S),
            )
        return settings

    @cached_property
    def runtime(self) -> FlexRuntime:
        """State shared by the streams of this run (token, limiter, strategies, tenants)."""
        return FlexRuntime(self.settings)

    def check_settings(self) -> None:
        """Validate what JSON Schema cannot, before any request: filters, token_url, tenants."""
        _ = self.runtime.authenticator  # resolves token_url's {workspace_id}
        for stream in self.streams.values():
            assert isinstance(stream, FlexStream)
            _ = stream.user_filter  # parsing raises FlexConfigError
            if stream.selected and (problem := stream.filter_problem()):
                raise FlexConfigError(problem)

    def before_sync(self) -> None:
        """Fetch ahead in this run: pages start to come when the first partition begins."""
        self.runtime.begin_run()

    def after_sync(self, *, failed: bool) -> None:
        """Stop what was fetched ahead, write the final STATE, log summaries, name skipped tenants.

        Only a successful run ends its full-table passes (deletion markers, ACTIVATE_VERSION,
        then the new key sets in this final STATE): every earlier STATE, and any STATE of a
        failed or interrupted run, keeps the previous key sets, so such a run deletes nothing
        and the next one still compares with the last complete pass.
        """
        for stream in self.streams.values():
            if isinstance(stream, FlexStream):
                stream.prefetcher.close()
        self.runtime.close()
        if not failed:  # the run's last message: the final state, after every record
            for stream in self.streams.values():
                if isinstance(stream, FlexStream):  # markers, ACTIVATE_VERSION, new key sets
                    stream.finish_run()
            self.write_message(singer.StateMessage(value=self.state))
        self.log_summaries()
        if not failed and self.runtime.skips and self.settings.fail_on_skipped_tenants:
            msg = "Tenants were skipped and fail_on_skipped_tenants is set (see the WARNING lines)"
            raise FlexUserError(msg)

    def log_summaries(self) -> None:
        """One INFO line per stream that ran; one WARNING line listing skipped tenants."""
        for stream in self.streams.values():
            if isinstance(stream, FlexStream):
                line = self.runtime.progress.summary_line(stream.name, stream.rate_limit_keys)
                if line:
                    self.logger.info("%s", line)
                if bad := stream.conformer.report():
                    self.logger.warning("%s", bad)
        if summary := self.runtime.skips.summary():
            self.logger.warning("%s", summary)

    def run_flex_connection_test(self) -> bool:
        """Check credentials and permissions: one ``limit=1`` request per selected stream.

        One line per stream (per tenant in MSP mode): OK, or why not (a 403 names the missing
        permission), on stdout as a plain verdict and in the log. Returns False when any check
        failed.
        """
        streams = [s for s in self.streams.values() if s.selected]
        ok = True
        try:
            workspaces: list[str | None] = (
                list(self.runtime.workspaces()) if self.settings.msp else [None]
            )
        except FlexUserError as exc:
            self.logger.error("Connection test: FAILED: %s", exc)
            _verdict(f"connection test: FAILED: {exc}")
            return False
        for workspace in workspaces:
            where = f" [tenant {self.runtime.skips.label(workspace)}]" if workspace else ""
            token_failure: FlexUserError | None = None  # the same for every stream: ask once
            for stream in streams:
                assert isinstance(stream, FlexStream)
                try:
                    if token_failure is not None:
                        raise token_failure
                    note = stream.check_access(workspace)
                except FlexUserError as exc:
                    if isinstance(exc, TokenEndpointUnavailableError):
                        token_failure = exc
                    ok = False
                    self.logger.error("Connection test %s%s: FAILED: %s", stream.name, where, exc)
                    _verdict(f"{stream.name}{where}: FAILED: {exc}")
                else:
                    self.logger.info("Connection test %s%s: OK%s", stream.name, where, note)
                    _verdict(f"{stream.name}{where}: OK{note}")
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
            connection_test=True,
        )
        ctx.exit(0 if tap.run_flex_connection_test() else 1)

    def discover_streams(self) -> list[Stream]:
        """Return the three Flex streams, sharing one runtime."""
        runtime = self.runtime
        devices = DevicesByIdStream if self.settings.device_ids else DevicesStream
        return [
            OrdersStream(self, runtime),
            devices(self, runtime),
            OrderTransformsStream(self, runtime),
        ]

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """Return the SDK's command with one-line handling of operator errors."""
        command = super().get_singer_command()
        command.__class__ = FlexSingerCommand
        for option in command.params:
            if option.name == "test" and isinstance(option, click.Option):
                option.help = (
                    "Check credentials and permissions: one cheap request per selected stream "
                    f"(per tenant), retried for at most {TEST_RETRY_BUDGET_S:g} s; prints one "
                    "verdict line per stream and exits 1 if any failed. --test=schema prints "
                    "the SCHEMA messages."
                )
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
