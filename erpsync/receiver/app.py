"""The webhook receiver: verify, store durably, answer, and only then dispatch a flow run.

Nothing is acknowledged before it is committed to the inbox; dispatch happens after the answer so that a slow
or absent Prefect never delays Shopify (5 s budget) or loses an event — the sweep dispatches what is left.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from erpsync.dispatch import Dispatcher
from erpsync.errors import ErpsyncError
from erpsync.ledger import Ledger
from erpsync.signatures import verify_shopify

log = logging.getLogger("erpsync.receiver")


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, cap: int) -> bytes:
    """The raw body, refusing early (by Content-Length) or while streaming once it exceeds ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def shopify_header(request: Request, name: str) -> str | None:
    """Shopify's header, under its ``X-Shopify-`` name or the newer unprefixed ``shopify-`` one."""
    return request.headers.get(f"x-shopify-{name}") or request.headers.get(f"shopify-{name}")


def problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class DispatchQueue:
    """Starts flow runs for stored events on a few threads of its own, off the request path.

    Dispatch must not run inside the request (or its background task): on a keep-alive connection the next
    delivery would wait for Prefect. A few threads also bound the load a burst puts on the Prefect API.
    Whatever is queued when the process dies is still in the inbox, and the sweep dispatches it.
    """

    def __init__(self, ledger: Ledger, dispatcher: Dispatcher, *, threads: int = 4):
        self.ledger = ledger
        self.dispatcher = dispatcher
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dispatch")

    def submit(self, event_id: int) -> None:
        self._pool.submit(self._dispatch, event_id)

    def _dispatch(self, event_id: int) -> None:
        try:
            flow_run_id = self.dispatcher.dispatch(event_id)
            self.ledger.mark_dispatched(event_id, flow_run_id)
        except ErpsyncError as exc:
            # Stored and acknowledged already: the sweep will start it. Say so, without payload data.
            log.warning("event %s stored; dispatch deferred to the sweep: %s", event_id, exc)
        except Exception:  # a bug here must not kill the dispatch thread; the sweep still has the event
            log.exception("event %s stored; dispatch failed unexpectedly, deferred to the sweep", event_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


def create_app(
    *,
    ledger: Ledger,
    shopify_secret: Callable[[], str],
    dispatcher: Dispatcher | None,
    max_body_bytes: int,
) -> Starlette:
    """The receiver as an ASGI app. ``shopify_secret`` is called per request so a rotated secret applies."""
    queue = DispatchQueue(ledger, dispatcher) if dispatcher is not None else None

    @asynccontextmanager
    async def lifespan(_app):
        yield
        if queue is not None:
            await run_in_threadpool(queue.close)

    async def shopify_webhook(request: Request) -> JSONResponse:
        try:
            body = await read_capped(request, max_body_bytes)
        except BodyTooLarge:
            return problem(413, f"body larger than {max_body_bytes} bytes")
        if not verify_shopify(shopify_secret(), body, shopify_header(request, "hmac-sha256")):
            return problem(401, "missing or invalid X-Shopify-Hmac-Sha256")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return problem(400, "body is not valid JSON")
        if not isinstance(payload, dict):
            return problem(400, "body must be a JSON object")
        delivery_id, topic = shopify_header(request, "webhook-id"), shopify_header(request, "topic")
        missing = [name for name, value in (("X-Shopify-Webhook-Id", delivery_id), ("X-Shopify-Topic", topic))
                   if not value]
        if missing:
            return problem(400, f"missing header: {', '.join(missing)}")
        intake = await run_in_threadpool(
            ledger.record_delivery,
            source="shopify",
            delivery_id=delivery_id,
            topic=topic,
            shop=shopify_header(request, "shop-domain"),
            triggered_at=shopify_header(request, "triggered-at"),
            body=body,
            payload_sha256=hashlib.sha256(body).hexdigest(),
        )
        answer = {"event_id": intake.event_id, "duplicate_delivery": not intake.is_new}
        if not intake.is_new:
            return JSONResponse(answer, status_code=200)
        # After the answer is sent, only hand the id to the dispatch threads: instant, never waits on Prefect.
        background = BackgroundTask(queue.submit, intake.event_id) if queue is not None else None
        return JSONResponse(answer, status_code=202, background=background)

    async def healthz(_: Request) -> JSONResponse:
        try:
            await run_in_threadpool(ledger.inbox_ping)
        except Exception as exc:  # the probe must answer, whatever the database says
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/webhooks/shopify", shopify_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
