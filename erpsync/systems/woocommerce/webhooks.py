"""WooCommerce's webhooks: base64 HMAC-SHA256 of the raw body in ``X-WC-Webhook-Signature``, and its creation ping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime

from erpsync.receiver.deliveries import (
    Delivery,
    NotAWebhook,
    SignatureRefused,
    required_headers,
    signature_matches,
)

# WooCommerce signs with wp_specialchars_decode(secret, ENT_QUOTES): a stored secret holding "&amp;" signs with "&".
# Numeric forms are first normalised (as WordPress does), then one pass replaces, so "&amp;lt;" becomes "&lt;".
_WP_NUMERIC = [
    (re.compile(r"&#0*39;"), "&#039;"), (re.compile(r"&#x0*27;", re.I), "&#x27;"),
    (re.compile(r"&#0*34;"), "&#034;"), (re.compile(r"&#x0*22;", re.I), "&#x22;"),
    (re.compile(r"&#0*60;"), "&#060;"), (re.compile(r"&#0*62;"), "&#062;"),
    (re.compile(r"&#0*38;"), "&#038;"), (re.compile(r"&#x0*26;", re.I), "&#x26;"),
]
_WP_ENTITIES = {
    "&#039;": "'", "&#x27;": "'", "&quot;": '"', "&#034;": '"', "&#x22;": '"',
    "&lt;": "<", "&#060;": "<", "&gt;": ">", "&#062;": ">", "&amp;": "&", "&#038;": "&", "&#x26;": "&",
}
_WP_ENTITY = re.compile("|".join(re.escape(e) for e in sorted(_WP_ENTITIES, key=len, reverse=True)))


def woocommerce_signing_key(secret: str) -> bytes:
    """The key WooCommerce really signs with: the stored secret after ``wp_specialchars_decode(.., ENT_QUOTES)``."""
    if "&" not in secret:
        return secret.encode()
    for pattern, canonical in _WP_NUMERIC:
        secret = pattern.sub(canonical, secret)
    return _WP_ENTITY.sub(lambda m: _WP_ENTITIES[m.group(0)], secret).encode()


def woocommerce_signature(secret: str, body: bytes) -> str:
    """The value WooCommerce puts in ``X-WC-Webhook-Signature``: base64 HMAC-SHA256 of the raw body."""
    digest = hmac.new(woocommerce_signing_key(secret), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_woocommerce(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is WooCommerce's signature of ``body``; compared in constant time."""
    return signature_matches(woocommerce_signature(secret, body), header)


# WooCommerce's creation ping: a form-encoded body ``webhook_id=<N>`` without any X-WC-Webhook-* header.
_WOO_PING = re.compile(rb"webhook_id=\d{1,20}")


class WooCommerceSource:
    """WooCommerce: base64 HMAC-SHA256 of the raw body in ``X-WC-Webhook-Signature``; answers its unsigned ping."""

    name = "woocommerce"
    signs_body_only = True
    example_topic = "order.created"
    header_docs = [
        ("X-WC-Webhook-Signature", "base64 HMAC-SHA256 of the raw body with the webhook secret"),
        ("X-WC-Webhook-Topic", "e.g. order.created"),
        ("X-WC-Webhook-Delivery-ID", "delivery id: a repeated id is answered 200 with no new work"),
        ("X-WC-Webhook-Source", "the site URL"),
        ("X-WC-Webhook-Resource", "e.g. order"),
        ("X-WC-Webhook-Event", "e.g. created"),
        ("X-WC-Webhook-ID", "the webhook's id in WooCommerce"),
    ]
    # The creation ping is form-encoded (``webhook_id=<N>``).
    extra_content = {"application/x-www-form-urlencoded": {
        "schema": {"type": "object", "properties": {"webhook_id": {"type": "integer"}}}}}

    def sign(self, secret: str, body: bytes, *, topic: str, delivery_id: str, shop: str | None = None
             ) -> dict[str, str]:
        """The headers WooCommerce sends with ``body``."""
        return {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-Delivery-ID": delivery_id,
                "X-WC-Webhook-Signature": woocommerce_signature(secret, body),
                **({"X-WC-Webhook-Source": shop} if shop else {})}

    def authenticate(self, headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime) -> Delivery:
        signature = headers.get("x-wc-webhook-signature")
        if signature is None and _WOO_PING.fullmatch(body.strip()):
            # WooCommerce disables a webhook whose ping is not answered 2xx; the ping carries nothing to store.
            raise NotAWebhook("WooCommerce webhook creation ping")
        if not any(verify_woocommerce(secret, body, signature) for secret in secrets):
            raise SignatureRefused("missing or invalid X-WC-Webhook-Signature")
        delivery_id, topic = headers.get("x-wc-webhook-delivery-id"), headers.get("x-wc-webhook-topic")
        required_headers([("X-WC-Webhook-Delivery-ID", delivery_id), ("X-WC-Webhook-Topic", topic)])
        return Delivery(self.name, delivery_id, topic, headers.get("x-wc-webhook-source"), None)
