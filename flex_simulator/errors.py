"""GreenLake-shaped error bodies.

Every error the simulator answers with must look like HPE's (``httpStatusCode``, ``errorCode``,
``message``, ``debugId`` and, where the OpenAPI document shows them, ``errorDetails``), because the
tap parses those bodies to decide whether to retry and what to tell the operator.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

_SOURCE = "hpe.greenlake.subscriptionmanagement"

BAD_REQUEST = "HPE_GL_ERROR_BAD_REQUEST"
UNAUTHORIZED = "HPE_GL_ERROR_UNAUTHORIZED"
EXPIRED_TOKEN = "HPE_GL_IAM_EXPIRED_TOKEN"
FORBIDDEN = "HPE_GL_ERROR_FORBIDDEN"
NOT_FOUND = "HPE_GL_ERROR_NOT_FOUND"
METHOD_NOT_ALLOWED = "HPE_GL_ERROR_METHOD_NOT_ALLOWED"
TOO_MANY_REQUESTS = "HPE_GL_ERROR_TOO_MANY_REQUESTS"
INTERNAL_SERVER_ERROR = "HPE_GL_ERROR_INTERNAL_SERVER_ERROR"


def error_body(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build an error body with a fresh ``debugId``, which HPE support asks for on every ticket."""
    body: dict[str, Any] = {
        "httpStatusCode": status,
        "errorCode": code,
        "message": message,
        "debugId": str(uuid.uuid4()),
    }
    if details is not None:
        body["errorDetails"] = details
    body.update(extra)
    return body


def _metadata_detail(key: str, text: str) -> list[dict[str, Any]]:
    return [{"type": "hpe.greenlake.metadata", "source": _SOURCE, "metadata": {key: text}}]


def bad_request(subject: str, description: str, source: str = "query.parameter") -> dict[str, Any]:
    """400 ``HpeGreenLakeBadRequestError``: the issue names the offending parameter."""
    issue = {"source": source, "subject": subject, "description": description}
    return error_body(
        400,
        BAD_REQUEST,
        "Bad Request.",
        [{"type": "hpe.greenlake.bad_request", "issues": [issue]}],
    )


def unauthorized(reason: str = "Token provided is invalid", **extra: Any) -> dict[str, Any]:
    """401 for a missing or unknown token (or wrong client credentials)."""
    return error_body(
        401,
        UNAUTHORIZED,
        "Unauthorized Request",
        _metadata_detail("access_token", reason),
        **extra,
    )


def expired_token() -> dict[str, Any]:
    """401 with the IAM code a tap must treat as "get a new token, then retry once"."""
    return error_body(
        401,
        EXPIRED_TOKEN,
        "The access token has expired.",
        _metadata_detail("access_token", "Token provided has expired"),
    )


def forbidden(message: str, **extra: Any) -> dict[str, Any]:
    """403 whose message names what is missing (e.g. the permission)."""
    return error_body(
        403,
        FORBIDDEN,
        message,
        _metadata_detail("access_token", "Permission is denied to perform requested operation."),
        **extra,
    )


def not_found(message: str) -> dict[str, Any]:
    """404 in the general error shape (the spec declares no 404, so the general schema applies)."""
    return error_body(404, NOT_FOUND, message, _metadata_detail("resource", message))


def method_not_allowed(method: str, allow: str) -> dict[str, Any]:
    """405 for a method the path does not serve; the handler adds the ``Allow`` header."""
    text = f"Method {method} is not allowed here; allowed: {allow}."
    return error_body(405, METHOD_NOT_ALLOWED, text, _metadata_detail("method", text))


def protocol_error(status: int, reason: str) -> dict[str, Any]:
    """Build the body of a refusal before routing (bad request line, header too long)."""
    code = BAD_REQUEST if status == 400 else f"HPE_GL_ERROR_HTTP_{status}"
    return error_body(status, code, reason, _metadata_detail("request", reason))


def too_many_requests() -> dict[str, Any]:
    """429 body, copied in shape from the spec's example."""
    return error_body(
        429,
        TOO_MANY_REQUESTS,
        "Too Many Requests",
        _metadata_detail(
            "apiRateLimit", "Too Many Requests. Rate limit has exceeded a predefined value."
        ),
    )


def server_error(retry_after_seconds: int) -> dict[str, Any]:
    """500 ``HpeGreenLakeServerError`` carrying ``retryAfterSeconds`` as the spec shows."""
    return error_body(
        500,
        INTERNAL_SERVER_ERROR,
        "Internal Server Error",
        [{"type": "hpe.greenlake.retry_info", "retryAfterSeconds": retry_after_seconds}],
    )


def html_page(status: int, reason: str) -> bytes:
    """Render an HTML error page as a gateway in front of the API would send it (not JSON)."""
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n"
        f"<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n"
        "<hr><center>gateway</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def dumps(body: Any) -> bytes:
    """Serialise a JSON body compactly (bytes on the wire matter for large pages)."""
    return json.dumps(body, separators=(",", ":")).encode()
