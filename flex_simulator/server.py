"""The simulator's HTTP layer: a stdlib threading server in front of the SQLite store.

Why the standard library: no dependency, and full control of the socket, which fault injection
needs (closing a connection without an answer, sending half a body under a full Content-Length).
Threads serve concurrent requests, so injected latency overlaps like it does on a real API.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
import time
import traceback
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from . import errors
from .auth import Authority
from .clock import http_date
from .config import (
    ClientSpec,
    SimulatorConfig,
    client_from,
    generated_tenants,
    load_clients_file,
    normalize_workspace_id,
)
from .faults import FaultInjector
from .ratelimit import RateLimiter
from .requestlog import RequestLog, redact_query
from .responses import Response
from .routes import route
from .scheduled import MutationScheduler, ScriptedMutation
from .store import FlexStore


class _Server(ThreadingHTTPServer):
    """Threading server that remembers open connections so stop() can cut keep-alive clients."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: FlexSimulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sim = sim
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open client socket so idle keep-alive threads end promptly."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, lets ``routes.route`` decide the answer, writes it (or a fault), logs it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK stall each keep-alive request ~44 ms
    server_version = "flex-simulator"
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log (it goes to stderr); see FlexSimulator.access_log."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """Render the ``Date`` header from the clock that stamps mutations (not a second one)."""
        return http_date(timestamp)

    def _dispatch(self) -> None:
        sim = self.server.sim
        started = time.monotonic()
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body = self._read_body()
        entry: dict[str, Any] = {
            "method": self.command,
            "path": unquote(split.path),
            "endpoint": "unknown",
            "query": redact_query(query),
            "status": None,
            "client_id": None,
            "workspace_id": None,
            "fault": None,
            "time": started,
        }
        try:
            response = route(sim, req=self, path=split.path, query=query, body=body, entry=entry)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            err = errors.server_error(sim.config.server_error_retry_after_s)
            response = Response(500, errors.dumps(err))
        # Log before writing: once a client has seen the answer, its entry must be readable.
        entry["status"] = None if response is None else response.status
        # Scripted mutations due after this answer apply before it is sent, so whatever the
        # client sends next (on any connection) already sees them; this answer does not.
        entry["mutations"] = sim.scheduler.on_answer(entry)
        entry["duration"] = time.monotonic() - started
        sim.log.add(entry)
        if sim.access_log is not None:
            print(
                f"{self.command} {entry['path']} {entry['endpoint']} {entry['status']} "
                f"{entry['duration'] * 1000:.1f}ms",
                file=sim.access_log,
                flush=True,
            )
        self._send(response, entry.get("fault") == "truncate")

    def bearer_token(self) -> str | None:
        """Return the token of an ``Authorization: Bearer`` header, if any."""
        value = self.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None

    def is_loopback(self) -> bool:
        """Admin calls are only honoured from this machine."""
        try:
            return ipaddress.ip_address(self.client_address[0]).is_loopback
        except ValueError:
            return False

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True  # unsupported: answer, then drop the connection
            return b""
        length = int(self.headers.get("Content-Length") or 0)
        if length > 10_000_000:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: Response | None, truncate: bool) -> None:
        if response is None:  # "drop": close without a byte of answer
            self._hard_close()
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(response.body[: len(response.body) // 2])
            self._hard_close()
            return
        self.wfile.write(response.body)

    def _hard_close(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _derived_seed(base: int, workspace_id: str) -> int:
    return (base * 1_000_003 + zlib.crc32(workspace_id.encode())) % (2**31)


class FlexSimulator:
    """A running (or ready-to-run) Flex API: store, clients, limiter, faults and the HTTP server."""

    def __init__(self, config: SimulatorConfig, access_log: TextIO | None = None) -> None:
        config.validate()
        self.config = config
        self.access_log = access_log
        self.store = FlexStore(config.db_path)
        self.authority = Authority()
        self.limiter = RateLimiter()
        self.faults = FaultInjector(config.fault_seed)
        self.log = RequestLog()
        self.scheduler = MutationScheduler(self.store.apply_mutations)
        self.stop_event = threading.Event()
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._register(
            ClientSpec(
                client_id=config.client_id,
                client_secret=config.client_secret,
                workspace_id=normalize_workspace_id(config.workspace_id),
                msp=config.tenants > 0,
                tenants=generated_tenants(config.tenants, config.seed),
            )
        )
        if config.clients_file:
            for client in load_clients_file(config.clients_file):
                self._register(client)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Bind (port 0 picks a free port) and serve in a background thread."""
        with self._lock:
            if self._server is not None:
                return
            self._server = _Server((self.config.host, self.config.port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="flex-simulator",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving, cut open connections, close the store; safe to call twice."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        self.stop_event.set()
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> FlexSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the real one when the config asked for port 0)."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:45123`` (wildcard hosts shown as loopback)."""
        host = self.config.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The workspace-scoped token URL HPE's own clients use."""
        return f"{self.url}/authorization/v2/oauth2/{self.config.workspace_id}/token"

    @property
    def classic_token_url(self) -> str:
        """The older SSO token URL some HPE guides still show."""
        return f"{self.url}/as/token.oauth2"

    # -- test and admin API --------------------------------------------------------------------
    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Return logged requests (optionally of one endpoint), oldest first."""
        return self.log.entries(endpoint)

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.log.clear()

    def mutate(self, ops: list[dict[str, Any]], workspace_id: str | None = None) -> list[dict]:
        """Apply store mutations (create/update/delete records) as the data core defines them."""
        workspace = normalize_workspace_id(workspace_id) if workspace_id else None
        return self.store.apply_mutations(workspace or self.default_workspace, ops)

    def script_mutations(
        self,
        endpoint: str,
        after_requests: int,
        ops: list[dict[str, Any]],
        workspace_id: str | None = None,
    ) -> ScriptedMutation:
        """Apply ``ops`` right after the ``after_requests``-th 200 answer of ``endpoint``.

        Counted from now, only answers for ``workspace_id`` (default: the demo workspace, whose
        data the ops change too). The ops are checked against the current data at once (a bad op
        raises MutationError here, not mid-sync). The returned handle's ``done`` event is set
        once they were applied; ``results`` (or ``error``) then say what happened.
        """
        workspace = normalize_workspace_id(workspace_id) if workspace_id else None
        workspace = workspace or self.default_workspace
        if not isinstance(ops, list):
            raise ValueError("'ops' must be a list")
        self.store.apply_mutations(workspace, ops, dry_run=True)
        return self.scheduler.add(endpoint, after_requests, ops, workspace)

    def script_faults(self, endpoint: str, faults: list[str]) -> None:
        """Make the next ``len(faults)`` requests to ``endpoint`` meet these faults, in order."""
        self.faults.script(endpoint, list(faults))

    def update_config(self, **changes: Any) -> None:
        """Change runtime settings (switches, latency, limits, fault rates) while serving."""
        with self._lock:
            self.config = self.config.with_changes(**changes)
            if "fault_seed" in changes:
                self.faults.reseed(self.config.fault_seed)

    def add_client(  # noqa: PLR0917 - the documented testing API
        self,
        client_id: str,
        client_secret: str,
        workspace_id: str,
        permissions: tuple[str, ...] | list[str] = ("orders", "devices"),
        msp: bool = False,
        tenants: Any = (),
    ) -> None:
        """Register a client; its workspace (and tenants) get generated data if they have none.

        ``tenants`` items are tenant workspace IDs or mappings with ``workspace_id``, ``orders``,
        ``devices``, ``seed`` and optional ``permissions``.
        """
        spec = {
            "client_id": client_id,
            "client_secret": client_secret,
            "workspace_id": workspace_id,
            "permissions": list(permissions),
            "msp": msp,
            "tenants": list(tenants),
        }
        self._register(client_from(spec))

    def expire_tokens(self) -> None:
        """Make every issued token expired now (for refresh tests)."""
        self.authority.expire_all()

    def issue_token(self, client_id: str | None = None) -> str:
        """Issue a valid token for a registered client without an HTTP round trip (not logged)."""
        wanted = client_id or self.config.client_id
        client = next((c for c in self.authority.clients() if c.client_id == wanted), None)
        if client is None:
            raise KeyError(f"no client {wanted!r}")
        return self.authority.issue(client, self.config.token_ttl)[0]

    def reset_rate_limits(self) -> None:
        """Forget every rate-limit window."""
        self.limiter.reset()

    @property
    def default_workspace(self) -> str:
        """The demo client's workspace (normalised: lower-case, no hyphens)."""
        return normalize_workspace_id(self.config.workspace_id)

    def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the simulator stops."""
        if seconds > 0:
            self.stop_event.wait(seconds)

    def _register(self, client: ClientSpec) -> None:
        cfg = self.config
        self.authority.add_client(client)
        own_seed = cfg.seed if client.workspace_id == self.default_workspace else None
        self._ensure_data(
            client.workspace_id,
            cfg.orders if client.orders is None else client.orders,
            cfg.devices if client.devices is None else client.devices,
            client.seed if client.seed is not None else own_seed,
        )
        for tenant in client.tenants:
            self._ensure_data(tenant.workspace_id, tenant.orders, tenant.devices, tenant.seed)

    def _ensure_data(self, workspace_id: str, orders: int, devices: int, seed: int | None) -> None:
        with self._lock:
            if workspace_id in self.store.workspaces():
                return  # an existing --db keeps its data
            if seed is None:
                seed = _derived_seed(self.config.seed, workspace_id)
            self.store.generate(workspace_id, orders=orders, devices=devices, seed=seed)
