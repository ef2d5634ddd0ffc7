"""What each path answers: token endpoints, Flex endpoints, admin endpoints.

Kept apart from the socket handling in ``server.py`` so the request pipeline reads top to bottom:
fault → authentication → permission → rate limit → latency → parameters → store. The MSP tenant
list lives in ``workspaces.py``, the ``/__sim`` endpoints in ``admin.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote

from . import errors
from .admin import ADMIN_METHODS, admin
from .auth import ExchangeError, TokenStatus
from .bad_values import parse_bad_values, spoil_record
from .config import is_tenant_id, normalize_workspace_id
from .query import DEVICES, ORDERS, compile_select
from .responses import BadParam as _BadParam
from .responses import RequestView, Response, SimulatorView, throttle, token_refusal
from .responses import fault_answer as _fault
from .responses import int_param as _int_param
from .responses import json_response as _json
from .responses import method_not_allowed as _method_not_allowed
from .store import Page, QueryError
from .workspaces import MSP_TENANTS_PATH, msp_tenants

FLEX = "/flex/v1beta1"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_V2_TOKEN = re.compile(r"/authorization/v2/oauth2/([^/]+)/token")
_DEPRECATION = (
    ("Deprecation", "@1780272000"),  # RFC 9745: 2026-06-01
    ("Sunset", "Tue, 01 Dec 2026 00:00:00 GMT"),  # RFC 8594
    (
        "Link",
        '<https://developer.greenlake.hpe.com/docs/greenlake/services/flex/>; rel="deprecation"; '
        'type="text/html"',
    ),
)
_FLEX_ROUTES = {
    f"{FLEX}/orders": "orders",
    f"{FLEX}/orders/transform": "orders/transform",
    f"{FLEX}/devices": "devices",
}


def route(
    sim: SimulatorView,
    *,
    req: RequestView,
    path: str,
    query: dict[str, str],
    body: bytes,
    entry: dict[str, Any],
) -> Response | None:
    """Answer one request; None means "drop the connection". Fills ``entry`` for the log."""
    path = unquote(path)
    if path in ADMIN_METHODS:
        entry["endpoint"] = "admin"
        return admin(sim, req, path, query, body)
    if path == MSP_TENANTS_PATH:
        entry["endpoint"] = "msp-tenants"
        if req.command != "GET":
            return _method_not_allowed(req.command, "GET")
        return msp_tenants(sim, req, query, entry)
    match = _V2_TOKEN.fullmatch(path)
    if path == "/as/token.oauth2" or match:
        workspace = match.group(1) if match else None
        entry["endpoint"] = "token"
        if req.command != "POST":
            return _method_not_allowed(req.command, "POST")
        return _token(sim, req, workspace, body, entry)
    device_id = None
    endpoint = _FLEX_ROUTES.get(path)
    if endpoint is None and path.startswith(f"{FLEX}/devices/") and path.count("/") == 4:
        endpoint, device_id = "devices/{id}", path.rsplit("/", 1)[1]
    if endpoint is None:
        return _json(404, errors.not_found(f"No such resource: {path}"))
    entry["endpoint"] = endpoint
    if req.command != "GET":
        return _method_not_allowed(req.command, "GET")
    return _flex(sim, req=req, endpoint=endpoint, device_id=device_id, query=query, entry=entry)


# -- token endpoints ---------------------------------------------------------------------------
def _credentials(req: RequestView, form: dict[str, str]) -> tuple[str | None, str | None]:
    auth = req.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return unquote(user), unquote(password)
    return form.get("client_id"), form.get("client_secret")


def _oauth_error(status: int, oauth_error: str, description: str) -> Response:
    if status == 400:
        body = errors.bad_request("grant_type", description, source="body.parameter")
        body["error"], body["error_description"] = oauth_error, description
    elif status == 401:
        body = errors.unauthorized(description, error=oauth_error, error_description=description)
    else:
        body = errors.forbidden(description, error=oauth_error, error_description=description)
    return _json(status, body, [("Cache-Control", "no-store")])


def _token(
    sim: SimulatorView, req: RequestView, workspace: str | None, body: bytes, entry: dict[str, Any]
) -> Response | None:
    cfg = sim.config
    entry["workspace_id"] = None if workspace is None else normalize_workspace_id(workspace)
    fault = sim.faults.next_fault("token", None)
    entry["fault"] = fault  # the handler truncates the answer when it reads "truncate" here
    handled, faulted = _fault(sim, fault, cfg)
    if handled:
        return faulted
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    client_id, secret = _credentials(req, form)
    entry["client_id"] = client_id
    grant = form.get("grant_type")
    client = None
    if client_id is not None or grant == "client_credentials":
        client = sim.authority.authenticate(client_id or "", secret or "")
        if client is None:
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
    if grant == "client_credentials":
        assert client is not None
        if workspace is not None and normalize_workspace_id(workspace) != client.workspace_id:
            return _oauth_error(
                403, "unauthorized_client", f"The client has no access to workspace {workspace}."
            )
        token, info = sim.authority.issue(client, cfg.token_ttl)
        entry["workspace_id"] = info.workspace_id
        return _token_response(token, cfg.token_ttl)
    if grant == TOKEN_EXCHANGE:
        if workspace is None:
            return _oauth_error(400, "unsupported_grant_type", "Token exchange needs a tenant URL.")
        if not is_tenant_id(workspace):
            return _oauth_error(
                400, "invalid_request", "Tenant workspace IDs are 32 hex digits without hyphens."
            )
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE or not form.get("subject_token"):
            return _oauth_error(400, "invalid_request", "subject_token and its type are required.")
        _, subject = sim.authority.validate(form["subject_token"])
        if subject is not None:
            entry["client_id"] = subject.client_id
        try:
            token, _ = sim.authority.exchange(form["subject_token"], workspace, cfg.token_ttl)
        except ExchangeError as exc:
            return _oauth_error(exc.status, exc.oauth_error, exc.message)
        response = _token_response(token, cfg.token_ttl)
        data = json.loads(response.body)
        data["issued_token_type"] = ACCESS_TOKEN_TYPE
        response.body = errors.dumps(data)
        return response
    return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant!r}.")


def _token_response(token: str, ttl: int) -> Response:
    body = {"access_token": token, "token_type": "Bearer", "expires_in": ttl}
    return _json(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


# -- Flex endpoints ----------------------------------------------------------------------------
def _flex(
    sim: SimulatorView,
    *,
    req: RequestView,
    endpoint: str,
    device_id: str | None,
    query: dict[str, str],
    entry: dict[str, Any],
) -> Response | None:
    cfg = sim.config
    status, info = sim.authority.validate(req.bearer_token())
    if info is not None:
        entry["client_id"], entry["workspace_id"] = info.client_id, info.workspace_id
    rates = (cfg.error_rate, cfg.html_error_rate, cfg.drop_rate, cfg.truncate_rate)
    fault = sim.faults.next_fault(endpoint, rates)
    entry["fault"] = fault
    handled, faulted = _fault(sim, fault, cfg)
    if handled:
        return faulted
    response = _flex_answer(
        sim, endpoint=endpoint, device_id=device_id, query=query, status=status, info=info
    )
    if cfg.deprecation:
        response.headers.extend(_DEPRECATION)
    return response


def _flex_answer(
    sim: SimulatorView,
    *,
    endpoint: str,
    device_id: str | None,
    query: dict[str, str],
    status: TokenStatus,
    info: Any,
) -> Response:
    cfg = sim.config
    if (refused := token_refusal(status, info)) is not None:
        return refused
    assert info is not None  # token_refusal answers for a token without info
    resource = "orders" if endpoint.startswith("orders") else "devices"
    if resource not in info.permissions:
        return _json(403, errors.forbidden(f"View permission on {resource.title()} is required"))
    if (limited := throttle(sim, info, endpoint)) is not None:
        return limited
    workspace = info.workspace_id
    if endpoint == "devices/{id}":
        if not device_id:
            return _json(
                400, errors.bad_request("id", "Parameter ID is missing.", "path.parameter")
            )
        device = sim.store.get_device(workspace, device_id)
        if device is None:
            return _json(404, errors.not_found(f"Device {device_id} was not found."))
        bad = parse_bad_values(cfg.bad_values)
        return _json(200, spoil_record(device, "devices", bad, cfg.fault_seed))
    try:
        limit = _int_param(query, "limit", 20, 0, 100)
        offset = _int_param(query, "offset", 0, 0, None)
        if endpoint == "orders/transform":
            group_by = query.get("group-by")
            if not group_by:
                raise _BadParam("group-by", "Required parameter is missing.")
            page = sim.store.transform_orders(
                workspace,
                group_by=group_by,
                filter=query.get("filter"),
                sort=query.get("sort"),
                limit=limit,
                offset=offset,
                updated_filter=cfg.updated_filter,
            )
        else:
            page = _listing(sim, resource, workspace, query, limit, offset)
    except _BadParam as exc:
        return _json(400, errors.bad_request(exc.subject, exc.description))
    except QueryError as exc:
        return _json(400, errors.bad_request(exc.subject, exc.description))
    if cfg.empty_lists:  # the API answering an empty list by mistake (tests a deletion guard)
        return _json(200, {"items": [], "count": 0, "offset": offset, "total": 0})
    envelope = {
        "items": page.items,
        "count": len(page.items),
        "offset": offset,
        "total": page.total,
    }
    return _json(200, envelope)


def _listing(  # noqa: PLR0917 - one private call site
    sim: SimulatorView,
    resource: str,
    workspace: str,
    query: dict[str, str],
    limit: int,
    offset: int,
) -> Page:
    """One page of orders or devices, as the server's modes shape it (see docs/simulator.md).

    With bad values on, records are listed whole, spoiled, then cut to ``select``: which records
    are spoiled depends on their ``id``, which a ``select`` may leave out.
    """
    cfg = sim.config
    lister = sim.store.list_orders if resource == "orders" else sim.store.list_devices
    bad = [b for b in parse_bad_values(cfg.bad_values) if b.resource == resource]
    page = lister(
        workspace,
        filter=query.get("filter"),
        sort=None if cfg.sort_mode == "ignore" else query.get("sort"),
        select=None if bad else query.get("select"),
        limit=limit,
        offset=offset,
        updated_filter=cfg.updated_filter,
        updated_sort=cfg.updated_sort,
        single_key_sort=cfg.sort_mode == "no-tiebreak",
        tie_salt=sim.ties.salt() if cfg.unstable_ties else None,
    )
    if not bad:
        return page
    items = [spoil_record(item, resource, bad, cfg.fault_seed) for item in page.items]
    fields = compile_select(query.get("select"), ORDERS if resource == "orders" else DEVICES)
    if fields is not None:
        items = [{f: rec[f] for f in fields if f in rec} for rec in items]
    return Page(items, page.total)
