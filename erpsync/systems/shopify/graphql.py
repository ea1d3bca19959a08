"""A client of Shopify's GraphQL Admin API that spends the shop's cost budget without being throttled.

Shopify limits this API by calculated query cost (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits):
each answer reports ``extensions.cost.throttleStatus`` (bucket size, points available, restore rate a second) and
the ``requestedQueryCost`` the call needed available before it ran. The client keeps that state, learns what each
query costs, and before a call whose cost is more than the bucket now holds waits the time the restore rate needs
— so its own load is never answered THROTTLED. A THROTTLED answer anyway (another app's calls share nothing,
but another process of ours may) is waited out and retried, then raised as TransientError with ``retry_after``.
``userErrors`` in a mutation's payload become ErpRejected (permanent: the code and the input field path);
transport failures and 5xx become TransientError.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from erpsync.errors import ConfigError, ErpRejected, PermanentError, TransientError
from erpsync.systems.shopify.admin import ACCESS_TOKEN_ENV, API_VERSION, SHOP_URL_ENV, check_api_version, shop_from_env

# Shopify refuses a single query over 1,000 requested points (MAX_COST_EXCEEDED) whatever the bucket holds.
MAX_QUERY_COST = 1000
# A mutation costs 10 points: the estimate for one not seen yet. A query not seen yet is sent on what we know.
MUTATION_COST = 10


@dataclass
class ThrottleStatus:
    """The bucket as the shop last reported it, and when (our clock) we read it."""

    maximum: float
    available: float
    restore_rate: float
    read_at: float

    def available_at(self, now: float) -> float:
        return min(self.maximum, self.available + max(now - self.read_at, 0.0) * self.restore_rate)


class ShopifyGraphQL:
    """Sends queries and mutations to ``POST /admin/api/{version}/graphql.json``.

    Safe to share between threads: the decision to send (and the points a call reserves) is taken under a lock,
    so calls in flight together never overspend the bucket. ``transport``, ``sleep`` and ``clock`` are seams
    for tests. ``calls``, ``throttled`` and ``waited_seconds`` say how the budget was spent.
    """

    def __init__(
        self,
        shop_url: str,
        access_token: SecretStr,
        *,
        api_version: str = API_VERSION,
        max_attempts: int = 5,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not shop_url.startswith(("http://", "https://")):
            raise ConfigError(f"{SHOP_URL_ENV}: must be an http(s) URL")
        if max_attempts < 1:
            raise ConfigError("max_attempts: must be at least 1")
        self.api_version = api_version
        self.path = f"/admin/api/{api_version}/graphql.json"
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._status: ThrottleStatus | None = None
        self._reserved = 0.0  # points of calls sent and not yet answered
        self._in_flight = 0
        self._costs: dict[str, int] = {}  # query text -> requestedQueryCost the shop reported
        self.calls = 0
        self.throttled = 0
        self.waited_seconds = 0.0
        self._http = httpx.Client(
            base_url=shop_url.rstrip("/"),
            headers={"X-Shopify-Access-Token": access_token.get_secret_value(), "Content-Type": "application/json",
                     "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **options: Any) -> ShopifyGraphQL:
        """Built from ``ERPSYNC_SHOPIFY_SHOP_URL`` and ``ERPSYNC_SHOPIFY_ACCESS_TOKEN``; ConfigError names one unset."""
        return cls(*shop_from_env(environ), **options)

    def __enter__(self) -> ShopifyGraphQL:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def throttle_status(self) -> ThrottleStatus | None:
        return self._status

    # -- the public calls --

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a query; PermanentError for what the shop refuses (unknown field, bad variables)."""
        return self._execute(document, variables)

    def mutate(self, document: str, variables: dict[str, Any] | None = None, *, payload: str) -> dict[str, Any]:
        """Run a mutation and return its payload (``data[payload]``); its ``userErrors`` raise ErpRejected."""
        data = self._execute(document, variables, default_cost=MUTATION_COST)
        result = data.get(payload)
        if not isinstance(result, dict):
            raise PermanentError(f"shopify graphql: the answer has no {payload} payload")
        errors = result.get("userErrors") or []
        if errors:
            raise user_errors_rejected(payload, errors)
        return result

    # -- one call, paced --

    def _execute(self, document: str, variables: dict[str, Any] | None, *, default_cost: int = 0) -> dict[str, Any]:
        body = {"query": document, "variables": variables or {}}
        for attempt in range(1, self.max_attempts + 1):
            cost = self._reserve(document, default_cost)
            try:
                response = self._http.post(self.path, json=body)
            except httpx.TransportError as exc:
                self._release(cost, None)
                if attempt == self.max_attempts:
                    raise TransientError(f"shopify graphql: {type(exc).__name__} after {attempt} attempts") from None
                self._wait(_backoff(attempt))
                continue
            self.calls += 1
            answer = _json(response)
            self._release(cost, answer, document)
            if response.status_code in (401, 403):
                raise ConfigError(f"{ACCESS_TOKEN_ENV}: refused by the shop (HTTP {response.status_code})")
            check_api_version(response, self.api_version)
            throttled = response.status_code == 429 or _error_code(answer) == "THROTTLED"
            if throttled or response.status_code >= 500:
                retry_after = self._throttle_delay(answer) if throttled else _backoff(attempt)
                if throttled:
                    self.throttled += 1
                if attempt == self.max_attempts:
                    what = "THROTTLED" if throttled else f"HTTP {response.status_code}"
                    raise TransientError(f"shopify graphql: {what} after {attempt} attempts",
                                         retry_after=retry_after, status=response.status_code)
                self._wait(retry_after)
                continue
            if response.status_code != 200 or answer is None:
                raise PermanentError(f"shopify graphql: HTTP {response.status_code} ({_top_level_errors(answer)})")
            if answer.get("errors"):
                raise PermanentError(f"shopify graphql: {_top_level_errors(answer)}")
            data = answer.get("data")
            if not isinstance(data, dict):
                raise PermanentError("shopify graphql: the answer has no data")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _reserve(self, document: str, default_cost: int) -> float:
        """Wait until the bucket holds this call's cost (as far as we know it), then count it as spent."""
        while True:
            with self._lock:
                cost = float(self._costs.get(document, default_cost))
                if cost > MAX_QUERY_COST:
                    raise PermanentError(f"shopify graphql: the query costs {cost:.0f} points, over the "
                                         f"{MAX_QUERY_COST} a single query may request")
                status = self._status
                if status is None and self._in_flight:
                    delay = 0.01  # the first answer tells us the bucket: wait for it rather than guess
                elif status is None or cost == 0:
                    self._reserved += cost
                    self._in_flight += 1
                    return cost
                else:
                    if cost > status.maximum:
                        raise PermanentError(f"shopify graphql: the query costs {cost:.0f} points, more than the "
                                             f"shop's bucket of {status.maximum:.0f} holds")
                    available = status.available_at(self._clock()) - self._reserved
                    if cost <= available:
                        self._reserved += cost
                        self._in_flight += 1
                        return cost
                    delay = (cost - available) / status.restore_rate
            self._wait(delay)


    def _release(self, reserved: float, answer: dict[str, Any] | None, document: str | None = None) -> None:
        """Forget this call's reservation and take the shop's word for the bucket, learning the call's cost."""
        with self._lock:
            self._reserved = max(self._reserved - reserved, 0.0)
            self._in_flight = max(self._in_flight - 1, 0)
            cost = ((answer or {}).get("extensions") or {}).get("cost") or {}
            status = cost.get("throttleStatus") or {}
            try:
                now = self._clock()
                reported = ThrottleStatus(float(status["maximumAvailable"]), float(status["currentlyAvailable"]),
                                          float(status["restoreRate"]), now)
            except (KeyError, TypeError, ValueError):
                reported = None
            if reported is not None:
                # Answers of calls in flight together can arrive out of order: one the shop ran before another
                # reports a fuller bucket than the other's answer, already taken in, said. So the bucket never
                # grows on an answer beyond what the last status, restored since, allows; it only shrinks.
                # (Too low at worst by a refund of points a call did not use, made good by the restore.)
                if self._status is not None and self._status.maximum == reported.maximum:
                    known = self._status.available_at(now)
                    if known < reported.available:
                        reported = ThrottleStatus(reported.maximum, known, reported.restore_rate, now)
                self._status = reported
            requested = cost.get("requestedQueryCost")
            if document is not None and isinstance(requested, (int, float)) and not isinstance(requested, bool):
                # The same text costs the same next time (variables change first/last rarely; the shop's
                # answer corrects us if they do).
                self._costs[document] = int(requested)

    def _throttle_delay(self, answer: dict[str, Any] | None) -> float:
        """Seconds until the bucket holds what the throttled call asked for."""
        cost = ((answer or {}).get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        try:
            missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
            return max(missing, 0.0) / float(status["restoreRate"]) + 0.05
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return 1.0

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waited_seconds += seconds
            self._sleep(seconds)


def user_errors_rejected(payload: str, errors: list[dict[str, Any]]) -> ErpRejected:
    """``userErrors`` as one ErpRejected: the first error's code and field path, every error in ``detail``.

    Shopify's messages name fields and rules, not customer data, but they stay in ``detail`` (the ledger's
    reason) like an ERP's, and the exception's text carries only code and path.
    """
    first = errors[0]
    code = str(first.get("code") or "USER_ERROR")
    path = ".".join(str(part) for part in first.get("field") or []) or None
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e.get('field') or []) or payload}: {e.get('code') or 'USER_ERROR'}: "
        f"{e.get('message', '')}" for e in errors)
    rejected = ErpRejected(200, code, detail, path)
    rejected.user_errors = errors  # type: ignore[attr-defined]
    return rejected


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _error_code(answer: dict[str, Any] | None) -> str | None:
    errors = (answer or {}).get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return (errors[0].get("extensions") or {}).get("code")
    return None


def _top_level_errors(answer: dict[str, Any] | None) -> str:
    """Shopify's top-level ``errors``: each code and message (they name fields and types, never values)."""
    errors = (answer or {}).get("errors")
    if isinstance(errors, dict):  # the REST-style body of a refused request
        return "fields: " + ", ".join(sorted(str(key) for key in errors))
    if not isinstance(errors, list) or not errors:
        return "no error body"
    parts = []
    for error in errors[:5]:
        if not isinstance(error, dict):
            continue
        code = (error.get("extensions") or {}).get("code")
        message = str(error.get("message", ""))
        if code == "INVALID_VARIABLE":
            message = message.split(":")[0]  # the rest may quote the value sent
        parts.append(f"{code}: {message}" if code else message)
    return "; ".join(parts)


def _backoff(attempt: int) -> float:
    # Full jitter, capped, as the REST client does: callers sharing a shop must not retry in lockstep.
    return random.uniform(0, min(30.0, 0.5 * 2**attempt))
