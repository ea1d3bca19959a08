"""The webhook receiver: authenticate, check, store durably, answer, and only then dispatch a flow run.

Nothing is acknowledged before it is committed to the inbox; dispatch happens after the answer so that a slow
or absent Prefect never delays a source (Shopify allows 5 s) or loses an event — the sweep dispatches what is left.

``POST /webhooks/{source}`` checks, in this order, each refusal answered as ``{"error": ...}`` with nothing stored:

    404  no source of that name (erpsync.receiver.webhook_sources.SOURCES)
    429  the source's token bucket is empty (Retry-After says when to come back)
    413  the body is larger than the cap (by Content-Length, or while streaming)
    401  no active secret of the source verifies it / its timestamp is outside the window
    200  WooCommerce's unsigned creation ping (nothing stored)
    400  a header the inbox needs is missing, or wider than its inbox column
    415  the body is not declared JSON
    400  the body is not a JSON object, or nests deeper than 32 levels or holds more than 10,000 values
    404  no mapping handles the delivery's (source, topic), and the receiver does not handle it itself
    400  a topic the receiver handles itself, whose body lacks a field it needs (named)
    503  the inbox could not store it (database down or locked too long): nothing acknowledged, retry later
    202  stored; 200 when the delivery id was stored before (no new work)
    200  a new delivery id whose body (or Shopify event id) an earlier event of the source holds: stored as a
         duplicate of it (``duplicate_of``), never dispatched — Shopify and WooCommerce sign only the body
    200  stored and acted on here: a topic a source's package handles at intake (``System.intake``: Shopify's
         compliance topics and orders/delete, erpsync/systems/shopify/compliance.py and order_delete.py)

Authentication comes before every check that reads the body, so an unauthenticated caller learns only "401".
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from erpsync.errors import ErpsyncError, InvalidPayload, TransientError
from erpsync.ledger import InboxDelivery, Ledger
from erpsync.receiver.deliveries import BadDelivery, Delivery, DeliveryRefused, NotAWebhook, WebhookSource
from erpsync.receiver.inbox_writer import InboxWriter
from erpsync.receiver.limits import IntakeLimits, JsonRefused, RateLimiter, is_json_media_type, parse_json_object
from erpsync.receiver.openapi import openapi_document
from erpsync.receiver.webhook_sources import SOURCES
from erpsync.run_control import Dispatcher, RunControl, start_batch_runs
from erpsync.settings import DEFAULT_BATCH_RUNS

log = logging.getLogger("erpsync.receiver")

# A topic is echoed in a 404 only when it looks like one; anything else is not repeated back.
_PRINTABLE_TOPIC = re.compile(r"[A-Za-z0-9_./:-]{1,100}")

# The inbox's column widths: a longer value would fail the insert (a 500 on PostgreSQL), so it is refused first.
_DELIVERY_FIELD_WIDTHS = {"delivery_id": ("delivery id", 200), "topic": ("topic", 100), "shop": ("shop", 255),
                          "triggered_at": ("trigger time", 64), "source_event_id": ("event id", 200),
                          "api_version": ("API version", 32)}


def oversized_field(delivery: Delivery) -> str | None:
    """A 400 message when a field of ``delivery`` is wider than its inbox column, else None."""
    for attribute, (label, width) in _DELIVERY_FIELD_WIDTHS.items():
        value = getattr(delivery, attribute)
        if value is not None and len(value) > width:
            return f"{label} longer than {width} characters"
    return None


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its body was read: nobody is left to answer."""

    def __init__(self, received: int):
        super().__init__(received)
        self.received = received


def where_raised(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of ``exc``: enough to find a bug, and unlike the
    exception's message (``KeyError: '{"email": …}'``) it can never quote a payload."""
    tb = exc.__traceback__
    if tb is None:
        return "unknown location"
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{Path(code.co_filename).name}:{tb.tb_lineno} in {code.co_name}"


def log_unexpected(what: str, exc: BaseException) -> None:
    """One line naming the type and the place, never the message or a traceback (their text can quote data)."""
    log.error("%s: unexpected %s at %s", what, type(exc).__name__, where_raised(exc))


class NotJson(DeliveryRefused):
    status = 415


async def read_capped(request: Request, cap: int) -> bytes:
    """The raw body, refusing early (by Content-Length) or while streaming once it exceeds ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise BodyTooLarge
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone(size) from None
    return b"".join(chunks)


def problem(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class DispatchQueue:
    """Starts flow runs for stored events on a few threads of its own, off the request path.

    Dispatch must not run inside the request (or its background task): on a keep-alive connection the next
    delivery would wait for Prefect. A few threads also bound the load a burst puts on the Prefect API.
    Whatever is queued when the process dies is still in the inbox, and the sweep dispatches it.

    Backlog: when more than ``batch_threshold`` events wait for dispatch, one run per event cannot keep up (a run
    takes seconds to start), so ``batch_runs`` `sync-batch` runs are started instead and the events are left in
    the inbox for them; while any batch run is active, new events go to it too. When the last one ends, what is
    still waiting is dispatched again (a batch run for many, one run each for a few).
    """

    # How often the state of the batch runs is asked of Prefect while relying on them.
    BATCH_CHECK_SECONDS = 2.0

    def __init__(self, ledger: Ledger, dispatcher: RunControl, *, threads: int = 4, batch_threshold: int = 0,
                 batch_runs: int = DEFAULT_BATCH_RUNS):
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.batch_threshold = batch_threshold
        self.batch_runs = batch_runs
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dispatch")
        self._lock = threading.Lock()
        self._pending = 0
        self._batches: list[str] = []
        self._checked = 0.0

    def submit(self, event_id: int) -> None:
        with self._lock:
            self._pending += 1
        self._pool.submit(self._dispatch, event_id)

    def _dispatch(self, event_id: int) -> None:
        try:
            if self.batch_threshold and self._leave_to_batch():
                return
            flow_run_id = self.dispatcher.dispatch(event_id)
            self.ledger.mark_dispatched(event_id, flow_run_id)
        except ErpsyncError as exc:
            # Stored and acknowledged already: the sweep will start it. Say so, without payload data.
            log.warning("event %s stored; dispatch deferred to the sweep: %s", event_id, exc)
        except Exception as exc:  # a bug here must not kill the dispatch thread; the sweep still has the event
            log_unexpected(f"event {event_id} stored; dispatch deferred to the sweep", exc)
        finally:
            with self._lock:
                self._pending -= 1

    def _leave_to_batch(self) -> bool:
        """True when the event should wait in the inbox for a batch run (starting one if needed)."""
        with self._lock:
            if time.monotonic() - self._checked >= self.BATCH_CHECK_SECONDS:
                self._checked = time.monotonic()
                had_batches, self._batches = bool(self._batches), self.dispatcher.active_batches()
                if had_batches and not self._batches:
                    self._catch_up()
            if self._batches:
                return True
            if self._pending <= self.batch_threshold:
                return False
            self._start_batch()
            return True

    def _start_batch(self) -> None:
        self._batches = start_batch_runs(self.dispatcher, f"{time.time_ns()}", self.batch_runs)
        self._checked = time.monotonic()
        log.info("backlog of %d events: started sync-batch run(s) %s", self._pending, ", ".join(self._batches))

    def _catch_up(self) -> None:
        """The batch runs ended: events that arrived as they finished must not wait for the sweep."""
        waiting = self.ledger.undispatched(older_than=timedelta(0), limit=self.batch_threshold + 1)
        if len(waiting) > self.batch_threshold:
            self._start_batch()
            return
        for event_id in waiting:
            self._pool.submit(self._dispatch_now, event_id)

    def _dispatch_now(self, event_id: int) -> None:
        try:
            self.ledger.mark_dispatched(event_id, self.dispatcher.dispatch(event_id))
        except ErpsyncError as exc:
            log.warning("event %s stored; dispatch deferred to the sweep: %s", event_id, exc)

    def close(self) -> None:
        # Queued ids are dropped, not waited for (Prefect may be down): they are in the inbox, and the sweep
        # dispatches them. Dispatches already under way finish.
        self._pool.shutdown(wait=True, cancel_futures=True)


class HandledTopics:
    """The (source, topic) pairs some mapping handles, re-read at most once a ``refresh_seconds``.

    Answers must stay fast under load, so a request never waits on the mappings folder except for the one
    refresh a second. An empty answer (the folder emptied or unmounted) never replaces a non-empty set: a
    platform that is answered 404 repeatedly drops its subscription, so an authenticated event is better stored
    (and dead-lettered if unmapped) while an operator fixes the folder. `erpsync serve` refuses to start on a
    folder that handles nothing.
    """

    def __init__(self, mappings_dir: str | Path, *, refresh_seconds: float = 1.0):
        self.mappings_dir = Path(mappings_dir)
        self.refresh_seconds = refresh_seconds
        self._topics: frozenset[tuple[str, str]] | None = None
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self.refresh_seconds

    def refresh(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another request is refreshing; this one uses the set in force
        try:
            if not self.stale():
                return
            from erpsync.mapping import handled_topics

            found = frozenset(handled_topics(self.mappings_dir))
            if found or not self._topics:
                self._topics = found
            else:
                log.warning("no mapping found in %s; keeping the %d topics in force", self.mappings_dir,
                            len(self._topics))
        except Exception as exc:  # keep answering with the last good set; the pipeline reports the broken file
            log.warning("mappings in %s unreadable, keeping the topics in force: %s: %s",
                        self.mappings_dir, type(exc).__name__, exc)
        finally:
            self._loaded_at = time.monotonic()
            self._lock.release()

    def handles(self, source: str, topic: str) -> bool:
        return self._topics is None or (source, topic) in self._topics


@dataclass(frozen=True)
class HandledHere:
    """A topic no ERP mapping handles that the receiver acts on itself, before it answers (erpsync.ports.
    IntakeHandler: a compliance request must be carried out even when Prefect is away; an order deletion has
    nothing to map)."""

    validate: Callable[[str, object], object]  # raises InvalidPayload naming the field
    act: Callable[[Ledger, int], str]  # idempotent; returns the outcome


def handlers_in_receiver(environ: Mapping[str, str] | None = None) -> dict[tuple[str, str], HandledHere]:
    """(source, topic) → its handler, for every topic a registered source handles at intake (``System.intake``).

    Each handler reads its settings now (Shopify's ERPSYNC_SHOPIFY_ORDER_DELETE, and in ``close`` mode the ERP's
    own), so a missing one stops the receiver at start rather than at the first delivery.
    """
    import os

    from erpsync.systems import SYSTEMS

    env = os.environ if environ is None else environ
    return {(name, topic): HandledHere(handler.validate, handler.start(env))
            for name, system in SYSTEMS.items() for topic, handler in system.intake.items()}


def create_app(
    *,
    ledger: Ledger,
    dispatcher: Dispatcher | None,
    secrets: Callable[[str], list[str]],
    mappings_dir: str | Path,
    limits: IntakeLimits,
    sources: Mapping[str, WebhookSource] | None = None,
    batch_threshold: int = 0,
    batch_runs: int = DEFAULT_BATCH_RUNS,
) -> QuietErrors:
    """The receiver as an ASGI app.

    ``secrets(source_name)`` gives the source's active secrets and is called per request, so a rotated secret
    applies at once (cache slow stores in the callable). ``sources`` defaults to the registry in sources.py.
    """
    registry = dict(SOURCES if sources is None else sources)
    handled_here = handlers_in_receiver()
    topics = HandledTopics(mappings_dir)
    rate = RateLimiter(limits.rate_per_second, limits.rate_burst)
    document = openapi_document(sorted(registry), limits)
    queue = (DispatchQueue(ledger, dispatcher, batch_threshold=batch_threshold, batch_runs=batch_runs)
             if dispatcher is not None else None)
    writer = InboxWriter(ledger, body_signed_sources=frozenset(
        name for name, source in registry.items() if getattr(source, "signs_body_only", False)))
    # Admission (secrets, HMAC, JSON checks) runs off the event loop on a few threads of its own. Not Starlette's
    # run_in_threadpool: its per-call overhead (capacity limiter, cancel scope, a Condition-based queue) cost more
    # CPU than the HMAC and JSON parse of a typical body. The work holds the GIL, so more threads would not add
    # throughput, only contend with the loop and the inbox writer; a few keep one slow secret lookup from holding
    # up the others.
    admission = ThreadPoolExecutor(max_workers=4, thread_name_prefix="admit")
    unconfigured_warned: set[str] = set()

    @asynccontextmanager
    async def lifespan(_app):
        await run_in_threadpool(topics.refresh)  # the first delivery should not wait for the mappings to load
        # What is loaded by now (modules, Prefect, SQLAlchemy, pydantic: ~150k objects) lives as long as the
        # process. Left to the cyclic GC, each full collection walks all of it with the GIL held: 50-110 ms in
        # which no request is answered (the intake's p99 on PostgreSQL). Frozen, a full collection walks only
        # what requests allocate since.
        gc.collect()
        gc.freeze()
        yield
        admission.shutdown(wait=False, cancel_futures=True)
        await run_in_threadpool(writer.close)
        if queue is not None:
            await run_in_threadpool(queue.close)
        if dispatcher is not None and hasattr(dispatcher, "close"):
            dispatcher.close()
        ledger.close()

    def active_secrets(name: str) -> list[str]:
        try:
            found = [s for s in secrets(name) if s]
        except Exception as exc:  # a secret store that fails refuses deliveries (401); it must not crash (500)
            log.warning("webhook secrets of source %s unavailable: %s", name, type(exc).__name__)
            return []
        if not found and name not in unconfigured_warned:
            unconfigured_warned.add(name)
            log.warning("source %s has no webhook secret: every delivery is refused (401)", name)
        return found

    def admit(name: str, source: WebhookSource, headers: Mapping[str, str], body: bytes) -> Delivery:
        """The authenticated delivery in ``body``, or a DeliveryRefused / NotAWebhook saying why not."""
        delivery = source.authenticate(headers, body, active_secrets(name), datetime.now(timezone.utc))
        oversized = oversized_field(delivery)
        if oversized:
            raise BadDelivery(oversized)
        if not is_json_media_type(headers.get("content-type")):
            raise NotJson("Content-Type must be application/json")
        try:
            parse_json_object(body, max_depth=limits.max_json_depth, max_values=limits.max_json_values)
        except JsonRefused as exc:
            raise BadDelivery(str(exc)) from None
        return delivery

    async def webhook(request: Request) -> JSONResponse:
        name = request.path_params["source"]
        source = registry.get(name)
        if source is None:
            return problem(404, f"unknown webhook source; known: {', '.join(sorted(registry))}")
        wait = rate.retry_after(name)
        if wait:
            return problem(429, f"rate limit of {name} exceeded; retry later", {"Retry-After": str(wait)})
        try:
            body = await read_capped(request, limits.max_body_bytes)
        except BodyTooLarge:
            return problem(413, f"body larger than {limits.max_body_bytes} bytes")
        except ClientGone as gone:
            # A cheap thing to do many times: one short line each, never a traceback.
            log.info("%s delivery abandoned: client disconnected after %d body bytes", name, gone.received)
            return problem(400, "client disconnected")
        try:
            # Secrets (possibly a slow store), HMAC and JSON parsing of up to the body cap run off the event loop.
            delivery = await asyncio.get_running_loop().run_in_executor(admission, admit, name, source,
                                                                        request.headers, body)
        except NotAWebhook:
            return JSONResponse({"ping": True}, status_code=200)
        except DeliveryRefused as exc:
            log.info("refused %s delivery: %s %s", name, exc.status, exc.message)
            return problem(exc.status, exc.message)
        if topics.stale():
            await run_in_threadpool(topics.refresh)
        here = handled_here.get((name, delivery.topic))
        if here is None and not topics.handles(name, delivery.topic):
            shown = f" {delivery.topic!r}" if _PRINTABLE_TOPIC.fullmatch(delivery.topic) else ""
            return problem(404, f"no mapping handles {name} topic{shown}")
        if here is not None:
            try:
                here.validate(delivery.topic, json.loads(body))
            except InvalidPayload as exc:  # names the field, never a value
                return problem(400, f"{delivery.topic}: {exc}")
        try:
            intake = await writer.store(InboxDelivery(
                source=delivery.source, delivery_id=delivery.delivery_id, topic=delivery.topic, shop=delivery.shop,
                triggered_at=delivery.triggered_at, body=body, payload_sha256=hashlib.sha256(body).hexdigest(),
                source_event_id=delivery.source_event_id, api_version=delivery.api_version))
        except TransientError as exc:
            # Not durable, so not acknowledged: the source retries the delivery later.
            log.warning("%s delivery not stored: %s", name, exc)
            return problem(503, "the inbox is unavailable; retry later", {"Retry-After": "5"})
        answer = {"event_id": intake.event_id, "duplicate_delivery": not intake.is_new}
        if intake.duplicate_of is not None:
            # A replayed body (or a second subscription's copy) under a new delivery id: recorded, no new work.
            log.info("%s event %s duplicates event %s (same body or event id)", name, intake.event_id,
                     intake.duplicate_of)
            return JSONResponse({**answer, "duplicate_of": intake.duplicate_of}, status_code=200)
        if here is not None:
            return await act_here(here, name, intake.event_id, answer)
        if not intake.is_new:
            return JSONResponse(answer, status_code=200)
        # After the answer is sent, only hand the id to the dispatch threads: instant, never waits on Prefect.
        background = BackgroundTask(queue.submit, intake.event_id) if queue is not None else None
        return JSONResponse(answer, status_code=202, background=background)

    async def act_here(handler: HandledHere, name: str, event_id: int, answer: dict) -> JSONResponse:
        """Act on a stored event before answering 200; a redelivery of one not yet acted on (the first attempt
        failed) is acted on now. Shopify retries a delivery not answered 2xx, so a failure is a 503."""
        try:
            answer["outcome"] = await run_in_threadpool(handler.act, ledger, event_id)
        except ErpsyncError as exc:
            log.warning("%s event %s stored, not yet acted on: %s", name, event_id, type(exc).__name__)
            return problem(503, "the request is stored but could not be carried out yet; retry later",
                           {"Retry-After": "5"})
        return JSONResponse(answer, status_code=200)

    async def healthz(_: Request) -> JSONResponse:
        try:
            await run_in_threadpool(ledger.inbox_ping)
        except Exception as exc:  # the probe must answer, whatever the database says
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(document)

    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, exc.detail, exc.headers)

    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        return problem(500, "internal error")  # logged once, by QuietErrors below

    return QuietErrors(Starlette(
        lifespan=lifespan,
        routes=[
            Route("/webhooks/{source}", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, 500: server_error},
    ))


class QuietErrors:
    """The outermost layer: an exception escaping the app is logged as one line by type and place, and goes no
    further.

    Starlette answers 500 through ``server_error`` and then re-raises, for the server to log; uvicorn logs it with
    its traceback and message, and a message can quote the payload (``KeyError: '{"email": …}'``). Here it stops.
    """

    def __init__(self, app: Starlette):
        self.app = app

    def __getattr__(self, name: str):
        return getattr(self.app, name)  # tests and tools reach the Starlette app's state, routes, lifespan

    async def __call__(self, scope, receive, send) -> None:
        started = False

        async def send_tracked(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if scope["type"] == "lifespan":
                raise  # a failed start must stop the server, loudly
            path = scope.get("path", "")
            shown = path if _PRINTABLE_TOPIC.fullmatch(path) else "(unprintable path)"
            log_unexpected(f"{scope.get('method', '?')} {shown}", exc)
            if not started:
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b'{"error": "internal error"}'})
