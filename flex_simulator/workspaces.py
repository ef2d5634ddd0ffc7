"""``GET /workspaces/v1/msp-tenants``: the tenant list a multi-workspace tap starts from.

Shape from HPE's Workspace Management API v1.0.0 operation "Get list of MSP Tenants"
(``get_tenants_workspaces_v1_msp_tenants_get``): envelope ``offset``, ``count``, ``total``,
``items``; items with ``id``, ``type``, ``workspaceName`` (required), ``generation``,
``createdAt``, ``updatedAt``, ``createdBy``, ``resourceUri``, ``inventoryOwnership``; ``limit`` at
most 300. Values HPE does not document (the ``type`` string, the default ``limit``) are the
simulator's choice and are listed in docs/simulator.md.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

from . import errors
from .config import TenantSpec
from .responses import (
    BadParam,
    RequestView,
    Response,
    SimulatorView,
    fault_answer,
    int_param,
    json_response,
    throttle,
    token_refusal,
)

MSP_TENANTS_PATH = "/workspaces/v1/msp-tenants"
DEFAULT_LIMIT = 100  # HPE documents no default
MAX_LIMIT = 300  # "NOTE: The maximum value accepted is 300."
TENANT_TYPE = "workspace"  # HPE documents the field, not its value
_EPOCH = datetime(2022, 1, 3, 9, 0, tzinfo=timezone.utc)


def hyphenate(workspace_id: str) -> str:
    """32 hex digits as an 8-4-4-4-12 UUID string."""
    w = workspace_id
    return f"{w[:8]}-{w[8:12]}-{w[12:16]}-{w[16:20]}-{w[20:]}"


def tenant_item(tenant: TenantSpec, msp_client_id: str, *, hyphens: bool) -> dict[str, Any]:
    """One list entry; timestamps are derived from the ID so every run lists the same values."""
    crc = zlib.crc32(tenant.workspace_id.encode())
    created = _EPOCH + timedelta(days=crc % 700, seconds=crc % 86_400)
    updated = created + timedelta(days=crc % 97, seconds=crc % 3_600)
    tenant_id = hyphenate(tenant.workspace_id) if hyphens else tenant.workspace_id
    return {
        "id": tenant_id,
        "type": TENANT_TYPE,
        "workspaceName": tenant.workspace_name,
        "generation": 1 + crc % 5,
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "updatedAt": updated.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "createdBy": f"admin@{msp_client_id.lower()}.example.com",
        "resourceUri": f"{MSP_TENANTS_PATH}/{tenant_id}",
        "inventoryOwnership": tenant.inventory_ownership,
    }


def msp_tenants(
    sim: SimulatorView, req: RequestView, query: dict[str, str], entry: dict[str, Any]
) -> Response | None:
    """Pipeline as for Flex: scripted fault → token → MSP check → rate limit → latency → page.

    Only a token of an MSP client's own workspace may list tenants: a non-MSP client, or a token
    already exchanged into a tenant, gets 403. Random fault rates do not apply here (scripted
    faults do, endpoint ``msp-tenants``), so soak runs keep failing where they always did.
    """
    cfg = sim.config
    status, info = sim.authority.validate(req.bearer_token())
    if info is not None:
        entry["client_id"], entry["workspace_id"] = info.client_id, info.workspace_id
    fault = sim.faults.next_fault("msp-tenants", None)
    entry["fault"] = fault
    handled, faulted = fault_answer(sim, fault, cfg)
    if handled:
        return faulted
    if (refused := token_refusal(status, info)) is not None:
        return refused
    assert info is not None  # token_refusal answers for a token without info
    client = sim.authority.client(info.client_id)
    if not info.msp or client is None or not client.msp:
        return json_response(
            403,
            errors.forbidden(
                f"Workspace {info.workspace_id} is not a managed service provider (MSP) "
                "workspace; only an MSP workspace's token can list MSP tenants."
            ),
        )
    if (limited := throttle(sim, info, "msp-tenants")) is not None:
        return limited
    try:
        limit = int_param(query, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
        offset = int_param(query, "offset", 0, 0, None)
        if (query.get("filter") or "").strip():
            raise BadParam("filter", "filter on msp-tenants is not supported by the simulator.")
    except BadParam as exc:
        return json_response(400, errors.bad_request(exc.subject, exc.description))
    tenants = client.tenants
    items = [
        tenant_item(t, client.client_id, hyphens=cfg.tenant_id_hyphens)
        for t in tenants[offset : offset + limit]
    ]
    body = {"items": items, "count": len(items), "offset": offset, "total": len(tenants)}
    return json_response(200, body)
