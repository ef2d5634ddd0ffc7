"""The simulator's socket layer: a stdlib threading server and its request handler.

Why the standard library: no dependency, and full control of the socket, which fault injection
needs (closing a connection without an answer, sending half a body under a full Content-Length).
Threads serve concurrent requests, so injected latency overlaps like it does on a real API.

Every request line the server parses is answered by ``routes.route`` and logged, whatever its
method: a method no path serves gets a GreenLake-shaped 405 with ``Allow`` (never the standard
library's 501 HTML page), and a request the standard library refuses before routing (a request
line or header too long, a bad HTTP version) gets a GreenLake-shaped JSON error and is logged too,
so the request log counts every answer the server sent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import errors
from .clock import http_date
from .requestlog import redact_query
from .responses import Response, SimulatorView
from .routes import route


class SimulatorHTTPServer(ThreadingHTTPServer):
    """Threading server that remembers open connections so stop() can cut keep-alive clients."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimulatorView) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sim = sim
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection, then serve it in its own thread."""
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection as it closes."""
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
        """Stay quiet about clients that went away; report anything else."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Reads a request, lets ``routes.route`` decide the answer, writes it (or a fault), logs it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK stall each keep-alive request ~44 ms
    server_version = "flex-simulator"
    sys_version = ""
    server: SimulatorHTTPServer

    def __getattr__(self, name: str) -> Any:
        """Serve every method through ``_dispatch``: routing, not the stdlib, answers with 405.

        ``BaseHTTPRequestHandler`` looks up ``do_<METHOD>`` and sends a 501 HTML page when it is
        missing; answering each ``do_*`` lookup here sends TRACE, CONNECT or any made-up token to
        the router, which knows each path's allowed methods.
        """
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Refuse before routing (bad request line, header too long): GreenLake JSON, logged."""
        reason = message or self.responses.get(code, ("Error", ""))[0]
        response = Response(code, errors.dumps(errors.protocol_error(code, reason)))
        path = urlsplit(getattr(self, "path", "") or "").path
        entry = _entry(getattr(self, "command", "") or "", path, {})
        entry.update(status=code, duration=0.0, mutations=[])
        self.server.sim.log.add(entry)
        self.close_connection = True
        # The stdlib leaves the version at HTTP/0.9 (no status line) when it could not read one.
        self.request_version = "HTTP/1.1"
        self._send(response, truncate=False, extra=(("Connection", "close"),))

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log (it goes to stderr); see FlexSimulator.access_log."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """Render the ``Date`` header from the clock that stamps mutations (not a second one)."""
        return http_date(timestamp)

    def _dispatch(self) -> None:
        sim = self.server.sim
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        entry = _entry(self.command, split.path, query)
        started = entry["time"]
        body = self._read_body()
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

    def _send(
        self, response: Response | None, truncate: bool, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        if response is None:  # "drop": close without a byte of answer
            self._hard_close()
            return
        self.send_response(response.status)
        for name, value in [*response.headers, *extra]:
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


def _entry(method: str, path: str, query: dict[str, str]) -> dict[str, Any]:
    """Start a request-log entry; routing fills in endpoint, client, workspace, fault, status."""
    return {
        "method": method,
        "path": unquote(path),
        "endpoint": "unknown",
        "query": redact_query(query),
        "status": None,
        "client_id": None,
        "workspace_id": None,
        "fault": None,
        "time": time.monotonic(),
    }
