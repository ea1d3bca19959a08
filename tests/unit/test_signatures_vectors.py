"""Each signature scheme's own cases beyond the contract suite (tests/contract/test_webhook_source_contract.py,
which checks every source's published vectors and rotation); the sources below are described there too.

- Standard Webhooks: the vector and the verification cases of the `standardwebhooks` package's own test suite
  (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py), run through our source.
- Shopify: Shopify's libraries compute the expected value as base64(HMAC-SHA256(secret, raw body)) rather than
  publish a fixed one, so the fixed vector is RFC 4231's HMAC-SHA256 test case 2, base64-encoded.
- WooCommerce: WC_Webhook::generate_signature(), i.e. base64_encode(hash_hmac('sha256', $payload,
  wp_specialchars_decode($secret, ENT_QUOTES), true)); expected values computed with `openssl dgst -sha256 -hmac`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from math import floor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.receiver.deliveries import BadDelivery, NotAWebhook, SignatureRefused
from erpsync.systems.shopify.webhooks import ShopifySource, shopify_signature
from erpsync.systems.standard.webhooks import (
    STANDARD_WEBHOOKS_TOLERANCE,
    StandardWebhooksSource,
)
from erpsync.systems.woocommerce.webhooks import (
    WooCommerceSource,
    woocommerce_signature,
    woocommerce_signing_key,
)

# -- Standard Webhooks: the package's published vector ------------------------------------------------------

VECTOR_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_PAYLOAD = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

DEFAULT_SECRET = VECTOR_KEY.removeprefix("whsec_")
STANDARD = StandardWebhooksSource("standard")


def test_the_published_vector_is_refused_today_as_a_replay():
    headers = {"webhook-id": VECTOR_MSG_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP),
               "webhook-signature": VECTOR_SIGNATURE}
    with pytest.raises(SignatureRefused, match="outside the 5-minute tolerance"):
        STANDARD.authenticate(headers, VECTOR_PAYLOAD.encode(), [VECTOR_KEY], datetime.now(timezone.utc))


def published_case(when: datetime | None = None, payload: str = '{"type": "order.created", "test": 2432232314}'):
    """Built as the package's own PayloadForTesting builds it: HMAC of "id.timestamp.payload", computed here."""
    when = when or datetime.now(timezone.utc)
    stamp = str(floor(when.timestamp()))
    to_sign = f"{VECTOR_MSG_ID}.{stamp}.{payload}".encode()
    signature = base64.b64encode(hmac.new(base64.b64decode(DEFAULT_SECRET), to_sign, hashlib.sha256).digest())
    headers = {"webhook-id": VECTOR_MSG_ID, "webhook-signature": "v1," + signature.decode(),
               "webhook-timestamp": stamp}
    return headers, payload.encode()


@pytest.mark.parametrize("secret", [DEFAULT_SECRET, VECTOR_KEY], ids=["without-prefix", "with-whsec-prefix"])
def test_standard_webhooks_valid_signature(secret):
    headers, body = published_case()
    delivery = STANDARD.authenticate(headers, body, [secret], datetime.now(timezone.utc))
    assert (delivery.source, delivery.delivery_id, delivery.topic) == ("standard", VECTOR_MSG_ID, "order.created")


def test_standard_webhooks_multi_signature_header():
    headers, body = published_case()
    headers["webhook-signature"] = " ".join([
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        headers["webhook-signature"],
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    ])
    assert STANDARD.authenticate(headers, body, [DEFAULT_SECRET], datetime.now(timezone.utc)).topic == "order.created"


@pytest.mark.parametrize("case", ["missing-id", "missing-timestamp", "missing-signature", "invalid-timestamp",
                                  "invalid-signature", "old-timestamp", "new-timestamp"])
def test_standard_webhooks_published_refusals(case):
    now = datetime.now(timezone.utc)
    beyond = STANDARD_WEBHOOKS_TOLERANCE + timedelta(seconds=1)
    when = {"old-timestamp": now - beyond, "new-timestamp": now + beyond}.get(case, now)
    headers, body = published_case(when)
    if case.startswith("missing-"):
        del headers["webhook-" + case.removeprefix("missing-")]
    if case == "invalid-timestamp":
        headers["webhook-timestamp"] = "hello"
    if case == "invalid-signature":
        headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
    with pytest.raises(SignatureRefused):
        STANDARD.authenticate(headers, body, [DEFAULT_SECRET], now)


def test_standard_webhooks_library_refusals_hold_even_if_our_clock_is_wrong():
    """Our window check uses the receiver's ``now``; the package checks its own clock again."""
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    headers, body = published_case(old)
    with pytest.raises(SignatureRefused, match="webhook-signature"):
        STANDARD.authenticate(headers, body, [DEFAULT_SECRET], old)


@pytest.mark.parametrize("signature", ["v1", "v1,a,b", "v1,***", "", " ", "v1,\u00e9"])
def test_standard_webhooks_malformed_signature_headers_are_refused_not_crashes(signature):
    headers, body = published_case()
    headers["webhook-signature"] = signature
    with pytest.raises(SignatureRefused):
        STANDARD.authenticate(headers, body, [DEFAULT_SECRET], datetime.now(timezone.utc))


@pytest.mark.parametrize("secret", ["", "not base64 !", "whsec_"])
def test_standard_webhooks_unusable_secrets_refuse_rather_than_crash(secret):
    headers, body = published_case()
    with pytest.raises(SignatureRefused):
        STANDARD.authenticate(headers, body, [secret], datetime.now(timezone.utc))


def test_standard_webhooks_non_utf8_body_is_refused():
    headers, _ = published_case()
    with pytest.raises(SignatureRefused):
        STANDARD.authenticate(headers, b"\xff\xfe{}", [DEFAULT_SECRET], datetime.now(timezone.utc))


def test_standard_webhooks_payload_without_type_is_bad_delivery():
    headers, body = published_case(payload='{"test": 2432232314}')
    with pytest.raises(BadDelivery, match="'type'"):
        STANDARD.authenticate(headers, body, [DEFAULT_SECRET], datetime.now(timezone.utc))


# -- Shopify -------------------------------------------------------------------------------------------------

def test_shopify_source_accepts_any_active_secret_and_both_header_spellings():
    body = b'{"id": 1}'
    for prefix in ("X-Shopify-", "shopify-"):
        headers = {f"{prefix}hmac-sha256": shopify_signature("new", body), f"{prefix}topic": "orders/create",
                   f"{prefix}webhook-id": "w1"}
        headers = {k.lower(): v for k, v in headers.items()}
        delivery = ShopifySource().authenticate(headers, body, ["old", "new"], datetime.now(timezone.utc))
        assert (delivery.delivery_id, delivery.topic) == ("w1", "orders/create")
        with pytest.raises(SignatureRefused):
            ShopifySource().authenticate(headers, body, ["old"], datetime.now(timezone.utc))


# -- WooCommerce ---------------------------------------------------------------------------------------------

WOO_BODY = b'{"id":727,"status":"processing"}'


def test_woocommerce_signing_key_decodes_like_wordpress():
    assert woocommerce_signing_key("plain") == b"plain"
    assert woocommerce_signing_key("&AMP;") == b"&AMP;"  # strtr is case-sensitive
    assert woocommerce_signing_key("&#X27;") == b"'"  # hex forms are not


def test_woocommerce_source_ping_and_refusals():
    woo = WooCommerceSource()
    now = datetime.now(timezone.utc)
    with pytest.raises(NotAWebhook):
        woo.authenticate({}, b"webhook_id=31", ["s"], now)
    with pytest.raises(SignatureRefused):  # a signed request is never taken for a ping
        woo.authenticate({"x-wc-webhook-signature": "forged"}, b"webhook_id=31", ["s"], now)
    with pytest.raises(SignatureRefused):
        woo.authenticate({}, b"webhook_id=31&other=1", ["s"], now)
    headers = {"x-wc-webhook-signature": woocommerce_signature("s", WOO_BODY), "x-wc-webhook-topic": "order.created"}
    with pytest.raises(BadDelivery, match="X-WC-Webhook-Delivery-ID"):
        woo.authenticate(headers, WOO_BODY, ["s"], now)


# -- properties: arbitrary input is refused, never a crash ------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]),
                               st.text(max_size=60)),
       body=st.binary(max_size=256))
def test_standard_source_refuses_arbitrary_input_without_crashing(headers, body):
    with pytest.raises((SignatureRefused, BadDelivery)):
        STANDARD.authenticate(headers, body, [VECTOR_KEY], datetime.now(timezone.utc))
