"""Webhook signatures: Shopify's and WooCommerce's HMAC-SHA256 of the raw body, and Standard Webhooks' signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timezone

from standardwebhooks import Webhook


def shopify_signature(secret: str, body: bytes) -> str:
    """The value Shopify puts in ``X-Shopify-Hmac-Sha256`` for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _matches(expected: str, header: str | None) -> bool:
    """``header`` equals ``expected`` exactly, compared in constant time.

    No trimming: the HTTP layer already strips a header value's surrounding whitespace, and a signature that
    still verifies after a byte was added would make tampering harder to reason about.
    """
    if not header:
        return False
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))


def verify_shopify(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body``; compared in constant time."""
    return _matches(shopify_signature(secret, body), header)


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
    return _matches(woocommerce_signature(secret, body), header)


def standard_webhook_headers(secrets: list[str] | str, msg_id: str, body: bytes,
                             timestamp: datetime | None = None) -> dict[str, str]:
    """Headers a Standard Webhooks sender puts on ``body``, signed by the ``standardwebhooks`` package.

    Several secrets give several space-separated ``v1,`` signatures, as a sender does while rotating keys.
    """
    when = timestamp or datetime.now(timezone.utc)
    # The package reads a naive or zoned datetime as if it were UTC; hand it UTC so the header and signature agree.
    when = when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
    keys = [secrets] if isinstance(secrets, str) else secrets
    signatures = [Webhook(key).sign(msg_id=msg_id, timestamp=when, data=body.decode()) for key in keys]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
