"""Webhook signatures: Shopify's base64 HMAC-SHA256 of the raw body, signed and verified in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac


def shopify_signature(secret: str, body: bytes) -> str:
    """The value Shopify puts in ``X-Shopify-Hmac-Sha256`` for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_shopify(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body``; compared in constant time."""
    if not header:
        return False
    expected = shopify_signature(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().encode())
