"""The Admin API versions the shop sandbox answers, and the version it answers a request with.

https://shopify.dev/docs/api/usage/versioning ("About Shopify API versioning"): versions are named by the quarter
they are released in (``2026-10``); each stable version is supported at least 12 months; a request for a version that
is no longer supported is not refused but answered by the oldest supported stable version ("Shopify falls forward
when your selected version becomes inaccessible"), and the ``X-Shopify-API-Version`` header of the answer says
which version answered.

The sandbox serves one version, ``SERVED_VERSION``, the one erpsync speaks: a request naming an older quarter is
answered by it, with the header saying so, as Shopify answers a retired version with its oldest supported one — so a
client pinned to a retired version meets the newer schema, as it would in a real shop. A version that is not a
quarter's name (``2025-02``, ``latest``) or is newer than the one served (the release candidate, ``unstable``) is
answered 404: the sandbox implements no schema but the one it serves.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SERVED_VERSION = "2026-10"
VERSION_HEADER = "X-Shopify-API-Version"
_ADMIN_PATH = re.compile(r"^/admin/api/([^/]+)/")
_QUARTER = re.compile(r"^(\d{4})-(01|04|07|10)$")


def answering_version(requested: str) -> str | None:
    """The version that answers a request for ``requested``; None when the sandbox answers none."""
    if not _QUARTER.match(requested) or requested > SERVED_VERSION:
        return None
    return SERVED_VERSION


class ApiVersionMiddleware:
    """Answers ``/admin/api/<version>/...`` by the version above: 404 for one it does not serve, and on every
    other answer the ``X-Shopify-API-Version`` header naming the version that answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _ADMIN_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        version = answering_version(match.group(1))
        if version is None:
            body = b'{"errors":"Not Found"}'
            await send({"type": "http.response.start", "status": 404, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (VERSION_HEADER.lower().encode(), version.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_version)
