"""Shopify's webhook signature: base64 HMAC-SHA256 of the raw body."""

import base64
import hashlib
import hmac

from erpsync.systems.shopify.webhooks import shopify_signature, verify_shopify

BODY = b'{"id": 820982911946154508, "email": "jon@example.com"}'


def test_signature_is_base64_hmac_sha256_of_the_raw_body():
    expected = base64.b64encode(hmac.new(b"hush", BODY, hashlib.sha256).digest()).decode()
    assert shopify_signature("hush", BODY) == expected


def test_verify_accepts_the_right_signature():
    assert verify_shopify("hush", BODY, shopify_signature("hush", BODY))


def test_verify_rejects_wrong_missing_and_tampered():
    good = shopify_signature("hush", BODY)
    assert not verify_shopify("other", BODY, good)
    assert not verify_shopify("hush", BODY, None)
    assert not verify_shopify("hush", BODY, "")
    assert not verify_shopify("hush", BODY + b" ", good)
    assert not verify_shopify("hush", BODY, good[:-2])
    assert not verify_shopify("hush", BODY, "not base64 at all ✓")
