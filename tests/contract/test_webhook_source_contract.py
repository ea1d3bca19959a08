"""The webhook source contract: every registered system with a ``webhook`` authenticates deliveries the same way.

Published vectors, rotation (a second active secret verifies), one-byte changes refused, a missing header refused
naming the header, and the receiver's size limits on each source's endpoint. The per-system part is the table below:
each source's published vectors, the headers it requires, and secrets of the shape its scheme takes.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpsync.ledger import Ledger
from erpsync.receiver.app import create_app
from erpsync.receiver.deliveries import DeliveryRefused
from erpsync.receiver.limits import IntakeLimits
from erpsync.systems import SYSTEMS
from erpsync.systems.netsuite.webhooks import notice_headers as netsuite_notice_headers
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync.systems.standard.webhooks import standard_webhook_headers
from erpsync.systems.woocommerce.webhooks import woocommerce_signature

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_SOURCES = sorted(name for name, system in SYSTEMS.items() if system.webhook is not None)
EXAMPLES = 200  # inputs tried per property below; docs/SECURITY.md cites this number
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Vector:
    """A value the scheme's owner (or a reference standard) publishes, and how our code computes it."""

    name: str
    compute: Callable[[], str]
    expected: str


@dataclass(frozen=True)
class SourceCase:
    vectors: list[Vector]
    # The headers without which a delivery is refused, as the sender spells them.
    required: list[str]
    # Two active secrets (old, new) during a rotation, and one that is not active; in the scheme's own shape.
    secrets: tuple[str, str, str]


# Standard Webhooks: the vector of the `standardwebhooks` package's own test suite
# (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py).
STANDARD_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_VECTOR = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}',
                   "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
# Shopify's libraries compute the expected value as base64(HMAC-SHA256(secret, raw body)) rather than publish a
# fixed one, so the fixed vector is RFC 4231's HMAC-SHA256 test case 2, base64-encoded.
RFC4231 = ("Jefe", b"what do ya want for nothing?", "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=")
# WooCommerce: WC_Webhook::generate_signature(), base64_encode(hash_hmac('sha256', $payload,
# wp_specialchars_decode($secret, ENT_QUOTES), true)); expected values computed with `openssl dgst -sha256 -hmac`.
WOO_BODY = b'{"id":727,"status":"processing"}'
WOO_VECTORS = [
    ("wc-secret", "CJGy2l17vmafo5cc0gtESTEst3ie65pcrP8ExTVLjmA="),
    # wp_specialchars_decode(.., ENT_QUOTES): the key is a&b'c"d<e>f
    ("a&amp;b&#039;c&quot;d&lt;e&gt;f", "ZVe+eNI8/uzGMg7nxKNfco+/SZEw7tQGSEXma+KJGTg="),
    ("a&amp;b&#39;c&#x22;d&#060;e&#62;f", "ZVe+eNI8/uzGMg7nxKNfco+/SZEw7tQGSEXma+KJGTg="),
    # one pass only, as PHP's strtr: "&amp;lt;" becomes "&lt;", not "<"
    ("x&amp;lt;y", "7goEMeWW1t/VXoOq9jnUvSNPSGC4W8V82wUWQnUMtlI="),
]


def _whsec(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


CASES: dict[str, SourceCase] = {
    "shopify": SourceCase(
        vectors=[Vector("RFC 4231 case 2", lambda: shopify_signature(RFC4231[0], RFC4231[1]), RFC4231[2])],
        required=["X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id"],
        secrets=("old-app-secret", "new-app-secret", "someone-elses-secret"),
    ),
    "woocommerce": SourceCase(
        vectors=[Vector(f"WC_Webhook::generate_signature {secret}", lambda s=secret: woocommerce_signature(s, WOO_BODY),
                        expected) for secret, expected in WOO_VECTORS],
        required=["X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID"],
        secrets=("old-wc-secret", "new-wc-secret", "someone-elses-secret"),
    ),
    "standard": SourceCase(
        vectors=[Vector("standardwebhooks test_webhooks.py", lambda: standard_webhook_headers(
            STANDARD_KEY, STANDARD_VECTOR[0], STANDARD_VECTOR[2],
            datetime.fromtimestamp(STANDARD_VECTOR[1], tz=timezone.utc))["webhook-signature"], STANDARD_VECTOR[3])],
        required=["webhook-id", "webhook-timestamp", "webhook-signature"],
        secrets=(_whsec(b"old-key-of-24-bytes-long"), STANDARD_KEY, _whsec(b"another-key-of-24-bytes!")),
    ),
    # NetSuite's change notices (erpsync's user-event script) are Standard Webhooks: the same published vector.
    "netsuite": SourceCase(
        vectors=[Vector("standardwebhooks test_webhooks.py", lambda: netsuite_notice_headers(
            STANDARD_KEY, STANDARD_VECTOR[0], STANDARD_VECTOR[2],
            datetime.fromtimestamp(STANDARD_VECTOR[1], tz=timezone.utc))["webhook-signature"], STANDARD_VECTOR[3])],
        required=["webhook-id", "webhook-timestamp", "webhook-signature"],
        secrets=(_whsec(b"old-ns-key-of-24-bytes!!"), STANDARD_KEY, _whsec(b"another-key-of-24-bytes!")),
    ),
}

BODY = b'{"type": "order.created", "id": 820982911946154508}'


def case_of(name: str) -> SourceCase:
    if name not in CASES:
        pytest.fail(f"the source {name!r} sends webhooks (erpsync/systems/{name}/) but has no row in CASES in "
                    "tests/contract/test_webhook_source_contract.py: add its published vectors, required headers "
                    "and secrets, then make this suite pass")
    return CASES[name]


def signed(name: str, secret: str, body: bytes = BODY) -> httpx.Headers:
    """Headers as the sender sends them; case-insensitive, as the receiver hands them to ``authenticate``."""
    return httpx.Headers(SYSTEMS[name].webhook.sign(secret, body, topic="order.created", delivery_id="d-1"))


def authenticate(name: str, headers: httpx.Headers, body: bytes, secrets: list[str]):
    return SYSTEMS[name].webhook.authenticate(headers, body, secrets, datetime.now(timezone.utc))


def test_every_webhook_source_has_a_row() -> None:
    missing = [name for name in WEBHOOK_SOURCES if name not in CASES]
    assert not missing, f"add {', '.join(missing)} to CASES in tests/contract/test_webhook_source_contract.py"


@pytest.mark.parametrize("name", WEBHOOK_SOURCES)
def test_published_vectors(name: str) -> None:
    vectors = case_of(name).vectors
    assert vectors, "a source needs at least one published vector"
    for vector in vectors:
        assert vector.compute() == vector.expected, vector.name


@pytest.mark.parametrize("name", WEBHOOK_SOURCES)
def test_its_own_signature_verifies(name: str) -> None:
    old, new, _ = case_of(name).secrets
    delivery = authenticate(name, signed(name, new), BODY, [new])
    assert (delivery.source, delivery.delivery_id) == (name, delivery.delivery_id)
    assert delivery.delivery_id


@pytest.mark.parametrize("name", WEBHOOK_SOURCES)
def test_rotation_a_second_active_secret_verifies_and_no_other(name: str) -> None:
    old, new, stranger = case_of(name).secrets
    for secret in (old, new):
        assert authenticate(name, signed(name, secret), BODY, [old, new])
    with pytest.raises(DeliveryRefused) as refused:
        authenticate(name, signed(name, stranger), BODY, [old, new])
    assert refused.value.status == 401
    with pytest.raises(DeliveryRefused):
        authenticate(name, signed(name, new), BODY, [])


@pytest.mark.parametrize("name", WEBHOOK_SOURCES)
@pytest.mark.parametrize("index", range(3))
def test_a_missing_header_is_refused_naming_it(name: str, index: int) -> None:
    case = case_of(name)
    header = case.required[index]
    headers = signed(name, case.secrets[1])
    del headers[header]
    with pytest.raises(DeliveryRefused) as refused:
        authenticate(name, headers, BODY, [case.secrets[1]])
    assert header.lower() in refused.value.message.lower()


@st.composite
def one_byte_changes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one byte replaced, inserted or removed."""
    kind = draw(st.sampled_from(["replace", "insert", "remove"] if data else ["insert"]))
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at:]
    at = draw(st.integers(0, len(data) - 1))
    if kind == "remove":
        return data[:at] + data[at + 1:]
    new = draw(st.integers(0, 255).filter(lambda b: b != data[at]))
    return data[:at] + bytes([new]) + data[at + 1:]


@pytest.mark.parametrize("name", WEBHOOK_SOURCES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_one_byte_change_of_the_body_is_refused(name: str, data: st.DataObject) -> None:
    secret = case_of(name).secrets[1]
    headers = signed(name, secret)
    changed = data.draw(one_byte_changes(BODY))
    with pytest.raises(DeliveryRefused):
        authenticate(name, headers, changed, [secret])


# --- the receiver's limits, on every source's endpoint ------------------------------------------------------------

CAP = 4 * 1024


def post_all(app, requests: list[tuple[str, bytes, dict[str, str]]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client:
            return [await client.post(path, content=body, headers=headers) for path, body, headers in requests]

    return asyncio.run(run())


@pytest.mark.parametrize("name", WEBHOOK_SOURCES)
def test_a_body_over_the_size_cap_is_413_and_a_body_too_deep_is_refused_by_name(tmp_path: Path, name: str) -> None:
    secret = case_of(name).secrets[1]
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    app = create_app(ledger=ledger, dispatcher=None, secrets=lambda _source: [secret], mappings_dir=REPO / "mappings",
                     limits=IntakeLimits(max_body_bytes=CAP))
    big = json.dumps({"type": "order.created", "id": 1, "note": "x" * CAP}).encode()
    deep = b'{"type": "order.created", "a": ' + b"[" * 40 + b"]" * 40 + b"}"
    try:
        too_big, too_deep = post_all(app, [
            (f"/webhooks/{name}", body, {**signed(name, secret, body), "content-type": "application/json"})
            for body in (big, deep)
        ])
    finally:
        ledger.close()
    assert too_big.status_code == 413
    assert too_deep.status_code == 400
    assert "JSON nested deeper than 32 levels" in too_deep.json()["error"]
