"""Hypothesis: every webhook signature scheme refuses a changed signature and another secret.

A one-byte change of the body, through each source's ``authenticate``, is the contract suite's
(tests/contract/test_webhook_source_contract.py).

The schemes are found at collection time in each registered system's ``webhooks`` module (``<name>_signature``
beside ``verify_<name>``), so a system added to the registry is covered without editing this file. Standard Webhooks is signed by
``standard_webhook_headers`` and verified by the ``standardwebhooks`` package, as the receiver does.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import math
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpsync.systems import SYSTEMS


def _webhook_functions() -> SimpleNamespace:
    found: dict[str, object] = {}
    for name, system in SYSTEMS.items():
        if system.webhook is not None:
            found.update(vars(importlib.import_module(f"erpsync.systems.{name}.webhooks")))
    return SimpleNamespace(**found)


signatures = _webhook_functions()

EXAMPLES = 200  # inputs tried per property below; docs/SECURITY.md cites this number
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

SCHEMES = sorted(
    name.removeprefix("verify_")
    for name in dir(signatures)
    if name.startswith("verify_") and callable(getattr(signatures, f"{name.removeprefix('verify_')}_signature", None))
)

bodies = st.binary(max_size=2_000)
secrets = st.text(min_size=1, max_size=64)


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


def scheme(name: str) -> tuple[Callable[[str, bytes], str], Callable[[str, bytes, str | None], bool]]:
    return getattr(signatures, f"{name}_signature"), getattr(signatures, f"verify_{name}")


def test_the_known_schemes_are_found() -> None:
    assert "shopify" in SCHEMES


@pytest.mark.parametrize("name", SCHEMES)
@PROPERTY_SETTINGS
@given(secret=secrets, body=bodies, data=st.data())
def test_a_changed_signature_is_refused(name: str, secret: str, body: bytes, data: st.DataObject) -> None:
    sign, verify = scheme(name)
    header = sign(secret, body).encode("latin-1")
    changed = data.draw(one_byte_changes(header)).decode("latin-1")
    assert not verify(secret, body, changed)


@pytest.mark.parametrize("name", SCHEMES)
@PROPERTY_SETTINGS
@given(secret=secrets, other=secrets, body=bodies)
def test_another_secret_is_refused(name: str, secret: str, other: str, body: bytes) -> None:
    sign, verify = scheme(name)
    key_of = getattr(signatures, f"{name}_signing_key", str.encode)
    if key_of(other) == key_of(secret):
        return  # two spellings of one key (WooCommerce decodes HTML entities in its secrets)
    assert not verify(other, body, sign(secret, body))


@pytest.mark.parametrize("name", SCHEMES)
@PROPERTY_SETTINGS
@given(secret=secrets, body=bodies, header=st.one_of(st.none(), st.text(max_size=60)))
def test_any_header_text_is_answered_yes_or_no(name: str, secret: str, body: bytes, header: str | None) -> None:
    _, verify = scheme(name)
    assert verify(secret, body, header) in (True, False)


# --- Standard Webhooks, through the standardwebhooks package --------------------------------------------

standard = pytest.mark.skipif(
    not hasattr(signatures, "standard_webhook_headers"), reason="no system has standard_webhook_headers"
)
whsec = st.binary(min_size=24, max_size=64).map(lambda key: "whsec_" + base64.b64encode(key).decode())
msg_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=40)
text_bodies = st.text(max_size=1_000).map(str.encode)
# What the package raises for a refused delivery: its own error, or a ValueError (UnicodeDecodeError for a body
# that is not UTF-8, binascii.Error for a signature that is not base64, a malformed `v1,…` item). The receiver
# must answer all of them as a refusal, never a 500.
REFUSALS = (ValueError,)


def standard_verify(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, *REFUSALS):
        return False
    return True


def _same_second(original: str, changed: str) -> bool:
    """True when a changed timestamp header names the same second ("01674087231", "1674087231.5"): the package
    reads it with float() and signs its floor, so it is the same delivery, not a replay at another time."""
    try:
        return math.floor(float(changed)) == int(original)
    except (ValueError, OverflowError):
        return False


def _same_signature(original: str, changed: str) -> bool:
    """True when a changed header still carries the original signature bytes (base64 has spare bits in its
    last character, so ``...Q=`` and ``...R=`` can decode alike): a second spelling, not a forgery."""
    def decoded(header: str) -> set[bytes]:
        out = set()
        for item in header.split(" "):
            version, _, value = item.partition(",")
            if version == "v1":
                try:
                    out.add(base64.b64decode(value))
                except (binascii.Error, ValueError):
                    pass
        return out

    return bool(decoded(original) & decoded(changed))


@standard
@PROPERTY_SETTINGS
@given(secret=whsec, msg_id=msg_ids, body=text_bodies, data=st.data())
def test_standard_own_signature_accepted_and_any_one_byte_change_refused(
    secret: str, msg_id: str, body: bytes, data: st.DataObject
) -> None:
    headers = signatures.standard_webhook_headers(secret, msg_id, body)
    assert standard_verify(secret, body, headers)
    assert not standard_verify(secret, data.draw(one_byte_changes(body)), headers)
    name = data.draw(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]))
    changed = data.draw(one_byte_changes(headers[name].encode("latin-1"))).decode("latin-1")
    if name == "webhook-signature" and _same_signature(headers[name], changed):
        return
    if name == "webhook-timestamp" and _same_second(headers[name], changed):
        return
    assert not standard_verify(secret, body, {**headers, name: changed})


@standard
@PROPERTY_SETTINGS
@given(old=whsec, new=whsec, stranger=whsec, msg_id=msg_ids, body=text_bodies)
def test_standard_rotation_accepts_either_key_and_no_other(old: str, new: str, stranger: str, msg_id: str, body: bytes) -> None:
    headers = signatures.standard_webhook_headers([old, new], msg_id, body)
    assert standard_verify(old, body, headers) and standard_verify(new, body, headers)
    if stranger not in (old, new):
        assert not standard_verify(stranger, body, headers)
