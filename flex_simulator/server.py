"""The simulator object: store, clients, limiter, faults, churn and the HTTP server they serve.

The socket layer is ``handler.py``; what each path answers is ``routes.py``. Everything a test or
the admin API changes at run time goes through this object, so the Python API and ``/__sim``
share one vocabulary.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any, TextIO

from .auth import Authority
from .churn import Churn
from .config import (
    ClientSpec,
    SimulatorConfig,
    client_from,
    generated_tenants,
    load_clients_file,
    normalize_workspace_id,
)
from .faults import FaultInjector
from .handler import SimulatorHTTPServer
from .ratelimit import RateLimiter
from .requestlog import RequestLog
from .scheduled import MutationScheduler, ScriptedMutation
from .store import FlexStore
from .ties import TieShuffler


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
        self.ties = TieShuffler(config.seed)
        self.churn = Churn(lambda: self.config, self.mutate)
        self.stop_event = threading.Event()
        self._lock = threading.RLock()
        self._server: SimulatorHTTPServer | None = None
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
            self._server = SimulatorHTTPServer((self.config.host, self.config.port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="flex-simulator",
                daemon=True,
            )
            self._thread.start()
            self.churn.start()

    def stop(self) -> None:
        """Stop serving, cut open connections, close the store; safe to call twice."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        self.stop_event.set()
        self.churn.stop()
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
            if any(name.startswith("churn_") for name in changes):
                self.churn.wake()

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
