"""The way back from a real Tryton (issue 15, item 3): a shipment done in Tryton and stock moved in a warehouse, read
by the change reader (what `erpsync poll --erp tryton` and the poll-tryton flow run) into the inbox, through the
pipeline into the shop sandbox (a separate process): one fulfillment per shipment, levels per warehouse by the rule
of mappings/tryton/tryton_stock_to_shopify_inventory_level.yaml, nothing sent back that came from the shop."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from erpsync.change_intake import ChangeIntake, PassResult
from erpsync.mapping import handled_topics
from erpsync.pipeline import SyncPipeline
from erpsync.settings import PROJECT_DIR
from erpsync.systems import open_writer
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.writer import ShopifyWriter
from erpsync.systems.tryton.client import PRODUCT, SALE, SHIPMENT
from erpsync_dev.tryton_server import RunningTryton, tryton_server
from tests.conftest import shopify_order_sample
from tests.inline_runs import sync_or_raise as sync
from tests.sandbox_procs import start_shop_sandbox

MAPPINGS = PROJECT_DIR / "mappings" / "tryton"
TOKEN = "shpat_tryton_way_back"
# The shop sandbox's locations, as mappings/tryton/lookups/tryton_warehouse_to_shopify_location.csv maps WH and EAST.
MAIN, EAST = "gid://shopify/Location/71000000001", "gid://shopify/Location/71000000002"


@pytest.fixture(scope="module")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTryton]:
    with tryton_server(Path(tmp_path_factory.mktemp("tryton-way-back"))) as running:
        yield running


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_shop_sandbox(tmp_path_factory.mktemp("shop"), "--orders", "3", "--access-token", TOKEN,
                            env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "tryton-way-back-secret"}) as base_url:
        yield base_url


@pytest.fixture
def pipeline(ledger, database_url, tryton: RunningTryton, shop: str) -> Iterator[SyncPipeline]:
    # Tryton's client as a worker opens it (from the environment); changes are read as soon as they are made.
    environ = {"ERPSYNC_TRYTON_URL": tryton.url, "ERPSYNC_TRYTON_DATABASE": tryton.database,
               "ERPSYNC_TRYTON_LOGIN": tryton.login, "ERPSYNC_TRYTON_PASSWORD": tryton.password,
               "ERPSYNC_TRYTON_CONCURRENCY_LIMIT": "1", "ERPSYNC_TRYTON_CHANGE_SETTLE_SECONDS": "0"}

    def writers(target: str) -> Any:
        if target == "shopify":
            return ShopifyWriter(ShopifyGraphQL(shop, SecretStr(TOKEN)))
        return open_writer(target, database_url, environ)

    made = SyncPipeline(ledger, MAPPINGS, writers=writers)
    yield made
    made.close()


def rpc(pipeline: SyncPipeline, model: str, method: str, *args: Any, context: dict | None = None) -> Any:
    """A call made in Tryton as its own users make it (a warehouse clerk pressing a shipment's buttons)."""
    return pipeline.writer("tryton").rpc.model(model, method, *args, context=context)


def poll(pipeline: SyncPipeline, record_type: str, start: datetime) -> PassResult:
    """One pass of Tryton's change reader over one record type, as `erpsync poll --erp tryton` makes it."""
    return ChangeIntake(pipeline.ledger, pipeline.writer("tryton"), system="tryton", record_types=[record_type],
                        handled=handled_topics(MAPPINGS), start=start).run()


def sync_all(pipeline: SyncPipeline, result: PassResult, record_id: int) -> list[tuple[int, str]]:
    """Every new event of the pass synced; the (event id, outcome) of those about ``record_id`` (the Tryton server
    serves the whole module, so a pass may also read another test's latest change)."""
    outcomes = [(event_id, sync(pipeline, event_id)) for event_id in result.new_event_ids]
    about = {event.id for event in pipeline.ledger.events_by_id(result.new_event_ids)
             if json.loads(event.body)["data"]["id"] == str(record_id)}
    return [(event_id, done) for event_id, done in outcomes if event_id in about]


def shop_order(shop: str) -> dict[str, Any]:
    """Shopify's sample order with an id of its own, held by the shop (which makes its fulfillment orders)."""
    order = shopify_order_sample()
    order["id"] = 830000000000 + uuid.uuid4().int % 10**9
    order.update(cancelled_at=None, cancel_reason=None)  # Shopify's sample is a cancelled order
    assert httpx.post(f"{shop}/_sandbox/orders", json=order).status_code == 200
    return order


def sync_order(pipeline: SyncPipeline, order: dict[str, Any]) -> int:
    """The order through the inbox into Tryton, confirmed (Tryton makes its shipment); the sale's id."""
    body = json.dumps(order).encode()
    event_id = pipeline.ledger.record_delivery(
        source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/create", shop=None, triggered_at=None,
        body=body, payload_sha256=hashlib.sha256(body).hexdigest()).event_id
    assert sync(pipeline, event_id) == "synced"
    sale = pipeline.writer("tryton").get_by_external_id(SALE, f"shopify-order-{order['id']}")
    assert sale is not None and sale["state"] == "processing"
    return sale["id"]


def shipment_of(pipeline: SyncPipeline, sale_id: int) -> int:
    shipment_id, = rpc(pipeline, SALE, "read", [sale_id], ["shipments"])[0]["shipments"]
    return shipment_id


def ship(pipeline: SyncPipeline, shipment_id: int) -> None:
    """The shipment shipped as a warehouse clerk ships it in Tryton, by its buttons."""
    for button in ("assign_force", "pick", "pack", "do"):
        rpc(pipeline, SHIPMENT, button, [shipment_id])


def shop_fulfillments(shop: str, order_id: int) -> list[dict[str, Any]]:
    return [f for f in httpx.get(f"{shop}/_sandbox/fulfillments").json()["fulfillments"]
            if f["orderId"] == f"gid://shopify/Order/{order_id}"]


def outcome(pipeline: SyncPipeline, event_id: int) -> tuple[str, str]:
    last = pipeline.ledger.outcomes(event_id)[-1]
    return last.outcome, last.reason or ""


def test_a_shipment_done_in_tryton_fulfils_the_shop_order_once_and_its_cancellation_cancels_it(
        pipeline: SyncPipeline, shop: str) -> None:
    start = datetime.now(UTC) - timedelta(seconds=2)
    order = shop_order(shop)
    shipment_id = shipment_of(pipeline, sync_order(pipeline, order))

    # Confirmed, not shipped: the shipment Tryton made is read and skipped, nothing written to the shop.
    [(event_id, done)] = sync_all(pipeline, poll(pipeline, SHIPMENT, start), shipment_id)
    assert done == "skipped" and "not shipped yet" in outcome(pipeline, event_id)[1]
    assert shop_fulfillments(shop, order["id"]) == []

    # A warehouse clerk ships it in Tryton: one event, one fulfillment of both line items (the sample's two lines
    # have one SKU, each quantity 1: each shipped move names its line item, kept on its sale line).
    ship(pipeline, shipment_id)
    shipment = pipeline.writer("tryton").get(SHIPMENT, str(shipment_id), expand_sub_resources=True)
    assert sorted(line["line_key"] for line in shipment["lines"]) == sorted(
        str(item["id"]) for item in order["line_items"])
    assert [done for _, done in sync_all(pipeline, poll(pipeline, SHIPMENT, start), shipment_id)] == ["synced"]
    [made] = shop_fulfillments(shop, order["id"])
    assert made["status"] == "SUCCESS" and made["notifyCustomer"] is True
    assert sorted((line["lineItemId"], line["quantity"]) for line in made["lineItems"]) == sorted(
        (f"gid://shopify/LineItem/{item['id']}", 1) for item in order["line_items"])
    state, = pipeline.ledger.entity_states_of("tryton", "shipment", [str(shipment_id)], "shopify")
    assert state.to_id == made["id"] and state.external_id == f"tryton-shipment-{shipment_id}"

    # Read again (the next pass's overlap; a re-read when the pass follows within the change's second and margin):
    # still one fulfillment.
    again = poll(pipeline, SHIPMENT, start)
    assert again.types[0].read >= 1
    assert {done for _, done in sync_all(pipeline, again, shipment_id)} <= {"synced", "duplicate"}
    assert shop_fulfillments(shop, order["id"]) == [made]

    # Tryton lets a done shipment be cancelled: the shop's fulfillment is cancelled, its items open again.
    rpc(pipeline, SHIPMENT, "cancel", [shipment_id])
    [(event_id, done)] = sync_all(pipeline, poll(pipeline, SHIPMENT, start), shipment_id)
    assert done == "synced" and "withdrawn" in outcome(pipeline, event_id)[1]
    assert [f["status"] for f in shop_fulfillments(shop, order["id"])] == ["CANCELLED"]


def test_erpsync_poll_reads_trytons_own_record_types_by_default(pipeline: SyncPipeline, shop: str, tryton: RunningTryton,
                                                                database_url: str) -> None:
    """The command an operator runs (and the poll-tryton flow's pass): `erpsync poll --erp tryton`, no --type."""
    start = datetime.now(UTC) - timedelta(seconds=2)
    shipment_id = shipment_of(pipeline, sync_order(pipeline, shop_order(shop)))
    ship(pipeline, shipment_id)
    env = {**os.environ, "ERPSYNC_DATABASE_URL": database_url, "ERPSYNC_MAPPINGS_DIR": str(MAPPINGS),
           "ERPSYNC_TRYTON_URL": tryton.url, "ERPSYNC_TRYTON_DATABASE": tryton.database,
           "ERPSYNC_TRYTON_LOGIN": tryton.login, "ERPSYNC_TRYTON_PASSWORD": tryton.password,
           "ERPSYNC_TRYTON_CONCURRENCY_LIMIT": "1", "ERPSYNC_TRYTON_CHANGE_SETTLE_SECONDS": "0"}
    done = subprocess.run([sys.executable, "-m", "erpsync", "poll", "--erp", "tryton", "--no-dispatch", "--from",
                           start.isoformat()], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["tryton stock.shipment.out", "tryton product.product"]
    assert tryton.password not in done.stdout + done.stderr
    topics = {(e.source, e.topic) for e in pipeline.ledger.events_by_id(list(range(1, 200)))}
    assert {("tryton", "stock.shipment.out.changed"), ("tryton", "product.product.changed")} <= topics


def test_a_crash_before_the_ledger_knew_does_not_fulfil_twice(pipeline: SyncPipeline, shop: str) -> None:
    start = datetime.now(UTC) - timedelta(seconds=2)
    order = shop_order(shop)
    shipment_id = shipment_of(pipeline, sync_order(pipeline, order))
    ship(pipeline, shipment_id)
    # The fulfillment made, and the answer lost before the ledger's commit (untracked: Tryton keeps no tracking).
    made = pipeline.writer("shopify").upsert("fulfillment", f"tryton-shipment-{shipment_id}", {
        "order": str(order["id"]), "lines": [{"lineItemId": str(item["id"]), "quantity": 1}
                                             for item in order["line_items"]]})
    outcomes = sync_all(pipeline, poll(pipeline, SHIPMENT, start), shipment_id)
    assert outcomes[-1][1] == "synced"
    assert [f["id"] for f in shop_fulfillments(shop, order["id"])] == [made]
    state, = pipeline.ledger.entity_states_of("tryton", "shipment", [str(shipment_id)], "shopify")
    assert state.to_id == made


def test_a_shipment_erpsync_made_from_a_shop_fulfillment_is_not_sent_back(pipeline: SyncPipeline, shop: str) -> None:
    start = datetime.now(UTC) - timedelta(seconds=2)
    order = shop_order(shop)
    sale_id = sync_order(pipeline, order)
    # The way in: erpsync marks the sale's shipment done for a fulfillment the shop made, with its external id.
    shipment_id = int(pipeline.writer("tryton").transform(SALE, str(sale_id), SHIPMENT, {},
                                                          external_id=f"shopify-fulfillment-{order['id']}"))
    assert rpc(pipeline, SHIPMENT, "read", [shipment_id], ["state"])[0]["state"] == "done"
    [(event_id, done)] = sync_all(pipeline, poll(pipeline, SHIPMENT, start), shipment_id)
    assert done == "skipped" and "came from Shopify" in outcome(pipeline, event_id)[1]
    assert shop_fulfillments(shop, order["id"]) == []


def stock_synced(outcomes: list[tuple[int, str]]) -> None:
    """The pass's events of the product reached the shop: the newest synced; an older one read again in the overlap
    is synced too (it reads the quantities now) or, run after a newer one, superseded by the version guard."""
    assert outcomes and outcomes[-1][1] == "synced", outcomes
    assert {done for _, done in outcomes} <= {"synced", "superseded", "duplicate"}, outcomes


def level(shop: str, sku: str, location: str) -> int:
    return next(lv["available"] for lv in httpx.get(f"{shop}/_sandbox/inventory").json()["levels"]
                if lv["sku"] == sku and lv["locationId"] == location)


def location(pipeline: SyncPipeline, **domain: str) -> int:
    found = rpc(pipeline, "stock.location", "search", [[name, "=", value] for name, value in domain.items()],
                0, None, None)
    assert len(found) == 1, domain
    return found[0]


def move(pipeline: SyncPipeline, product: int, quantity: float, source: int, destination: int, *,
         done: bool) -> None:
    """A stock move made in Tryton: received (lost and found → storage, done) or planned (draft, planned today)."""
    unit = rpc(pipeline, PRODUCT, "read", [product], ["default_uom"])[0]["default_uom"]
    values: dict[str, Any] = {"product": product, "unit": unit, "quantity": quantity, "from_location": source,
                              "to_location": destination, "planned_date": date.today()}
    if not done:
        values.update(unit_price={"__class__": "Decimal", "decimal": "10.00"},
                      currency=rpc(pipeline, "currency.currency", "search", [["code", "=", "USD"]], 0, 1, None)[0])
    move_id, = rpc(pipeline, "stock.move", "create", [values])
    if done:
        rpc(pipeline, "stock.move", "do", [move_id])


# A product per ledger the test runs with, none sold by the other tests: its stock starts at 0 in this server.
STOCK_SKUS = {"sqlite": "HDPH-OVR-BLK", "postgresql": "EARBUD-BLK-PRO"}


def east_warehouse_storage(pipeline: SyncPipeline) -> int:
    """The storage zone of the warehouse EAST, made the first time (a warehouse is its input, output and storage)."""
    found = rpc(pipeline, "stock.location", "search_read", [["code", "=", "EAST"]], 0, 1, None, ["storage_location"])
    if found:
        return found[0]["storage_location"]
    zones = {zone: rpc(pipeline, "stock.location", "create", [{"name": f"East {zone}", "type": "storage"}])[0]
             for zone in ("input", "output", "storage")}
    rpc(pipeline, "stock.location", "create", [{
        "name": "East", "code": "EAST", "type": "warehouse", "input_location": zones["input"],
        "output_location": zones["output"], "storage_location": zones["storage"]}])
    return zones["storage"]


def test_stock_moved_in_a_warehouse_sets_the_shops_level_per_the_rule(pipeline: SyncPipeline, shop: str,
                                                                      request: pytest.FixtureRequest) -> None:
    """Last in this module: it adds a second warehouse, after which a sale without a warehouse is not confirmed."""
    sku = STOCK_SKUS[request.node.callspec.params["database_url"]]
    n = len(sku)  # a variant of its own in the shop for each SKU
    body = {"id": 840000000000 + uuid.uuid4().int % 10**9, "name": "#stock", "created_at": "2026-12-03T09:00:00+00:00",
            "updated_at": "2026-12-03T09:00:00+00:00", "line_items": [
        {"id": 9_100_000 + n, "variant_id": 9_200_000 + n, "product_id": 9_300_000 + n, "sku": sku, "title": sku,
         "quantity": 1, "price": "10.00"}]}
    assert httpx.post(f"{shop}/_sandbox/orders", json=body).status_code == 200  # the shop sells the SKU
    product = rpc(pipeline, PRODUCT, "search", [["code", "=", sku]], 0, 1, None)[0]
    warehouse_storage = rpc(pipeline, "stock.location", "search_read", [["code", "=", "WH"]], 0, 1, None,
                            ["storage_location"])[0]["storage_location"]
    lost_found = location(pipeline, type="lost_found")
    customer = location(pipeline, type="customer")
    east_storage = east_warehouse_storage(pipeline)
    start = datetime.now(UTC) - timedelta(seconds=2)

    # Ten received in the main warehouse: available = min(quantity 10, forecast 10) − the buffer of 2.
    move(pipeline, product, 10, lost_found, warehouse_storage, done=True)
    stock_synced(sync_all(pipeline, poll(pipeline, PRODUCT, start), product))
    assert (level(shop, sku, MAIN), level(shop, sku, EAST)) == (8, 0)  # EAST holds none: 0, never below

    # Three planned out to a customer (not shipped yet): the forecast drops to 7, the shop may sell 5.
    move(pipeline, product, 3, warehouse_storage, customer, done=False)
    stock_synced(sync_all(pipeline, poll(pipeline, PRODUCT, start), product))
    assert (level(shop, sku, MAIN), level(shop, sku, EAST)) == (5, 0)

    # The second warehouse (EAST in the map) receives four: its own level, the main one unchanged.
    move(pipeline, product, 4, lost_found, east_storage, done=True)
    stock_synced(sync_all(pipeline, poll(pipeline, PRODUCT, start), product))
    assert (level(shop, sku, MAIN), level(shop, sku, EAST)) == (5, 2)
