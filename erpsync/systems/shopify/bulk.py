"""One bulk query of Shopify's GraphQL Admin API, run to the end: start it, poll it, read its JSONL result.

https://shopify.dev/docs/api/usage/bulk-operations/queries: ``bulkOperationRunQuery`` starts the query and answers
with the operation (CREATED); ``node(id:)`` reports its status until COMPLETED (``url`` of the JSONL file) or
FAILED/CANCELED/EXPIRED (``errorCode``). A shop runs one bulk query at a time: a start refused with
``OPERATION_IN_PROGRESS`` is a TransientError (another job's query is running; try later), never a reason to cancel
someone else's. The file holds one object per line; the nodes of a nested connection are lines of their own with
``__parentId``, gathered here under their parent again. The file is read line by line as it downloads, so memory
holds the parents of one result, not the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from erpsync.errors import ErpRejected, PermanentError, TransientError
from erpsync.systems.shopify.graphql import ShopifyGraphQL

RUN = """mutation RunBulk($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { code field message } }
}"""
POLL = """query BulkStatus($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount rootObjectCount url partialDataUrl } }
}"""
# Shopify's BulkOperationStatus values (https://shopify.dev/docs/api/admin-graphql/2026-10/enums/BulkOperationStatus)
# that end an operation, compared in lower case as the writer compares FulfillmentStatus: Shopify's enum values,
# not the run states the core's tests keep out of erpsync/.
DONE = "completed"
FINISHED = frozenset({DONE, "failed", "canceled", "expired"})


class BulkQuery:
    """Runs bulk queries through ``graphql`` (its pacing applies to the start and the polls).

    ``poll_seconds`` grows to ``max_poll_seconds`` (Shopify's guide: poll, but not in a tight loop); ``timeout``
    bounds the whole wait. ``last_status`` says how the last operation ended (id, status, counts: no data).
    """

    def __init__(self, graphql: ShopifyGraphQL, *, poll_seconds: float = 0.5, max_poll_seconds: float = 10.0,
                 timeout: float = 3600.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.graphql = graphql
        self.poll_seconds, self.max_poll_seconds, self.timeout = poll_seconds, max_poll_seconds, timeout
        self._sleep, self._clock = sleep, clock
        self.last_status: dict[str, Any] = {}
        self.polls = 0

    def run(self, query: str) -> Iterator[dict[str, Any]]:
        """The root objects of ``query``'s result, each with its nested connections' nodes gathered under it
        (``{"lineItems": [...]}``, by each child's ``__typename``), in the file's order."""
        try:
            started = self.graphql.mutate(RUN, {"query": query}, payload="bulkOperationRunQuery")
        except ErpRejected as exc:
            if exc.code == "OPERATION_IN_PROGRESS":
                raise TransientError("shopify bulk query: another bulk query is running in this shop; try again "
                                     "when it has finished", retry_after=60.0) from None
            raise
        operation = started.get("bulkOperation") or {}
        if not operation.get("id"):
            raise PermanentError("shopify bulk query: the shop answered without an operation id")
        url = self._wait(operation["id"])
        yield from gather(self._lines(url))

    def _wait(self, operation_id: str) -> str | None:
        deadline = self._clock() + self.timeout
        delay = self.poll_seconds
        while True:
            node = self.graphql.query(POLL, {"id": operation_id}).get("node") or {}
            self.polls += 1
            self.last_status = {key: node.get(key) for key in ("id", "status", "errorCode", "objectCount",
                                                                "rootObjectCount")}
            status = str(node.get("status") or "").lower()
            if status == DONE:
                return node.get("url")  # null: the query matched nothing
            if status in FINISHED:
                # A failed export is retried as a whole by the next run; its partial data is not a window's truth.
                code = node.get("errorCode") or "no code"
                raise TransientError(f"shopify bulk query {operation_id}: {status.upper()} ({code})")
            if self._clock() >= deadline:
                raise TransientError(f"shopify bulk query {operation_id}: still {status.upper() or 'unknown'} after "
                                     f"{self.timeout:.0f} s")
            self._sleep(delay)
            delay = min(delay * 2, self.max_poll_seconds)

    def _lines(self, url: str | None) -> Iterator[dict[str, Any]]:
        if not url:
            return
        try:
            # A signed storage URL: no access token goes with it.
            with httpx.stream("GET", url, timeout=60.0) as response:
                if response.status_code != 200:
                    raise TransientError(f"shopify bulk result: HTTP {response.status_code}",
                                         status=response.status_code)
                for number, text in enumerate(response.iter_lines(), start=1):
                    if not text.strip():
                        continue
                    try:
                        line = json.loads(text)
                    except ValueError:
                        raise PermanentError(f"shopify bulk result: line {number} is not JSON") from None
                    if not isinstance(line, dict):
                        raise PermanentError(f"shopify bulk result: line {number} is not an object")
                    yield line
        except httpx.TransportError as exc:
            raise TransientError(f"shopify bulk result: {type(exc).__name__}") from None


# The field a child line is gathered under, by its __typename (the bulk query asks for it on every nested node).
CHILD_FIELDS = {"LineItem": "lineItems", "ShippingLine": "shippingLines", "RefundLineItem": "refundLineItems",
                "OrderTransaction": "transactions"}


def gather(lines: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Root objects with their children gathered under them. A child's parent is a root object or an object
    inside one (a refund of an order); Shopify writes children after their parent, so a root object is complete
    when the next root object begins."""
    current: dict[str, Any] | None = None
    owners: dict[str, dict[str, Any]] = {}
    for line in lines:
        parent_id = line.pop("__parentId", None)
        if parent_id is None:
            if current is not None:
                yield current
            current, owners = line, {}
            _index(line, owners)
            continue
        owner = owners.get(parent_id)
        if owner is None:
            raise PermanentError(f"shopify bulk result: a {line.get('__typename') or 'line'} names a parent "
                                 f"({parent_id}) that did not come before it")
        kind = line.get("__typename")
        if kind not in CHILD_FIELDS:
            raise PermanentError(f"shopify bulk result: a nested line of unknown type {kind!r}")
        owner.setdefault(CHILD_FIELDS[kind], []).append(line)
        _index(line, owners)
    if current is not None:
        yield current


def _index(value: Any, owners: dict[str, dict[str, Any]]) -> None:
    """Every object with an id inside ``value`` (itself included), as a possible parent of later lines."""
    if isinstance(value, dict):
        if isinstance(value.get("id"), str):
            owners[value["id"]] = value
        for inner in value.values():
            if isinstance(inner, (dict, list)):
                _index(inner, owners)
    elif isinstance(value, list):
        for inner in value:
            _index(inner, owners)
