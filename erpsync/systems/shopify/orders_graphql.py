"""Reconciliation's reader of a Shopify shop's orders through the GraphQL Admin API (a ``ShopOrderReader``).

The REST Admin API is legacy since October 2024 (https://shopify.dev/docs/apps/build/graphql/migrate); this reads the
same orders through ``orders(first:, after:, query:, sortKey:)`` (https://shopify.dev/docs/api/admin-graphql/2026-10/queries/orders,
search syntax https://shopify.dev/docs/api/usage/search-syntax) and hands each one on in the webhooks' JSON shape
(order_json.py), so the order mapping compares and repairs it exactly as it syncs a webhook.

Two ways to read a window, chosen by ``ordersCount`` (https://shopify.dev/docs/api/admin-graphql/2026-10/queries/ordersCount):
- up to ``bulk_threshold`` orders, page by page: each page is one query whose requested cost stays under the
  1,000 points a single query may ask for, paced by the client's cost budget; an order with more lines than a page
  holds has the rest read by ``node(id:)`` pages of its lines;
- more than that, one bulk operation (bulk.py): no cost budget, no page size, the whole window in one JSONL file.
  A nightly window of a busy shop is thousands of orders; at the ~48 points an order with its lines actually cost
  in the shop sandbox (bench/shop_order_reads.py, docs/operations.md), a standard plan's 100 points a second reads
  about two orders a second page by page once the bucket is spent. A bulk operation costs a few points, but a shop
  runs one bulk query at a time (another app's blocks ours) and Shopify queues it for seconds to minutes, so small
  windows stay on pages. ``DEFAULT_BULK_THRESHOLD`` (250, about two minutes of pages) is where pages stop being
  quick; ``ERPSYNC_SHOPIFY_BULK_THRESHOLD`` sets it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from erpsync.errors import ConfigError, PermanentError
from erpsync.systems.shopify.bulk import BulkQuery
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.order_json import ORDER_GID, rest_order

BULK_THRESHOLD_ENV = "ERPSYNC_SHOPIFY_BULK_THRESHOLD"
DEFAULT_BULK_THRESHOLD = 250
# Orders per page and lines per order in one paged query: 4 orders × (their fields, 5 lines, 3 shipping lines,
# refunds with 10 refunded lines and 5 transactions each) asks for 892 points, under the 1,000 a single query may
# (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits; the sandbox's cost check holds us to it).
# Lines past the first 5 are read 40 at a time (883 points); an order with more shipping lines, refunded lines or
# refund transactions than a page holds is refused naming the order, never read short.
ORDER_PAGE = 4
LINE_PAGE = 5
SHIPPING_PAGE = 3
REFUND_LINES_PAGE = 10
REFUND_TRANSACTIONS_PAGE = 5
MORE_LINES_PAGE = 40
BY_ID_BATCH = 4

_MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
_ADDRESS = ("name firstName lastName company address1 address2 city province provinceCode zip country "
            "countryCodeV2 phone")
LINE_FIELDS = f"""id sku title name quantity currentQuantity isGiftCard requiresShipping
  originalUnitPriceSet {{ {_MONEY} }}
  variant {{ id }} product {{ id }}
  discountAllocations {{ allocatedAmountSet {{ {_MONEY} }} }}
  taxLines {{ title rate priceSet {{ {_MONEY} }} }}
  duties {{ price {{ {_MONEY} }} taxLines {{ title rate priceSet {{ {_MONEY} }} }} }}"""
SHIPPING_FIELDS = f"""code title isRemoved originalPriceSet {{ {_MONEY} }} discountedPriceSet {{ {_MONEY} }}
  taxLines {{ title rate priceSet {{ {_MONEY} }} }} discountAllocations {{ allocatedAmountSet {{ {_MONEY} }} }}"""
ORDER_FIELDS = f"""id name email test createdAt updatedAt processedAt cancelledAt cancelReason closedAt
  currencyCode presentmentCurrencyCode taxesIncluded displayFinancialStatus displayFulfillmentStatus
  totalPriceSet {{ {_MONEY} }} currentTotalPriceSet {{ {_MONEY} }} totalDiscountsSet {{ {_MONEY} }}
  totalTipReceivedSet {{ {_MONEY} }}
  customer {{ id email firstName lastName phone defaultAddress {{ {_ADDRESS} }} }}
  billingAddress {{ {_ADDRESS} }} shippingAddress {{ {_ADDRESS} }}"""


def _paged_order(lines: int) -> str:
    return f"""{ORDER_FIELDS}
  lineItems(first: {lines}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }}
  shippingLines(first: {SHIPPING_PAGE}) {{ pageInfo {{ hasNextPage }} nodes {{ {SHIPPING_FIELDS} }} }}
  refunds {{ id refundLineItems(first: {REFUND_LINES_PAGE}) {{ pageInfo {{ hasNextPage }} nodes {{ quantity lineItem {{ id }} }} }}
    transactions(first: {REFUND_TRANSACTIONS_PAGE}) {{ pageInfo {{ hasNextPage }}
      nodes {{ kind status amountSet {{ {_MONEY} }} }} }} }}"""


ORDERS_PAGE = f"""query ReconcileOrders($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {_paged_order(LINE_PAGE)} }}
  }}
}}"""
ORDERS_BY_ID = f"""query ReconcileOrdersById($ids: [ID!]!) {{
  nodes(ids: $ids) {{ ... on Order {{ {_paged_order(LINE_PAGE)} }} }}
}}"""
MORE_LINES = f"""query ReconcileOrderLines($id: ID!, $after: String) {{
  node(id: $id) {{ ... on Order {{
    lineItems(first: {MORE_LINES_PAGE}, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }}
  }} }}
}}"""
COUNT = """query ReconcileCount($query: String!, $limit: Int) {
  ordersCount(query: $query, limit: $limit) { count precision }
}"""
SHOP = "query ShopZone { shop { ianaTimezone } }"
# The way back's drift (erpsync/reconcile/way_back.py): what the shop shows of fulfillments and stock.
FULFILLMENT_STATES = """query ReconcileFulfillments($ids: [ID!]!) {
  nodes(ids: $ids) { ... on Order { id displayFulfillmentStatus fulfillments(first: 50) { id status } } }
}"""
STOCK_BY_SKU = """query ReconcileStock($query: String!) {
  productVariants(first: 2, query: $query) { nodes { sku inventoryItem { inventoryLevels(first: 20) {
    nodes { location { id } quantities(names: ["available"]) { name quantity } } } } } }
}"""
STATES_BATCH = 50
# The bulk query: every nested node asks for __typename, so its JSONL line can be gathered under its parent.
BULK_ORDERS = f"""{{
  orders(query: "%s", sortKey: ID) {{ edges {{ node {{ {ORDER_FIELDS}
    lineItems {{ edges {{ node {{ __typename {LINE_FIELDS} }} }} }}
    shippingLines {{ edges {{ node {{ __typename {SHIPPING_FIELDS} }} }} }}
    refunds {{ id refundLineItems {{ edges {{ node {{ __typename quantity lineItem {{ id }} }} }} }}
      transactions {{ edges {{ node {{ __typename kind status amountSet {{ {_MONEY} }} }} }} }} }}
  }} }} }}
}}"""


def window_search(updated_at_min: datetime, updated_at_max: datetime) -> str:
    """``updated_at:>='…' updated_at:<'…'``: the window's orders, by the search syntax, to the second in UTC (the
    lower bound rounded down, the upper one up, so the window only ever widens)."""
    return f"updated_at:>='{_z(updated_at_min)}' updated_at:<'{_z(updated_at_max, up=True)}'"


def _z(moment: datetime, *, up: bool = False) -> str:
    if moment.tzinfo is None:
        raise ConfigError("updated_at bounds: need a time zone")
    moment = moment.astimezone(UTC)
    if up and moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def bulk_threshold_from_env(environ: Mapping[str, str]) -> int:
    raw = environ.get(BULK_THRESHOLD_ENV, "").strip()
    if not raw:
        return DEFAULT_BULK_THRESHOLD
    if not raw.isdigit():
        raise ConfigError(f"{BULK_THRESHOLD_ENV}: a whole number of orders, 0 or more (0: always a bulk operation)")
    return int(raw)


class ShopifyOrderReader:
    """Orders of a window (page by page, or one bulk operation past ``bulk_threshold``) and orders by id.

    ``last_path`` says how the last window was read ("pages" or "bulk") and ``window_count`` what
    ``ordersCount`` answered: counts for the run's log, no order data.
    """

    def __init__(self, graphql: ShopifyGraphQL, *, bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
                 page_size: int = ORDER_PAGE, bulk: BulkQuery | None = None) -> None:
        if bulk_threshold < 0:
            raise ConfigError("bulk_threshold: 0 or more orders")
        if not 1 <= page_size <= ORDER_PAGE:
            raise ConfigError(f"page_size: between 1 and {ORDER_PAGE} (a page must cost under 1,000 points)")
        self.graphql = graphql
        self.bulk_threshold = bulk_threshold
        self.page_size = page_size
        self.bulk = bulk or BulkQuery(graphql)
        self.last_path: str | None = None
        self.window_count: int | None = None
        self._zone: ZoneInfo | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **options: Any) -> ShopifyOrderReader:
        """From ``ERPSYNC_SHOPIFY_SHOP_URL``, ``_ACCESS_TOKEN`` and ``_BULK_THRESHOLD``; ConfigError names one wrong."""
        options.setdefault("bulk_threshold", bulk_threshold_from_env(environ))
        return cls(ShopifyGraphQL.from_env(environ), **options)

    def __enter__(self) -> ShopifyOrderReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.graphql.close()

    @property
    def calls(self) -> int:
        return self.graphql.calls

    # -- the port --

    def order_pages(self, *, updated_at_min: datetime, updated_at_max: datetime) -> Iterator[list[dict[str, Any]]]:
        """Every order updated in ``[updated_at_min, updated_at_max)``, in pages of webhook-shaped orders."""
        search = window_search(updated_at_min, updated_at_max)
        counted = self.graphql.query(COUNT, {"query": search, "limit": self.bulk_threshold + 1}).get("ordersCount")
        self.window_count = int((counted or {}).get("count") or 0)
        if self.window_count > self.bulk_threshold:
            self.last_path = "bulk"
            yield from self._bulk_pages(search)
        else:
            self.last_path = "pages"
            yield from self._pages(search)

    def orders_by_ids(self, order_ids: Iterable[str | int]) -> Iterator[list[dict[str, Any]]]:
        """The orders with these ids (any status, any age), in pages; ids that name no order are simply absent."""
        batch: list[str] = []
        for order_id in order_ids:
            if not str(order_id).isdigit():
                continue  # Shopify order ids are integers; anything else cannot be one of its orders
            batch.append(f"{ORDER_GID}{order_id}")
            if len(batch) == BY_ID_BATCH:
                yield from self._by_ids(batch)
                batch = []
        if batch:
            yield from self._by_ids(batch)

    # -- the way back's drift (ports.ShopStateReader) --

    def fulfillment_states(self, order_ids: Iterable[str | int]) -> dict[str, dict[str, Any]]:
        """Per order id the shop holds: ``{"fulfilled": displayFulfillmentStatus is FULFILLED, "live": the gids of
        its fulfillments not CANCELLED}``."""
        ids = [f"{ORDER_GID}{order_id}" for order_id in order_ids if str(order_id).isdigit()]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), STATES_BATCH):
            for node in self.graphql.query(FULFILLMENT_STATES, {"ids": ids[start:start + STATES_BATCH]}).get(
                    "nodes") or []:
                if isinstance(node, dict) and node.get("id"):
                    found[str(node["id"]).rsplit("/", 1)[-1]] = {
                        "fulfilled": node.get("displayFulfillmentStatus") == "FULFILLED",
                        # Compared in lower case, as the writer does: Shopify's FulfillmentStatus, not a run state.
                        "live": {f["id"] for f in node.get("fulfillments") or []
                                 if str(f.get("status")).lower() != "cancelled"}}
        return found

    def available_levels(self, skus: Iterable[str]) -> dict[tuple[str, str], int]:
        """``(sku, location gid) → available`` for the variants with these SKUs; a SKU no variant or two variants
        carry is left out (the repair's write then names it)."""
        held: dict[tuple[str, str], int] = {}
        for sku in skus:
            quoted = '"' + str(sku).replace("\\", "\\\\").replace('"', '\\"') + '"'
            nodes = (self.graphql.query(STOCK_BY_SKU, {"query": f"sku:{quoted}"}).get("productVariants") or {}).get(
                "nodes") or []
            exact = [n for n in nodes if n.get("sku") == sku]
            if len(exact) != 1:
                continue
            for level in (((exact[0].get("inventoryItem") or {}).get("inventoryLevels") or {}).get("nodes") or []):
                for quantity in level.get("quantities") or []:
                    if quantity.get("name") == "available":
                        held[(sku, level["location"]["id"])] = int(quantity["quantity"])
        return held

    # -- reading --

    def _pages(self, search: str) -> Iterator[list[dict[str, Any]]]:
        after: str | None = None
        while True:
            data = self.graphql.query(ORDERS_PAGE, {"first": self.page_size, "after": after, "query": search})
            connection = data.get("orders") or {}
            nodes = [node for node in connection.get("nodes") or [] if isinstance(node, dict)]
            if nodes:
                yield [self._complete(node) for node in nodes]
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                return
            after = page.get("endCursor")
            if not after:
                raise PermanentError("shopify graphql: orders answered hasNextPage without an endCursor")

    def _by_ids(self, ids: list[str]) -> Iterator[list[dict[str, Any]]]:
        nodes = self.graphql.query(ORDERS_BY_ID, {"ids": ids}).get("nodes") or []
        found = [self._complete(node) for node in nodes if isinstance(node, dict) and node.get("id")]
        if found:
            yield found

    def _complete(self, node: dict[str, Any]) -> dict[str, Any]:
        """The order with all its lines (the ones past the first page read by ``node(id:)``), webhook-shaped."""
        lines = node.get("lineItems") or {}
        gathered = list(lines.get("nodes") or [])
        page = lines.get("pageInfo") or {}
        while page.get("hasNextPage"):
            more = (self.graphql.query(MORE_LINES, {"id": node["id"], "after": page.get("endCursor")})
                    .get("node") or {}).get("lineItems") or {}
            gathered.extend(more.get("nodes") or [])
            page = more.get("pageInfo") or {}
        for where, connection in [("shipping lines", node.get("shippingLines")),
                                  *[(part, refund.get(key)) for refund in node.get("refunds") or []
                                    for part, key in (("refunded lines", "refundLineItems"),
                                                      ("refund transactions", "transactions"))]]:
            if ((connection or {}).get("pageInfo") or {}).get("hasNextPage"):
                raise PermanentError(f"shopify order {node.get('id')}: more {where} than one page reads; reconcile "
                                     f"this window through a bulk operation ({BULK_THRESHOLD_ENV}=0)")
        return rest_order({**node, "lineItems": gathered}, self._shop_zone())

    def _bulk_pages(self, search: str, size: int = 250) -> Iterator[list[dict[str, Any]]]:
        query = BULK_ORDERS % search.replace("\\", "\\\\").replace('"', '\\"')
        page: list[dict[str, Any]] = []
        zone = self._shop_zone()
        for node in self.bulk.run(query):
            page.append(rest_order(node, zone))
            if len(page) == size:
                yield page
                page = []
        if page:
            yield page

    def _shop_zone(self) -> ZoneInfo:
        # The webhooks write times in the shop's zone; so do we (the order's date is the shop's calendar date).
        if self._zone is None:
            name = ((self.graphql.query(SHOP).get("shop") or {}).get("ianaTimezone")) or "UTC"
            try:
                self._zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise PermanentError(f"shopify graphql: the shop's time zone {name!r} is not an IANA zone") from None
        return self._zone
