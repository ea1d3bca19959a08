"""The shop sandbox's GraphQL Admin API: ``POST /admin/api/<version>/graphql.json`` over the store's orders and
its catalogue, stock and fulfillments, throttled by calculated query cost; and the ``/_sandbox/...`` endpoints
that show what was written and set the cost bucket for a test.

Request and answer shapes follow https://shopify.dev/docs/api/admin-graphql/2026-10 and
https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: every answer carries ``extensions.cost``
(requested and actual cost, ``throttleStatus``); a call the bucket cannot pay for is answered
``{"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}`` without running; mutations
report refusals in ``userErrors`` (field path, message and, where the payload has one, a code).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    execute_sync,
    parse,
    validate,
)
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from erpsync_dev.sandboxes.shopify import graphql_orders
from erpsync_dev.sandboxes.shopify.graphql_bulk import BulkOperations
from erpsync_dev.sandboxes.shopify.graphql_idempotency import idempotency_key
from erpsync_dev.sandboxes.shopify.graphql_schema import (
    MAX_INPUT_ARRAY,
    MAX_QUERY_COST,
    actual_cost,
    build_admin_schema,
    page_size_errors,
    requested_cost,
    shopify_error,
    translate_validation_error,
    undefined_fields,
)
from erpsync_dev.sandboxes.shopify.graphql_store import (
    INVENTORY_NAMES,
    INVENTORY_REASONS,
    LOCATIONS,
    PLANS,
    FulfillmentOrder,
    FulfillmentOrderLine,
    ShopState,
    now_utc,
    utc,
)

THROTTLED_DOCS = "https://shopify.dev/api/usage/rate-limits"
MAX_INVENTORY_QUANTITY = 1_000_000_000
_SEARCH_FIELDS = {"updated_at", "created_at", "processed_at", "status", "name", "id"}
_SORT_FIELDS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "PROCESSED_AT": "processed_at", "ID": None}


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value: Any, kind: str) -> int:
    """The number in ``gid://shopify/<kind>/<n>``; a GraphQLError as Shopify words it for anything else."""
    prefix = f"gid://shopify/{kind}/"
    if isinstance(value, str) and value.startswith(prefix) and value[len(prefix):].isdigit():
        return int(value[len(prefix):])
    raise GraphQLError(f"Invalid global id '{value}'", extensions={"code": "argumentLiteralsIncompatible"})


def _maybe_gid(value: Any, kind: str) -> int | None:
    try:
        return parse_gid(value, kind)
    except GraphQLError:
        return None


# -- connections --

def _encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"last": key}, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))["last"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise GraphQLError("Invalid cursor for current pagination sort.",
                           extensions={"code": "BAD_REQUEST"}) from None
    if not isinstance(key, list):
        raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"})
    return key


def connection(items: list[tuple[list[Any], Any]], args: dict[str, Any], *, reverse: bool = False) -> dict[str, Any]:
    """A Relay connection over (sort key, node) pairs already in order (descending when ``reverse``):
    ``first``/``after``, ``last``/``before``. A cursor holds its node's sort key, so a page boundary holds even
    when the node it named has since changed or gone."""
    keys = [key for key, _ in items]
    start, stop = 0, len(items)
    if args.get("after"):
        after = _decode_cursor(args["after"])
        start = sum(1 for key in keys if (key >= after if reverse else key <= after))
    if args.get("before"):
        before = _decode_cursor(args["before"])
        stop = sum(1 for key in keys if (key > before if reverse else key < before))
    window = items[start:stop]
    if args.get("first") is not None:
        window = window[: args["first"]]
    if args.get("last") is not None:
        window = window[max(len(window) - args["last"], 0):]
    first_at = start + (items[start:stop].index(window[0]) if window else 0)
    last_at = first_at + len(window)
    edges = [{"cursor": _encode_cursor(key), "node": node} for key, node in window]
    return {
        "edges": edges,
        "nodes": [node for _, node in window],
        "pageInfo": {
            "hasNextPage": last_at < len(items) and bool(window),
            "hasPreviousPage": first_at > 0 and bool(window),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# -- the orders search syntax --

def parse_search(query: str) -> tuple[list[tuple[str, str, str]], list[dict[str, str]]]:
    """``updated_at:>'2026-01-01T00:00:00Z' AND status:open`` → terms (field, comparator, value) and warnings.

    https://shopify.dev/docs/api/usage/search-syntax: terms joined by whitespace or AND, ``field:value`` with an
    optional comparator (``:<``, ``:<=``, ``:>``, ``:>=``); a field the query does not know is ignored and
    reported in ``extensions.search`` rather than refused.
    """
    terms, warnings = [], []
    tokens, buffer, quote = [], "", ""
    for char in query:
        if quote:
            if char == quote:
                quote = ""
            else:
                buffer += char
        elif char in "'\"":
            quote = char
        elif char.isspace():
            if buffer:
                tokens.append(buffer)
            buffer = ""
        else:
            buffer += char
    if buffer:
        tokens.append(buffer)
    for token in tokens:
        if token.upper() == "AND":
            continue
        name, sep, rest = token.partition(":")
        if not sep:
            warnings.append({"field": "default", "message": "Free text search is not supported for this query.",
                             "code": "invalid_field"})
            continue
        comparator = next((c for c in ("<=", ">=", "<", ">") if rest.startswith(c)), "=")
        value = rest[len(comparator):] if comparator != "=" else rest
        if name not in _SEARCH_FIELDS:
            warnings.append({"field": name, "message": "Invalid search field for this query.",
                             "code": "invalid_field"})
            continue
        terms.append((name, comparator, value))
    return terms, warnings


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.now().astimezone().tzinfo)


def _compare(left: Any, comparator: str, right: Any) -> bool:
    return {"=": left == right, "<": left < right, "<=": left <= right, ">": left > right,
            ">=": left >= right}[comparator]


def order_matches(order: dict[str, Any], terms: list[tuple[str, str, str]]) -> bool:
    for name, comparator, value in terms:
        if name in ("updated_at", "created_at", "processed_at"):
            try:
                wanted = _moment(value)
            except ValueError:
                raise GraphQLError(f"Invalid value for {name}: not a date or time",
                                   extensions={"code": "BAD_REQUEST"}) from None
            have = _moment(order.get(name) or order["created_at"])
            if not _compare(have, comparator, wanted):
                return False
        elif name == "status":
            status = "cancelled" if order.get("cancelled_at") else "closed" if order.get("closed_at") else "open"
            if value not in ("any", status):
                return False
        elif name == "name":
            if order.get("name", "").lstrip("#") != value.lstrip("#"):
                return False
        elif name == "id":
            if not value.isdigit() or not _compare(int(order["id"]), comparator, int(value)):
                return False
    return True


class AdminGraphQL:
    """Runs one GraphQL Admin API request against the store: checks, cost, bucket, execution."""

    def __init__(self, orders: Callable[[], list[dict[str, Any]]], state: ShopState):
        self.schema = build_admin_schema()
        self.orders = orders
        self.state = state
        self.base_url = ""  # the server's own URL, for a bulk operation's result file
        self.bulk = BulkOperations(self.schema, lambda: self.root([]))

    def _order(self, order_id: int) -> dict[str, Any] | None:
        return next((o for o in self.orders() if int(o["id"]) == order_id), None)

    # -- nodes --

    def order_node(self, order: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        lines = order.get("line_items") or []
        return {
            "__typename": "Order",
            "id": gid("Order", order["id"]),
            "legacyResourceId": str(order["id"]),
            "name": order.get("name") or "",
            **graphql_orders.order_money(order),
            "shippingLines": lambda info, **args: connection(
                [([n], graphql_orders.shipping_line(order, line))
                 for n, line in enumerate(order.get("shipping_lines") or [])], args),
            "refunds": lambda info, first=None: [self.refund_node(order, r, n)
                                                 for n, r in enumerate(order.get("refunds") or [])][:first],
            "createdAt": utc(order["created_at"]),
            "updatedAt": utc(order["updated_at"]),
            "processedAt": utc(order.get("processed_at") or order["created_at"]),
            "cancelledAt": utc(order.get("cancelled_at")),
            "closedAt": utc(order.get("closed_at")),
            "displayFulfillmentStatus": lambda info: state.display_fulfillment_status(order),
            "lineItems": lambda info, **args: connection(
                [([line["id"]], self.line_item_node(order, line)) for line in lines], args),
            "fulfillmentOrders": lambda info, **args: connection(
                [([fo.fo_id], self.fulfillment_order_node(fo, order)) for fo in state.fulfillment_orders_of(order)],
                args),
            "fulfillments": lambda info, first=None: [
                self.fulfillment_node(f, order) for f in state.fulfillments_of(int(order["id"]))][:first],
        }

    def line_item_node(self, order: dict[str, Any], line: dict[str, Any] | int) -> dict[str, Any]:
        if isinstance(line, int):
            line = next(li for li in order.get("line_items") or [] if int(li["id"]) == line)
        line_item_id = int(line["id"])
        return {"id": gid("LineItem", line_item_id), "sku": line.get("sku"), "name": line.get("name") or "",
                **graphql_orders.line_money(order, line),
                "product": lambda info: self.product_node(line["product_id"]) if line.get("product_id") else None,
                "quantity": line["quantity"], "currentQuantity": line.get("current_quantity", line["quantity"]),
                "unfulfilledQuantity": lambda info: sum(
                    li.remaining for fo in self.state.fulfillment_orders_of(order) for li in fo.lines
                    if li.line_item_id == line_item_id),
                "variant": lambda info: self.variant_node(line.get("variant_id"))}

    def refund_node(self, order: dict[str, Any], refund: dict[str, Any], n: int) -> dict[str, Any]:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/objects/Refund: the lines it took back and its
        transactions (the money it returned)."""
        return {
            "id": gid("Refund", refund.get("id") or n + 1), "createdAt": utc(refund.get("created_at")),
            "refundLineItems": lambda info, **args: connection(
                [([k], {"quantity": item.get("quantity", 0),
                        "lineItem": self.line_item_node(order, int(item["line_item_id"]))})
                 for k, item in enumerate(refund.get("refund_line_items") or [])], args),
            "transactions": lambda info, **args: connection(
                [([k], graphql_orders.transaction(order, tx, k))
                 for k, tx in enumerate(refund.get("transactions") or [])], args),
        }

    def node(self, value: Any) -> dict[str, Any] | None:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/queries/node: an order or a bulk operation by its id."""
        if not isinstance(value, str):
            return None
        if value.startswith("gid://shopify/Order/"):
            number = _maybe_gid(value, "Order")
            found = self._order(number) if number is not None else None
            return self.order_node(found) if found else None
        if value.startswith("gid://shopify/BulkOperation/"):
            number = _maybe_gid(value, "BulkOperation")
            operation = self.bulk.get(number) if number is not None else None
            return operation.node() if operation else None
        return None

    def location_node(self, location_id: int) -> dict[str, Any] | None:
        if location_id not in LOCATIONS:
            return None
        return {"id": gid("Location", location_id), "legacyResourceId": str(location_id),
                "name": LOCATIONS[location_id]}

    def fulfillment_order_node(self, fo: FulfillmentOrder, order: dict[str, Any]) -> dict[str, Any]:
        def line_node(line: FulfillmentOrderLine) -> dict[str, Any]:
            return {"id": gid("FulfillmentOrderLineItem", line.line_id), "sku": line.sku,
                    "totalQuantity": line.total, "remainingQuantity": line.remaining,
                    "lineItem": lambda info: self.line_item_node(order, line.line_item_id),
                    "variant": lambda info: self.variant_node(line.variant_id)}

        return {
            "id": gid("FulfillmentOrder", fo.fo_id), "status": fo.status, "createdAt": fo.created_at,
            "updatedAt": fo.updated_at, "orderId": gid("Order", fo.order_id),
            "order": lambda info: self.order_node(order),
            "assignedLocation": {"name": LOCATIONS[fo.location_id], "location": self.location_node(fo.location_id)},
            "lineItems": lambda info, **args: connection([([line.line_id], line_node(line)) for line in fo.lines],
                                                         args),
        }

    def fulfillment_node(self, fulfillment: Any, order: dict[str, Any]) -> dict[str, Any]:
        def line_node(line: dict[str, int]) -> dict[str, Any]:
            return {"id": gid("FulfillmentLineItem", line["id"]), "quantity": line["quantity"],
                    "lineItem": lambda info: self.line_item_node(order, line["line_item_id"])}

        return {
            "id": gid("Fulfillment", fulfillment.fulfillment_id), "name": fulfillment.name,
            "status": fulfillment.status, "createdAt": fulfillment.created_at,
            "order": lambda info: self.order_node(order),
            "trackingInfo": lambda info, first=None: fulfillment.tracking[:first],
            "fulfillmentLineItems": lambda info, **args: connection(
                [([line["id"]], line_node(line)) for line in fulfillment.lines], args),
        }

    def variant_node(self, variant_id: int | None) -> dict[str, Any] | None:
        variant = self.state.variants.get(variant_id) if variant_id else None
        if variant is None:
            return None
        product = self.state.products[variant.product_id]
        return {
            "id": gid("ProductVariant", variant.variant_id), "legacyResourceId": str(variant.variant_id),
            "sku": variant.sku, "title": variant.title.split(" - ")[-1], "displayName": variant.title,
            "price": variant.price, "compareAtPrice": variant.compare_at_price,
            "product": lambda info: self.product_node(product.product_id),
            "inventoryItem": lambda info: self.inventory_item_node(variant.inventory_item_id),
        }

    def product_node(self, product_id: int) -> dict[str, Any] | None:
        product = self.state.products.get(product_id)
        if product is None:
            return None
        return {"id": gid("Product", product_id), "legacyResourceId": str(product_id), "title": product.title,
                "variants": lambda info, **args: connection(
                    [([v], self.variant_node(v)) for v in product.variant_ids], args)}

    def inventory_level_node(self, item_id: int, location_id: int) -> dict[str, Any] | None:
        level = self.state.levels.get((item_id, location_id))
        if level is None:
            return None
        return {
            "id": f"gid://shopify/InventoryLevel/{item_id}?inventory_item_id={item_id}&location_id={location_id}",
            "location": self.location_node(location_id),
            "item": lambda info: self.inventory_item_node(item_id),
            "quantities": lambda info, names: [
                {"name": name, "quantity": level.get(name, 0), "updatedAt": level["updated_at"]}
                for name in names if name in INVENTORY_NAMES],
        }

    def inventory_item_node(self, item_id: int) -> dict[str, Any] | None:
        variant_id = self.state.items.get(item_id)
        if variant_id is None:
            return None
        return {
            "id": gid("InventoryItem", item_id), "sku": self.state.variants[variant_id].sku, "tracked": True,
            "variant": lambda info: self.variant_node(variant_id),
            "inventoryLevel": lambda info, locationId: self.inventory_level_node(
                item_id, parse_gid(locationId, "Location")),
            "inventoryLevels": lambda info, **args: connection(
                [([location], self.inventory_level_node(item_id, location)) for location in LOCATIONS
                 if (item_id, location) in self.state.levels], args),
        }

    # -- root fields --

    def root(self, search_reports: list[dict[str, Any]]) -> dict[str, Any]:
        def orders(info: Any, **args: Any) -> dict[str, Any]:
            terms, warnings = parse_search(args.get("query") or "")
            if warnings:
                search_reports.append({"path": [info.path.key], "query": args.get("query"), "warnings": warnings})
            matching = [o for o in self.orders() if order_matches(o, terms)]
            column = _SORT_FIELDS[args.get("sortKey") or "PROCESSED_AT"]

            def key(order: dict[str, Any]) -> list[Any]:
                value = utc(order.get(column) or order["created_at"]) if column else ""
                return [value, int(order["id"])]

            reverse = bool(args.get("reverse"))
            ordered = sorted(matching, key=key, reverse=reverse)
            return connection([(key(o), self.order_node(o)) for o in ordered], args, reverse=reverse)

        def order(info: Any, id: str) -> dict[str, Any] | None:
            found = self._order(parse_gid(id, "Order"))
            return self.order_node(found) if found else None

        def fulfillment_order(info: Any, id: str) -> dict[str, Any] | None:
            fo = self.state.fulfillment_orders.get(parse_gid(id, "FulfillmentOrder"))
            found = self._order(fo.order_id) if fo else None
            return self.fulfillment_order_node(fo, found) if fo and found else None

        def orders_count(info: Any, query: str | None = None, limit: int | None = 10000) -> dict[str, Any]:
            """https://shopify.dev/docs/api/admin-graphql/2026-10/queries/ordersCount: at most ``limit``, and
            ``AT_LEAST`` when the limit was reached."""
            terms, warnings = parse_search(query or "")
            if warnings:
                search_reports.append({"path": [info.path.key], "query": query, "warnings": warnings})
            count = sum(1 for o in self.orders() if order_matches(o, terms))
            if limit is not None and count >= limit:
                return {"count": limit, "precision": "AT_LEAST"}
            return {"count": count, "precision": "EXACT"}

        def current_bulk(info: Any, type: str = "QUERY") -> dict[str, Any] | None:
            operation = self.bulk.current() if type == "QUERY" else None
            return operation.node() if operation else None

        return {
            "orders": orders,
            "ordersCount": orders_count,
            "shop": {"id": "gid://shopify/Shop/1", "name": graphql_orders.SHOP_NAME,
                     "ianaTimezone": graphql_orders.SHOP_TIMEZONE, "currencyCode": "USD"},
            # https://shopify.dev/docs/api/admin-graphql/2026-10/queries/nodes: a null for an id that names nothing.
            "node": lambda info, id: self.node(id),
            "nodes": lambda info, ids: [self.node(i) for i in ids],
            "currentBulkOperation": current_bulk,
            "bulkOperationRunQuery": lambda info, query: self.bulk.run_query(query, self.base_url),
            "order": order,
            "fulfillmentOrder": fulfillment_order,
            # https://shopify.dev/docs/api/admin-graphql/2026-10/queries/fulfillment
            "fulfillment": lambda info, id: self._fulfillment_by_gid(id),
            "productVariant": lambda info, id: self.variant_node(parse_gid(id, "ProductVariant")),
            "productVariants": self.product_variants,
            "product": lambda info, id: self.product_node(parse_gid(id, "Product")),
            "inventoryItem": lambda info, id: self.inventory_item_node(parse_gid(id, "InventoryItem")),
            "location": lambda info, id: self.location_node(parse_gid(id, "Location")),
            "locations": lambda info, **args: connection(
                [([n], self.location_node(n)) for n in LOCATIONS], args),
            "fulfillmentCreate": self.fulfillment_create,
            "fulfillmentTrackingInfoUpdate": self.fulfillment_tracking_info_update,
            "fulfillmentCancel": self.fulfillment_cancel,
            "inventorySetQuantities": self.inventory_set_quantities,
            "productVariantsBulkUpdate": self.product_variants_bulk_update,
        }

    def product_variants(self, info: Any, query: str | None = None, **args: Any) -> dict[str, Any]:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/queries/productVariants: the variants, with the
        search syntax's ``sku:`` term (exact, quotes optional); other terms are ignored here."""
        wanted = None
        for token in (query or "").split():
            name, sep, value = token.partition(":")
            if sep and name == "sku":
                wanted = value.strip("'\"")
        variants = [v for v in self.state.variants.values() if wanted is None or v.sku == wanted]
        return connection([([v.variant_id], self.variant_node(v.variant_id)) for v in variants], args)

    # -- mutations --

    def fulfillment_tracking_info_update(self, info: Any, fulfillmentId: str, trackingInfoInput: dict[str, Any],
                                         notifyCustomer: bool | None = None) -> dict[str, Any]:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/mutations/fulfillmentTrackingInfoUpdate: the
        fulfillment's tracking replaced by the input (company, numbers, URLs)."""
        number = _maybe_gid(fulfillmentId, "Fulfillment")
        fulfillment = self.state.fulfillments.get(number) if number else None
        if fulfillment is None:
            return {"fulfillment": None, "userErrors": [{"field": ["fulfillmentId"],
                                                         "message": "Fulfillment does not exist."}]}
        if fulfillment.status == "CANCELLED":
            return {"fulfillment": None, "userErrors": [{"field": ["fulfillmentId"],
                                                         "message": "Cannot update a cancelled fulfillment."}]}
        tracking, errors = tracking_entries(trackingInfoInput, ["trackingInfoInput"])
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        fulfillment.tracking = tracking
        if notifyCustomer:
            fulfillment.notify_customer = True
        order = self._order(fulfillment.order_id)
        return {"fulfillment": self.fulfillment_node(fulfillment, order) if order else None, "userErrors": []}


    def _fulfillment_by_gid(self, value: str) -> dict[str, Any] | None:
        number = _maybe_gid(value, "Fulfillment")
        fulfillment = self.state.fulfillments.get(number) if number else None
        order = self._order(fulfillment.order_id) if fulfillment else None
        return self.fulfillment_node(fulfillment, order) if fulfillment and order else None

    def fulfillment_cancel(self, info: Any, id: str) -> dict[str, Any]:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/mutations/fulfillmentCancel: the fulfillment's status
        becomes CANCELLED and its effect on the fulfillment orders is reversed, so its items can be fulfilled again.
        Shopify closes a fully fulfilled fulfillment order and opens a new one for the cancelled items; here the
        quantities go back to the lines they were taken from, which leaves the same quantities to fulfil. An
        unknown or already cancelled fulfillment is a userError (the messages are the sandbox's own wording)."""
        number = _maybe_gid(id, "Fulfillment")
        fulfillment = self.state.fulfillments.get(number) if number else None
        if fulfillment is None:
            return {"fulfillment": None, "userErrors": [{"field": ["id"], "message": "Fulfillment does not exist."}]}
        if fulfillment.status == "CANCELLED":
            return {"fulfillment": None, "userErrors": [{"field": ["id"],
                                                         "message": "Fulfillment is already cancelled."}]}
        for line in fulfillment.lines:
            fo = self.state.fulfillment_orders.get(line["fulfillment_order_id"])
            taken = next((li for li in fo.lines if li.line_id == line["fulfillment_order_line_item_id"]), None) \
                if fo else None
            if taken is not None:
                taken.remaining = min(taken.total, taken.remaining + line["quantity"])
        fulfillment.status = "CANCELLED"
        order = self._order(fulfillment.order_id)
        return {"fulfillment": self.fulfillment_node(fulfillment, order) if order else None, "userErrors": []}

    def fulfillment_create(self, info: Any, fulfillment: dict[str, Any], message: str | None = None) -> dict:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/mutations/fulfillmentCreate: fulfill some or all
        lines of one order's fulfillment orders, with tracking; nothing is written when any part is refused."""
        errors: list[dict[str, Any]] = []
        groups = fulfillment.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            errors.append({"field": ["fulfillment", "lineItemsByFulfillmentOrder"],
                           "message": "Line items by fulfillment order must have at least one item."})
        picked: list[tuple[FulfillmentOrder, FulfillmentOrderLine, int]] = []
        order_ids: set[int] = set()
        for g, group in enumerate(groups):
            where = ["fulfillment", "lineItemsByFulfillmentOrder", str(g)]
            fo_id = _maybe_gid(group["fulfillmentOrderId"], "FulfillmentOrder")
            fo = self.state.fulfillment_orders.get(fo_id) if fo_id else None
            if fo is None:
                errors.append({"field": [*where, "fulfillmentOrderId"], "message": "Fulfillment order does not exist."})
                continue
            order_ids.add(fo.order_id)
            if fo.status in ("CLOSED", "CANCELLED"):
                errors.append({"field": [*where, "fulfillmentOrderId"],
                               "message": f"Fulfillment order {fo.fo_id} has an unfulfillable status= "
                                          f"{fo.status.lower()}."})
                continue
            wanted = group.get("fulfillmentOrderLineItems")
            if not wanted:  # none named: every line with something left
                picked.extend((fo, line, line.remaining) for line in fo.lines if line.remaining)
                continue
            seen: dict[int, int] = {}
            for n, item in enumerate(wanted):
                line_id = _maybe_gid(item["id"], "FulfillmentOrderLineItem")
                line = next((li for li in fo.lines if li.line_id == line_id), None)
                spot = [*where, "fulfillmentOrderLineItems", str(n)]
                if line is None:
                    errors.append({"field": [*spot, "id"], "message": "Invalid fulfillment order line item id."})
                elif item["quantity"] <= 0 or item["quantity"] + seen.get(line.line_id, 0) > line.remaining:
                    errors.append({"field": [*spot, "quantity"],
                                   "message": "Invalid fulfillment order line item quantity requested."})
                else:
                    seen[line.line_id] = seen.get(line.line_id, 0) + item["quantity"]
                    picked.append((fo, line, item["quantity"]))
        if len(order_ids) > 1:
            errors.append({"field": ["fulfillment", "lineItemsByFulfillmentOrder"],
                           "message": "All fulfillment orders must belong to the same order."})
        tracking_input = fulfillment.get("trackingInfo") or {}
        numbers = list(tracking_input.get("numbers") or [])
        if tracking_input.get("number") and tracking_input["number"] not in numbers:
            numbers.insert(0, tracking_input["number"])
        urls = list(tracking_input.get("urls") or []) or ([tracking_input["url"]] if tracking_input.get("url") else [])
        if urls and len(urls) not in (1, len(numbers)):
            errors.append({"field": ["fulfillment", "trackingInfo", "urls"],
                           "message": "The number of tracking URLs must match the number of tracking numbers."})
        if errors or not picked:
            if not errors:
                errors.append({"field": ["fulfillment", "lineItemsByFulfillmentOrder"],
                               "message": "Nothing is left to fulfill on these fulfillment orders."})
            return {"fulfillment": None, "userErrors": errors}
        order = self._order(next(iter(order_ids)))
        if order is None:
            return {"fulfillment": None, "userErrors": [{"field": ["fulfillment"], "message": "Order not found."}]}
        company = tracking_input.get("company")
        tracking = [{"company": company, "number": number, "url": urls[i] if len(urls) > 1 else (urls or [None])[0]}
                    for i, number in enumerate(numbers)] or ([{"company": company, "number": None,
                                                               "url": (urls or [None])[0]}] if company else [])
        made = self.state.new_fulfillment(order, notify_customer=bool(fulfillment.get("notifyCustomer")),
                                          tracking=tracking, lines=picked)
        return {"fulfillment": self.fulfillment_node(made, order), "userErrors": []}

    def inventory_set_quantities(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/mutations/inventorySetQuantities: absolute
        quantities with compare-and-swap; a ``changeFromQuantity`` that is not the quantity held refuses the whole
        call (``CHANGE_FROM_QUANTITY_STALE``); null opts a quantity out of the check, leaving it out is an error.
        Only under ``@idempotent(key:)``: a retry with the key is answered as the first call was
        (graphql_idempotency.py)."""
        key = idempotency_key(info)
        for n, quantity in enumerate(input["quantities"]):
            if "changeFromQuantity" not in quantity:
                # As a live store words it for the input types that require the field since 2026-04
                # (https://shopify.dev/changelog/making-changefromquantity-field-required: "calling these mutations
                # without passing in null or passing in the current actual quantity will result in an error").
                raise GraphQLError("InventoryQuantityInput must include the following argument: changeFromQuantity",
                                   extensions={"code": "INVALID_FIELD_ARGUMENTS",
                                               "field": ["input", "quantities", str(n), "changeFromQuantity"]})
        return self.state.idempotency.run(
            "inventorySetQuantities", key, {"input": input}, lambda: self._set_quantities(input),
            lambda message: {"inventoryAdjustmentGroup": None, "userErrors": [
                {"code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "field": None, "message": message}]})

    def _set_quantities(self, input: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        errors: list[dict[str, Any]] = []

        def refuse(code: str, field: list[str], message: str) -> None:
            errors.append({"code": code, "field": field, "message": message})

        name = input["name"]
        if name not in INVENTORY_NAMES:
            refuse("INVALID_NAME", ["input", "name"], "The quantity name must be either 'available' or 'on_hand'.")
        if input["reason"] not in INVENTORY_REASONS:
            refuse("INVALID_REASON", ["input", "reason"], "The specified reason is invalid.")
        seen: set[tuple[int, int]] = set()
        changes: list[tuple[int, int, int]] = []
        for n, quantity in enumerate(input["quantities"]):
            where = ["input", "quantities", str(n)]
            item_id = _maybe_gid(quantity["inventoryItemId"], "InventoryItem")
            location_id = _maybe_gid(quantity["locationId"], "Location")
            if item_id not in state.items:
                refuse("INVALID_INVENTORY_ITEM", [*where, "inventoryItemId"],
                       "The specified inventory item could not be found.")
                continue
            if location_id not in LOCATIONS:
                refuse("INVALID_LOCATION", [*where, "locationId"], "The specified location could not be found.")
                continue
            level = state.levels.get((item_id, location_id))
            if level is None:
                refuse("ITEM_NOT_STOCKED_AT_LOCATION", [*where, "locationId"],
                       "The specified inventory item is not stocked at the location.")
                continue
            if (item_id, location_id) in seen:
                refuse("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", [*where, "inventoryItemId"],
                       "The combination of inventoryItemId and locationId must be unique.")
                continue
            seen.add((item_id, location_id))
            value = quantity["quantity"]
            if value < 0:
                refuse("INVALID_QUANTITY_NEGATIVE", [*where, "quantity"], "The quantity can't be negative.")
            elif value > MAX_INVENTORY_QUANTITY:
                refuse("INVALID_QUANTITY_TOO_HIGH", [*where, "quantity"],
                       "The total quantity can't be higher than 1,000,000,000.")
            change_from = quantity["changeFromQuantity"]
            if change_from is not None and name in INVENTORY_NAMES and change_from != level[name]:
                refuse("CHANGE_FROM_QUANTITY_STALE", [*where, "changeFromQuantity"],
                       "The changeFromQuantity value does not match persisted value.")
            changes.append((item_id, location_id, value))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        at = now_utc()
        made: list[dict[str, Any]] = []
        for item_id, location_id, value in changes:
            level = state.levels[(item_id, location_id)]
            delta = value - level[name]
            # on_hand moves with available (the sandbox commits nothing), so both changes are reported.
            level["available"] += delta
            level["on_hand"] += delta
            level["updated_at"] = at
            for changed in (name, *(n for n in INVENTORY_NAMES if n != name)):
                made.append({"name": changed, "delta": delta, "quantityAfterChange": level[changed],
                             "item": self.inventory_item_node(item_id), "location": self.location_node(location_id),
                             "_ids": (gid("InventoryItem", item_id), gid("Location", location_id))})

        def changes_field(info: Any, inventoryItemIds=None, locationIds=None, quantityNames=None) -> list[dict]:
            return [c for c in made if (inventoryItemIds is None or c["_ids"][0] in inventoryItemIds)
                    and (locationIds is None or c["_ids"][1] in locationIds)
                    and (quantityNames is None or c["name"] in quantityNames)]

        group = {"id": gid("InventoryAdjustmentGroup", next(state.adjustment_groups)), "createdAt": at,
                 "reason": input["reason"], "referenceDocumentUri": input.get("referenceDocumentUri"),
                 "changes": changes_field}
        return {"inventoryAdjustmentGroup": group, "userErrors": []}

    def product_variants_bulk_update(self, info: Any, productId: str, variants: list[dict[str, Any]],
                                     allowPartialUpdates: bool = False) -> dict[str, Any]:
        """https://shopify.dev/docs/api/admin-graphql/2026-10/mutations/productVariantsBulkUpdate: prices of
        several variants of one product; without ``allowPartialUpdates`` one refusal keeps every price as it was."""
        product_id = _maybe_gid(productId, "Product")
        product = self.state.products.get(product_id) if product_id else None
        if product is None:
            return {"product": None, "productVariants": None, "userErrors": [
                {"code": "PRODUCT_DOES_NOT_EXIST", "field": ["productId"], "message": "Product does not exist"}]}
        errors: list[dict[str, Any]] = []
        updates: list[tuple[int, dict[str, Any]]] = []
        for n, variant in enumerate(variants):
            where = ["variants", str(n)]
            if not variant.get("id"):
                errors.append({"code": "PRODUCT_VARIANT_ID_MISSING", "field": [*where, "id"],
                               "message": "Product variant is missing ID attribute"})
                continue
            variant_id = _maybe_gid(variant["id"], "ProductVariant")
            if variant_id not in product.variant_ids:
                errors.append({"code": "PRODUCT_VARIANT_DOES_NOT_EXIST", "field": [*where, "id"],
                               "message": "Product variant does not exist"})
                continue
            bad = [key for key in ("price", "compareAtPrice") if variant.get(key) is not None
                   and Decimal(variant[key]) < 0]
            for key in bad:
                errors.append({"code": "GREATER_THAN_OR_EQUAL_TO", "field": [*where, key],
                               "message": f"{'Price' if key == 'price' else 'Compare at price'} must be greater than "
                                          f"or equal to 0"})
            if not bad:
                updates.append((variant_id, variant))
        if errors and not allowPartialUpdates:
            return {"product": self.product_node(product.product_id), "productVariants": None, "userErrors": errors}
        for variant_id, variant in updates:
            held = self.state.variants[variant_id]
            if variant.get("price") is not None:
                held.price = str(Decimal(variant["price"]).quantize(Decimal("0.01")))
            if "compareAtPrice" in variant:
                value = variant["compareAtPrice"]
                held.compare_at_price = None if value is None else str(Decimal(value).quantize(Decimal("0.01")))
        return {"product": self.product_node(product.product_id),
                "productVariants": [self.variant_node(v) for v, _ in updates], "userErrors": errors}

    # -- one request --

    def run(self, query: str, variables: dict[str, Any] | None, operation_name: str | None) -> dict[str, Any]:
        """The JSON answer to one request (Shopify answers 200 with ``errors`` for every GraphQL-level refusal)."""
        try:
            document: DocumentNode = parse(query)
        except GraphQLSyntaxError as exc:
            return {"errors": [shopify_error(exc.message, locations=[
                {"line": loc.line, "column": loc.column} for loc in (exc.locations or [])])]}
        problems = undefined_fields(self.schema, document)
        if not problems:
            problems = [translate_validation_error(e) for e in validate(self.schema, document)]
        if problems:
            return {"errors": problems}
        operation: OperationDefinitionNode | None = get_operation_ast(document, operation_name)
        if operation is None:
            message = (f"No operation named \"{operation_name}\"" if operation_name
                       else "An operation name is required")
            return {"errors": [shopify_error(message, "OPERATION_NOT_FOUND")]}
        variables = variables or {}
        problems = page_size_errors(self.schema, document, variables) + self._input_sizes(operation, variables)
        if problems:
            return {"errors": problems}
        cost = requested_cost(self.schema, document, operation, variables)
        bucket = self.state.bucket
        if cost > MAX_QUERY_COST:
            return {"errors": [shopify_error(
                f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n"
                "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
                "cost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk "
                "operations should be used instead.", "MAX_COST_EXCEEDED", cost=cost, maxCost=MAX_QUERY_COST)],
                "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": None,
                                        "throttleStatus": bucket.status()}}}
        if not bucket.take(cost):
            return {"errors": [shopify_error("Throttled", "THROTTLED", documentation=THROTTLED_DOCS)],
                    "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": None,
                                            "throttleStatus": bucket.status()}}}
        search_reports: list[dict[str, Any]] = []
        result = execute_sync(self.schema, document, root_value=self.root(search_reports),
                              variable_values=variables, operation_name=operation_name)
        spent = actual_cost(self.schema, document, operation, result.data) if result.data is not None else 0
        bucket.refund(cost - spent)
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [self._execution_error(e) for e in result.errors]
        if result.data is not None:
            answer["data"] = result.data
        extensions: dict[str, Any] = {"cost": {"requestedQueryCost": cost, "actualQueryCost": spent,
                                               "throttleStatus": bucket.status()}}
        if search_reports:
            extensions["search"] = search_reports
        answer["extensions"] = extensions
        return answer

    def _input_sizes(self, operation: OperationDefinitionNode, variables: dict[str, Any]) -> list[dict[str, Any]]:
        # https://shopify.dev/docs/api/usage/limits ("Input limits"): an input array holds at most 250 items.
        problems = []

        def walk(value: Any) -> None:
            if isinstance(value, list):
                if len(value) > MAX_INPUT_ARRAY:
                    problems.append(shopify_error(
                        f"The input array size of {len(value)} is greater than the maximum allowed of "
                        f"{MAX_INPUT_ARRAY}.", "MAX_INPUT_SIZE_EXCEEDED"))
                for item in value:
                    walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)

        walk(variables)
        return problems[:1]

    @staticmethod
    def _execution_error(error: GraphQLError) -> dict[str, Any]:
        formatted = error.formatted
        if error.path is None and error.message.startswith("Variable '$"):
            # Shopify reports a variable that does not fit its type as INVALID_VARIABLE, before running anything.
            formatted.setdefault("extensions", {})["code"] = "INVALID_VARIABLE"
        return formatted


def tracking_entries(given: dict[str, Any], where: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``FulfillmentTrackingInput`` as the fulfillment keeps it: one entry per number (``number`` first), each with
    the company and its URL (one URL for all, or one per number); the userErrors of a mismatch."""
    numbers = list(given.get("numbers") or [])
    if given.get("number") and given["number"] not in numbers:
        numbers.insert(0, given["number"])
    urls = list(given.get("urls") or []) or ([given["url"]] if given.get("url") else [])
    if urls and len(urls) not in (1, len(numbers)):
        return [], [{"field": [*where, "urls"],
                     "message": "The number of tracking URLs must match the number of tracking numbers."}]
    company = given.get("company")
    tracking = [{"company": company, "number": number, "url": urls[i] if len(urls) > 1 else (urls or [None])[0]}
                for i, number in enumerate(numbers)]
    if not tracking and company:
        tracking = [{"company": company, "number": None, "url": (urls or [None])[0]}]
    return tracking, []


def graphql_routes(orders: Callable[[], list[dict[str, Any]]], authorized: Callable[[Request], bool],
                   state: ShopState, unauthorized: Callable[[], Response]) -> list[Route]:
    """The GraphQL endpoint and its ``/_sandbox/...`` companions, for the store's Starlette app."""
    api = AdminGraphQL(orders, state)

    async def graphql_endpoint(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        body = await request.body()
        # https://shopify.dev/changelog/graphql-over-http: from 2025-01 the body is JSON and the Content-Type must say
        # application/json; the legacy application/graphql body, or none, is answered 415 Unsupported Media Type.
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"errors": "Unsupported Media Type"}, status_code=415)
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, status_code=400)
        variables = payload.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return JSONResponse({"errors": {"variables": "must be a JSON object"}}, status_code=400)
        state.add_order_lines(orders())
        api.base_url = str(request.base_url).rstrip("/")
        return JSONResponse(api.run(payload["query"], variables, payload.get("operationName")))

    async def bulk_settings(request: Request) -> Response:
        # For tests: hold the next operations RUNNING a while (to meet OPERATION_IN_PROGRESS), or fail the next one.
        if request.method == "POST":
            try:
                settings = json.loads(await request.body() or b"{}")
            except ValueError:
                settings = None
            problems = _bulk_problems(settings)
            if problems:
                return JSONResponse({"error": "; ".join(problems)}, status_code=400)
            if "runningSeconds" in settings:
                api.bulk.running_seconds = float(settings["runningSeconds"])
            if "failNext" in settings:
                api.bulk.fail_next = settings["failNext"]
        return JSONResponse({"runningSeconds": api.bulk.running_seconds, "failNext": api.bulk.fail_next,
                             "operations": len(api.bulk.operations)})

    async def bulk_result(request: Request) -> Response:
        operation = api.bulk.by_token(request.path_params["token"])
        if operation is None or operation.body is None:
            return Response("NoSuchKey", status_code=404, media_type="text/plain")
        return Response(operation.body, media_type="application/jsonl")

    async def throttle(request: Request) -> Response:
        if request.method == "POST":
            try:
                settings = json.loads(await request.body() or b"{}")
            except ValueError:
                settings = None
            problems = _throttle_problems(settings)
            if problems:
                return JSONResponse({"error": "; ".join(problems)}, status_code=400)
            state.bucket.configure(plan=settings.get("plan"), maximum=settings.get("maximumAvailable"),
                                   restore_rate=settings.get("restoreRate"),
                                   available=settings.get("currentlyAvailable"),
                                   reset_counts=bool(settings.get("resetCounts")))
        return JSONResponse(state.bucket.counts())

    async def fulfillments(request: Request) -> Response:
        return JSONResponse({"fulfillments": state.fulfillments_view()})

    async def inventory(request: Request) -> Response:
        state.add_order_lines(orders())
        if request.method == "POST":
            # Stands for a change made in the shop itself (a merchant's count), so compare-quantity can be tested.
            try:
                change = json.loads(await request.body())
            except ValueError:
                change = None
            item = _maybe_gid(change.get("inventoryItemId"), "InventoryItem") if isinstance(change, dict) else None
            location = _maybe_gid(change.get("locationId"), "Location") if isinstance(change, dict) else None
            available = change.get("available") if isinstance(change, dict) else None
            if (item, location) not in state.levels or not isinstance(available, int) or isinstance(available, bool):
                return JSONResponse({"error": "body: needs inventoryItemId and locationId of a stocked level "
                                              "(gids) and an integer available"}, status_code=400)
            level = state.levels[(item, location)]
            level["on_hand"] += available - level["available"]
            level["available"] = available
            level["updated_at"] = now_utc()
        return JSONResponse(state.inventory_view())

    async def variants(request: Request) -> Response:
        state.add_order_lines(orders())
        return JSONResponse({"variants": state.variants_view()})

    async def idempotency(request: Request) -> Response:
        # For tests: how many keyed calls are kept, and how many retries were answered with a first call's answer.
        return JSONResponse(state.idempotency.counts())

    return [
        Route("/admin/api/{version}/graphql.json", graphql_endpoint, methods=["POST"]),
        Route("/_sandbox/graphql/throttle", throttle, methods=["GET", "POST"]),
        Route("/_sandbox/fulfillments", fulfillments),
        Route("/_sandbox/inventory", inventory, methods=["GET", "POST"]),
        Route("/_sandbox/variants", variants),
        Route("/_sandbox/graphql/idempotency", idempotency),
        Route("/_sandbox/bulk", bulk_settings, methods=["GET", "POST"]),
        Route("/_sandbox/bulk-results/{token}.jsonl", bulk_result),
    ]


def _bulk_problems(settings: Any) -> list[str]:
    if not isinstance(settings, dict):
        return ["body: must be a JSON object"]
    problems = [f"{name}: unknown setting (known: failNext, runningSeconds)" for name in settings
                if name not in ("failNext", "runningSeconds")]
    seconds = settings.get("runningSeconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 60:
        problems.append("runningSeconds: a number of seconds from 0 to 60")
    if settings.get("failNext") not in (None, "ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT"):
        problems.append("failNext: ACCESS_DENIED, INTERNAL_SERVER_ERROR, TIMEOUT or null")
    return problems


def _throttle_problems(settings: Any) -> list[str]:
    if not isinstance(settings, dict):
        return ["body: must be a JSON object"]
    problems = []
    known = {"plan", "maximumAvailable", "restoreRate", "currentlyAvailable", "resetCounts"}
    problems += [f"{name}: unknown setting (known: {', '.join(sorted(known))})" for name in settings
                 if name not in known]
    if "plan" in settings and settings["plan"] not in PLANS:
        problems.append(f"plan: must be one of {', '.join(PLANS)}")
    for name in ("maximumAvailable", "restoreRate", "currentlyAvailable"):
        value = settings.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            problems.append(f"{name}: must be a number of points, 0 or more")
    if settings.get("maximumAvailable") == 0 or settings.get("restoreRate") == 0:
        problems.append("maximumAvailable and restoreRate must be above 0")
    return problems
