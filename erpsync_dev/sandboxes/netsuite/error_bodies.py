"""NetSuite's error documents, as its record, query and token APIs answer them (RFC 7807-like, ``o:errorDetails``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

ERROR_MEDIA_TYPE = "application/vnd.oracle.resource+json; type=error"
RFC2616 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def error_body(status: int, code: str, detail: str, path: str | None = None) -> dict[str, Any]:
    """NetSuite's error document: RFC 7807-like envelope with ``o:errorDetails``."""
    entry: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        entry["o:errorPath"] = path
    return {
        "type": f"{RFC2616}#sec10.4.1" if status == 400 else RFC2616,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [entry],
    }


def netsuite_error(
    status: int, code: str, detail: str, path: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, code, detail, path), status, headers=headers, media_type=ERROR_MEDIA_TYPE)


def concurrency_error(retry_after: float | None) -> JSONResponse:
    # Modelled on NetSuite's published 429 (title "Bad Request" and the outer USER_ERROR included),
    # with the comma its documentation lost, so this body is valid JSON.
    body = {
        "type": RFC2616,
        "title": "Bad Request",
        "status": 429,
        "o:errorCode": "USER_ERROR",
        "o:errorDetails": [
            {
                "detail": "Concurrent request limit exceeded. Request blocked.",
                "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED",
            }
        ],
    }
    return JSONResponse(body, 429, headers=retry_after_header(retry_after), media_type=ERROR_MEDIA_TYPE)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"}


def invalid_login() -> JSONResponse:
    return netsuite_error(
        401,
        "INVALID_LOGIN",
        "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at"
        " Setup > Users/Roles > User Management > View Login Audit Trail.",
    )


def not_found() -> JSONResponse:
    return netsuite_error(404, "NONEXISTENT_ID", "Record does not exist.")


def malformed() -> JSONResponse:
    detail = "The request could not be understood by the server due to malformed syntax."
    return netsuite_error(400, "INVALID_REQUEST", detail)


def search_error(reason: str) -> JSONResponse:
    detail = f"Invalid search query. Detailed unprocessed description follows. Search error occurred: {reason}"
    return netsuite_error(400, "INVALID_PARAMETER", detail)
