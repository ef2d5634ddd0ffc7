"""The ``/__sim/*`` admin endpoints: health, faults and settings, mutations, churn, the log.

No token, loopback clients only: they exist for tests and demos driving the simulator from
outside its process (a Meltano run, a shell script), with the same vocabulary as the Python API.
"""

from __future__ import annotations

import json
from typing import Any

from . import errors
from .responses import RequestView, Response, SimulatorView, json_response, method_not_allowed
from .store import MutationError

ADMIN_METHODS = {
    "/__sim/faults": "POST",
    "/__sim/mutations": "GET, POST, DELETE",
    "/__sim/requests": "GET, DELETE",
    "/__sim/health": "GET",
    "/__sim/churn": "GET, POST",
}


def admin(
    sim: SimulatorView, req: RequestView, path: str, query: dict[str, str], body: bytes
) -> Response:
    """Answer one admin call (``path`` is one of ``ADMIN_METHODS``)."""
    allow = ADMIN_METHODS[path]
    if req.command not in allow.split(", "):
        return method_not_allowed(req.command, allow)
    if not req.is_loopback():
        return json_response(403, errors.forbidden("Admin endpoints answer loopback clients only."))
    if path == "/__sim/health":
        counts = {
            ws: {"orders": sim.store.count(ws, "orders"), "devices": sim.store.count(ws, "devices")}
            for ws in sim.store.workspaces()
        }
        return json_response(200, {"status": "ok", "workspaces": counts})
    if path == "/__sim/requests":
        if req.command == "DELETE":
            return json_response(200, {"cleared": sim.log.clear()})
        items = sim.requests(query.get("endpoint"))
        return json_response(200, {"items": items, "count": len(items)})
    if path == "/__sim/churn":
        if req.command == "POST":
            return json_response(200, {"tick": sim.churn.tick()})
        ticks = sim.churn.events()
        return json_response(200, {"items": ticks, "count": len(ticks)})
    if path == "/__sim/mutations" and req.command != "POST":
        if req.command == "DELETE":
            return json_response(200, {"cleared": sim.scheduler.clear()})
        scripted = sim.scheduler.items()
        return json_response(200, {"items": scripted, "count": len(scripted)})
    try:
        payload = json.loads(body or b"{}")
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        if path == "/__sim/mutations":
            return _mutations(sim, payload)
        if payload.pop("clear", False):
            sim.faults.clear()
        if "faults" in payload:
            sim.script_faults(str(payload.pop("endpoint", "")), list(payload.pop("faults")))
        if payload:
            sim.update_config(**payload)
        return json_response(
            200, {"pending": sim.faults.pending(), "config": sim.config.public_dict()}
        )
    except (ValueError, TypeError, MutationError) as exc:
        return json_response(400, errors.bad_request("body", str(exc), source="body"))


def _mutations(sim: SimulatorView, payload: dict[str, Any]) -> Response:
    ops = payload.get("ops")
    if not isinstance(ops, list):
        raise ValueError("'ops' must be a list")
    after = payload.get("after")
    if after is None:
        return json_response(200, {"results": sim.mutate(ops, payload.get("workspace_id"))})
    if not isinstance(after, dict) or set(after) != {"endpoint", "requests"}:
        raise ValueError('\'after\' must be {"endpoint": ..., "requests": N}')
    scripted = sim.script_mutations(
        str(after["endpoint"]),
        after_requests=after["requests"],
        ops=ops,
        workspace_id=payload.get("workspace_id"),
    )
    return json_response(200, {"scheduled": scripted.as_dict()})
