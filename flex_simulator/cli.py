"""``flex-simulator``: run the Flex API simulator in the foreground.

The first line printed (and flushed) is the URL, so scripts can start it with ``--port 0`` and read
the chosen port from stdout. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .config import CHURN_MODES, PERMISSIONS, SORT_MODES, SWITCH_MODES, SimulatorConfig
from .server import FlexSimulator

_D = SimulatorConfig()


def build_parser() -> argparse.ArgumentParser:
    """Every SimulatorConfig field as a flag, with the dataclass defaults.

    Each flag's ``dest`` is the name of the field it sets, so ``config_from_args`` needs no
    second list of them.
    """
    p = argparse.ArgumentParser(
        prog="flex-simulator",
        description="Local HPE GreenLake Flex Solutions API (v1beta1) simulator.",
    )

    def switch(flag: str, default: bool, help: str) -> None:
        p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help)

    p.add_argument("--host", default=_D.host, help="bind address (default %(default)s)")
    p.add_argument("--port", type=int, default=8787, help="port; 0 picks a free one (8787)")
    p.add_argument("--orders", type=int, default=_D.orders, help="orders to generate (500)")
    p.add_argument("--devices", type=int, default=_D.devices, help="devices to generate (2000)")
    p.add_argument("--seed", type=int, default=_D.seed, help="data generator seed (42)")
    p.add_argument(
        "--rate-limit",
        type=int,
        default=_D.rate_limit,
        metavar="PER_WINDOW",
        help="requests per window per endpoint per client; 0 disables (100)",
    )
    p.add_argument(
        "--rate-window",
        dest="rate_window_s",
        type=float,
        default=_D.rate_window_s,
        metavar="SECONDS",
        help="rolling rate-limit window in seconds (60)",
    )
    p.add_argument(
        "--rate-limit-scope",
        choices=("client", "workspace"),
        default=_D.rate_limit_scope,
        help="who shares a window: each API client alone, or a workspace's clients together",
    )
    p.add_argument("--token-ttl", type=int, default=_D.token_ttl, help="token lifetime s (900)")
    p.add_argument("--client-id", default=_D.client_id, help="demo client ID")
    p.add_argument("--client-secret", default=_D.client_secret, help="demo client secret")
    p.add_argument("--workspace-id", default=_D.workspace_id, help="demo client's workspace")

    def three_way(flag: str, default: bool | str, help: str) -> None:
        dest = flag[2:].replace("-", "_")
        p.add_argument(
            flag,
            nargs="?",
            const=True,
            default=default,
            type=_switch_mode,
            metavar="MODE",
            help=help,
        )
        p.add_argument(
            f"--no-{flag[2:]}", dest=dest, action="store_const", const=False, help="off (default)"
        )

    three_way(
        "--updated-filter",
        _D.updated_filter,
        "accept updatedAt gt|ge|lt|le filters (undocumented for Flex); MODE on (no MODE), off, "
        "or ignore: answer 200 without applying them",
    )
    three_way(
        "--updated-sort",
        _D.updated_sort,
        "accept sort=updatedAt (undocumented for Flex); MODE on, off or ignore: default order",
    )
    p.add_argument(
        "--sort",
        dest="sort_mode",
        choices=SORT_MODES,
        default=_D.sort_mode,
        help="apply sorts (default); no-tiebreak: refuse a sort of several fields or on id; "
        "ignore: accept any sort, answer in the default order",
    )
    switch("--unstable-ties", _D.unstable_ties, "reshuffle rows tied in the sort on each request")
    p.add_argument(
        "--bad-values",
        default=_D.bad_values,
        metavar="SPEC",
        help="spoil fields, e.g. devices.serialNumber=null@10,orders.generation=string@0.05",
    )
    p.add_argument(
        "--churn-interval",
        dest="churn_interval_s",
        type=float,
        default=_D.churn_interval_s,
        metavar="SECONDS",
        help="update one random record every SECONDS; 0 (default) disables",
    )
    p.add_argument(
        "--churn-resource", choices=PERMISSIONS, default=_D.churn_resource, help="(devices)"
    )
    p.add_argument(
        "--churn-mode",
        choices=CHURN_MODES,
        default=_D.churn_mode,
        help="update (default), or shift: also delete one record and insert one per tick",
    )
    p.add_argument("--latency-ms", type=int, default=_D.latency_ms, help="added per Flex call")
    switch("--retry-after", _D.retry_after, "send Retry-After on 429")
    switch("--deprecation", _D.deprecation, "send Deprecation, Sunset and Link headers")
    p.add_argument("--error-rate", type=float, default=0.0, help="P(500 JSON error)")
    p.add_argument("--html-error-rate", type=float, default=0.0, help="P(503 HTML page)")
    p.add_argument("--drop-rate", type=float, default=0.0, help="P(connection closed, no answer)")
    p.add_argument("--truncate-rate", type=float, default=0.0, help="P(half a body)")
    p.add_argument("--fault-seed", type=int, default=0, help="random fault seed (0)")
    p.add_argument(
        "--clients-file",
        default=None,
        metavar="PATH",
        help="JSON clients/tenants; example:msp-clients.json is a shipped MSP demo",
    )
    p.add_argument(
        "--tenants",
        type=int,
        default=_D.tenants,
        metavar="N",
        help="make the demo client an MSP with N generated tenants (small data each)",
    )
    switch("--tenant-id-hyphens", _D.tenant_id_hyphens, "list MSP tenant IDs as hyphenated UUIDs")
    switch("--empty-lists", _D.empty_lists, "answer every list with no items, total 0 (a bug)")
    p.add_argument("--db", dest="db_path", metavar="PATH", help="SQLite file (default: in memory)")
    switch("--access-log", False, "print one line per request to stderr")
    return p


def _switch_mode(text: str) -> bool | str:
    try:
        return SWITCH_MODES[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"use on, off or ignore, not {text!r}") from None


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Map parsed flags onto a SimulatorConfig (fields without a flag keep their defaults)."""
    parsed = vars(args)
    names = [f.name for f in dataclasses.fields(SimulatorConfig)]
    return SimulatorConfig(**{name: parsed[name] for name in names if name in parsed})


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT; exit status 2 for bad settings."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        sim = FlexSimulator(config, access_log=sys.stderr if args.access_log else None)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        sim.start()
    except OSError as exc:
        sim.stop()
        print(
            f"flex-simulator: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return 1
    workspace = sim.default_workspace
    orders, devices = sim.store.count(workspace, "orders"), sim.store.count(workspace, "devices")
    print(
        f"flex-simulator listening on {sim.url} (workspace {workspace}, "
        f"{orders} orders, {devices} devices)",
        flush=True,
    )
    print(f"token URL: {sim.token_url} (client {config.client_id})", flush=True)
    msp = [c for c in sim.authority.clients() if c.msp]
    for client in msp:
        print(
            f"MSP client {client.client_id}: {len(client.tenants)} tenants at "
            f"{sim.url}/workspaces/v1/msp-tenants",
            flush=True,
        )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        print("flex-simulator stopped", flush=True)
    return 0
