"""The receiver's intake limits: JSON depth and size, the JSON media type, the token bucket, their settings."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.errors import ConfigError
from erpsync.receiver.limits import (
    IntakeLimits,
    JsonRefused,
    RateLimiter,
    TokenBucket,
    is_json_media_type,
    parse_json_object,
)


@pytest.mark.parametrize("body, message", [
    (b"", "body is not valid JSON"),
    (b"[1]", "body must be a JSON object"),
    (b'{"a": NaN}', "body is not valid JSON"),
    (b'{"a": -Infinity}', "body is not valid JSON"),
    (b'{"a": 1' + b"0" * 5000 + b"}", "body is not valid JSON"),  # beyond Python's int digit limit
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "JSON nested deeper than 32 levels"),
    (b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "JSON nested deeper than 32 levels"),
    (json.dumps({"a": [0] * 10_000}).encode(), "JSON holds more than 10000 values"),
])
def test_refusals_name_the_limit(body, message):
    with pytest.raises(JsonRefused) as refused:
        parse_json_object(body)
    assert str(refused.value) == message


def test_at_the_limits_is_accepted():
    assert parse_json_object(b'{"a": ' + b"[" * 31 + b"]" * 31 + b"}")
    assert parse_json_object(json.dumps({"a": [0] * 9_998}).encode())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_body_parses_or_is_refused_by_name(body):
    try:
        assert isinstance(parse_json_object(body), dict)
    except JsonRefused as exc:
        assert str(exc) in {"body is not valid JSON", "body is not valid JSON in UTF-8", "body must be a JSON object",
                            "JSON nested deeper than 32 levels", "JSON holds more than 10000 values"}


@pytest.mark.parametrize("value, ok", [
    ("application/json", True), ("Application/JSON; charset=utf-8", True), ("application/cloudevents+json", True),
    ("text/json", False), ("text/plain", False), ("application/x-www-form-urlencoded", False), ("", False),
    (None, False), ("application/jsonx", False),
])
def test_json_media_types(value, ok):
    assert is_json_media_type(value) is ok


def test_token_bucket_refills_at_its_rate_up_to_its_burst():
    bucket = TokenBucket(rate=2, burst=3)
    start = bucket._stamp
    assert [bucket.take(start) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(start) == pytest.approx(0.5)
    assert bucket.take(start + 0.5) == 0
    assert [bucket.take(start + 100) for _ in range(3)] == [0, 0, 0]  # never more than the burst
    assert bucket.take(start + 100) > 0


def test_rate_limiter_is_per_source_and_can_be_off():
    limiter = RateLimiter(rate=0.5, burst=1)
    assert limiter.retry_after("shopify") == 0
    assert limiter.retry_after("shopify") == 2
    assert limiter.retry_after("woocommerce") == 0
    off = RateLimiter(rate=0, burst=1)
    assert all(off.retry_after("shopify") == 0 for _ in range(100))


def test_limits_from_env():
    assert IntakeLimits.from_env(10, {}) == IntakeLimits(max_body_bytes=10, rate_per_second=200, rate_burst=400)
    assert IntakeLimits.from_env(10, {"ERPSYNC_RATE_LIMIT_PER_SECOND": "5"}).rate_burst == 10
    assert IntakeLimits.from_env(10, {"ERPSYNC_RATE_LIMIT_PER_SECOND": "5",
                                      "ERPSYNC_RATE_LIMIT_BURST": "7"}).rate_burst == 7
    for bad in ({"ERPSYNC_RATE_LIMIT_PER_SECOND": "fast"}, {"ERPSYNC_RATE_LIMIT_PER_SECOND": "-1"},
                {"ERPSYNC_RATE_LIMIT_BURST": "0"}, {"ERPSYNC_RATE_LIMIT_PER_SECOND": "inf"}):
        with pytest.raises(ConfigError, match="ERPSYNC_RATE_LIMIT"):
            IntakeLimits.from_env(10, bad)
