"""Simulator settings and API clients.

One dataclass holds every knob so the CLI, the Python API and the admin HTTP API share a single
vocabulary; clients (with MSP tenants) come from a JSON file so multi-tenant tests need no code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bad_values import parse_bad_values

PERMISSIONS = ("orders", "devices")
INVENTORY_OWNERSHIP = ("MSP_OWNED_INVENTORY", "CUSTOMER_OWNED_INVENTORY")
EXAMPLES_DIR = Path(__file__).parent / "examples"
EXAMPLE_PREFIX = "example:"
# Sizes of the tenants ``--tenants N`` generates: small, so a demo with many tenants starts at once.
GENERATED_TENANT_ORDERS = 20
GENERATED_TENANT_DEVICES = 40
_HEX32 = re.compile(r"[0-9a-f]{32}")

# Settings that may change while the simulator runs (update_config and POST /__sim/faults).
RUNTIME_FIELDS = frozenset(
    {
        "updated_filter",
        "updated_sort",
        "latency_ms",
        "rate_limit",
        "rate_window_s",
        "rate_limit_scope",
        "retry_after",
        "deprecation",
        "token_ttl",
        "error_rate",
        "html_error_rate",
        "drop_rate",
        "truncate_rate",
        "fault_seed",
        "server_error_retry_after_s",
        "timeout_fault_s",
        "tenant_id_hyphens",
        "sort_mode",
        "unstable_ties",
        "bad_values",
        "churn_interval_s",
        "churn_resource",
        "churn_mode",
        "empty_lists",
    }
)
# Three-way switches: False (or "off") refuses the clause with 400, True ("on") applies it, and
# "ignore" answers 200 without applying it (a backend that accepts a parameter it does not know).
SWITCH_MODES: dict[str, bool | str] = {
    "off": False,
    "false": False,
    "on": True,
    "true": True,
    "ignore": "ignore",
}
SORT_MODES = ("apply", "no-tiebreak", "ignore")
RATE_LIMIT_SCOPES = ("client", "workspace")
CHURN_MODES = ("update", "shift")
_RATE_FIELDS = ("error_rate", "html_error_rate", "drop_rate", "truncate_rate")


@dataclass
class SimulatorConfig:
    """Everything that shapes the simulator; defaults match GreenLake (100/min, 15-min tokens)."""

    host: str = "127.0.0.1"
    port: int = 0
    orders: int = 500
    devices: int = 2000
    seed: int = 42
    rate_limit: int = 100
    rate_window_s: float = 60.0
    # Who shares a rate-limit window: each API client on its own ("client", GreenLake's rule
    # unless noted) or every client of a workspace together ("workspace").
    rate_limit_scope: str = "client"
    token_ttl: int = 900
    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    workspace_id: str = "0f3a9c1e5b7d4e2f8a6c0b9d1e3f5a7c"
    # False: refused (400, HPE's document); True: applied; "ignore": 200, not applied.
    updated_filter: bool | str = False
    updated_sort: bool | str = False
    latency_ms: int = 0
    retry_after: bool = False
    deprecation: bool = False
    error_rate: float = 0.0
    html_error_rate: float = 0.0
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    fault_seed: int = 0
    clients_file: str | None = None
    db_path: str | None = None
    # Extras: retryAfterSeconds in injected 500 bodies (HPE shows 30; small keeps tests fast) and
    # how long a "timeout" fault stalls before answering.
    server_error_retry_after_s: int = 1
    timeout_fault_s: float = 10.0
    # MSP demo: > 0 makes the demo client an MSP with this many generated tenants (small data).
    tenants: int = 0
    # Serve msp-tenants IDs as hyphenated UUIDs (HPE's workspace API documents uuid format there,
    # while token-exchange URLs need 32 hex digits): lets a tap test its normalisation.
    tenant_id_hyphens: bool = False
    # Unhelpful backends (all off by default; see docs/simulator.md "Unhelpful server modes").
    # sort_mode "no-tiebreak" refuses a sort of several fields or on id; "ignore" drops any sort.
    sort_mode: str = "apply"
    unstable_ties: bool = False  # rows tied in the effective sort come back reshuffled per request
    bad_values: str = ""  # "devices.serialNumber=null@10,orders.generation=string@0.05"
    churn_interval_s: float = 0.0  # > 0: one seeded update every so many seconds
    churn_resource: str = "devices"
    churn_mode: str = "update"  # "shift": each tick also deletes one record and inserts one
    # The API answering an empty list by mistake: orders, devices and orders/transform answer 200
    # with no items and total 0 (GET /devices/{id} is unaffected), so a tap's deletion guard can
    # be tested end to end. Runtime-changeable (POST /__sim/faults {"empty_lists": true}).
    empty_lists: bool = False

    def __post_init__(self) -> None:
        for name in ("updated_filter", "updated_sort"):
            value = getattr(self, name)
            if isinstance(value, str) and value.lower() in SWITCH_MODES:
                setattr(self, name, SWITCH_MODES[value.lower()])

    def validate(self) -> None:
        """Reject impossible settings early, with a message naming the setting."""
        self._validate_modes()
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if sum(getattr(self, n) for n in _RATE_FIELDS) > 1.0:
            raise ValueError("the fault rates must add up to at most 1")
        if self.rate_window_s <= 0:
            raise ValueError("rate_window_s must be positive")
        if min(self.latency_ms, self.token_ttl, self.orders, self.devices, self.tenants) < 0:
            raise ValueError(
                "latency_ms, token_ttl, orders, devices and tenants must not be negative"
            )

    def _validate_modes(self) -> None:
        for name in ("updated_filter", "updated_sort"):
            if getattr(self, name) not in (True, False, "ignore"):
                raise ValueError(f"{name} must be on, off or ignore, got {getattr(self, name)!r}")
        for name, allowed in (
            ("sort_mode", SORT_MODES),
            ("churn_mode", CHURN_MODES),
            ("rate_limit_scope", RATE_LIMIT_SCOPES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        if self.churn_resource not in PERMISSIONS:
            raise ValueError(f"churn_resource must be one of {', '.join(PERMISSIONS)}")
        if self.churn_interval_s < 0:
            raise ValueError("churn_interval_s must not be negative")
        parse_bad_values(self.bad_values)

    def with_changes(self, **changes: Any) -> SimulatorConfig:
        """Copy with runtime-changeable settings replaced; unknown or static names are errors."""
        unknown = set(changes) - RUNTIME_FIELDS
        if unknown:
            raise ValueError(f"not changeable at runtime: {', '.join(sorted(unknown))}")
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def public_dict(self) -> dict[str, Any]:
        """Return the settings without the client secret, safe to print or serve."""
        data = dataclasses.asdict(self)
        data.pop("client_secret")
        return data


@dataclass(frozen=True)
class TenantSpec:
    """A tenant workspace of an MSP client, with its own data size and list-entry details.

    ``exchange_allowed=False`` keeps the tenant in ``GET /workspaces/v1/msp-tenants`` but refuses
    the token exchange into it (403), so a tap's per-tenant failure handling can be exercised.
    """

    workspace_id: str
    orders: int = 100
    devices: int = 300
    seed: int = 7
    permissions: tuple[str, ...] | None = None  # None: the MSP client's permissions
    name: str | None = None  # workspaceName; None: "Tenant <first 8 hex digits>"
    exchange_allowed: bool = True
    inventory_ownership: str = "MSP_OWNED_INVENTORY"

    @property
    def workspace_name(self) -> str:
        """The tenant's ``workspaceName`` as the tenant list shows it."""
        return self.name or f"Tenant {self.workspace_id[:8]}"


@dataclass(frozen=True)
class ClientSpec:
    """A personal API client: credentials, home workspace, View permissions and MSP tenants."""

    client_id: str
    client_secret: str = field(repr=False)
    workspace_id: str
    permissions: tuple[str, ...] = PERMISSIONS
    msp: bool = False
    tenants: tuple[TenantSpec, ...] = ()
    orders: int | None = None  # None: the simulator's --orders
    devices: int | None = None
    seed: int | None = None


def normalize_workspace_id(workspace_id: str) -> str:
    """Compare workspace IDs without hyphens and case: HPE writes them both ways."""
    return workspace_id.replace("-", "").lower()


def is_tenant_id(workspace_id: str) -> bool:
    """Tenant workspace IDs in exchange URLs are 32 hex digits without hyphens."""
    return bool(_HEX32.fullmatch(workspace_id.lower()))


def _permissions(value: Iterable[str]) -> tuple[str, ...]:
    perms = tuple(str(p).lower() for p in value)
    bad = [p for p in perms if p not in PERMISSIONS]
    if bad:
        raise ValueError(f"unknown permission(s) {bad}; use {list(PERMISSIONS)}")
    return perms


def tenant_from(value: str | Mapping[str, Any] | TenantSpec) -> TenantSpec:
    """Accept a bare tenant workspace ID, a mapping, or a TenantSpec."""
    if isinstance(value, TenantSpec):
        spec = value
    elif isinstance(value, str):
        spec = TenantSpec(workspace_id=value)
    else:
        perms = value.get("permissions")
        spec = TenantSpec(
            workspace_id=str(value["workspace_id"]),
            orders=int(value.get("orders", 100)),
            devices=int(value.get("devices", 300)),
            seed=int(value.get("seed", 7)),
            permissions=None if perms is None else _permissions(perms),
            name=None if value.get("name") is None else str(value["name"]),
            exchange_allowed=bool(value.get("exchange_allowed", True)),
            inventory_ownership=str(value.get("inventory_ownership", "MSP_OWNED_INVENTORY")),
        )
    workspace_id = normalize_workspace_id(spec.workspace_id)
    if not is_tenant_id(workspace_id):
        raise ValueError(f"tenant workspace IDs are 32 hex digits: {spec.workspace_id!r}")
    if spec.inventory_ownership not in INVENTORY_OWNERSHIP:
        raise ValueError(f"inventory_ownership must be one of {list(INVENTORY_OWNERSHIP)}")
    return dataclasses.replace(spec, workspace_id=workspace_id)


def generated_tenants(count: int, seed: int) -> tuple[TenantSpec, ...]:
    """Tenants for ``--tenants N``: stable IDs and names from the seed, small data sets."""
    tenants = []
    for i in range(1, count + 1):
        digest = hashlib.sha256(f"flex-simulator tenant {seed} {i}".encode()).hexdigest()
        tenants.append(
            TenantSpec(
                workspace_id=digest[:32],
                orders=GENERATED_TENANT_ORDERS,
                devices=GENERATED_TENANT_DEVICES,
                seed=seed + i,
                name=f"Demo Tenant {i:02d}",
            )
        )
    return tuple(tenants)


def client_from(value: Mapping[str, Any]) -> ClientSpec:
    """Build a ClientSpec from one entry of a clients file."""
    try:
        return ClientSpec(
            client_id=str(value["client_id"]),
            client_secret=str(value["client_secret"]),
            workspace_id=normalize_workspace_id(str(value["workspace_id"])),
            permissions=_permissions(value.get("permissions", PERMISSIONS)),
            msp=bool(value.get("msp", False)),
            tenants=tuple(tenant_from(t) for t in value.get("tenants", ())),
            orders=None if value.get("orders") is None else int(value["orders"]),
            devices=None if value.get("devices") is None else int(value["devices"]),
            seed=None if value.get("seed") is None else int(value["seed"]),
        )
    except KeyError as exc:
        raise ValueError(f"client entry is missing {exc.args[0]!r}") from None


def resolve_clients_path(path: str | Path) -> Path:
    """``example:NAME`` names a file shipped in ``flex_simulator/examples``; else a plain path."""
    text = str(path)
    if text.startswith(EXAMPLE_PREFIX):
        name = text[len(EXAMPLE_PREFIX) :]
        candidate = EXAMPLES_DIR / name
        if "/" in name or "\\" in name or not candidate.is_file():
            shipped = sorted(p.name for p in EXAMPLES_DIR.glob("*.json"))
            raise ValueError(f"no shipped example {name!r}; examples: {', '.join(shipped)}")
        return candidate
    return Path(path)


def load_clients_file(path: str | Path) -> list[ClientSpec]:
    """Read ``{"clients": [...]}`` (or a bare list) from a JSON file (or ``example:NAME``)."""
    data = json.loads(resolve_clients_path(path).read_text(encoding="utf-8"))
    entries = data.get("clients", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of clients")
    return [client_from(entry) for entry in entries]
