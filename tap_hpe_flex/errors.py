"""User-facing errors: one clear line each, never a secret, never a traceback at the CLI.

The CLI (see ``tap.FlexSingerCommand``) prints ``str(exc)`` of any :class:`FlexUserError` as a
single log line and exits non-zero, because these are problems the operator fixes (credentials,
permissions, a filter), not bugs to debug from a stack trace.
"""

from __future__ import annotations

import json
import typing as t

if t.TYPE_CHECKING:
    import requests

_MAX_TEXT = 300


class FlexUserError(Exception):
    """An error the operator can fix; its message is complete on one line."""


class FlexConfigError(FlexUserError):
    """A setting is invalid (raised before any request is made)."""


class FlexAuthError(FlexUserError):
    """The token endpoint or the API refused the credentials or the token."""


class TokenRefusedError(FlexAuthError):
    """The token endpoint refused (4xx other than 429): retrying cannot help.

    ``tenant`` is the tenant workspace of a refused token exchange (None: the client's own
    credentials were refused, which no tenant can survive).
    """

    def __init__(self, message: str, *, status: int, tenant: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.tenant = tenant


class TokenEndpointUnavailableError(FlexAuthError):
    """The token endpoint kept failing transiently until ``max_retry_seconds`` ran out."""


class FlexAPIError(FlexUserError):
    """The API answered with an error that retrying cannot fix (400, 403, 404, 422, ...)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _one_line(text: str, limit: int = _MAX_TEXT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decode_error_body(response: requests.Response) -> dict[str, t.Any] | None:
    """Return the HPE error body as a dict, or None when a gateway sent HTML or garbage."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def error_issues(body: dict[str, t.Any] | None) -> list[dict[str, t.Any]]:
    """Flatten ``errorDetails[].issues[]`` of a GreenLake bad-request body."""
    issues: list[dict[str, t.Any]] = []
    for detail in (body or {}).get("errorDetails") or []:
        if isinstance(detail, dict):
            issues.extend(i for i in detail.get("issues") or [] if isinstance(i, dict))
    return issues


def describe_error(
    response: requests.Response, *, max_issues: int = 5, quote_text: bool = True
) -> str:
    """Summarise an error response on one line: status, API message, issues and debugId.

    Only documented fields of the body are quoted (``message``, issue ``subject``/``description``,
    ``debugId``, ``errorCode``): never headers or the raw body, which could echo credentials.
    ``quote_text=False`` leaves out the free text too (for the token endpoint's answers).
    """
    status = f"HTTP {response.status_code}"
    if response.reason:
        status += f" {response.reason}"
    body = decode_error_body(response)
    if body is None:
        kind = response.headers.get("Content-Type", "unknown content type").split(";")[0]
        return f"{status} (non-JSON {kind} response, probably from a gateway)"
    parts = [status]
    if not quote_text:
        max_issues = 0
    elif body.get("message"):
        parts.append(_one_line(body["message"]))
    issues = [
        _one_line(
            ": ".join(str(i[k]) for k in ("subject", "description") if i.get(k)) or str(i),
            120,
        )
        for i in error_issues(body)[:max_issues]
        if max_issues
    ]
    if issues:
        parts.append("issues: " + "; ".join(issues))
    if body.get("errorCode"):
        parts.append(f"errorCode={_one_line(body['errorCode'], 80)}")
    if body.get("debugId"):
        parts.append(f"debugId={_one_line(body['debugId'], 80)}")
    return " - ".join(parts)
