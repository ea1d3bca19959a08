"""Shopify's webhooks: base64 HMAC-SHA256 of the raw body in ``X-Shopify-Hmac-Sha256``, and the headers that name a delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone

from erpsync.receiver.deliveries import Delivery, SignatureRefused, required_headers, signature_matches


def shopify_signature(secret: str, body: bytes) -> str:
    """The value Shopify puts in ``X-Shopify-Hmac-Sha256`` for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_shopify(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body``; compared in constant time."""
    return signature_matches(shopify_signature(secret, body), header)


class ShopifySource:
    """Shopify: base64 HMAC-SHA256 of the raw body in ``X-Shopify-Hmac-Sha256`` (or the unprefixed ``shopify-``)."""

    name = "shopify"
    # The signature covers the body and nothing else: a captured body verifies under any delivery id or topic.
    signs_body_only = True
    example_topic = "orders/create"
    # What the receiver's OpenAPI document says of each header the sender sets.
    header_docs = [
        ("X-Shopify-Hmac-Sha256", "base64 HMAC-SHA256 of the raw body with the app secret (or shopify-hmac-sha256)"),
        ("X-Shopify-Topic", "e.g. orders/create"),
        ("X-Shopify-Webhook-Id", "delivery id: a repeated id is answered 200 with no new work"),
        ("X-Shopify-Shop-Domain", "the shop"),
        ("X-Shopify-Triggered-At", "when Shopify triggered the webhook (kept with the event)"),
        ("X-Shopify-Event-Id", "the event: a body or event id stored under another delivery id is answered 200 "
                               "as a duplicate (duplicate_of), with no new work"),
        ("X-Shopify-API-Version", "the API version shaping the payload (kept with the event)"),
    ]
    extra_content: dict = {}

    def sign(self, secret: str, body: bytes, *, topic: str, delivery_id: str, shop: str | None = None
             ) -> dict[str, str]:
        """The headers Shopify sends with ``body`` (``erpsync send``, the sandboxes and the tests sign this way)."""
        return {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": delivery_id,
                "X-Shopify-Hmac-Sha256": shopify_signature(secret, body),
                "X-Shopify-Triggered-At": datetime.now(timezone.utc).isoformat(),
                **({"X-Shopify-Shop-Domain": shop} if shop else {})}

    @staticmethod
    def header(headers: Mapping[str, str], name: str) -> str | None:
        return headers.get(f"x-shopify-{name}") or headers.get(f"shopify-{name}")

    def authenticate(self, headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime) -> Delivery:
        signature = self.header(headers, "hmac-sha256")
        if not any(verify_shopify(secret, body, signature) for secret in secrets):
            raise SignatureRefused("missing or invalid X-Shopify-Hmac-Sha256")
        delivery_id, topic = self.header(headers, "webhook-id"), self.header(headers, "topic")
        required_headers([("X-Shopify-Webhook-Id", delivery_id), ("X-Shopify-Topic", topic)])
        # Shopify's "Ignore duplicate webhooks" (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates):
        # the same X-Shopify-Event-Id on more than one webhook means a duplicate (one per subscription of a
        # topic). Kept with the event, with the API version the payload is shaped by and the trigger time.
        return Delivery(self.name, delivery_id, topic, self.header(headers, "shop-domain"),
                        self.header(headers, "triggered-at"), source_event_id=self.header(headers, "event-id"),
                        api_version=self.header(headers, "api-version"))
