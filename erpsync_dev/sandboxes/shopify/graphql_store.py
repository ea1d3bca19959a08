"""What the shop sandbox's GraphQL Admin API keeps beside the orders the store has sent: the catalogue (products,
variants and their prices), locations and inventory levels, fulfillment orders and fulfillments, and the
cost bucket that throttles the API the way Shopify's does."""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from erpsync_dev.sandboxes.shopify.graphql_idempotency import IdempotencyKeys

# https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: the restore rate by plan (points a second).
# That page gives no bucket size; a standard store's answers report ``maximumAvailable: 2000`` with
# ``restoreRate: 100`` (community.shopify.dev/t/23101), so each bucket holds twenty seconds of restore.
PLANS: dict[str, tuple[float, float]] = {
    "standard": (100.0, 2000.0),
    "advanced": (200.0, 4000.0),
    "plus": (1000.0, 20000.0),
    "enterprise": (2000.0, 40000.0),
}
DEFAULT_PLAN = "standard"
# Two places stock lives in the sandbox shop; ids sized like Shopify's.
LOCATIONS: dict[int, str] = {71_000_000_001: "Main warehouse", 71_000_000_002: "East fulfillment centre"}
# https://shopify.dev/docs/api/admin-graphql/2026-10/input-objects/InventorySetQuantitiesInput: ``reason`` "must be
# one of the possible reasons"; these are the reasons Shopify lists for quantity changes.
INVENTORY_REASONS = frozenset({
    "correction", "cycle_count_available", "damaged", "movement_created", "movement_updated", "movement_received",
    "movement_canceled", "other", "promotion", "quality_control", "received", "reservation_created",
    "reservation_deleted", "reservation_updated", "restock", "safety_stock", "shrinkage",
})
INVENTORY_NAMES = ("available", "on_hand")


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(value: str | None) -> str | None:
    """An order's timestamp (shop time zone, REST style) as GraphQL's DateTime: UTC with ``Z``."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CostBucket:
    """Shopify's leaky bucket of query cost points: a call needs its requested cost available, takes it, and is
    refunded the difference once its actual cost is known; the bucket refills at the restore rate."""

    def __init__(self, plan: str = DEFAULT_PLAN, *, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.plan = plan
        self.restore_rate, self.maximum = PLANS[plan]
        self._available = self.maximum
        self._at = clock()
        self.requests = 0
        self.throttled = 0
        self.points_spent = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def available(self) -> float:
        self._refill()
        return self._available

    def take(self, cost: float) -> bool:
        """Take ``cost`` points if the bucket holds them; a refusal is counted as a THROTTLED answer."""
        self._refill()
        self.requests += 1
        if cost > self._available:
            self.throttled += 1
            return False
        self._available -= cost
        self.points_spent += cost
        return True

    def refund(self, points: float) -> None:
        self._refill()
        self._available = min(self.maximum, self._available + max(points, 0))
        self.points_spent -= max(points, 0)

    def configure(self, *, plan: str | None = None, maximum: float | None = None, restore_rate: float | None = None,
                  available: float | None = None, reset_counts: bool = False) -> None:
        self._refill()
        if plan is not None:
            self.plan = plan
            self.restore_rate, self.maximum = PLANS[plan]
            self._available = self.maximum
        if (maximum is not None or restore_rate is not None) and plan is None:
            self.plan = "custom"  # a test's own bucket, no longer a plan's
        if maximum is not None:
            self.maximum = maximum
            self._available = min(self._available, maximum)
        if restore_rate is not None:
            self.restore_rate = restore_rate
        if available is not None:
            self._available = min(available, self.maximum)
        if reset_counts:
            self.requests = self.throttled = 0
            self.points_spent = 0.0

    def status(self) -> dict[str, Any]:
        """``throttleStatus`` as Shopify reports it."""
        return {"maximumAvailable": float(self.maximum), "currentlyAvailable": int(self.available()),
                "restoreRate": float(self.restore_rate)}

    def counts(self) -> dict[str, Any]:
        return {"plan": self.plan, **self.status(), "requests": self.requests, "throttled": self.throttled,
                "pointsSpent": self.points_spent}


@dataclass
class Variant:
    variant_id: int
    product_id: int
    sku: str | None
    title: str
    price: str
    inventory_item_id: int
    compare_at_price: str | None = None


@dataclass
class Product:
    product_id: int
    title: str
    variant_ids: list[int] = field(default_factory=list)


@dataclass
class FulfillmentOrderLine:
    line_id: int
    line_item_id: int
    sku: str | None
    variant_id: int | None
    total: int
    remaining: int


@dataclass
class FulfillmentOrder:
    fo_id: int
    order_id: int
    location_id: int
    created_at: str
    updated_at: str
    lines: list[FulfillmentOrderLine]
    cancelled: bool = False

    @property
    def status(self) -> str:
        if self.cancelled:
            return "CANCELLED"
        remaining = sum(line.remaining for line in self.lines)
        if remaining == 0:
            return "CLOSED"
        return "IN_PROGRESS" if remaining < sum(line.total for line in self.lines) else "OPEN"


@dataclass
class Fulfillment:
    fulfillment_id: int
    order_id: int
    name: str
    created_at: str
    notify_customer: bool
    tracking: list[dict[str, str | None]]
    lines: list[dict[str, int]]  # fulfillment_order_id, fulfillment_order_line_item_id, line_item_id, quantity
    status: str = "SUCCESS"
    line_ids: list[int] = field(default_factory=list)


class ShopState:
    """Catalogue, stock, fulfillment orders and fulfillments of the sandbox shop."""

    def __init__(self, bucket: CostBucket | None = None):
        self.bucket = bucket or CostBucket()
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self.items: dict[int, int] = {}  # inventory item id -> variant id
        self.levels: dict[tuple[int, int], dict[str, Any]] = {}  # (item, location) -> quantities
        self.fulfillment_orders: dict[int, FulfillmentOrder] = {}
        self._orders_fos: dict[int, list[int]] = {}
        self.fulfillments: dict[int, Fulfillment] = {}
        self.adjustment_groups = itertools.count(91_000_000_001)
        self.idempotency = IdempotencyKeys()  # the answers of @idempotent mutation calls, for their retries
        self._fo_ids = itertools.count(81_000_000_001)
        self._fo_line_ids = itertools.count(82_000_000_001)
        self._fulfillment_ids = itertools.count(83_000_000_001)
        self._fulfillment_line_ids = itertools.count(84_000_000_001)

    # -- catalogue --

    def add_variant(self, *, product_id: int, variant_id: int, sku: str | None, title: str, price: str) -> None:
        """A variant the shop sells (once; the first price seen stands), stocked at every location."""
        if variant_id in self.variants:
            return
        product_title = title.split(" - ")[0]
        product = self.products.setdefault(product_id, Product(product_id, product_title))
        product.variant_ids.append(variant_id)
        # An inventory item id of its own, so a client that confuses it with the variant id fails here too.
        item_id = 40_000_000_000_000 + zlib.crc32(f"item:{variant_id}".encode())
        self.variants[variant_id] = Variant(variant_id, product_id, sku, title, price, item_id)
        self.items[item_id] = variant_id
        seed = zlib.crc32((sku or str(variant_id)).encode())
        for n, location_id in enumerate(LOCATIONS):
            quantity = 20 + seed % 80 if n == 0 else seed % 15
            self.levels[(item_id, location_id)] = {"available": quantity, "on_hand": quantity,
                                                   "updated_at": now_utc()}

    def add_order_lines(self, orders: Iterable[dict[str, Any]]) -> None:
        for order in orders:
            for line in order.get("line_items") or []:
                if line.get("variant_id") and line.get("product_id"):
                    self.add_variant(product_id=line["product_id"], variant_id=line["variant_id"], sku=line.get("sku"),
                                     title=line.get("title") or line.get("name") or "", price=str(line["price"]))

    # -- fulfillment orders --

    def fulfillment_orders_of(self, order: dict[str, Any]) -> list[FulfillmentOrder]:
        """The order's fulfillment orders, made on first sight: one at the main location holding every line
        that needs shipping (a custom line without a product does not)."""
        order_id = int(order["id"])
        if order_id not in self._orders_fos:
            self.add_order_lines([order])
            lines = [
                FulfillmentOrderLine(next(self._fo_line_ids), int(line["id"]), line.get("sku"), line.get("variant_id"),
                                     int(line["quantity"]), int(line["quantity"]))
                for line in order.get("line_items") or []
                if line.get("requires_shipping", True) and line.get("variant_id")
            ]
            created = utc(order["created_at"]) or now_utc()
            fo = FulfillmentOrder(next(self._fo_ids), order_id, next(iter(LOCATIONS)), created, created, lines,
                                  cancelled=bool(order.get("cancelled_at")))
            self.fulfillment_orders[fo.fo_id] = fo
            self._orders_fos[order_id] = [fo.fo_id] if lines else []
        return [self.fulfillment_orders[i] for i in self._orders_fos[order_id]]

    def fulfillments_of(self, order_id: int) -> list[Fulfillment]:
        return [f for f in self.fulfillments.values() if f.order_id == order_id]

    def display_fulfillment_status(self, order: dict[str, Any]) -> str:
        fos = self.fulfillment_orders_of(order)
        total = sum(line.total for fo in fos for line in fo.lines)
        remaining = sum(line.remaining for fo in fos for line in fo.lines)
        if total and remaining == 0:
            return "FULFILLED"
        return "PARTIALLY_FULFILLED" if remaining < total else "UNFULFILLED"

    def new_fulfillment(self, order: dict[str, Any], *, notify_customer: bool, tracking: list[dict[str, Any]],
                        lines: list[tuple[FulfillmentOrder, FulfillmentOrderLine, int]]) -> Fulfillment:
        order_id = int(order["id"])
        number = len(self.fulfillments_of(order_id)) + 1
        fulfillment = Fulfillment(next(self._fulfillment_ids), order_id, f"{order['name']}-F{number}", now_utc(),
                                  notify_customer, tracking, [])
        for fo, line, quantity in lines:
            line.remaining -= quantity
            fo.updated_at = fulfillment.created_at
            fulfillment.lines.append({"id": next(self._fulfillment_line_ids), "fulfillment_order_id": fo.fo_id,
                                      "fulfillment_order_line_item_id": line.line_id,
                                      "line_item_id": line.line_item_id, "quantity": quantity})
        self.fulfillments[fulfillment.fulfillment_id] = fulfillment
        return fulfillment

    # -- views for the /_sandbox endpoints (ids and quantities only: no customer data) --

    def fulfillments_view(self) -> list[dict[str, Any]]:
        return [{"id": f"gid://shopify/Fulfillment/{f.fulfillment_id}", "orderId": f"gid://shopify/Order/{f.order_id}",
                 "name": f.name, "status": f.status, "createdAt": f.created_at, "notifyCustomer": f.notify_customer,
                 "trackingInfo": f.tracking,
                 "lineItems": [{"fulfillmentOrderId": f"gid://shopify/FulfillmentOrder/{line['fulfillment_order_id']}",
                                "lineItemId": f"gid://shopify/LineItem/{line['line_item_id']}",
                                "quantity": line["quantity"]} for line in f.lines]}
                for f in self.fulfillments.values()]

    def inventory_view(self) -> dict[str, Any]:
        return {
            "locations": [{"id": f"gid://shopify/Location/{i}", "name": name} for i, name in LOCATIONS.items()],
            "levels": [{"inventoryItemId": f"gid://shopify/InventoryItem/{item}",
                        "locationId": f"gid://shopify/Location/{location}",
                        "sku": self.variants[self.items[item]].sku, "available": level["available"],
                        "onHand": level["on_hand"], "updatedAt": level["updated_at"]}
                       for (item, location), level in self.levels.items()],
        }

    def variants_view(self) -> list[dict[str, Any]]:
        return [{"id": f"gid://shopify/ProductVariant/{v.variant_id}",
                 "productId": f"gid://shopify/Product/{v.product_id}", "sku": v.sku, "price": v.price,
                 "compareAtPrice": v.compare_at_price,
                 "inventoryItemId": f"gid://shopify/InventoryItem/{v.inventory_item_id}"}
                for v in self.variants.values()]
