"""The tap's settings as one typed, frozen view, parsed from a config ``config_schema.py`` passed.

Why parsed once, here: every other module reads a :class:`Settings` attribute instead of
``config.get(name) or default`` (two idioms that disagree on 0), and every mistake a JSON Schema
cannot catch (a number given as text by an environment variable, ``start_date: yesterday``, a
tenant ID that is not one, ``token_url`` needing an unset ``workspace_id``) fails here, at start-up,
with one line that names the setting and says what to write instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import typing as t

from tap_hpe_flex import __version__
from tap_hpe_flex.auth import ApiClient, parse_api_clients
from tap_hpe_flex.config_schema import (
    DEFAULT_API_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_TOKEN_URL,
    DEFAULT_WORKSPACES_API_URL,
    GROUP_BY_FIELDS,
    WORKSPACE_PLACEHOLDER,
)
from tap_hpe_flex.deletions import DEFAULT_MAX_DELETED_SHARE
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.incremental import Strategy, canonical_timestamp
from tap_hpe_flex.keysets import DEFAULT_MAX_KEYS
from tap_hpe_flex.sharding import check_shard_settings
from tap_hpe_flex.tenants import ALL_TENANTS, normalize_workspace_id


def _float(config: t.Mapping[str, t.Any], name: str, default: float, *, positive: bool) -> float:
    value = config.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number > 0 if positive else number >= 0):  # also refuses NaN
        need = "a number above 0" if positive else "a number of at least 0"
        msg = f"{name}: {value!r} is not {need} (e.g. {name}={default:g})"
        raise FlexConfigError(msg)
    return number


def _int(config: t.Mapping[str, t.Any], name: str, default: int) -> int:
    value = config.get(name)
    return default if value is None or value == "" else int(value)


def _start_date(value: t.Any) -> str | None:
    """Return ``start_date`` in the bookmarks' canonical form; a bare date means midnight UTC."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            return canonical_timestamp(
                dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
            )
        return canonical_timestamp(text)
    except ValueError:
        msg = (
            f"start_date: {text!r} is not a date-time; write RFC 3339, e.g. "
            "start_date=2024-01-31T00:00:00Z (or a date such as 2024-01-31)"
        )
        raise FlexConfigError(msg) from None


def _strings(value: t.Any) -> tuple[str, ...]:
    return tuple(s for s in (str(v).strip() for v in value or []) if s)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of a run, converted and checked once (see the module docstring)."""

    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    workspace_id: str | None
    token_url_template: str
    api_url: str
    start_date: str | None
    page_size: int
    requests_per_minute: int
    rate_limit_window_s: float
    max_retry_s: float
    retry_initial_wait_s: float
    retry_max_wait_s: float
    filters: t.Mapping[str, str]
    order_transform_group_by: tuple[str, ...]
    device_ids: tuple[str, ...]
    deletion_max_keys: int
    deletion_max_share: float
    incremental_strategy: Strategy
    tenant_workspace_ids: tuple[str, ...]
    workspaces_api_url: str
    tenant_list_page_size: int
    shard: int
    shard_count: int
    rate_budget_url: str | None = dataclasses.field(repr=False)
    rate_budget_margin_s: float | None
    additional_clients: tuple[ApiClient, ...] = dataclasses.field(repr=False)
    fail_on_skipped_tenants: bool
    progress_interval_s: float
    max_concurrent_requests: int
    request_timeout_s: float
    user_agent: str

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Convert and check ``config``; FlexConfigError names the first bad setting."""
        tenants = tuple(
            dict.fromkeys(
                v if v == ALL_TENANTS else normalize_workspace_id(v)
                for v in _strings(config.get("tenant_workspace_ids"))
            )
        )
        filters = {
            name: str(config[name]).strip()
            for name in ("orders_filter", "devices_filter")
            if str(config.get(name) or "").strip()
        }
        check_shard_settings(_int(config, "shard", 0), _int(config, "shard_count", 1), tenants)
        return cls(
            client_id=str(config.get("client_id") or ""),
            client_secret=str(config.get("client_secret") or ""),
            workspace_id=str(config.get("workspace_id") or "").strip() or None,
            token_url_template=str(config.get("token_url") or DEFAULT_TOKEN_URL),
            api_url=str(config.get("api_url") or DEFAULT_API_URL).rstrip("/"),
            start_date=_start_date(config.get("start_date")),
            page_size=_int(config, "page_size", 100),
            requests_per_minute=_int(config, "requests_per_minute", 100),
            rate_limit_window_s=_float(config, "rate_limit_window_seconds", 60, positive=True),
            max_retry_s=_float(config, "max_retry_seconds", 600, positive=False),
            retry_initial_wait_s=_float(config, "retry_initial_wait_seconds", 2, positive=True),
            retry_max_wait_s=_float(config, "retry_max_wait_seconds", 60, positive=True),
            filters=filters,
            order_transform_group_by=tuple(
                dict.fromkeys(_strings(config.get("order_transform_group_by")) or GROUP_BY_FIELDS)
            ),
            device_ids=_strings(config.get("device_ids")),
            deletion_max_keys=_int(config, "deletion_max_keys", DEFAULT_MAX_KEYS),
            deletion_max_share=_float(
                config, "deletion_max_share", DEFAULT_MAX_DELETED_SHARE, positive=False
            ),
            incremental_strategy=Strategy(str(config.get("incremental_strategy") or "auto")),
            tenant_workspace_ids=tenants,
            workspaces_api_url=str(
                config.get("workspaces_api_url") or DEFAULT_WORKSPACES_API_URL
            ).rstrip("/"),
            tenant_list_page_size=_int(config, "tenant_list_page_size", 100),
            shard=_int(config, "shard", 0),
            shard_count=_int(config, "shard_count", 1),
            rate_budget_url=str(config.get("rate_budget_url") or "").strip() or None,
            rate_budget_margin_s=_float(config, "rate_budget_margin_seconds", -1, positive=False)
            if config.get("rate_budget_margin_seconds") not in {None, ""}
            else None,
            additional_clients=parse_api_clients(
                config.get("additional_clients"), main_client_id=str(config.get("client_id") or "")
            ),
            fail_on_skipped_tenants=bool(config.get("fail_on_skipped_tenants")),
            progress_interval_s=_float(config, "progress_interval_seconds", 30, positive=False),
            max_concurrent_requests=max(
                1, _int(config, "max_concurrent_requests", DEFAULT_CONCURRENCY)
            ),
            request_timeout_s=_float(config, "request_timeout", 60, positive=True),
            user_agent=str(config.get("user_agent") or f"tap-hpe-flex/{__version__}"),
        )

    @property
    def msp(self) -> bool:
        """True when the run syncs tenant workspaces (``tenant_workspace_ids`` is set)."""
        return bool(self.tenant_workspace_ids)

    @property
    def home_workspace(self) -> str | None:
        """``workspace_id`` in the normalised form; a non-UUID ID is used as given."""
        if self.workspace_id is None:
            return None
        try:
            return normalize_workspace_id(self.workspace_id, setting="workspace_id")
        except FlexConfigError:
            return self.workspace_id  # classic token URLs take other IDs

    def token_url(self) -> str:
        """``token_url`` with ``{workspace_id}`` filled in; fails clearly when it cannot be."""
        url = self.token_url_template
        if WORKSPACE_PLACEHOLDER in url:
            if not self.workspace_id:
                msg = (
                    "token_url contains {workspace_id} but workspace_id is not set: set "
                    "workspace_id (TAP_HPE_FLEX_WORKSPACE_ID) or give a full token_url"
                )
                raise FlexConfigError(msg)
            url = url.replace(WORKSPACE_PLACEHOLDER, self.workspace_id)
        return url

    def exchange_url(self, workspace: str) -> str:
        """Return the token-exchange URL of a tenant workspace (MSP mode needs the placeholder)."""
        if WORKSPACE_PLACEHOLDER not in self.token_url_template:
            msg = (
                "tenant_workspace_ids needs a token_url containing {workspace_id}: tenant tokens "
                "are exchanged at .../authorization/v2/oauth2/{workspace_id}/token"
            )
            raise FlexConfigError(msg)
        return self.token_url_template.replace(WORKSPACE_PLACEHOLDER, workspace)


def unknown_settings(config: t.Mapping[str, t.Any], known: t.Iterable[str]) -> list[str]:
    """Name each setting the tap does not know, with the closest known name when one is near.

    A misspelt setting (``requests_per_minut``) would otherwise be ignored in silence and the
    default used instead.
    """
    names = sorted(set(known))
    lines = []
    for name in sorted(set(config) - set(names)):
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"Unknown setting {name!r} is ignored{hint}")
    return lines
