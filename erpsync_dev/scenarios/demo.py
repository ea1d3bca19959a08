"""The demo's Shopify traffic: signed order webhooks, retries, duplicates, late versions, and their expected outcome."""

from __future__ import annotations

import copy
import json
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Any

from erpsync.errors import ConfigError
from erpsync.systems.shopify.graphql import API_VERSION  # the webhooks' version: the one erpsync's app speaks
from erpsync.systems.shopify.webhooks import shopify_signature

DEFAULT_SHOP_DOMAIN = "erpsync-demo.myshopify.com"
UNKNOWN_SKU = "DISCONTINUED-SKU-0001"

# SKU -> product title. The ERP sandbox and the mapping's item lookup must know these SKUs (and not UNKNOWN_SKU).
DEMO_CATALOGUE: dict[str, str] = {
    "TEE-BLK-S": "Logo Tee - Black / S",
    "TEE-BLK-M": "Logo Tee - Black / M",
    "TEE-BLK-L": "Logo Tee - Black / L",
    "HOODIE-GRY-M": "Zip Hoodie - Grey / M",
    "HOODIE-GRY-L": "Zip Hoodie - Grey / L",
    "MUG-WHT-11OZ": "Enamel Mug - White / 11 oz",
    "CAP-NVY-OS": "Dad Cap - Navy",
    "SOCKS-RED-M": "Crew Socks - Red / M",
    "TOTE-NAT-OS": "Canvas Tote - Natural",
    "STICKER-PACK-5": "Sticker Pack (5)",
}
DEMO_SKUS: tuple[str, ...] = tuple(DEMO_CATALOGUE)

PHASE_NAMES = ("burst", "late")
MIN_ORDERS = 3  # one unknown-SKU order, one updated order, one order paid with a content-identical body

# What a delivery is, from the receiving side's point of view.
ORIGINAL = "original"  # first delivery of a new order version: should be applied (or dead-lettered)
REDELIVERY = "redelivery"  # same X-Shopify-Webhook-Id and body as an earlier delivery: dropped by the inbox
CONTENT_DUPLICATE = "content_duplicate"  # new webhook id, body identical to an applied version: ledger duplicate
STALE = "stale"  # a version older than one already applied: superseded

SYNCED = "synced"
DEAD_LETTERED = "dead_lettered"

# Shopify serializes order timestamps in the shop's time zone; the demo shop is on US Eastern standard time.
_SHOP_TZ = timezone(timedelta(hours=-5))
_SHIPPING = Decimal("10.00")
_CENT = Decimal("0.01")
DISCOUNT_CODE = "WELCOME10"
TAX_TITLE = "State Tax"
CUSTOM_LINE_TITLE = "Gift wrapping"


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery of one order webhook, as Shopify would POST it."""

    topic: str
    webhook_id: str
    event_id: str
    triggered_at: str
    body: bytes
    order_id: str
    updated_at: str
    kind: str = ORIGINAL
    # Positions in the same phase whose answers must be in before this one is sent
    # (an update after its create, a retry after the first attempt).
    after: tuple[int, ...] = ()

    @property
    def version(self) -> datetime:
        return datetime.fromisoformat(self.updated_at)

    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


def sign(
    delivery: Delivery,
    secret: str,
    *,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    api_version: str = API_VERSION,
) -> dict[str, str]:
    """The request headers Shopify sends with ``delivery``, HMAC included."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": delivery.topic,
        "X-Shopify-Hmac-Sha256": shopify_signature(secret, delivery.body),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": delivery.webhook_id,
        "X-Shopify-Triggered-At": delivery.triggered_at,
        "X-Shopify-Event-Id": delivery.event_id,
    }


@dataclass(frozen=True)
class ExpectedLine:
    sku: str | None  # None: a custom line, sold by title only
    quantity: int
    price: str


@dataclass(frozen=True)
class ExpectedOrder:
    """The newest version of one order and where it should end up."""

    order_id: str
    name: str
    updated_at: str
    line_items: tuple[ExpectedLine, ...]
    outcome: str
    reason: str | None = None
    total: str = "0.00"  # Shopify's total_price: what the ERP's total must equal, to the cent
    guest: bool = False  # no customer account: the ERP order goes to the default customer
    customer_id: str | None = None  # Shopify's customer id (an id, no customer data)


@dataclass(frozen=True)
class Scenario:
    seed: int
    started_at: datetime
    shop_domain: str
    skus: tuple[str, ...]
    unknown_skus: tuple[str, ...]
    phases: tuple[tuple[Delivery, ...], ...]
    orders: tuple[ExpectedOrder, ...]

    @property
    def deliveries(self) -> list[Delivery]:
        return [d for phase in self.phases for d in phase]

    def counts(self, phase: int | None = None) -> dict[str, int]:
        """Delivery and outcome counts, for one phase (1-based) or the whole scenario."""
        deliveries = self.deliveries if phase is None else list(self.phases[phase - 1])
        dead = {o.order_id for o in self.orders if o.outcome == DEAD_LETTERED}
        originals = [d for d in deliveries if d.kind == ORIGINAL]
        counts = {
            "deliveries": len(deliveries),
            "unique_deliveries": len(deliveries) - sum(d.kind == REDELIVERY for d in deliveries),
            "redeliveries": sum(d.kind == REDELIVERY for d in deliveries),
            "content_duplicates": sum(d.kind == CONTENT_DUPLICATE for d in deliveries),
            "superseded": sum(d.kind == STALE for d in deliveries),
            "applied": sum(d.order_id not in dead for d in originals),
            "dead_lettered": sum(d.order_id in dead for d in originals),
        }
        if phase is None:
            counts["orders"] = len(self.orders)
            counts["synced_orders"] = len(self.orders) - len(dead)
            counts["dead_lettered_orders"] = len(dead)
        return counts

    def expected(self) -> dict[str, Any]:
        """The expected outcome as JSON-ready data (no secrets in here)."""
        return {
            "seed": self.seed,
            "started_at": self.started_at.isoformat(),
            "shop_domain": self.shop_domain,
            "api_version": API_VERSION,
            "skus": list(self.skus),
            "unknown_skus": list(self.unknown_skus),
            "counts": self.counts(),
            "phases": [
                {"phase": n, "name": PHASE_NAMES[n - 1], **self.counts(n)} for n in range(1, len(self.phases) + 1)
            ],
            "orders": [
                {
                    "order_id": o.order_id,
                    "name": o.name,
                    "updated_at": o.updated_at,
                    "line_items": [{"sku": li.sku, "quantity": li.quantity, "price": li.price} for li in o.line_items],
                    "total": o.total,
                    "guest": o.guest,
                    "customer_id": o.customer_id,
                    "outcome": o.outcome,
                    "reason": o.reason,
                }
                for o in self.orders
            ],
        }


@cache
def _template_text() -> str:
    return (resources.files("erpsync_dev.scenarios") / "data" / "shopify_order_template.json").read_text("utf-8")


def order_template() -> dict[str, Any]:
    """A fresh copy of the real-shaped order body every generated order starts from."""
    return json.loads(_template_text())


@dataclass
class _Line:
    line_id: int
    sku: str | None
    title: str
    product_id: int
    variant_id: int
    grams: int
    price: Decimal
    quantity: int


@dataclass
class _Order:
    order_id: int
    order_number: int
    customer_id: int
    address_id: int
    checkout_id: int
    shipping_line_id: int
    token: str
    checkout_token: str
    confirmation_number: str
    created_at: datetime
    lines: list[_Line]
    known: bool
    versions: list[tuple[datetime, bytes]] = field(default_factory=list)
    # The money an accountant checks: a percentage discount code allocated over the lines, a sales tax on the
    # discounted lines (taxes not included in prices), a custom line without a SKU, and a guest checkout.
    discount_percent: Decimal | None = None
    tax_rate: Decimal | None = None
    custom_line: _Line | None = None
    guest: bool = False


class _Ids:
    """Shopify-sized numeric ids and UUIDs, all drawn from one seeded generator so a seed replays a scenario."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._used: set[int] = set()

    def number(self) -> int:
        while True:
            n = self._rng.randrange(5_000_000_000_000, 9_999_999_999_999)
            if n not in self._used:
                self._used.add(n)
                return n

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex(self, length: int) -> str:
        return f"{self._rng.getrandbits(4 * length):0{length}x}"

    def code(self, length: int) -> str:
        return "".join(self._rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(length))


def _shop_time(moment: datetime) -> str:
    return moment.astimezone(_SHOP_TZ).isoformat(timespec="seconds")


def _triggered_at(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _money(amount: Decimal) -> str:
    return str(amount.quantize(_CENT))


def _money_set(amount: Decimal) -> dict[str, Any]:
    value = _money(amount)
    return {
        "presentment_money": {"amount": value, "currency_code": "USD"},
        "shop_money": {"amount": value, "currency_code": "USD"},
    }


def _render(order: _Order, *, updated_at: datetime, note: str | None, shop_domain: str) -> bytes:
    body = render_order(order, updated_at=updated_at, note=note, shop_domain=shop_domain)
    # Compact, as Shopify sends it; the HMAC covers exactly these bytes.
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def render_order(order: _Order, *, updated_at: datetime, note: str | None, shop_domain: str) -> dict[str, Any]:
    """One version of an order as Shopify's order JSON (the webhook body and the Admin API's order)."""
    body = order_template()
    line_template = body["line_items"][0]
    line_items = []
    lines = [*order.lines, *([order.custom_line] if order.custom_line is not None else [])]
    allocations = _allocations(lines, order.discount_percent)
    taxes = [_tax(line.price * line.quantity - allocated, order.tax_rate) for line, allocated in zip(lines, allocations)]
    for line, allocated, tax in zip(lines, allocations, taxes):
        item = copy.deepcopy(line_template)
        item.update(
            {
                "admin_graphql_api_id": f"gid://shopify/LineItem/{line.line_id}",
                "current_quantity": line.quantity,
                "fulfillable_quantity": line.quantity,
                "grams": line.grams,
                "id": line.line_id,
                "name": line.title,
                "price": _money(line.price),
                "price_set": _money_set(line.price),
                "product_id": line.product_id,
                "quantity": line.quantity,
                "sku": line.sku,
                "title": line.title,
                "variant_id": line.variant_id,
                "discount_allocations": [] if not allocated else [
                    {"amount": _money(allocated), "amount_set": _money_set(allocated), "discount_application_index": 0}
                ],
                "tax_lines": [] if order.tax_rate is None else [_tax_line(tax, order.tax_rate)],
            }
        )
        if line is order.custom_line:
            # A custom item: sold by name only, no product, variant or SKU behind it.
            item.update({"product_id": None, "variant_id": None, "sku": None, "product_exists": False,
                         "requires_shipping": False, "grams": 0, "vendor": None})
        line_items.append(item)
    line_total = sum((line.price * line.quantity for line in lines), Decimal("0"))
    discounts = sum(allocations, Decimal("0"))
    tax_total = sum(taxes, Decimal("0"))
    # Shopify's subtotal is after discounts; the total adds shipping and (taxes not included) the tax.
    subtotal = line_total - discounts
    total = subtotal + _SHIPPING + tax_total
    created, updated = _shop_time(order.created_at), _shop_time(updated_at)
    email = f"test.customer+{order.order_number}@example.com"

    customer = body["customer"]
    customer.update(
        {
            "admin_graphql_api_id": f"gid://shopify/Customer/{order.customer_id}",
            "created_at": created,
            "email": email,
            "id": order.customer_id,
            "updated_at": created,
        }
    )
    customer["default_address"].update({"customer_id": order.customer_id, "id": order.address_id})
    if order.guest:
        # A guest checkout: the order has a contact email but no customer account.
        body["customer"] = None
    if order.discount_percent is not None:
        body["discount_applications"] = [{
            "allocation_method": "across", "code": DISCOUNT_CODE, "target_selection": "all",
            "target_type": "line_item", "type": "discount_code", "value": str(order.discount_percent),
            "value_type": "percentage",
        }]
        body["discount_codes"] = [{"amount": _money(discounts), "code": DISCOUNT_CODE, "type": "percentage"}]
    if order.tax_rate is not None:
        body["tax_lines"] = [_tax_line(tax_total, order.tax_rate)]
    shipping = body["shipping_lines"][0]
    shipping.update(
        {
            "current_discounted_price_set": _money_set(_SHIPPING),
            "discounted_price": _money(_SHIPPING),
            "discounted_price_set": _money_set(_SHIPPING),
            "id": order.shipping_line_id,
            "price": _money(_SHIPPING),
            "price_set": _money_set(_SHIPPING),
        }
    )
    body.update(
        {
            "admin_graphql_api_id": f"gid://shopify/Order/{order.order_id}",
            "checkout_id": order.checkout_id,
            "checkout_token": order.checkout_token,
            "confirmation_number": order.confirmation_number,
            "contact_email": email,
            "created_at": created,
            "current_shipping_price_set": _money_set(_SHIPPING),
            "current_subtotal_price": _money(subtotal),
            "current_subtotal_price_set": _money_set(subtotal),
            "current_total_price": _money(total),
            "current_total_price_set": _money_set(total),
            "email": email,
            "id": order.order_id,
            "line_items": line_items,
            "name": f"#{order.order_number}",
            "note": note,
            "number": order.order_number - 1000,
            "order_number": order.order_number,
            "order_status_url": (
                f"https://{shop_domain}/{order.customer_id % 1_000_000_000}/orders/{order.token}"
                f"/authenticate?key={order.checkout_token[:16]}"
            ),
            "processed_at": created,
            "subtotal_price": _money(subtotal),
            "subtotal_price_set": _money_set(subtotal),
            "current_total_discounts": _money(discounts),
            "current_total_discounts_set": _money_set(discounts),
            "current_total_tax": _money(tax_total),
            "current_total_tax_set": _money_set(tax_total),
            "token": order.token,
            "total_discounts": _money(discounts),
            "total_discounts_set": _money_set(discounts),
            "total_line_items_price": _money(line_total),
            "total_line_items_price_set": _money_set(line_total),
            "total_price": _money(total),
            "total_price_set": _money_set(total),
            "total_shipping_price_set": _money_set(_SHIPPING),
            "total_tax": _money(tax_total),
            "total_tax_set": _money_set(tax_total),
            "total_outstanding": "0.00",
            "total_weight": sum(line.grams * line.quantity for line in lines),
            "updated_at": updated,
        }
    )
    return body


@dataclass(frozen=True)
class _Priced:
    price: Decimal
    quantity: int


def reprice(body: dict[str, Any]) -> dict[str, Any]:
    """Shopify's money of a rendered order, computed again from its lines as ``render_order`` computes it.

    For a version that changes a quantity (the chaos run's edits): the discount code's percentage and the tax
    rate stay, the allocations, taxes and totals follow the lines, so the order still adds up to the cent.
    """
    applications = body.get("discount_applications") or []
    percent = Decimal(str(applications[0]["value"])) if applications else None
    rates = [t["rate"] for li in body["line_items"] for t in li.get("tax_lines") or []]
    rate = Decimal(str(rates[0])) if rates else None
    lines = [_Priced(Decimal(li["price"]), int(li["quantity"])) for li in body["line_items"]]
    allocations = _allocations(lines, percent)
    taxes = [_tax(line.price * line.quantity - allocated, rate) for line, allocated in zip(lines, allocations)]
    for item, allocated, tax in zip(body["line_items"], allocations, taxes):
        item["current_quantity"] = item["fulfillable_quantity"] = item["quantity"]
        item["discount_allocations"] = [] if not allocated else [
            {"amount": _money(allocated), "amount_set": _money_set(allocated), "discount_application_index": 0}]
        item["tax_lines"] = [] if rate is None else [_tax_line(tax, rate)]
    line_total = sum((line.price * line.quantity for line in lines), Decimal("0"))
    discounts, tax_total = sum(allocations, Decimal("0")), sum(taxes, Decimal("0"))
    shipping = sum((Decimal(s["price"]) for s in body.get("shipping_lines") or []), Decimal("0"))
    if percent is not None:
        body["discount_codes"] = [{**body["discount_codes"][0], "amount": _money(discounts)}]
    if rate is not None:
        body["tax_lines"] = [_tax_line(tax_total, rate)]
    subtotal = line_total - discounts
    for key, amount in (("subtotal_price", subtotal), ("current_subtotal_price", subtotal),
                        ("total_discounts", discounts), ("current_total_discounts", discounts),
                        ("total_tax", tax_total), ("current_total_tax", tax_total),
                        ("total_line_items_price", line_total), ("total_price", subtotal + shipping + tax_total),
                        ("current_total_price", subtotal + shipping + tax_total)):
        body[key] = _money(amount)
        body[f"{key}_set"] = _money_set(amount)
    return body


def _allocations(lines: Sequence[_Line | _Priced], percent: Decimal | None) -> list[Decimal]:
    """A percentage discount spread over the lines as Shopify allocates it: each line's share rounded to the
    cent, the rounding remainder on the last line, so the allocations add up to the discount exactly."""
    if percent is None:
        return [Decimal("0")] * len(lines)
    totals = [line.price * line.quantity for line in lines]
    discount = (sum(totals, Decimal("0")) * percent / 100).quantize(_CENT, ROUND_HALF_UP)
    shares = [(total * percent / 100).quantize(_CENT, ROUND_HALF_UP) for total in totals]
    shares[-1] += discount - sum(shares, Decimal("0"))
    return shares


def _tax(taxable: Decimal, rate: Decimal | None) -> Decimal:
    return Decimal("0") if rate is None else (taxable * rate).quantize(_CENT, ROUND_HALF_UP)


def _tax_line(amount: Decimal, rate: Decimal) -> dict[str, Any]:
    return {"channel_liable": False, "price": _money(amount), "price_set": _money_set(amount),
            "rate": float(rate), "title": TAX_TITLE}


@dataclass
class _Planned:
    delivery: Delivery
    depends_on: _Planned | None = None


def _place_after(plan: list[_Planned], item: _Planned, rng: random.Random) -> None:
    """Insert ``item`` somewhere after the delivery it depends on, so the burst interleaves."""
    start = next(i for i, p in enumerate(plan) if p is item.depends_on) + 1
    plan.insert(rng.randint(start, len(plan)), item)


def _finalize(plan: list[_Planned]) -> tuple[Delivery, ...]:
    position = {id(p): i for i, p in enumerate(plan)}
    out = []
    for p in plan:
        after = (position[id(p.depends_on)],) if p.depends_on is not None else ()
        out.append(replace(p.delivery, after=after))
    return tuple(out)


def _redeliver(original: Delivery) -> Delivery:
    # A Shopify retry repeats the delivery exactly: same webhook id, event id, trigger time and bytes.
    return replace(original, kind=REDELIVERY, after=())


def build_demo_scenario(
    orders: int = 50,
    seed: int | None = None,
    *,
    skus: Sequence[str] = DEMO_SKUS,
    unknown_sku: str = UNKNOWN_SKU,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    started_at: datetime | None = None,
) -> Scenario:
    """Two phases of order webhooks and the outcome a correct pipeline reaches from them.

    Phase 1 (burst): one orders/create per order (exactly one of them for ``unknown_sku``), Shopify retries of
    some deliveries, orders/updated for a few orders after their create, and one orders/paid whose body is
    the very bytes of an order's create (same merchant action, so the same event id). Phase 2 (late): an
    orders/updated carrying a version older than the update phase 1 sent for that order, and one late retry.
    Without ``seed`` a random one is drawn and recorded, so any run can be replayed.
    """
    if orders < MIN_ORDERS:
        raise ConfigError(f"orders: must be at least {MIN_ORDERS}, got {orders}")
    catalogue = list(dict.fromkeys(skus))
    if not catalogue:
        raise ConfigError("skus: the catalogue needs at least one SKU")
    if unknown_sku in catalogue:
        raise ConfigError(f"unknown_sku: {unknown_sku} is in the SKU catalogue")
    if seed is None:
        seed = secrets.randbits(32)
    rng = random.Random(seed)
    ids = _Ids(rng)
    started_at = (started_at or datetime.now(timezone.utc)).replace(microsecond=0)

    products = {}
    for sku in [*catalogue, unknown_sku]:
        price = Decimal(rng.randrange(5, 120)) + rng.choice([Decimal("0.00"), Decimal("0.50"), Decimal("0.99")])
        title = DEMO_CATALOGUE.get(sku, f"Discontinued item {sku}" if sku == unknown_sku else f"Product {sku}")
        products[sku] = (title, ids.number(), ids.number(), rng.randrange(50, 900), price)

    def line(sku: str, quantity: int) -> _Line:
        title, product_id, variant_id, grams, price = products[sku]
        return _Line(ids.number(), sku, title, product_id, variant_id, grams, price, quantity)

    # Orders were placed over the minute or so before the scenario starts; each version's webhook fires a
    # second after the change, so every Triggered-At lies shortly before ``started_at``.
    first_created = started_at - timedelta(seconds=orders + 60)
    unknown_index = rng.randrange(orders)
    first_number = rng.randrange(1001, 900_000)
    # Shopify's order ids grow with time, and its Admin API pages by id, so keep them in creation order.
    order_ids = sorted(ids.number() for _ in range(orders))
    drafts: list[_Order] = []
    for i in range(orders):
        if i == unknown_index:
            lines = [line(unknown_sku, 1)]
        else:
            picked = rng.sample(catalogue, k=min(len(catalogue), rng.randint(1, 3)))
            lines = [line(sku, rng.randint(1, 4)) for sku in picked]
        drafts.append(
            _Order(
                order_id=order_ids[i],
                order_number=first_number + i,
                customer_id=ids.number(),
                address_id=ids.number(),
                checkout_id=ids.number(),
                shipping_line_id=ids.number(),
                token=ids.hex(32),
                checkout_token=ids.hex(32),
                confirmation_number=ids.code(9),
                created_at=first_created + timedelta(seconds=i),
                lines=lines,
                known=i != unknown_index,
            )
        )

    # The money of the orders: each kind an accountant checks appears at least once (the first known orders),
    # then at random. Drawn from a generator of its own, so the rest of a seed's scenario stays as it was.
    money = random.Random(f"money:{seed}")
    for n, order in enumerate(o for o in drafts if o.known):
        order.discount_percent = Decimal("10") if n in (0, 4) or (n > 5 and money.random() < 0.3) else None
        order.tax_rate = Decimal("0.04") if n in (0, 3, 4) or (n > 5 and money.random() < 0.5) else None
        order.guest = n == 2 or (n > 5 and money.random() < 0.1)
        if n == 1 or (n > 5 and money.random() < 0.15):
            order.custom_line = _Line(ids.number(), None, CUSTOM_LINE_TITLE, 0, 0, 0, Decimal("4.50"), 1)

    def version(order: _Order, at: datetime, note: str | None, topic: str) -> Delivery:
        body = _render(order, updated_at=at, note=note, shop_domain=shop_domain)
        order.versions.append((at, body))
        return Delivery(
            topic=topic,
            webhook_id=ids.uuid(),
            event_id=ids.uuid(),
            triggered_at=_triggered_at(at + timedelta(seconds=1)),
            body=body,
            order_id=str(order.order_id),
            updated_at=_shop_time(at),
        )

    plan = [_Planned(version(order, order.created_at, None, "orders/create")) for order in drafts]
    create_of = {p.delivery.order_id: p for p in plan}

    extras = max(1, orders // 10)
    known = [o for o in drafts if o.known]
    updated = rng.sample(known, k=min(extras, len(known) - 1))
    stale_deliveries: list[Delivery] = []
    for order in updated:
        # Quantities step up version by version, so every version's content differs from the others.
        order.lines[0].quantity += 1
        stale_deliveries.append(
            version(order, order.created_at + timedelta(seconds=20), "Gift wrap, please.", "orders/updated")
        )
        order.lines[0].quantity += 1
        note = "Gift wrap, please. Leave at the side door."
        update = version(order, order.created_at + timedelta(seconds=40), note, "orders/updated")
        _place_after(plan, _Planned(update, depends_on=create_of[update.order_id]), rng)

    not_updated = [o for o in known if o not in updated]
    paid_create = create_of[str(rng.choice(not_updated).order_id)]
    paid = replace(paid_create.delivery, topic="orders/paid", webhook_id=ids.uuid(), kind=CONTENT_DUPLICATE)
    _place_after(plan, _Planned(paid, depends_on=paid_create), rng)

    dead_order_id = str(drafts[unknown_index].order_id)
    originals = [p for p in plan if p.delivery.kind == ORIGINAL and p.delivery.order_id != dead_order_id]
    for original in rng.sample(originals, k=min(extras, len(originals))):
        _place_after(plan, _Planned(_redeliver(original.delivery), depends_on=original), rng)
    burst = _finalize(plan)

    # Phase 2: the intermediate version of one updated order, delivered only now, and one retry that arrives
    # long after its first attempt was answered.
    stale = rng.choice(stale_deliveries)
    stale = replace(stale, kind=STALE)
    late_retry = _redeliver(rng.choice([d for d in burst if d.kind == ORIGINAL and d.topic == "orders/updated"]))
    late = [stale, late_retry]
    rng.shuffle(late)

    expected = []
    for order in drafts:
        newest_at, newest_body = max(order.versions, key=lambda v: v[0])
        body = json.loads(newest_body)
        expected.append(
            ExpectedOrder(
                order_id=str(order.order_id),
                name=body["name"],
                updated_at=body["updated_at"],
                line_items=tuple(
                    ExpectedLine(sku=li["sku"], quantity=li["quantity"], price=li["price"])
                    for li in body["line_items"]
                ),
                total=body["total_price"],
                guest=body["customer"] is None,
                customer_id=None if body["customer"] is None else str(body["customer"]["id"]),
                outcome=SYNCED if order.known else DEAD_LETTERED,
                reason=None if order.known else f"unknown SKU {unknown_sku}",
            )
        )

    return Scenario(
        seed=seed,
        started_at=started_at,
        shop_domain=shop_domain,
        skus=tuple(catalogue),
        unknown_skus=(unknown_sku,),
        phases=(burst, tuple(late)),
        orders=tuple(expected),
    )


class GeneratedOrders:
    """A large, lazy catalogue of orders for the Admin API: order ``i`` is computed from ``(seed, i)`` on demand.

    Nothing is held per order, so 100,000 orders cost no memory until a page asks for them, and two processes
    with the same arguments (the shop sandbox, and a benchmark seeding the ERP) see the very same orders.
    Ids grow with the index (``FIRST_ID + i``), and so do ``created_at`` and ``updated_at`` (spread evenly over
    ``span`` from ``start``), so a page of ids or a time range is a range of indexes, found without a scan.
    """

    FIRST_ID = 7_000_000_000_000
    UPDATED_AFTER = timedelta(seconds=90)  # every order was updated once, 90 s after it was placed

    def __init__(self, count: int, seed: int, *, start: datetime, span: timedelta = timedelta(days=2),
                 skus: Sequence[str] = DEMO_SKUS, shop_domain: str = DEFAULT_SHOP_DOMAIN):
        if count < 1:
            raise ConfigError(f"generated orders: count must be at least 1, got {count}")
        if start.tzinfo is None:
            raise ConfigError("generated orders: start needs a time zone")
        if span <= timedelta(0):
            raise ConfigError("generated orders: span must be positive")
        self.count, self.seed, self.start, self.span = count, seed, start.astimezone(timezone.utc), span
        self.shop_domain = shop_domain
        rng = random.Random(f"catalogue:{seed}")
        self.products = {
            sku: (DEMO_CATALOGUE.get(sku, f"Product {sku}"), 8_000_000_000_000 + n, 8_100_000_000_000 + n,
                  rng.randrange(50, 900), Decimal(rng.randrange(5, 120)) + rng.choice(
                      [Decimal("0.00"), Decimal("0.50"), Decimal("0.99")]))
            for n, sku in enumerate(dict.fromkeys(skus))
        }
        if not self.products:
            raise ConfigError("generated orders: the catalogue needs at least one SKU")

    def index_of(self, order_id: int) -> int | None:
        """The index of an order id, or None when the catalogue has no such order."""
        index = order_id - self.FIRST_ID
        return index if 0 <= index < self.count else None

    def created_at(self, index: int) -> datetime:
        return (self.start + self.span * index / self.count).replace(microsecond=0)

    def updated_at(self, index: int) -> datetime:
        return self.created_at(index) + self.UPDATED_AFTER

    def order(self, index: int) -> dict[str, Any]:
        """Order ``index`` as the Admin API shows it."""
        rng = random.Random(f"order:{self.seed}:{index}")
        skus = rng.sample(list(self.products), k=min(len(self.products), rng.randint(1, 3)))
        base = self.FIRST_ID * 10 + index * 10  # line and other ids: unique, and stable per order
        lines = []
        for n, sku in enumerate(skus):
            title, product_id, variant_id, grams, price = self.products[sku]
            lines.append(_Line(base + n, sku, title, product_id, variant_id, grams, price, rng.randint(1, 4)))
        draft = _Order(
            order_id=self.FIRST_ID + index, order_number=1001 + index, customer_id=base + 5, address_id=base + 6,
            checkout_id=base + 7, shipping_line_id=base + 8, token=f"{rng.getrandbits(128):032x}",
            checkout_token=f"{rng.getrandbits(128):032x}", confirmation_number=f"G{index:08d}",
            created_at=self.created_at(index), lines=lines, known=True,
        )
        return render_order(draft, updated_at=self.updated_at(index), note=None, shop_domain=self.shop_domain)

    def index_range(self, updated_min: datetime | None, updated_max: datetime | None) -> range:
        """Indexes whose updated_at lies in [updated_min, updated_max] (either bound may be open)."""
        import bisect

        indexes = range(self.count)
        low = 0 if updated_min is None else bisect.bisect_left(indexes, updated_min, key=self.updated_at)
        high = self.count if updated_max is None else bisect.bisect_right(indexes, updated_max, key=self.updated_at)
        return range(low, max(low, high))
