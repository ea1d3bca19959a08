"""The receiver's HTTP server: uvicorn with httptools, plus the limits on connections that uvicorn leaves open.

uvicorn with httptools (its choice when httptools is installed, and the fast one the intake targets need) has
no cap on a request head: llhttp hands a header over only when it is complete, and httptools buffers it until
then, so a 64 MiB header is 64 MiB of memory. uvicorn's ``h11_max_incomplete_event_size`` applies only to the
pure-Python h11 parser, and it has no timeout on a request head or body at all: ``timeout_keep_alive`` runs
only between requests, so a client that sends half a head, or a body a byte a minute, holds its connection
(and its buffers) for ever. ``limit_concurrency`` answers 503 to requests beyond the limit but still accepts
and keeps their connections.

``GuardedHttpToolsProtocol`` adds, per connection:
- the request head (request line and headers) is at most ``max_head_bytes``, counted on the raw bytes before
  the parser buffers them, and at most ``max_headers`` header lines: beyond either, 431 and the connection
  closes;
- the head must arrive within ``head_timeout`` of its first byte (or of the connection opening), the body
  within ``body_timeout`` of the head's end: otherwise 408 and the connection closes;
- at most ``max_connections`` connections are open at once: one more is answered 503 and closed at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from erpsync.errors import ConfigError

log = logging.getLogger("erpsync.receiver")


@dataclass(frozen=True)
class ServerLimits:
    """Limits on connections and request heads; each from an ERPSYNC_* variable (docs/SECURITY.md)."""

    # Shopify's, WooCommerce's and Standard Webhooks' heads are under 2 KiB; Node and nginx default to 8-16 KiB.
    max_head_bytes: int = 16 * 1024
    max_headers: int = 100
    head_timeout: float = 10.0
    # A 1 MiB body (the default cap) at 64 KiB/s: a slow but honest sender still gets it through.
    body_timeout: float = 20.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerLimits:
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            max_head_bytes=int(_positive(env, "ERPSYNC_MAX_HEADER_BYTES", default.max_head_bytes)),
            max_headers=int(_positive(env, "ERPSYNC_MAX_HEADERS", default.max_headers)),
            head_timeout=_positive(env, "ERPSYNC_HEADER_TIMEOUT_SECONDS", default.head_timeout),
            body_timeout=_positive(env, "ERPSYNC_BODY_TIMEOUT_SECONDS", default.body_timeout),
            keep_alive_timeout=_positive(env, "ERPSYNC_KEEP_ALIVE_SECONDS", default.keep_alive_timeout),
            max_connections=int(_positive(env, "ERPSYNC_MAX_CONNECTIONS", default.max_connections)),
        )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name}: expected a positive finite number, got {raw!r}")
    return value


def _raw_answer(status: int, reason: str, message: str) -> bytes:
    body = ('{"error": "%s"}' % message).encode("ascii")
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n").encode("ascii") + body


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head over its limits (httptools wraps it)."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of ``ServerLimits`` (set on the class by ``protocol_for``)."""

    limits = ServerLimits()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._header_count = 0
        self._in_head = True
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.server_state.connections) >= self.limits.max_connections:
            # Refused before uvicorn registers it: no parser state and no timer are kept for it.
            transport.write(_raw_answer(503, "Service Unavailable", "too many connections; retry later"))
            transport.close()
            self.transport = transport
            self.parser = None  # type: ignore[assignment]
            self._refused = True
            return
        self._refused = False
        super().connection_made(transport)
        self._arm(self.limits.head_timeout, "request head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.parser is None:
            return
        if self._in_head:
            # Counted before the parser buffers the bytes: a head still incomplete after the limit is refused
            # with at most a read or two (64 KiB each) more in memory. A read that also holds the body is not
            # held against the head, since only what came before it counts.
            if self._head_bytes >= self.limits.max_head_bytes:
                self._refuse_head("request head larger than %d bytes" % self.limits.max_head_bytes)
                return
            self._head_bytes += len(data)
        try:
            super().data_received(data)
        except _HeadRefused:  # pragma: no cover - httptools wraps it; kept for parsers that do not
            self._refuse_head("more than %d headers" % self.limits.max_headers)
            return
        between_requests = self.cycle is None or self.cycle.response_complete
        if self._timer is None and (self._in_head or between_requests) and not self.transport.is_closing():
            # A new request on a kept-alive connection (or bytes that start none, such as bare CRLFs, which
            # stop uvicorn's keep-alive timer all the same).
            self._arm(self.limits.head_timeout, "request head")

    def send_400_response(self, msg: str) -> None:
        if self._header_count > self.limits.max_headers:
            self._refuse_head("more than %d headers" % self.limits.max_headers)
            return
        self._disarm()
        super().send_400_response(msg)

    def _refuse_head(self, why: str) -> None:
        log.info("refused a request head: %s", why)
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_raw_answer(431, "Request Header Fields Too Large", why))
            self.transport.close()

    # Parser callbacks

    def on_message_begin(self) -> None:
        # Only here does a new head begin: what arrives after an answer may still be the unread body of the
        # request answered (a 413 answers before the body is read), and must not count as a head.
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()
        if not self.parser.should_upgrade():
            self._arm(self.limits.body_timeout, "request body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # Timers

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out, what)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, what: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            # Once closed, the request's cycle is marked disconnected: a handler still waiting for the body gets
            # a disconnect, and anything it sends is dropped.
            self.transport.write(_raw_answer(408, "Request Timeout", f"{what} not received in time"))
        log.info("closed a connection: %s not received in time", what)
        self.transport.close()


def protocol_for(limits: ServerLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class bound to ``limits`` (uvicorn builds one instance per connection from the class)."""
    return type("ReceiverHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` with SO_REUSEPORT, so that several receiver processes listen on one
    port and the kernel spreads new connections across them (Linux ≥ 3.9; every process must set the option)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("--reuse-port: this platform has no SO_REUSEPORT")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--reuse-port: cannot bind {host}:{port}: {exc}") from None
    return sock


def serve(app, *, host: str, port: int, limits: ServerLimits, reuse_port: bool = False) -> None:
    """Run ``app`` until stopped, under ``limits``. ``reuse_port``: share the port with other receivers."""
    import uvicorn

    assert httptools  # the protocol above needs it; import fails loudly if it is missing
    config = uvicorn.Config(app, host=host, port=port, http=protocol_for(limits), log_level="warning",
                            access_log=False, timeout_keep_alive=int(max(1, limits.keep_alive_timeout)),
                            # uvicorn's backlog default is 2048; beyond the connection cap the kernel queue
                            # only delays the 503.
                            backlog=min(2048, limits.max_connections))
    # uvicorn binds its own socket without SO_REUSEPORT; given a bound socket it listens on that one instead.
    uvicorn.Server(config).run(sockets=[shared_port_socket(host, port)] if reuse_port else None)
