"""The Tryton demo's way back: the warehouse receives stock and ships orders in Tryton, and the shop must show it.

What a warehouse clerk does in Tryton, through its JSON-RPC as Tryton's own client does: goods received into the
warehouse WH (a stock move from lost and found to WH's storage zone, done), then the shipments of a few of the sales
erpsync wrote, each through its buttons ``assign_try`` (refused unless the stock is there), ``pick``, ``pack``,
``do``. Tryton posts no notices (docs/tryton.md, "The way back"), so the change reader brings the changes in:
`erpsync poll --erp tryton` once they are older than the reader's settle time (the poll-tryton deployment also runs
every minute). Then the shop sandbox must end with exactly:

- one fulfillment per shipped order, of the line items the shipment's moves name (by SKU = product code), with the
  shipped quantities, and no fulfillment of an order not shipped (Tryton keeps no tracking numbers: none is checked);
- per product whose stock moved, the WH location's available quantity by the stock mapping's rule: the smaller of
  Tryton's ``quantity`` and ``forecast_quantity`` in WH, less the safety buffer, never below 0. Tryton's quantities
  are read back at the end through the same context the reader uses (``locations: [WH]``).
"""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import time
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import select

from erpsync.errors import ConfigError
from erpsync.ledger import InboxEvent, Ledger
from erpsync.mapping import find_mapping
from erpsync.systems.tryton.client import PRODUCT, SALE, SHIPMENT, TrytonClient
from erpsync_dev.processes import python_module
from erpsync_dev.scenarios.demo import DEMO_SKUS

if TYPE_CHECKING:
    from pathlib import Path

    from erpsync_dev.stack import LocalStack, StackConfig

WAREHOUSE = "WH"  # the seed's warehouse (Tryton's default one)
SHIPPED_ORDERS = 4
EXTRA_SKUS = 2  # products received that no shipped order takes: a level raised by stock alone
TERMINAL = ("synced", "duplicate", "superseded", "skipped", "failed")


def drive_tryton_way_back(config: StackConfig, stack: LocalStack, scenario: dict, *, timeout: float) -> bool:
    print("\n· the way back: the warehouse receives stock and ships orders in Tryton (its JSON-RPC, as its client "
          "does)", flush=True)
    rng = random.Random(config.seed)
    mappings = config.effective_mappings_dir
    buffer = safety_buffer(mappings)
    location = warehouse_locations(mappings)[WAREHOUSE]
    ledger = Ledger.connect(config.ledger_url)
    try:
        # The clerk's calls take the ERP slot the workers share: on SQLite, one call at a time.
        with TrytonClient.from_env(config.ledger_url, stack.env) as tryton, httpx.Client(timeout=60) as http:
            clerk = Clerk(tryton)
            shipped = ship_orders(clerk, ledger, scenario, rng)
            received = receive_plan(shipped, rng)
            for code, quantity in received.items():
                clerk.receive(code, quantity)
                print(f"    received {quantity} × {code} into {WAREHOUSE}", flush=True)
            for order_id, shipment in shipped.items():
                clerk.ship(shipment["id"])
                lines = ", ".join(f"{q:g} × {code}" for code, q in shipment["lines"])
                print(f"    shipped order {order_id} (shipment {shipment['id']}): {lines}", flush=True)
            moved = sorted({*received, *(code for s in shipped.values() for code, _ in s["lines"])})
            settle = float(stack.env.get("ERPSYNC_TRYTON_CHANGE_SETTLE_SECONDS") or 10)
            print(f"  the change reader, by command (`erpsync poll --erp tryton`; the poll-tryton flow runs it every "
                  f"minute too), once the changes are {settle:g} s old (ERPSYNC_TRYTON_CHANGE_SETTLE_SECONDS):",
                  flush=True)
            time.sleep(settle + 1)
            code, output, errors = run_poll(stack.env)
            for line in output.splitlines():
                print(f"    {line}", flush=True)
            if code != 0:
                print(f"! erpsync poll --erp tryton exited {code}:\n{errors}")
                return False
            print("· waiting for the shop sandbox to show each change", flush=True)
            wanted_levels = {code: available(clerk.stock(code), buffer) for code in moved}
            shop = ShopState(config.shop_url, http)
            problems = shop.wait(shipped, wanted_levels, location, timeout=timeout, alive=stack.group.check_alive)
            states = wait_for_tryton_events(ledger, timeout=60, alive=stack.group.check_alive)
    finally:
        ledger.close()
    failed = states.get("failed", 0)
    if failed:
        problems.append(f"{failed} events out of Tryton failed (erpsync dlq list names them)")
    if problems:
        print("\nWay-back check FAILED:\n" + "\n".join(f"  - {p}" for p in problems))
        return False
    print(f"\nWay-back check passed: the shop sandbox holds exactly the {len(shipped)} fulfillments of the shipments "
          f"done in Tryton, each once, with the shipped line items and quantities, and no fulfillment of an order "
          f"not shipped; the {location.rsplit('/', 1)[1]} location's available quantity of each of the "
          f"{len(wanted_levels)} products whose stock moved is Tryton's min(quantity, forecast) − buffer {buffer}. "
          f"{sum(states.values())} events out of Tryton: {dict(sorted(states.items()))}.")
    return True


class Clerk:
    """A warehouse clerk's calls in Tryton."""

    def __init__(self, tryton: TrytonClient):
        self.rpc = tryton.rpc
        [warehouse] = self.rpc.model("stock.location", "search_read", [["code", "=", WAREHOUSE]], 0, 1, None,
                                     ["id", "storage_location"])
        self.warehouse, self.storage = warehouse["id"], warehouse["storage_location"]
        [self.lost_found] = self.rpc.model("stock.location", "search", [["type", "=", "lost_found"]], 0, 1, None)
        self._products: dict[str, dict[str, Any]] = {}

    def product(self, code: str) -> dict[str, Any]:
        if code not in self._products:
            rows = self.rpc.model(PRODUCT, "search_read", [["code", "=", code]], 0, 1, None, ["id", "default_uom"])
            if not rows:
                raise ConfigError(f"Tryton has no product {code}")
            self._products[code] = rows[0]
        return self._products[code]

    def shipment_of(self, sale_id: int) -> dict[str, Any] | None:
        """The sale's one waiting shipment: its id and lines (product code, quantity); None when it has none."""
        [sale] = self.rpc.model(SALE, "read", [sale_id], ["shipments"])
        if len(sale["shipments"]) != 1:
            return None
        [shipment] = self.rpc.model(SHIPMENT, "read", sale["shipments"], ["id", "state", "outgoing_moves"])
        if shipment["state"] != "waiting":
            return None
        moves = self.rpc.model("stock.move", "read", shipment["outgoing_moves"], ["product", "quantity"])
        codes = {row["id"]: row["code"] for row in self.rpc.model(
            PRODUCT, "read", sorted({m["product"] for m in moves}), ["code"])}
        return {"id": shipment["id"], "lines": [(codes[m["product"]], float(m["quantity"])) for m in moves]}

    def receive(self, code: str, quantity: int) -> None:
        product = self.product(code)
        [move] = self.rpc.model("stock.move", "create", [{
            "product": product["id"], "unit": product["default_uom"], "quantity": quantity,
            "from_location": self.lost_found, "to_location": self.storage, "planned_date": date.today()}])
        self.rpc.model("stock.move", "do", [move])

    def ship(self, shipment_id: int) -> None:
        # assign_try reserves the goods only if they are in stock (assign_force would ship stock that is not there);
        # like every button it answers nothing: the state says whether it did.
        self.rpc.model(SHIPMENT, "assign_try", [shipment_id])
        [shipment] = self.rpc.model(SHIPMENT, "read", [shipment_id], ["state"])
        if shipment["state"] != "assigned":
            raise ConfigError(f"Tryton could not assign shipment {shipment_id} ({shipment['state']}): not enough "
                              f"stock in {WAREHOUSE}")
        for button in ("pick", "pack", "do"):
            self.rpc.model(SHIPMENT, button, [shipment_id])
        [shipment] = self.rpc.model(SHIPMENT, "read", [shipment_id], ["state"])
        if shipment["state"] != "done":
            raise ConfigError(f"Tryton shipment {shipment_id} is {shipment['state']} after do")

    def stock(self, code: str) -> tuple[Decimal, Decimal]:
        """The product's quantity and forecast quantity in the warehouse, as the change reader reads them."""
        [row] = self.rpc.model(PRODUCT, "read", [self.product(code)["id"]], ["quantity", "forecast_quantity"],
                               context={"locations": [self.warehouse]})
        return Decimal(str(row["quantity"])), Decimal(str(row["forecast_quantity"]))


def ship_orders(clerk: Clerk, ledger: Ledger, scenario: dict, rng: random.Random) -> dict[str, dict[str, Any]]:
    """A few synced orders with their sale's waiting shipment (order id → shipment, its lines, the order's items)."""
    synced = [o["order_id"] for o in scenario["orders"] if o["outcome"] == "synced"]
    sales = {s.entity_id: int(s.to_id) for s in ledger.entities()
             if s.entity_type == "order" and s.to_system == "tryton"}
    chosen: dict[str, dict[str, Any]] = {}
    for order_id in rng.sample(synced, k=len(synced)):
        shipment = clerk.shipment_of(sales[order_id]) if order_id in sales else None
        if shipment and shipment["lines"]:
            shipment["items"] = line_items(ledger, order_id)
            chosen[order_id] = shipment
        if len(chosen) == SHIPPED_ORDERS:
            break
    if not chosen:
        raise ConfigError("no synced order has a waiting shipment in Tryton to ship")
    return chosen


def line_items(ledger: Ledger, order_id: str) -> dict[str, str]:
    """SKU → the shop's line item id, from the order's webhooks in the inbox (ids do not change between versions)."""
    items: dict[str, str] = {}
    for event in ledger.events_about(entity=f"order/{order_id}", source="shopify", limit=20):
        for item in json.loads(event.body).get("line_items") or []:
            if item.get("sku"):
                items[item["sku"]] = str(item["id"])
    return items


def receive_plan(shipped: dict[str, dict[str, Any]], rng: random.Random) -> dict[str, int]:
    """What arrives: enough of each shipped product for the shipments and a margin, and a few products only stocked."""
    needed: Counter = Counter()
    for shipment in shipped.values():
        for code, quantity in shipment["lines"]:
            needed[code] += quantity
    plan = {code: int(quantity) + rng.randint(3, 15) for code, quantity in sorted(needed.items())}
    others = [sku for sku in DEMO_SKUS if sku not in plan]
    for code in rng.sample(others, k=min(EXTRA_SKUS, len(others))):
        plan[code] = rng.randint(5, 40)
    return plan


def available(stock: tuple[Decimal, Decimal], buffer: int) -> int:
    quantity, forecast = stock
    return max(int(min(quantity, forecast)) - buffer, 0)


class ShopState:
    """The shop sandbox's fulfillments and levels (its ``/_sandbox`` views: ids, SKUs and numbers only)."""

    def __init__(self, shop_url: str, http: httpx.Client):
        self.shop_url, self.http = shop_url, http

    def problems(self, shipped: dict[str, dict[str, Any]], levels: dict[str, int], location: str) -> list[str]:
        fulfillments = self.http.get(f"{self.shop_url}/_sandbox/fulfillments").raise_for_status().json()
        inventory = self.http.get(f"{self.shop_url}/_sandbox/inventory").raise_for_status().json()
        held: dict[str, list[Counter]] = {}
        for f in fulfillments["fulfillments"]:
            if f["status"] == "SUCCESS":
                held.setdefault(f["orderId"].rsplit("/", 1)[1], []).append(Counter({
                    line["lineItemId"].rsplit("/", 1)[1]: line["quantity"] for line in f["lineItems"]}))
        problems = []
        for order_id in sorted(set(held) - set(shipped)):
            problems.append(f"order {order_id}: {len(held[order_id])} fulfillment(s) in the shop, not shipped in Tryton")
        for order_id, shipment in shipped.items():
            want = Counter()
            for code, quantity in shipment["lines"]:
                want[shipment["items"].get(code, f"?{code}")] += int(quantity)
            got = held.get(order_id, [])
            if got != [want]:
                problems.append(f"order {order_id}: the shop holds {[dict(g) for g in got]}, Tryton shipped "
                                f"{dict(want)} (line item id: quantity)")
        by_sku = {lv["sku"]: lv["available"] for lv in inventory["levels"] if lv["locationId"] == location}
        for code, want in levels.items():
            if by_sku.get(code) != want:
                problems.append(f"{code} at {location}: {by_sku.get(code)} available, Tryton's stock gives {want}")
        return problems

    def wait(self, shipped: dict[str, dict[str, Any]], levels: dict[str, int], location: str, *, timeout: float,
             alive) -> list[str]:
        deadline = time.monotonic() + timeout
        shown = None
        while True:
            alive()
            problems = self.problems(shipped, levels, location)
            left = len(problems)
            if left != shown:
                print(f"  {len(shipped) + len(levels) - left}/{len(shipped) + len(levels)} changes in the shop",
                      flush=True)
                shown = left
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.5)


def run_poll(env: dict[str, str], *, timeout: float = 120) -> tuple[int, str, str]:
    """One pass of Tryton's change reader by command, as an operator runs it."""
    result = subprocess.run(python_module("erpsync", "poll", "--erp", "tryton"), cwd=env["ERPSYNC_PROJECT_DIR"],
                            env=env, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout.strip(), result.stderr.strip()


def wait_for_tryton_events(ledger: Ledger, *, timeout: float, alive) -> Counter:
    """Wait until every event out of Tryton has finished; their states."""
    deadline = time.monotonic() + timeout
    while True:
        alive()
        with ledger.session() as session:
            states = Counter(session.exec(select(InboxEvent.state).where(InboxEvent.source == "tryton")).all())
        if all(state in TERMINAL for state in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def safety_buffer(mappings_dir: Path) -> int:
    """The buffer the stock mapping keeps back from the shop, read from its rule (configuration, not a copy)."""
    mapping = find_mapping(mappings_dir, "tryton", "product.product.changed")
    for rule in mapping.config.fields:
        found = re.search(r"set\s+safety_buffer\s*=\s*(\d+)", rule.template.text if rule.template else "")
        if found:
            return int(found.group(1))
    raise ConfigError(f"{mapping.path}: no '{{% set safety_buffer = N %}}' in its available rule")


def warehouse_locations(mappings_dir: Path) -> dict[str, str]:
    """Tryton warehouse code → Shopify location gid, as the stock mapping reads it."""
    with open(mappings_dir / "lookups" / "tryton_warehouse_to_shopify_location.csv", newline="") as table:
        return {row["tryton_warehouse"]: row["shopify_location"] for row in csv.DictReader(table)}
