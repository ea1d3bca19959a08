"""The receiver's intake limits: JSON depth and size, the JSON content type, and a per-source token bucket."""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from erpsync.errors import ConfigError

MAX_JSON_DEPTH = 32
MAX_JSON_VALUES = 10_000
DEFAULT_RATE_PER_SECOND = 200.0


class JsonRefused(Exception):
    """The body is not a JSON object within the limits; the message names the limit, never a value."""


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python accepts them by default, PostgreSQL's JSON and most parsers do not.
    raise ValueError(f"{name} is not JSON")


# A ``\\uD800``-``\\uDFFF`` escape: a surrogate, valid only as the half of a pair that decodes to one character.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json_object(body: bytes, *, max_depth: int = MAX_JSON_DEPTH, max_values: int = MAX_JSON_VALUES) -> dict:
    """``body`` as a JSON object in strict UTF-8, nested at most ``max_depth`` containers deep and holding at
    most ``max_values``.

    ``json.loads`` on bytes also guesses UTF-16 and UTF-32, and both it and PostgreSQL's text columns would
    let a lone surrogate through (written raw or as a ``\\uD800`` escape) to fail later, far from the cause.
    RFC 8259 section 8.1 requires UTF-8 between systems, and every source here sends it, so anything else is
    refused at the door.
    """
    try:
        text = body.decode("utf-8")  # strict: raw surrogates (CESU-8), overlongs and stray bytes fail here
    except UnicodeDecodeError:
        raise JsonRefused("body is not valid JSON in UTF-8") from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:  # includes a UTF-8 byte order mark, which RFC 8259 says not to send
        raise JsonRefused("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise JsonRefused("body must be a JSON object")
    check_json_shape(payload, max_depth=max_depth, max_values=max_values,
                     check_text=_SURROGATE_ESCAPE.search(body) is not None)
    return payload


def check_json_shape(payload: Any, *, max_depth: int = MAX_JSON_DEPTH, max_values: int = MAX_JSON_VALUES,
                     check_text: bool = False) -> None:
    """JsonRefused when ``payload`` nests containers deeper than ``max_depth`` or holds more than ``max_values``;
    with ``check_text``, also when a key or a string holds a lone surrogate (not encodable as UTF-8).

    Walks without recursion and stops at the first limit crossed, so a hostile body costs at most
    ``max_values`` steps.
    """
    stack: list[tuple[Any, int]] = [(payload, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > max_values:
            raise JsonRefused(f"JSON holds more than {max_values} values")
        if check_text and isinstance(value, str):
            _utf8(value)
        if isinstance(value, dict):
            if check_text:
                for key in value:
                    _utf8(key)
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise JsonRefused(f"JSON nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def _utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused("JSON text holds a lone surrogate escape (not UTF-8)") from None


def is_json_media_type(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json``, with any parameters (``; charset=utf-8``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; ``take`` answers 0 when a request may pass, else seconds to wait."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


class RateLimiter:
    """One token bucket per source, in this process; a rate of 0 turns the limit off."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def retry_after(self, source: str) -> int:
        """0 when a delivery to ``source`` may pass now, else whole seconds (at least 1) for ``Retry-After``."""
        if self.rate <= 0:
            return 0
        with self._lock:
            bucket = self._buckets.get(source)
            if bucket is None:
                bucket = self._buckets[source] = TokenBucket(self.rate, self.burst)
        wait = bucket.take()
        return max(1, math.ceil(wait)) if wait > 0 else 0


@dataclass(frozen=True)
class IntakeLimits:
    """What the receiver accepts. Body size comes from ERPSYNC_MAX_BODY_BYTES; the rate from the variables below."""

    max_body_bytes: int
    rate_per_second: float = DEFAULT_RATE_PER_SECOND
    rate_burst: int = int(2 * DEFAULT_RATE_PER_SECOND)
    max_json_depth: int = MAX_JSON_DEPTH
    max_json_values: int = MAX_JSON_VALUES

    @classmethod
    def from_env(cls, max_body_bytes: int, environ: Mapping[str, str] | None = None) -> IntakeLimits:
        """ERPSYNC_RATE_LIMIT_PER_SECOND (default 200, 0 = off), ERPSYNC_RATE_LIMIT_BURST (default twice the rate)."""
        env = os.environ if environ is None else environ
        rate = _number(env, "ERPSYNC_RATE_LIMIT_PER_SECOND", DEFAULT_RATE_PER_SECOND)
        burst = _number(env, "ERPSYNC_RATE_LIMIT_BURST", max(1.0, 2 * rate))
        if rate < 0 or burst < 1:
            raise ConfigError("ERPSYNC_RATE_LIMIT_PER_SECOND must be >= 0 and ERPSYNC_RATE_LIMIT_BURST >= 1")
        return cls(max_body_bytes=max_body_bytes, rate_per_second=rate, rate_burst=int(burst))


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {raw!r}")
    return value
