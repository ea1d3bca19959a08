"""The way back's drift in reconciliation (issue 14, item 7), with both sandboxes as processes: a shipment made in
NetSuite whose notice never arrived is found unfulfilled in the shop, and stock changed in NetSuite without its
notice is found different per location; each is repaired as NetSuite's own change notice through the inbox and the
normal pipeline, and a second run finds nothing. What came from the shop, and items the shop does not sell, are
not drift."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from erpsync.ledger import InboxEvent, Ledger
from erpsync.mapping import load_mapping
from erpsync.pipeline import SyncPipeline
from erpsync.reconcile import Window, run_reconciliation
from erpsync.reconcile.report import markdown_summary, render_html, text_summary
from erpsync.reconcile.way_back import (
    WayBackMappings,
    enqueue_way_back_repairs,
    find_way_back_drift,
    way_back_rows,
)
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.systems.netsuite.sales_orders import ErpSalesOrders
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.orders_graphql import ShopifyOrderReader
from erpsync.systems.shopify.writer import ShopifyWriter
from erpsync_dev.stock_counts import commit_stock, count_stock
from tests.inline_runs import InlineDispatcher
from tests.integration.conftest import FAST
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_shop_sandbox

REPO = Path(__file__).resolve().parents[2]
TOKEN = "shpat_reconcile_way_back"
ORDER_ID = 6_600_000_001
LINES = ((8001, "RW-MUG", 98, 3), (8002, "RW-CAP", 99, 2))  # line item id, SKU, ERP item id, quantity
MAIN, EAST = "gid://shopify/Location/71000000001", "gid://shopify/Location/71000000002"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_shop_sandbox(tmp_path_factory.mktemp("shop"), "--orders", "3", "--access-token", TOKEN,
                            env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "reconcile-way-back"}) as base_url:
        yield base_url


@pytest.fixture
def order(shop: str) -> int:
    """An order the shop holds (its lines' variants become the catalogue), a new id per test."""
    order_id = ORDER_ID + order.counter  # type: ignore[attr-defined]
    order.counter += 1  # type: ignore[attr-defined]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    body = {"id": order_id, "name": f"#{order_id % 10000}", "created_at": now, "updated_at": now,
            "line_items": [{"id": line_id + order_id, "variant_id": 4_400_000 + item, "product_id": 3_300_000 + item,
                            "sku": sku, "title": sku, "quantity": quantity, "price": "10.00"}
                           for line_id, sku, item, quantity in LINES]}
    assert httpx.post(f"{shop}/_sandbox/orders", json=body).status_code == 200
    return order_id


order.counter = 0  # type: ignore[attr-defined]


@pytest.fixture
def netsuite(erp: str, ops: httpx.Client) -> Iterator[NetSuiteClient]:
    # Changes are read as soon as their second has passed (the reader's settle time is for live ERPs' late commits).
    settings = NetSuiteSettings(base_url=erp, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET,
                                change_settle_seconds=0)
    with NetSuiteClient(settings, retry=FAST) as client:
        yield client


@pytest.fixture
def pipeline(ledger: Ledger, netsuite: NetSuiteClient, shop: str) -> Iterator[SyncPipeline]:
    class Kept:  # the test keeps the ERP client open; the pipeline closes only what it opened
        def __getattr__(self, name: str) -> Any:
            return getattr(netsuite, name)

        def close(self) -> None:
            pass

    def open_writer(name: str) -> Any:
        return Kept() if name == "netsuite" else ShopifyWriter(ShopifyGraphQL(shop, SecretStr(TOKEN)))

    pipeline = SyncPipeline(ledger, REPO / "mappings", writers=open_writer)
    yield pipeline
    pipeline.close()


@pytest.fixture
def reader(shop: str) -> Iterator[ShopifyOrderReader]:
    with ShopifyOrderReader(ShopifyGraphQL(shop, SecretStr(TOKEN))) as client:
        yield client


MAPPINGS = WayBackMappings.find(REPO / "mappings", "netsuite", "shopify")


def window() -> Window:
    now = datetime.now(UTC)
    return Window(now - timedelta(hours=1), now + timedelta(minutes=5), overlap=timedelta(0))


def settled() -> None:
    """SuiteQL stamps lastmodifieddate to the second; a change is read once its second has passed."""
    time.sleep(1.1)


def sales_order(netsuite: NetSuiteClient, order_id: int) -> str:
    return netsuite.upsert("salesOrder", f"shopify-order-{order_id}", {
        "entity": {"id": "110"}, "tranDate": "2026-11-28",
        "item": {"items": [{"item": {"id": str(item)}, "quantity": quantity, "rate": 10,
                            "custcol_erpsync_line_key": str(line_id + order_id)}
                           for line_id, _, item, quantity in LINES]}})


def ship(netsuite: NetSuiteClient, order_id: int, name: str, lines: list[tuple[int, int]], tracking: list[str], *,
         external_id: str | None = None) -> str:
    """A fulfillment made in NetSuite (as the way in makes one); no notice of it reaches erpsync."""
    return netsuite.fulfil(external_id or name, {
        "createdFrom": {"externalId": f"shopify-order-{order_id}"},
        "item": {"items": [{"custcol_erpsync_line_key": str(line_id + order_id), "quantity": quantity}
                           for line_id, quantity in lines]},
        "package": {"items": [{"packageTrackingNumber": number} for number in tracking]}})


def shop_fulfillments(shop: str, order_id: int) -> list[dict[str, Any]]:
    return [f for f in httpx.get(f"{shop}/_sandbox/fulfillments").json()["fulfillments"]
            if f["orderId"] == f"gid://shopify/Order/{order_id}"]


def level(shop: str, sku: str, location: str) -> int:
    return next(lv["available"] for lv in httpx.get(f"{shop}/_sandbox/inventory").json()["levels"]
                if lv["sku"] == sku and lv["locationId"] == location)


def count_in_shop(shop: str, sku: str, location: str, available: int) -> None:
    """A count of one location, made in the shop."""
    item_gid = next(lv["inventoryItemId"] for lv in httpx.get(f"{shop}/_sandbox/inventory").json()["levels"]
                    if lv["sku"] == sku and lv["locationId"] == location)
    httpx.post(f"{shop}/_sandbox/inventory", json={"inventoryItemId": item_gid, "locationId": location,
                                                   "available": available}).raise_for_status()


def counted(netsuite: NetSuiteClient, sku: str, on_hand: int, committed: int, on_hand_east: int) -> str:
    """The item of ``sku`` (made on first use), ``committed`` units of it on an open order at the main location, and
    its stock counted by an inventory adjustment, as NetSuite takes a count (the item itself is not saved again)."""
    existing = netsuite.get("inventoryItem", f"eid:rw-item-{sku}")
    internal_id = (str(existing["id"]) if existing is not None
                   else netsuite.upsert("inventoryItem", f"rw-item-{sku}", {"itemId": sku}))
    if committed:
        commit_stock(netsuite, internal_id, "1", committed, f"rw-order-{sku}")
    count_stock(netsuite, internal_id, {"1": on_hand, "2": on_hand_east}, f"rw-count-{uuid4().hex}")
    return internal_id


def test_a_shipment_whose_notice_never_came_is_found_unfulfilled_and_repaired_through_the_inbox(
        netsuite, pipeline, ledger, reader, shop, order):
    sales_order(netsuite, order)
    shipped = ship(netsuite, order, "rw-ship-1", [(8001, 2)], ["1Z801"])
    # A fulfillment erpsync wrote into NetSuite from the shop's own (the way in): the shop's, never drift.
    ship(netsuite, order, "rw-ship-2", [(8002, 1)], [], external_id="shopify-fulfillment-77")
    settled()

    found = find_way_back_drift(window(), erp=netsuite, shop=reader, ledger=ledger, mappings=MAPPINGS)
    rows = [row for row in found.rows if row.kind == "not_fulfilled_in_shop"]
    assert [(row.internal_id, row.detail) for row in rows] == [(shipped, f"order {order}: no fulfillment in the shop")]
    assert found.checked["itemFulfillment"] >= 2

    dispatcher = InlineDispatcher(pipeline)
    enqueue_way_back_repairs(ledger, found, mappings=MAPPINGS, run="night-1", dispatcher=dispatcher)
    assert found.enqueued == found.planned and found.dispatched == found.enqueued
    assert set(dispatcher.outcomes.values()) == {"synced"}
    with ledger.session() as session:
        [event] = session.exec(select(InboxEvent).where(
            InboxEvent.delivery_id.like("reconcile:night-1:itemFulfillment/%"))).all()
    assert (event.source, event.topic) == ("netsuite", "itemFulfillment.changed"), "the change reader's own event"
    [made] = shop_fulfillments(shop, order)
    assert [t["number"] for t in made["trackingInfo"]] == ["1Z801"]
    assert [(line["lineItemId"], line["quantity"]) for line in made["lineItems"]] == [
        (f"gid://shopify/LineItem/{8001 + order}", 2)]

    again = find_way_back_drift(window(), erp=netsuite, shop=reader, ledger=ledger, mappings=MAPPINGS)
    assert [row for row in again.rows if row.kind == "not_fulfilled_in_shop"] == []
    # The same run queueing its repairs again (a retried flow run) fulfils nothing twice. (Its notice is one the
    # ledger may store as a re-read while the change's second is this recent; an old change's is a redelivery.)
    enqueue_way_back_repairs(ledger, found, mappings=MAPPINGS, run="night-1", dispatcher=dispatcher)
    assert found.already_in_inbox + found.enqueued == len(rows)
    assert set(dispatcher.outcomes.values()) == {"synced"} and len(shop_fulfillments(shop, order)) == 1


def test_stock_changed_without_its_notice_differs_per_location_and_is_set_through_the_inbox(
        netsuite, pipeline, ledger, reader, shop, order):
    internal_id = counted(netsuite, "RW-CAP", 30, 4, 10)
    # An item the shop does not sell: its stock is none of the shop's business.
    counted(netsuite, "RW-NOT-SOLD-HERE", 5, 0, 5)
    # What the shop holds before: counted there (the shop sandbox outlives one test, and runs once per ledger).
    count_in_shop(shop, "RW-CAP", MAIN, 3)
    count_in_shop(shop, "RW-CAP", EAST, 8)
    settled()
    before_main = 3

    found = find_way_back_drift(window(), erp=netsuite, shop=reader, ledger=ledger, mappings=MAPPINGS)
    [row] = [row for row in found.rows if row.kind == "stock_differs"]
    assert row.internal_id == internal_id
    # 30 on hand − 4 committed − the mapping's safety buffer of 2 at the main location; 10 − 2 at the east one,
    # which the shop holds already.
    assert row.detail == f"location {MAIN}: ERP 24, shop {before_main}"

    dispatcher = InlineDispatcher(pipeline)
    enqueue_way_back_repairs(ledger, found, mappings=MAPPINGS, run="night-2", dispatcher=dispatcher)
    assert set(dispatcher.outcomes.values()) == {"synced"}
    assert (level(shop, "RW-CAP", MAIN), level(shop, "RW-CAP", EAST)) == (24, 8)
    again = find_way_back_drift(window(), erp=netsuite, shop=reader, ledger=ledger, mappings=MAPPINGS)
    assert [row for row in again.rows if row.kind == "stock_differs"] == []

    # A later count only moves stock (the item is not saved): the move alone is found, once for the item.
    saved = netsuite.get("inventoryItem", internal_id)
    counted(netsuite, "RW-CAP", 50, 4, 10)
    assert netsuite.get("inventoryItem", internal_id)["lastModifiedDate"] == saved["lastModifiedDate"]
    settled()
    moved = find_way_back_drift(window(), erp=netsuite, shop=reader, ledger=ledger, mappings=MAPPINGS)
    assert [(row.internal_id, row.detail) for row in moved.rows if row.kind == "stock_differs"] == [
        (internal_id, f"location {MAIN}: ERP 44, shop 24")]


def test_a_reconciliation_run_counts_the_way_back_apart_and_a_dry_run_queues_nothing(
        netsuite, ledger, reader, shop, order, tmp_path):
    sales_order(netsuite, order)
    ship(netsuite, order, "rw-ship-3", [(8002, 2)], ["1Z803"])
    settled()
    mapping = load_mapping(REPO / "mappings" / "shopify_order_to_netsuite_sales_order.yaml")
    erp = ErpSalesOrders(netsuite, external_id_prefix="shopify-order-")
    result = run_reconciliation(window(), shop=reader, erp=erp, ledger=ledger, mapping=mapping,
                                spool=tmp_path / "spool.sqlite", dry_run=True, way_back=MAPPINGS, erp_changes=netsuite)
    assert result.summary.way_back["not_fulfilled_in_shop"] == 1
    assert result.summary.way_back_repairs_planned >= 1 and result.summary.way_back_repairs_enqueued == 0
    assert ledger.inbox_counts()["events"] == 0
    assert result.summary.as_dict()["way_back"] == result.summary.way_back
    markdown = markdown_summary(result.summary, result.drift)
    assert "| not_fulfilled_in_shop | 1 |" in markdown and "none queued (dry run)" in markdown
    assert "not_fulfilled_in_shop" in text_summary(result.summary, result.drift)
    page = render_html(result.summary, result.drift)
    assert "<h2>The way back</h2>" in page and "not_fulfilled_in_shop" in page
    [row] = [r for r in way_back_rows(result.way_back) if r["kind"] == "not_fulfilled_in_shop"]
    assert row["record_type"] == "itemFulfillment" and row["detail"].startswith(f"order {order}:")
