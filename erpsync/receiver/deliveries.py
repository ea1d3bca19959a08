"""How the receiver knows a delivery: the ``WebhookSource`` port, what it returns, and how it refuses.

A source is a small class with a ``name`` and ``authenticate(headers, body, secrets, now) -> Delivery``, kept in
its system's package (``erpsync/systems/<name>/webhooks.py``); ``erpsync.receiver.webhook_sources.SOURCES`` lists
the registered ones, and ``POST /webhooks/{name}`` serves every entry. To add a source, see docs/adding-a-system.md.

``authenticate`` decides from the headers and the raw body only; it never logs, and its refusals name a header or a
limit, never a secret or a payload value.
"""


from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Delivery:
    """What the inbox records about one authenticated delivery."""

    source: str
    delivery_id: str
    topic: str
    shop: str | None
    triggered_at: str | None
    source_event_id: str | None = None
    api_version: str | None = None


class DeliveryRefused(Exception):
    """The receiver answers ``status`` with ``{"error": message}`` and stores nothing."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SignatureRefused(DeliveryRefused):
    """No active secret verifies the delivery, or the scheme's timestamp is outside its window (401)."""

    status = 401


class BadDelivery(DeliveryRefused):
    """Authenticated, but a header the inbox needs is missing or malformed (400)."""

    status = 400


class NotAWebhook(Exception):
    """A request the source sends that carries no event (WooCommerce's creation ping): 200, nothing stored."""


class WebhookSource(Protocol):
    """``signs_body_only`` (optional, default False): the scheme's signature covers the body alone, so the receiver
    records a stored body arriving under a new delivery id as a duplicate (a replay)."""

    name: str

    def authenticate(self, headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime) -> Delivery:
        """The delivery ``body`` carries, once one of ``secrets`` verifies it; raises a DeliveryRefused or NotAWebhook.

        ``headers`` is case-insensitive (Starlette's); ``now`` is the receiver's clock, for schemes with a timestamp.
        """


def required_headers(names: list[tuple[str, str | None]]) -> None:
    missing = [name for name, value in names if not value]
    if missing:
        raise BadDelivery(f"missing header: {', '.join(missing)}")




def signature_matches(expected: str, header: str | None) -> bool:
    """``header`` equals ``expected`` exactly, compared in constant time.

    No trimming: the HTTP layer already strips a header value's surrounding whitespace, and a signature that
    still verifies after a byte was added would make tampering harder to reason about.
    """
    if not header:
        return False
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))



def iso_or_none(value: object) -> str | None:
    """The payload's own timestamp, kept only when it is one: the signed body may carry any text there (a NUL
    byte or a lone surrogate would make the inbox insert fail)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value
