"""The webhook sources the receiver accepts: how each proves a delivery is genuine and names it.

A source is a small class with a ``name`` and ``authenticate(headers, body, secrets, now) -> Delivery``;
``SOURCES`` is the one registry, and ``POST /webhooks/{name}`` serves every entry in it. To add a source, write
its class here, register it in ``SOURCES``, give it a secret (``ERPSYNC_<NAME>_WEBHOOK_SECRET`` or the Prefect Secret
block ``<name>-webhook-secret``) and a mapping whose ``source:`` is its name (docs/sources.md).

``authenticate`` decides from the headers and the raw body only; it never logs, and its refusals name a header or a
limit, never a secret or a payload value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

from erpsync.receiver.limits import JsonRefused, parse_json_object
from erpsync.signatures import verify_shopify, verify_woocommerce


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


def _required(names: list[tuple[str, str | None]]) -> None:
    missing = [name for name, value in names if not value]
    if missing:
        raise BadDelivery(f"missing header: {', '.join(missing)}")


class ShopifySource:
    """Shopify: base64 HMAC-SHA256 of the raw body in ``X-Shopify-Hmac-Sha256`` (or the unprefixed ``shopify-``)."""

    name = "shopify"
    # The signature covers the body and nothing else: a captured body verifies under any delivery id or topic.
    signs_body_only = True

    @staticmethod
    def header(headers: Mapping[str, str], name: str) -> str | None:
        return headers.get(f"x-shopify-{name}") or headers.get(f"shopify-{name}")

    def authenticate(self, headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime) -> Delivery:
        signature = self.header(headers, "hmac-sha256")
        if not any(verify_shopify(secret, body, signature) for secret in secrets):
            raise SignatureRefused("missing or invalid X-Shopify-Hmac-Sha256")
        delivery_id, topic = self.header(headers, "webhook-id"), self.header(headers, "topic")
        _required([("X-Shopify-Webhook-Id", delivery_id), ("X-Shopify-Topic", topic)])
        # Shopify's "Ignore duplicate webhooks" (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates):
        # the same X-Shopify-Event-Id on more than one webhook means a duplicate (one per subscription of a
        # topic). Kept with the event, with the API version the payload is shaped by and the trigger time.
        return Delivery(self.name, delivery_id, topic, self.header(headers, "shop-domain"),
                        self.header(headers, "triggered-at"), source_event_id=self.header(headers, "event-id"),
                        api_version=self.header(headers, "api-version"))


# WooCommerce's creation ping: a form-encoded body ``webhook_id=<N>`` without any X-WC-Webhook-* header.
_WOO_PING = re.compile(rb"webhook_id=\d{1,20}")


class WooCommerceSource:
    """WooCommerce: base64 HMAC-SHA256 of the raw body in ``X-WC-Webhook-Signature``; answers its unsigned ping."""

    name = "woocommerce"
    signs_body_only = True

    def authenticate(self, headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime) -> Delivery:
        signature = headers.get("x-wc-webhook-signature")
        if signature is None and _WOO_PING.fullmatch(body.strip()):
            # WooCommerce disables a webhook whose ping is not answered 2xx; the ping carries nothing to store.
            raise NotAWebhook("WooCommerce webhook creation ping")
        if not any(verify_woocommerce(secret, body, signature) for secret in secrets):
            raise SignatureRefused("missing or invalid X-WC-Webhook-Signature")
        delivery_id, topic = headers.get("x-wc-webhook-delivery-id"), headers.get("x-wc-webhook-topic")
        _required([("X-WC-Webhook-Delivery-ID", delivery_id), ("X-WC-Webhook-Topic", topic)])
        return Delivery(self.name, delivery_id, topic, headers.get("x-wc-webhook-source"), None)


# The standardwebhooks package's own tolerance (it is not configurable there); checked here first as well so a
# refusal can say "outside the window" rather than only "not verified" — replays are counted apart from forgeries.
STANDARD_WEBHOOKS_TOLERANCE = timedelta(minutes=5)


class StandardWebhooksSource:
    """Any Standard Webhooks sender, verified by the ``standardwebhooks`` package; topic = the payload's ``type``."""

    def __init__(self, name: str = "standard"):
        self.name = name

    def authenticate(self, headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime) -> Delivery:
        msg_id, stamp, signature = (headers.get("webhook-id"), headers.get("webhook-timestamp"),
                                    headers.get("webhook-signature"))
        missing = [n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", stamp),
                                  ("webhook-signature", signature)) if not v]
        if missing:
            raise SignatureRefused(f"missing header: {', '.join(missing)}")
        try:
            sent = datetime.fromtimestamp(float(stamp), tz=timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise SignatureRefused("webhook-timestamp is not a Unix time") from None
        if abs(now - sent) > STANDARD_WEBHOOKS_TOLERANCE:
            raise SignatureRefused("webhook-timestamp outside the 5-minute tolerance (replay or clock skew)")
        signed = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
        if not any(self._verifies(secret, body, signed) for secret in secrets):
            raise SignatureRefused("missing or invalid webhook-signature")
        try:
            payload = parse_json_object(body)
        except JsonRefused as exc:
            raise BadDelivery(str(exc)) from None
        topic = payload.get("type")
        if not isinstance(topic, str) or not topic:
            raise BadDelivery("payload field 'type' must be a non-empty string")
        return Delivery(self.name, msg_id, topic, None, _iso_or_none(payload.get("timestamp")))

    @staticmethod
    def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        # The package raises more than its own error on hostile input: a signature without a comma or with bad
        # base64 (ValueError), a body that is not UTF-8 (UnicodeDecodeError); a secret that is not base64 or is
        # empty fails the same way. Each means "not verified".
        except (WebhookVerificationError, ValueError, EmptyWebhookSecretError):
            return False
        return True


SOURCES: dict[str, WebhookSource] = {
    source.name: source for source in (ShopifySource(), WooCommerceSource(), StandardWebhooksSource("standard"))
}


def _iso_or_none(value: object) -> str | None:
    """The payload's own timestamp, kept only when it is one: the signed body may carry any text there (a NUL
    byte or a lone surrogate would make the inbox insert fail)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value
