"""The way back on a running local stack: a warehouse ships orders and counts stock (inventory adjustments) in the ERP
sandbox through NetSuite's REST API, erpsync carries each change to the shop, and the shop sandbox is checked to hold
exactly those fulfillments, quantities and prices. Used by `erpsync demo`, `make chaos` and bench/way_back.py.

Each change goes in by one of the two ways NetSuite's changes reach erpsync: ``notice`` (the ERP sandbox posts the
user-event script's signed notice to the receiver) or ``reader`` (notices switched off while the change is made, so
only the change reader, `erpsync poll` or the scheduled poll-netsuite flow, can find it). A watcher polls the shop
sandbox's views and notes when each expected change first shows there: the delay from the ERP's answer to the shop.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import select

from erpsync.change_intake import notice_body, notice_delivery_id
from erpsync.errors import ConfigError
from erpsync.ledger import DONE_STATES, InboxEvent, Ledger
from erpsync.mapping import find_mapping
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.systems.netsuite.webhooks import notice_headers
from erpsync_dev.processes import python_module
from erpsync_dev.stock_counts import count_stock, location_quantities

NOTICE, READER = "notice", "reader"
PATHS = (NOTICE, READER)
# Internal ids of NetSuite's lists in the ERP sandbox (erpsync_dev/sandboxes/netsuite/options.py: shipMethod).
CARRIERS = (("913", "UPS"), ("914", "FedEx"), ("915", "USPS"))
# Location ids of the location map (mappings/lookups/netsuite_location_to_shopify_location.csv).
LOCATION_MAP = PROJECT_DIR / "mappings" / "lookups" / "netsuite_location_to_shopify_location.csv"
# The order mapping's fee and fallback items (custom line, gift card, shipping, …) are 900 and up: never shipped.
FIRST_FEE_ITEM = 900
TERMINAL = (*DONE_STATES, "failed")


@dataclass
class Change:
    """One change made in the ERP and what the shop must show for it."""

    kind: str  # "shipment" | "stock" | "price"
    path: str  # NOTICE | READER
    label: str  # ids and SKUs only: printed, so never a customer's data
    made_at: float = 0.0  # time.monotonic() when the ERP answered the write
    seen_at: float | None = None  # when the shop first showed it

    @property
    def delay(self) -> float | None:
        return None if self.seen_at is None else self.seen_at - self.made_at


@dataclass
class Shipment(Change):
    order_id: int = 0  # the shop's order id
    sales_order: str = ""  # the ERP's internal id of its sales order
    lines: tuple[tuple[str, int], ...] = ()  # (shop line item id, quantity)
    carrier: tuple[str, str] = CARRIERS[0]
    tracking: tuple[str, ...] = ()
    external_id: str = ""
    fulfillment_id: str | None = None  # the ERP's internal id once made
    items_moved: int = 0  # distinct items on its lines: each gets a stock-move notice (the script, stock.py)

    @property
    def notices(self) -> int:
        """Notices its save posts when notices are on: its own, and one per item whose stock it moves."""
        return 1 + self.items_moved

    def shop_shape(self) -> tuple:
        """What the shop's fulfillment must be: its lines, tracking numbers and carrier."""
        return (tuple(sorted(self.lines)), tuple(sorted(self.tracking)), self.carrier[1])


@dataclass
class StockCount(Change):
    sku: str = ""
    variant_id: int = 0
    # ERP location id → (quantity on hand counted, quantity committed as the ERP holds it when counted)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    price: Decimal = Decimal(0)  # the item's Base Price level, as the ERP holds it after the write
    msrp: Decimal | None = None  # its MSRP level (the shop's compare-at price), when it has one
    item_id: str | None = None  # the ERP's internal id of the item once known
    item_saved: bool = False  # the item was saved (new, or its prices changed): a change of the item itself
    adjustment_id: str | None = None  # the inventory adjustment that moved its stock to the count, if any did

    @property
    def notices(self) -> int:
        """Notices the count posts when notices are on: the item's and its prices' when it was saved, one of the
        adjustment's stock move."""
        return (2 if self.item_saved else 0) + (1 if self.adjustment_id is not None else 0)


def safety_buffer(mappings_dir=PROJECT_DIR / "mappings") -> int:
    """The safety buffer the stock mapping keeps back from the shop: the rule is configuration, read where it is set."""
    mapping = find_mapping(mappings_dir, "netsuite", "inventoryItem.changed")
    for rule in mapping.config.fields:
        found = re.search(r"set\s+safety_buffer\s*=\s*(\d+)", rule.template.text if rule.template else "")
        if found:
            return int(found.group(1))
    raise ConfigError(f"{mapping.path}: no '{{% set safety_buffer = N %}}' in its available rule: the check cannot "
                      "say what the shop should hold")


def location_map() -> dict[str, str]:
    """ERP location id → Shopify location gid, as the stock mapping reads it."""
    rows = LOCATION_MAP.read_text(encoding="utf-8").splitlines()[1:]
    return dict(row.split(",", 1) for row in rows if row.strip())


class Warehouse:
    """A warehouse user of the ERP: ships sales orders and counts stock through NetSuite's REST API, and switches the
    user-event script's notices on or off (the sandbox's ``/_sandbox/notices``)."""

    def __init__(self, erp: NetSuiteClient, erp_url: str, http: httpx.Client, *, receiver_url: str, secret: str):
        self.erp, self.erp_url, self.http = erp, erp_url, http
        self.receiver_url, self.secret = receiver_url, secret
        self.path = READER

    def notices(self, path: str) -> dict[str, Any]:
        """Notices on (``NOTICE``) or off (``READER``) for the changes made from now on; the sandbox's counts."""
        body = ({"url": f"{self.receiver_url}/webhooks/netsuite", "secret": self.secret,
                 "types": ["itemFulfillment", "inventoryItem"]} if path == NOTICE else {"url": None})
        self.path = path
        return self.http.post(f"{self.erp_url}/_sandbox/notices", json=body).raise_for_status().json()

    def notice_counts(self) -> dict[str, int]:
        state = self.http.get(f"{self.erp_url}/_sandbox/notices").raise_for_status().json()
        return {k: state[k] for k in ("sent", "refused", "failed")}

    def ship(self, shipment: Shipment) -> Shipment:
        """Make the item fulfillment (NetSuite's transform of the sales order) with its carrier and packages."""
        body = {"createdFrom": {"id": shipment.sales_order},
                "item": {"items": [{"custcol_erpsync_line_key": key, "quantity": quantity}
                                   for key, quantity in shipment.lines]},
                "shipMethod": {"id": shipment.carrier[0], "refName": shipment.carrier[1]},
                "package": {"items": [{"packageTrackingNumber": number} for number in shipment.tracking]}}
        shipment.fulfillment_id = self.erp.fulfil(shipment.external_id, body)
        shipment.made_at = time.monotonic()
        made = self.erp.get("itemFulfillment", shipment.fulfillment_id, expand_sub_resources=True) or {}
        shipment.items_moved = len({str((line.get("item") or {}).get("id"))
                                    for line in (made.get("item") or {}).get("items") or []})
        return shipment

    def count(self, stock: StockCount) -> StockCount:
        """Count the item's stock as NetSuite takes a count: an inventory adjustment by each location's difference
        (the item's quantities are computed from its transactions and cannot be written). The item itself is saved
        first when it is new or its price levels change: then there are two changes, the item's and the stock's."""
        external_id = self.item_external_id(stock)
        existing = self.erp.get("inventoryItem", f"eid:{external_id}")
        if existing is None or stock.msrp is not None:
            prices = [{"priceLevel": {"id": "1", "refName": "Base Price"}, "price": float(stock.price)}]
            if stock.msrp is not None:
                prices.append({"priceLevel": {"id": "7", "refName": "MSRP"}, "price": float(stock.msrp)})
            # The item of the shop's variant, under the external id the way in gives it (shopify_product_to_…).
            stock.item_id = self.erp.upsert("inventoryItem", external_id, {"itemId": stock.sku,
                                                                          "price": {"items": prices}})
            stock.item_saved = True
        else:
            stock.item_id = str(existing["id"])
        counted = {location: on_hand for location, (on_hand, _) in stock.counts.items()}
        stock.adjustment_id, _ = count_stock(self.erp, stock.item_id, counted,
                                             f"warehouse-count-{stock.variant_id}-{time.time_ns()}")
        stock.made_at = time.monotonic()
        # A count moves on hand only; committed is what the ERP's open orders commit of it, read back.
        held = location_quantities(self.erp.get("inventoryItem", stock.item_id, expand_sub_resources=True))
        stock.counts = {location: (on_hand, int(held.get(location, (0, 0))[1]))
                        for location, on_hand in counted.items()}
        return stock

    @staticmethod
    def item_external_id(stock: StockCount) -> str:
        return f"shopify-variant-{stock.variant_id}"

    def renotify(self, change: Change, http: httpx.Client) -> list[int]:
        """Post the change's notices to the receiver again, signed as the script signs them: what a script that
        retried, or a notice delivered twice, gives. The receiver's answers."""
        notices = []  # (notice's record type, id, external id, the saved record's type and id, cause)
        if isinstance(change, Shipment):
            notices.append(("itemFulfillment", change.fulfillment_id, change.external_id, "itemFulfillment",
                            change.fulfillment_id, None))
        else:
            assert isinstance(change, StockCount)
            external_id = self.item_external_id(change)
            if change.item_saved:
                notices += [(kind, change.item_id, external_id, "inventoryItem", change.item_id, None)
                            for kind in ("inventoryItem", "price")]
            if change.adjustment_id is not None:
                cause = {"recordType": "inventoryadjustment", "id": change.adjustment_id}
                notices.append(("inventoryItem", change.item_id, external_id, "inventoryAdjustment",
                                change.adjustment_id, cause))
        answers = []
        for kind, internal_id, external_id, saved_type, saved_id, cause in notices:
            record = self.erp.get(saved_type, str(saved_id)) or {}
            modified = datetime.fromisoformat(str(record["lastModifiedDate"]).replace("Z", "+00:00"))
            body = notice_body(kind, str(internal_id), external_id, modified, cause)
            delivery_id = notice_delivery_id("netsuite", kind, str(internal_id), modified,
                                             cause["id"] if cause else None)
            headers = {**notice_headers(self.secret, delivery_id, body), "Content-Type": "application/json"}
            try:
                answers.append(http.post(f"{self.receiver_url}/webhooks/netsuite", content=body,
                                         headers=headers).status_code)
            except httpx.HTTPError:
                answers.append(0)  # the receiver is down (chaos kills it): the reader still finds the change
        return answers


def settle_seconds(env: dict[str, str]) -> float:
    """How old a change must be before the change reader reads it (ERPSYNC_NETSUITE_CHANGE_SETTLE_SECONDS)."""
    raw = env.get("ERPSYNC_NETSUITE_CHANGE_SETTLE_SECONDS", "").strip()
    try:
        return float(raw) if raw else float(NetSuiteSettings.model_fields["change_settle_seconds"].default)
    except ValueError:
        raise ConfigError(f"ERPSYNC_NETSUITE_CHANGE_SETTLE_SECONDS: {raw!r} is not a number of seconds") from None


def final_changes(changes: list[Change]) -> list[Change]:
    """What the shop must end with: every shipment, and of each SKU only its latest count."""
    latest: dict[str, StockCount] = {}
    for change in changes:
        if isinstance(change, StockCount) and change.made_at:
            if change.sku not in latest or change.made_at > latest[change.sku].made_at:
                latest[change.sku] = change
    return [c for c in changes if isinstance(c, Shipment)] + list(latest.values())


# --- what to change ---------------------------------------------------------------------------------------------


def shippable_orders(erp_url: str, http: httpx.Client, erp: NetSuiteClient,
                     order_ids: Iterable[int]) -> dict[int, tuple[str, list[tuple[str, int]]]]:
    """Shop order id → (the ERP's sales order id, its shippable lines as (shop line item id, quantity)), for the
    given orders the ERP holds: lines of real items only (fee and fallback items are never shipped)."""
    wanted = {f"shopify-order-{o}": o for o in order_ids}
    records = http.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).raise_for_status().json()
    found = {}
    for record in records["records"]:
        order_id = wanted.get(record["external_id"] or "")
        if order_id is None:
            continue
        order = erp.get("salesOrder", str(record["internal_id"]), expand_sub_resources=True) or {}
        lines = [(str(line["custcol_erpsync_line_key"]), int(line["quantity"]))
                 for line in (order.get("item") or {}).get("items") or []
                 if line.get("custcol_erpsync_line_key") and int(str((line.get("item") or {}).get("id") or 0))
                 < FIRST_FEE_ITEM]
        if lines:
            found[order_id] = (str(record["internal_id"]), lines)
    return found


def plan_shipments(orders: dict[int, tuple[str, list[tuple[str, int]]]], paths: list[str], rng: random.Random,
                   *, split_first: bool = True) -> list[Shipment]:
    """One shipment per path given, order by order; the first order with more than one unit ships in two parts (a
    split shipment), the second part by the same path. Tracking numbers are made up, in each carrier's shape."""
    shipments: list[Shipment] = []
    candidates = sorted(orders)
    split_done = not split_first
    for order_id, path in zip(candidates, paths):
        sales_order, lines = orders[order_id]
        units = sum(q for _, q in lines)
        parts: list[list[tuple[str, int]]] = [lines]
        if not split_done and units > 1:
            split_done = True
            if len(lines) > 1:
                parts = [lines[:1], lines[1:]]
            else:
                key, quantity = lines[0]
                parts = [[(key, quantity - 1)], [(key, 1)]]
        for n, part in enumerate(parts, start=1):
            carrier = CARRIERS[rng.randrange(len(CARRIERS))]
            packages = 2 if n == 1 and len(parts) > 1 else 1
            tracking = tuple(_tracking_number(carrier[1], rng) for _ in range(packages))
            shipments.append(Shipment(kind="shipment", path=path, label=f"order {order_id} shipment {n}/{len(parts)}",
                                      order_id=order_id, sales_order=sales_order, lines=tuple(part), carrier=carrier,
                                      tracking=tracking, external_id=f"warehouse-shipment-{order_id}-{n}"))
    return shipments


def _tracking_number(carrier: str, rng: random.Random) -> str:
    if carrier == "UPS":
        return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))
    if carrier == "FedEx":
        return "".join(rng.choice("0123456789") for _ in range(12))
    return "9400" + "".join(rng.choice("0123456789") for _ in range(18))


def plan_stock(variants: list[dict[str, Any]], known_skus: Iterable[str], paths: list[str], rng: random.Random, *,
               buffer: int, price_changes: int = 1) -> list[StockCount]:
    """A stock count per path given, each of another SKU the shop sells and the ERP knows; the first
    ``price_changes`` also change the item's price (a new base price and an MSRP). Every count makes each location's
    available quantity differ from what the shop holds, so its arrival can be seen."""
    known = set(known_skus)
    shop = {v["sku"]: v for v in variants if v.get("sku") in known}
    skus = sorted(shop)
    if len(skus) < len(paths):
        raise ConfigError(f"the shop sells {len(skus)} SKUs the ERP knows; {len(paths)} stock counts need as many")
    chosen = rng.sample(skus, len(paths))
    counts = []
    for n, (sku, path) in enumerate(zip(chosen, paths)):
        variant = shop[sku]
        price = Decimal(variant["price"])
        msrp = None
        if n < price_changes:
            price = price + Decimal("1.00")
            msrp = price + Decimal("5.00")
        levels = {}
        for location in location_map():
            # Committed is the ERP's own (its open orders'): the count sets on hand; the check reads it back.
            levels[location] = (rng.randrange(3, 60) + buffer, 0)
        counts.append(StockCount(kind="price" if msrp is not None else "stock", path=path,
                                 label=f"{sku} {'stock and price' if msrp is not None else 'stock'}", sku=sku,
                                 variant_id=int(variant["id"].rsplit("/", 1)[1]), counts=levels, price=price,
                                 msrp=msrp))
    return counts


# --- what the shop must show ------------------------------------------------------------------------------------


class ShopView:
    """The shop sandbox's fulfillments, stock and prices (its ``/_sandbox`` views: ids, SKUs and numbers only)."""

    def __init__(self, shop_url: str, http: httpx.Client):
        self.shop_url, self.http = shop_url, http

    def read(self) -> tuple[list[dict], dict[tuple[str, str], int], dict[str, dict]]:
        fulfillments = self.http.get(f"{self.shop_url}/_sandbox/fulfillments").raise_for_status().json()
        inventory = self.http.get(f"{self.shop_url}/_sandbox/inventory").raise_for_status().json()
        variants = self.http.get(f"{self.shop_url}/_sandbox/variants").raise_for_status().json()
        levels = {(lv["sku"], lv["locationId"]): lv["available"] for lv in inventory["levels"]}
        return fulfillments["fulfillments"], levels, {v["sku"]: v for v in variants["variants"]}

    def variants(self) -> list[dict[str, Any]]:
        return self.http.get(f"{self.shop_url}/_sandbox/variants").raise_for_status().json()["variants"]


def _shape(fulfillment: dict[str, Any]) -> tuple:
    lines = tuple(sorted((line["lineItemId"].rsplit("/", 1)[1], line["quantity"]) for line in fulfillment["lineItems"]))
    tracking = fulfillment.get("trackingInfo") or []
    numbers = tuple(sorted(t["number"] for t in tracking if t.get("number")))
    companies = {t.get("company") for t in tracking}
    return lines, numbers, companies.pop() if len(companies) == 1 else tuple(sorted(map(str, companies)))


def arrived(change: Change, fulfillments: list[dict], levels: dict, variants: dict, *, buffer: int) -> bool:
    """Whether the shop shows ``change`` now."""
    if isinstance(change, Shipment):
        gid = f"gid://shopify/Order/{change.order_id}"
        return any(f["orderId"] == gid and _shape(f) == change.shop_shape() for f in fulfillments)
    assert isinstance(change, StockCount)
    return not stock_problems(change, levels, variants, buffer=buffer)


def stock_problems(stock: StockCount, levels: dict, variants: dict, *, buffer: int) -> list[str]:
    problems = []
    for location, gid in location_map().items():
        on_hand, committed = stock.counts[location]
        want = max(on_hand - committed - buffer, 0)
        got = levels.get((stock.sku, gid))
        if got != want:
            problems.append(f"{stock.sku} at {gid}: {got} available, the ERP's count gives {want} "
                            f"({on_hand} on hand − {committed} committed − buffer {buffer})")
    variant = variants.get(stock.sku) or {}
    if variant.get("price") is None or Decimal(variant["price"]) != stock.price:
        problems.append(f"{stock.sku}: price {variant.get('price')}, the ERP's base price is {stock.price}")
    if stock.msrp is not None and (variant.get("compareAtPrice") is None
                                   or Decimal(variant["compareAtPrice"]) != stock.msrp):
        problems.append(f"{stock.sku}: compare-at price {variant.get('compareAtPrice')}, the ERP's MSRP is "
                        f"{stock.msrp}")
    return problems


def check_shop(shop: ShopView, changes: list[Change], *, buffer: int) -> list[str]:
    """Differences between the shop and the changes: exactly the shipments' fulfillments (none missing, none twice,
    none on an order not shipped), each stock count's available quantity per location, and the items' prices."""
    fulfillments, levels, variants = shop.read()
    problems: list[str] = []
    shipments = [c for c in changes if isinstance(c, Shipment)]
    wanted: dict[str, Counter] = {}
    for s in shipments:
        wanted.setdefault(f"gid://shopify/Order/{s.order_id}", Counter())[s.shop_shape()] += 1
    held: dict[str, Counter] = {}
    for f in fulfillments:
        held.setdefault(f["orderId"], Counter())[_shape(f)] += 1
    for order in sorted(set(wanted) | set(held)):
        want, got = wanted.get(order, Counter()), held.get(order, Counter())
        number = order.rsplit("/", 1)[1]
        if order not in wanted:
            problems.append(f"order {number}: {sum(got.values())} fulfillment(s) in the shop, none shipped in the ERP")
            continue
        for shape, n in (want - got).items():
            problems.append(f"order {number}: shipment {shape} missing in the shop")
        for shape, n in (got - want).items():
            what = "twice" if shape in want else "not shipped in the ERP"
            problems.append(f"order {number}: {n} fulfillment(s) {shape} {what}")
    for stock in (c for c in changes if isinstance(c, StockCount)):
        problems += stock_problems(stock, levels, variants, buffer=buffer)
    return problems


class ShopWatcher:
    """Polls the shop in a thread of its own from before the first change is made, noting when each change first
    shows there: a change's delay is then from the ERP's answer to the shop, whatever the caller does meanwhile."""

    def __init__(self, shop: ShopView, changes: list[Change], *, buffer: int, interval: float = 0.25):
        self.shop, self.changes, self.buffer, self.interval = shop, changes, buffer, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shop-watcher", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> ShopWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.look()
            except httpx.HTTPError as exc:  # the shop is being restarted: look again
                self.error = exc
            self._stop.wait(self.interval)

    def look(self) -> None:
        fulfillments, levels, variants = self.shop.read()
        now = time.monotonic()
        for change in list(self.changes):
            if change.seen_at is None and change.made_at and arrived(change, fulfillments, levels, variants,
                                                                     buffer=self.buffer):
                change.seen_at = now

    def wait(self, changes: list[Change] | None = None, *, timeout: float,
             progress: Callable[[str], None] | None = None, alive: Callable[[], None] | None = None) -> bool:
        """Until every one of ``changes`` (default: all) has shown in the shop; False at the timeout."""
        watched = self.changes if changes is None else changes
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            if alive is not None:
                alive()
            if progress is not None:
                line = progress_line(watched)
                if line != last:
                    progress(line)
                    last = line
            if all(c.seen_at is not None for c in watched):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(self.interval)


def progress_line(changes: list[Change]) -> str:
    parts = []
    for kind, name in (("shipment", "fulfillments"), ("stock", "stock counts"), ("price", "price changes")):
        of_kind = [c for c in changes if c.kind == kind]
        if of_kind:
            parts.append(f"{name} {sum(c.seen_at is not None for c in of_kind)}/{len(of_kind)}")
    return f"  in the shop: {', '.join(parts)}"


# --- the ways in ------------------------------------------------------------------------------------------------


def run_poll(env: dict[str, str], *, timeout: float = 120) -> tuple[int, str, str]:
    """One pass of the change reader by command (`erpsync poll`), as an operator runs it: (exit code, its counts,
    its log lines)."""
    result = subprocess.run(python_module("erpsync", "poll"), cwd=env.get("ERPSYNC_PROJECT_DIR", os.getcwd()),
                            env=env, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout.strip(), result.stderr.strip()


def netsuite_events(ledger: Ledger) -> Counter:
    """States of the inbox events that came out of the ERP (either way in)."""
    with ledger.session() as session:
        rows = session.exec(select(InboxEvent.state).where(InboxEvent.source == "netsuite")).all()
    return Counter(rows)


def wait_for_events(ledger: Ledger, *, timeout: float, alive: Callable[[], None] | None = None) -> Counter:
    """Wait until every event out of the ERP has finished (synced, duplicate, skipped, superseded or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        states = netsuite_events(ledger)
        if all(state in TERMINAL for state in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]
