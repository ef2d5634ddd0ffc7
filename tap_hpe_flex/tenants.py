"""Managed service providers: which tenant workspaces a run syncs, and which it skipped.

An MSP's API client gets a token for its own workspace and exchanges it (RFC 8693) for one token
per tenant workspace (``auth.WorkspaceAuth``). Each stream partition is one workspace, so each
tenant keeps its own bookmark: one tenant's failure or a new tenant never resets the others. A
tenant that refuses (token exchange refused, 401/403) is skipped and named once, and the others go
on.
"""

from __future__ import annotations

import logging
import re
import threading
import typing as t

import requests

from tap_hpe_flex.errors import (
    FlexAPIError,
    FlexAuthError,
    FlexConfigError,
    TokenRefusedError,
    describe_error,
)

logger = logging.getLogger("tap-hpe-flex")

#: Tenant list of the Workspace Management API (on the GreenLake global host).
MSP_TENANTS_PATH = "/workspaces/v1/msp-tenants"
#: Every tenant the MSP client can see (``tenant_workspace_ids: ["*"]``).
ALL_TENANTS = "*"
#: Skip scope meaning "every stream" (token exchange refused, or a 401).
WHOLE_TENANT = "*"

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def normalize_workspace_id(value: str, *, setting: str = "tenant_workspace_ids") -> str:
    """Return a workspace ID as 32 lower-case hex digits (the token-exchange URL's form).

    GreenLake lists workspace IDs as hyphenated UUIDs in places; exchange URLs take them without
    hyphens, so IDs are compared, stored in state and sent in that one form.
    """
    text = str(value).strip().replace("-", "").lower()
    if not _HEX32.match(text):
        msg = f"{setting}: {value!r} is not a workspace ID (32 hex digits, hyphens allowed)"
        raise FlexConfigError(msg)
    return text


def tenant_failure(exc: BaseException) -> str | None:
    """Say why a tenant must be skipped, or None when ``exc`` must end the run.

    Skipped: a refused token exchange, and 401/403 from the API with a tenant token. Not
    skipped: the MSP's own credentials refused, the token endpoint down, any other API error.
    """
    if isinstance(exc, TokenRefusedError):
        return str(exc) if exc.tenant is not None else None
    if isinstance(exc, FlexAPIError):
        return str(exc) if exc.status in {401, 403} else None
    if type(exc) is FlexAuthError:  # the API rejected a freshly issued token (a 401 twice)
        return str(exc)
    return None


class TenantSkips:
    """Tenants (or a tenant's permission scope) skipped in this run, each warned about once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skips: dict[tuple[str, str], str] = {}
        self.names: dict[str, str] = {}

    def label(self, workspace: str) -> str:
        """``<id> (<name>)`` when the tenant list named it, else the ID."""
        name = self.names.get(workspace)
        return f"{workspace} ({name})" if name else workspace

    def skip(self, workspace: str, scope: str, reason: str) -> None:
        """Record a skip; the first one per (tenant, scope) logs one WARNING line."""
        with self._lock:
            if (workspace, scope) in self._skips:
                return
            self._skips[workspace, scope] = reason
        what = "all streams" if scope == WHOLE_TENANT else f"streams needing {scope}"
        logger.warning(
            "Tenant %s skipped for %s: %s", self.label(workspace), what, " ".join(reason.split())
        )

    def is_skipped(self, workspace: str, scope: str) -> bool:
        """Whether ``workspace`` is skipped as a whole or for ``scope``."""
        with self._lock:
            return (workspace, WHOLE_TENANT) in self._skips or (workspace, scope) in self._skips

    def summary(self) -> str | None:
        """One line naming every skipped tenant and why (None when none was skipped)."""
        with self._lock:
            items = sorted(self._skips.items())
        if not items:
            return None
        parts = [
            f"{self.label(ws)} [{'all streams' if scope == WHOLE_TENANT else scope}]: "
            + " ".join(reason.split())[:200]
            for (ws, scope), reason in items
        ]
        tenants = len({ws for (ws, _), _ in items})
        return f"{tenants} tenant(s) skipped in this run: " + "; ".join(parts)

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._skips)


def list_tenants(
    get: t.Callable[[dict[str, int]], requests.Response], url: str, *, page_size: int
) -> list[dict[str, t.Any]]:
    """Page through ``GET /workspaces/v1/msp-tenants`` with the MSP token; items in list order.

    ``get(params)`` sends one paced, retried request (429 and 5xx are retried there). A 401/403
    ends the run: without the list there is nothing to sync.
    """
    items: list[dict[str, t.Any]] = []
    seen: set[str] = set()
    offset = 0
    while True:
        response = get({"limit": page_size, "offset": offset})
        if response.status_code != 200:
            hint = (
                " (tenant_workspace_ids ['*'] needs an MSP workspace's API client with "
                "'Platform Customer Account: View'; or list the tenant IDs instead)"
                if response.status_code in {401, 403}
                else ""
            )
            msg = f"Listing MSP tenants failed: GET {url}: {describe_error(response)}{hint}"
            raise FlexAPIError(msg, status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            msg = f"Listing MSP tenants failed: GET {url} answered with a body that is not JSON"
            raise FlexAPIError(msg, status=200) from None
        page = [i for i in (body.get("items") or []) if isinstance(i, dict)]
        for item in page:
            key = str(item.get("id"))
            if key not in seen:
                seen.add(key)
                items.append(item)
        total = body.get("total") if isinstance(body.get("total"), int) else None
        offset += len(page)
        done = offset >= total if total is not None else len(page) < page_size
        if not page or done:
            return items


class TenantDirectory:
    """The workspaces this run syncs, in order, resolved once (``["*"]`` lists the MSP tenants).

    Thread-safe and cached for the run, so every stream syncs the same tenants. ``shard=(k, n)``
    keeps shard k of n of the resolved list (``sharding.select``): n jobs cover each tenant once.
    """

    def __init__(
        self,
        entries: t.Sequence[str],
        skips: TenantSkips,
        list_all: t.Callable[[], list[dict[str, t.Any]]],
        *,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self._shard = shard
        self._entries = list(entries)
        self._skips = skips
        self._list_all = list_all
        self._lock = threading.Lock()
        self._resolved: list[str] | None = None

    def workspaces(self) -> list[str]:
        """Return the tenant workspaces (listing them on first use when ``"*"`` is given)."""
        with self._lock:
            if self._resolved is None:
                self._resolved = self._resolve()
            return list(self._resolved)

    def _resolve(self) -> list[str]:
        result: list[str] = []
        for entry in self._entries:
            if entry != ALL_TENANTS:
                result.append(entry)
                continue
            for item in self._list_all():
                workspace = normalize_workspace_id(str(item.get("id")), setting="msp-tenants id")
                if item.get("workspaceName"):
                    self._skips.names[workspace] = str(item["workspaceName"])
                result.append(workspace)
            logger.info("MSP tenant list: %d tenant workspace(s)", len(result))
        result = list(dict.fromkeys(result))
        index, count = self._shard
        if count > 1:
            from tap_hpe_flex.sharding import select  # noqa: PLC0415 - sharding imports this module

            mine = select(result, index, count)
            logger.info(
                "Shard %d of %d (shard=%d, shard_count=%d): %d of the %d tenant workspace(s)",
                index + 1,
                count,
                index,
                count,
                len(mine),
                len(result),
            )
            return mine
        return result
