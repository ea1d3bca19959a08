"""A paged, rate-limit-aware reader of Shopify's Admin REST API orders (the source side of reconciliation)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from erpsync.errors import ConfigError, PermanentError, TransientError

# The newest stable Admin API version. Shopify supports a stable version at least 12 months, then answers a request
# for it with the oldest version still supported ("falls forward", https://shopify.dev/docs/api/usage/versioning):
# check_api_version turns that silent change of schema into an error naming both versions.
API_VERSION = "2026-10"
VERSION_HEADER = "X-Shopify-API-Version"
MAX_PAGE_SIZE = 250
SHOP_URL_ENV = "ERPSYNC_SHOPIFY_SHOP_URL"
ACCESS_TOKEN_ENV = "ERPSYNC_SHOPIFY_ACCESS_TOKEN"
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
# Shopify's REST leaky bucket drains 2 calls a second (standard plans); we keep a few calls of headroom
# so a webhook-driven app sharing the token is not starved by a nightly job.
LEAK_PER_SECOND = 2.0
BUCKET_HEADROOM = 4


def parse_call_limit(value: str | None) -> tuple[int, int] | None:
    """``"32/40"`` → ``(32, 40)``: calls in the bucket and its size; None when absent or malformed."""
    if not value:
        return None
    used, _, size = value.partition("/")
    try:
        pair = int(used), int(size)
    except ValueError:
        return None
    return pair if pair[1] > 0 else None


def throttle_delay(call_limit: tuple[int, int] | None, *, headroom: int = BUCKET_HEADROOM,
                   leak_per_second: float = LEAK_PER_SECOND) -> float:
    """Seconds to wait before the next call so the bucket keeps ``headroom`` free calls (0 when it has)."""
    if call_limit is None:
        return 0.0
    used, size = call_limit
    excess = used - max(size - headroom, 0) + 1
    return max(excess, 0) / leak_per_second


def parse_retry_after(value: str | None) -> float | None:
    """Shopify sends ``Retry-After`` as seconds (a float string); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def check_api_version(response: httpx.Response, wanted: str) -> None:
    """ConfigError when the shop answered with another API version than the one asked for (the asked one is past
    support, and the answer follows a schema erpsync was not written for); an answer without the header passes."""
    served = response.headers.get(VERSION_HEADER)
    if served and served != wanted:
        raise ConfigError(f"shopify: the shop answered with Admin API version {served}, not the {wanted} erpsync "
                          f"speaks; {wanted} is past Shopify's support: upgrade erpsync")


def shop_from_env(environ: Mapping[str, str]) -> tuple[str, SecretStr]:
    """The shop's URL and access token (``ERPSYNC_SHOPIFY_SHOP_URL``, ``_ACCESS_TOKEN``); ConfigError names one unset.

    Both the Admin REST client here and the GraphQL client (graphql.py) are built from them."""
    url = environ.get(SHOP_URL_ENV, "").strip()
    token = environ.get(ACCESS_TOKEN_ENV, "").strip()
    for name, value in ((SHOP_URL_ENV, url), (ACCESS_TOKEN_ENV, token)):
        if not value:
            raise ConfigError(f"{name}: not set")
    return url, SecretStr(token)


class ShopifyAdminClient:
    """Reads orders page by page through ``GET /admin/api/{version}/orders.json``.

    Pages follow the ``Link: <…>; rel="next"`` cursor, never offsets. Every call honours the call-limit
    header (slows down before the bucket is full) and answers 429 by waiting ``Retry-After``; 5xx and
    network errors are retried with jittered backoff, then raised as TransientError. ``transport`` is the
    seam for tests; ``sleep`` lets a test observe waits without spending them.
    """

    def __init__(
        self,
        shop_url: str,
        access_token: SecretStr,
        *,
        api_version: str = API_VERSION,
        page_size: int = MAX_PAGE_SIZE,
        max_attempts: int = 6,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"page_size: must be between 1 and {MAX_PAGE_SIZE}")
        if not shop_url.startswith(("http://", "https://")):
            raise ConfigError(f"{SHOP_URL_ENV}: must be an http(s) URL")
        self.api_version = api_version
        self.page_size = page_size
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._call_limit: tuple[int, int] | None = None
        self.calls = 0
        self.waited_seconds = 0.0
        self._http = httpx.Client(
            base_url=shop_url.rstrip("/"),
            headers={"X-Shopify-Access-Token": access_token.get_secret_value(), "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **options: Any) -> ShopifyAdminClient:
        """Built from ``ERPSYNC_SHOPIFY_SHOP_URL`` and ``ERPSYNC_SHOPIFY_ACCESS_TOKEN``; ConfigError names one unset."""
        return cls(*shop_from_env(environ), **options)

    def __enter__(self) -> ShopifyAdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    # -- orders --

    def order_pages(
        self, *, updated_at_min: datetime, updated_at_max: datetime, status: str = "any"
    ) -> Iterator[list[dict[str, Any]]]:
        """Every order updated in ``[updated_at_min, updated_at_max]``, one page (≤ page_size orders) at a time.

        ``status=any`` because a reconciliation must also see closed and cancelled orders (Shopify's default
        lists open ones only).
        """
        params = {
            "limit": str(self.page_size),
            "status": status,
            "updated_at_min": _iso(updated_at_min),
            "updated_at_max": _iso(updated_at_max),
        }
        yield from self._pages(f"/admin/api/{self.api_version}/orders.json", params)

    def orders_by_ids(self, order_ids: Iterable[str | int]) -> Iterator[list[dict[str, Any]]]:
        """The orders with these ids (any status, any age), in pages; ids that do not exist are simply absent."""
        batch: list[str] = []
        for order_id in order_ids:
            if not str(order_id).isdigit():
                continue  # Shopify order ids are integers; anything else cannot be one of its orders
            batch.append(str(order_id))
            if len(batch) == self.page_size:
                yield from self._by_ids(batch)
                batch = []
        if batch:
            yield from self._by_ids(batch)

    def _by_ids(self, ids: list[str]) -> Iterator[list[dict[str, Any]]]:
        params = {"limit": str(self.page_size), "status": "any", "ids": ",".join(ids)}
        yield from self._pages(f"/admin/api/{self.api_version}/orders.json", params)

    def _pages(self, path: str, params: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
        url: str | None = path
        query: dict[str, str] | None = params
        while url is not None:
            response = self._get(url, query)
            try:
                orders = response.json()["orders"]
            except (ValueError, KeyError, TypeError):
                raise PermanentError(f"shopify {path}: answer has no orders list") from None
            if orders:
                yield orders
            # The next link carries the filters in its page_info cursor; sending them again is refused.
            url = response.links.get("next", {}).get("url")
            query = None

    def _get(self, url: str, params: dict[str, str] | None) -> httpx.Response:
        for attempt in range(1, self.max_attempts + 1):
            self._wait(throttle_delay(self._call_limit))
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                if attempt == self.max_attempts:
                    raise TransientError(f"shopify orders: {type(exc).__name__} after {attempt} attempts") from None
                self._wait(_backoff(attempt))
                continue
            self.calls += 1
            self._call_limit = parse_call_limit(response.headers.get(CALL_LIMIT_HEADER))
            check_api_version(response, self.api_version)
            if response.status_code == 200:
                return response
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if attempt == self.max_attempts:
                    raise TransientError(
                        f"shopify orders: HTTP {response.status_code} after {attempt} attempts",
                        retry_after=retry_after,
                        status=response.status_code,
                    )
                self._wait(retry_after if retry_after is not None else _backoff(attempt))
                continue
            if response.status_code in (401, 403):
                raise ConfigError(f"{ACCESS_TOKEN_ENV}: refused by the shop (HTTP {response.status_code})")
            raise PermanentError(f"shopify orders: HTTP {response.status_code} ({_error_fields(response)})")
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waited_seconds += seconds
            self._sleep(seconds)


def _backoff(attempt: int) -> float:
    # Full jitter, capped: many jobs sharing a shop must not retry in lockstep.
    return random.uniform(0, min(30.0, 0.5 * 2**attempt))


def _error_fields(response: httpx.Response) -> str:
    """The field names Shopify complains about (``{"errors": {"limit": [...]}}``), never the values sent."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return "no error body"
    if isinstance(errors, dict):
        return "fields: " + ", ".join(sorted(str(key) for key in errors))
    return "see the shop's answer"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ConfigError("updated_at bounds: need a time zone")
    return moment.astimezone(UTC).isoformat()
