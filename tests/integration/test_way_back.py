"""The way back (issue 14, items 2-4), with both sandboxes as processes: change notices of the shared shape
(source netsuite, topic <recordType>.changed) written to the inbox, the pipeline reading the record from the ERP
sandbox before mapping, and the Shopify writer setting the shop sandbox's fulfillments, quantities and prices."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr

from erpsync.cli import main
from erpsync.errors import ConflictingChange
from erpsync.ledger import Ledger
from erpsync.pipeline import SyncPipeline
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.writer import ShopifyWriter
from erpsync_dev.stock_counts import commit_stock, count_stock
from tests.inline_runs import sync_or_raise as sync
from tests.integration.conftest import FAST
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_shop_sandbox

REPO = Path(__file__).resolve().parents[2]
TOKEN = "shpat_way_back"
ORDER_ID = 5_500_000_001
LINES = ((7001, "WB-MUG", 98, 3), (7002, "WB-CAP", 99, 2))  # line item id, SKU, ERP item id, quantity


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_shop_sandbox(tmp_path_factory.mktemp("shop"), "--orders", "3", "--access-token", TOKEN,
                            env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "way-back-secret"}) as base_url:
        yield base_url


@pytest.fixture
def order(shop: str) -> int:
    """An order the shop holds (its lines' variants become the catalogue), a new id per test."""
    order_id = ORDER_ID + order.counter  # type: ignore[attr-defined]
    order.counter += 1  # type: ignore[attr-defined]
    body = {
        "id": order_id, "name": f"#{order_id % 10000}", "created_at": "2026-11-28T09:00:00+00:00",
        "updated_at": "2026-11-28T09:00:00+00:00",
        "line_items": [{"id": line_id + order_id, "variant_id": 4_400_000 + item, "product_id": 3_300_000 + item,
                        "sku": sku, "title": sku, "quantity": quantity, "price": "10.00"}
                       for line_id, sku, item, quantity in LINES],
    }
    assert httpx.post(f"{shop}/_sandbox/orders", json=body).status_code == 200
    return order_id


order.counter = 0  # type: ignore[attr-defined]


@pytest.fixture
def netsuite(erp: str, ops: httpx.Client) -> Iterator[NetSuiteClient]:
    settings = NetSuiteSettings(base_url=erp, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    with NetSuiteClient(settings, retry=FAST) as client:
        yield client


def netsuite_kept(netsuite: NetSuiteClient) -> Any:
    class Kept:  # the test keeps the ERP client open; the pipeline closes only what it opened
        def __getattr__(self, name: str) -> Any:
            return getattr(netsuite, name)

        def close(self) -> None:
            pass

    return Kept()


def make_pipeline(ledger: Ledger, mappings: Path, netsuite: NetSuiteClient, shop: str) -> SyncPipeline:
    def open_writer(name: str) -> Any:
        return netsuite_kept(netsuite) if name == "netsuite" else ShopifyWriter(ShopifyGraphQL(shop, SecretStr(TOKEN)))

    return SyncPipeline(ledger, mappings, writers=open_writer)


@pytest.fixture
def pipeline(tmp_path: Path, netsuite: NetSuiteClient, shop: str) -> Iterator[SyncPipeline]:
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    pipeline = make_pipeline(ledger, REPO / "mappings", netsuite, shop)
    yield pipeline
    pipeline.close()
    ledger.close()


@pytest.fixture
def pipeline_owning(tmp_path: Path, netsuite: NetSuiteClient, shop: str) -> Iterator[Any]:
    """A pipeline over a copy of the mappings whose ownership table is the text given (None: no table)."""
    made: list[SyncPipeline] = []

    def build(ownership: str | None) -> SyncPipeline:
        mappings = tmp_path / f"mappings-{len(made)}"
        shutil.copytree(REPO / "mappings", mappings)
        if ownership is None:
            (mappings / "ownership" / "fields.yaml").unlink()
        else:
            (mappings / "ownership" / "fields.yaml").write_text(ownership)
        made.append(make_pipeline(Ledger.connect(f"sqlite:///{tmp_path / f'ledger-{len(made)}.db'}"), mappings,
                                  netsuite, shop))
        return made[-1]

    yield build
    for pipeline in made:
        pipeline.close()
        pipeline.ledger.close()


def notice(ledger: Ledger, record_type: str, internal_id: str, modified: str, *, topic_type: str | None = None,
           cause: dict[str, str] | None = None) -> int:
    """The inbox event of one change, in the shared shape: what the reader and the script both write (``cause``: the
    transaction that moved the item's stock)."""
    kind = topic_type or record_type
    stamp = datetime.fromisoformat(modified.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data: dict[str, Any] = {"recordType": kind, "id": internal_id, "externalId": None, "lastModified": stamp}
    if cause is not None:
        data["cause"] = cause
    body = json.dumps({"type": f"{kind}.changed", "timestamp": stamp, "data": data}, separators=(",", ":")).encode()
    by = f":by-{cause['id']}" if cause is not None else ""
    intake = ledger.record_delivery(source="netsuite", delivery_id=f"netsuite:{kind}:{internal_id}:{stamp}{by}",
                                    topic=f"{kind}.changed", shop=None, triggered_at=stamp, body=body,
                                    payload_sha256=hashlib.sha256(body).hexdigest())
    return intake.event_id


def sales_order(netsuite: NetSuiteClient, order_id: int) -> str:
    return netsuite.upsert("salesOrder", f"shopify-order-{order_id}", {
        "entity": {"id": "110"}, "tranDate": "2026-11-28",
        "item": {"items": [{"item": {"id": str(item)}, "quantity": quantity, "rate": 10,
                            "custcol_erpsync_line_key": str(line_id + order_id)}
                           for line_id, _, item, quantity in LINES]}})


def ship(netsuite: NetSuiteClient, order_id: int, name: str, lines: list[tuple[int, int]],
         tracking: list[str]) -> tuple[str, str]:
    """A fulfillment made as the way in makes one (fulfil), with tracking; its internal id and last modified."""
    internal_id = netsuite.fulfil(name, {
        "createdFrom": {"externalId": f"shopify-order-{order_id}"},
        "item": {"items": [{"custcol_erpsync_line_key": str(line_id + order_id), "quantity": quantity}
                           for line_id, quantity in lines]},
        "package": {"items": [{"packageTrackingNumber": number} for number in tracking]}})
    record = netsuite.get("itemFulfillment", internal_id)
    assert record is not None
    return internal_id, record["lastModifiedDate"]


def shop_fulfillments(shop: str, order_id: int) -> list[dict[str, Any]]:
    return [f for f in httpx.get(f"{shop}/_sandbox/fulfillments").json()["fulfillments"]
            if f["orderId"] == f"gid://shopify/Order/{order_id}"]


def test_a_shipment_syncs_once_and_a_split_shipment_gives_two(pipeline, netsuite, shop, order):
    sales_order(netsuite, order)
    first_id, modified = ship(netsuite, order, "wb-ship-1", [(7001, 2)], ["1Z001", "1Z002"])
    event = notice(pipeline.ledger, "itemFulfillment", first_id, modified)
    assert sync(pipeline, event) == "synced"
    [made] = shop_fulfillments(shop, order)
    assert sorted(t["number"] for t in made["trackingInfo"]) == ["1Z001", "1Z002"]
    assert [(line["lineItemId"], line["quantity"]) for line in made["lineItems"]] == [
        (f"gid://shopify/LineItem/{7001 + order}", 2)]
    assert made["notifyCustomer"] is True

    # The same change again (read twice, or read and notified) right after its event synced: the record is read
    # once more (a second change may share its second), and an unchanged shipment sends the shop nothing.
    again = notice(pipeline.ledger, "itemFulfillment", first_id, modified)
    assert sync(pipeline, again) == "synced"
    assert shop_fulfillments(shop, order) == [made]
    # The same event run again (a retry) is a duplicate.
    assert sync(pipeline, again) == "duplicate"
    assert len(shop_fulfillments(shop, order)) == 1

    # The rest ships later: a second fulfillment in NetSuite, a second one in the shop.
    second_id, modified = ship(netsuite, order, "wb-ship-2", [(7001, 1), (7002, 2)], ["1Z003"])
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", second_id, modified)) == "synced"
    made = shop_fulfillments(shop, order)
    assert len(made) == 2
    assert sorted(line["quantity"] for line in made[1]["lineItems"]) == [1, 2]


def test_a_crash_before_the_ledger_knew_does_not_fulfil_twice(pipeline, netsuite, shop, order):
    sales_order(netsuite, order)
    internal_id, modified = ship(netsuite, order, "wb-ship-3", [(7002, 1)], ["1Z010"])
    writer = pipeline.writer("shopify")
    body = {"order": str(order), "lines": [{"lineItemId": str(7002 + order), "quantity": 1}],
            "tracking": {"numbers": ["1Z010"]}}
    made = writer.upsert("fulfillment", f"netsuite-fulfillment-{internal_id}", body)  # the answer the ledger lost
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, modified)) == "synced"
    [only] = shop_fulfillments(shop, order)
    assert only["id"] == made
    state = pipeline.ledger.entity_states_of("netsuite", "itemFulfillment", [internal_id], "shopify")
    assert [s.to_id for s in state] == [made]


def remaining(shop: str, order_id: int) -> dict[str, int]:
    """Each line item's quantity left to fulfil on the order's fulfillment orders, as the GraphQL API says it."""
    answer = httpx.post(f"{shop}/admin/api/2026-10/graphql.json", headers={"X-Shopify-Access-Token": TOKEN}, json={
        "query": "query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { lineItems(first: 50) {"
                 " nodes { remainingQuantity lineItem { id } } } } } } }",
        "variables": {"id": f"gid://shopify/Order/{order_id}"}}).json()
    left: dict[str, int] = {}
    for fo in answer["data"]["order"]["fulfillmentOrders"]["nodes"]:
        for line in fo["lineItems"]["nodes"]:
            key = line["lineItem"]["id"].rsplit("/", 1)[1]
            left[key] = left.get(key, 0) + line["remainingQuantity"]
    return left


def test_a_fulfillment_deleted_in_netsuite_cancels_the_shops(pipeline, netsuite, shop, order):
    sales_order(netsuite, order)
    internal_id, modified = ship(netsuite, order, "wb-ship-4", [(7001, 1)], ["1Z040"])
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, modified)) == "synced"
    assert remaining(shop, order)[str(7001 + order)] == 2
    assert netsuite.delete("itemFulfillment", internal_id)
    event = notice(pipeline.ledger, "itemFulfillment", internal_id, "2026-12-31T00:00:00Z")  # the deletion's notice
    assert sync(pipeline, event) == "synced"
    [made] = shop_fulfillments(shop, order)
    assert made["status"] == "CANCELLED"
    assert remaining(shop, order)[str(7001 + order)] == 3  # its item is open to fulfil again
    assert "withdrawn: fulfillment gid://shopify/Fulfillment/" in (pipeline.ledger.outcomes(event)[-1].reason or "")
    # The deletion read again cancels nothing twice.
    again = notice(pipeline.ledger, "itemFulfillment", internal_id, "2026-12-31T00:00:01Z")
    assert sync(pipeline, again) == "synced"
    assert [f["status"] for f in shop_fulfillments(shop, order)] == ["CANCELLED"]


def test_a_fulfillment_never_synced_and_deleted_is_skipped_with_the_reason(pipeline, netsuite, order):
    sales_order(netsuite, order)
    internal_id, modified = ship(netsuite, order, "wb-ship-5", [(7001, 1)], [])
    assert netsuite.delete("itemFulfillment", internal_id)
    event = notice(pipeline.ledger, "itemFulfillment", internal_id, modified)
    assert sync(pipeline, event) == "skipped"
    assert "erpsync wrote nothing for it in shopify" in (pipeline.ledger.outcomes(event)[-1].reason or "")


def test_a_fulfillment_moved_back_from_shipped_cancels_and_shipping_it_again_fulfils_anew(pipeline, netsuite, shop,
                                                                                         order):
    sales_order(netsuite, order)
    internal_id, modified = ship(netsuite, order, "wb-ship-6", [(7002, 2)], ["1Z060"])
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, modified)) == "synced"
    body = {"createdFrom": {"externalId": f"shopify-order-{order}"},
            "package": {"items": [{"packageTrackingNumber": "1Z060"}]}}
    netsuite.fulfil("wb-ship-6", {**body, "shipStatus": {"id": "B"}}, previous_id=internal_id)
    packed = netsuite.get("itemFulfillment", internal_id)["lastModifiedDate"]
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, packed)) == "synced"
    assert [f["status"] for f in shop_fulfillments(shop, order)] == ["CANCELLED"]
    assert remaining(shop, order)[str(7002 + order)] == 2

    # Shipped again, with a new tracking number: the shop's cancelled fulfillment cannot be revived, a new one is made.
    netsuite.fulfil("wb-ship-6", {"createdFrom": body["createdFrom"], "shipStatus": {"id": "C"},
                                  "package": {"items": [{"packageTrackingNumber": "1Z061"}]}}, previous_id=internal_id)
    shipped = netsuite.get("itemFulfillment", internal_id)["lastModifiedDate"]
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, shipped)) == "synced"
    cancelled, live = shop_fulfillments(shop, order)
    assert (cancelled["status"], live["status"]) == ("CANCELLED", "SUCCESS")
    assert [t["number"] for t in live["trackingInfo"]] == ["1Z061"]
    assert remaining(shop, order)[str(7002 + order)] == 0


def test_tracking_edited_in_netsuite_updates_the_shops_fulfillment(pipeline, netsuite, shop, order):
    sales_order(netsuite, order)
    internal_id, modified = ship(netsuite, order, "wb-ship-7", [(7001, 3)], ["1Z070"])
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, modified)) == "synced"
    netsuite.fulfil("wb-ship-7", {"createdFrom": {"externalId": f"shopify-order-{order}"},
                                  "package": {"items": [{"packageTrackingNumber": "1Z071"}]}}, previous_id=internal_id)
    edited = netsuite.get("itemFulfillment", internal_id)["lastModifiedDate"]
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, edited)) == "synced"
    [made] = shop_fulfillments(shop, order)
    assert (made["status"], [t["number"] for t in made["trackingInfo"]]) == ("SUCCESS", ["1Z071"])


def item(netsuite: NetSuiteClient, sku: str, body: dict[str, Any]) -> tuple[str, str]:
    internal_id = netsuite.upsert("inventoryItem", f"wb-item-{sku}", {"itemId": sku, **body})
    record = netsuite.get("inventoryItem", internal_id)
    assert record is not None
    return internal_id, record["lastModifiedDate"]


def level(shop: str, sku: str, location: str) -> dict[str, Any]:
    return next(lv for lv in httpx.get(f"{shop}/_sandbox/inventory").json()["levels"]
                if lv["sku"] == sku and lv["locationId"] == location)


MAIN, EAST = "gid://shopify/Location/71000000001", "gid://shopify/Location/71000000002"


def counted(netsuite: NetSuiteClient, sku: str, on_hand: int, committed: int, on_hand_east: int
            ) -> tuple[str, str, dict[str, str]]:
    """The item of ``sku`` (made on first use) with ``committed`` units on an open order at the main location, its
    stock counted to ``on_hand`` there and ``on_hand_east`` at the east one by an inventory adjustment, as NetSuite
    takes a count: (the item's id, the adjustment's last modified, the adjustment as the change's cause)."""
    internal_id = netsuite.upsert("inventoryItem", f"wb-item-{sku}", {"itemId": sku})
    commit_stock(netsuite, internal_id, "1", committed, f"wb-order-{sku}")
    adjustment, _ = count_stock(netsuite, internal_id, {"1": on_hand, "2": on_hand_east}, f"wb-count-{uuid4().hex}")
    assert adjustment is not None
    record = netsuite.get("inventoryAdjustment", adjustment)
    assert record is not None
    return internal_id, record["lastModifiedDate"], {"recordType": "inventoryadjustment", "id": adjustment}


def count_in_shop(shop: str, sku: str, location: str, available: int) -> None:
    """A merchant's count of one location, made in the shop."""
    item_gid = level(shop, sku, location)["inventoryItemId"]
    httpx.post(f"{shop}/_sandbox/inventory", json={"inventoryItemId": item_gid, "locationId": location,
                                                   "available": available}).raise_for_status()


def test_stock_changed_on_both_sides_netsuite_owns_available_so_its_quantity_wins_and_the_count_is_reported(
        pipeline, netsuite, shop, order):
    internal_id, modified, cause = counted(netsuite, "WB-MUG", 30, 4, 10)
    assert sync(pipeline, notice(pipeline.ledger, "inventoryItem", internal_id, modified, cause=cause)) == "synced"
    assert level(shop, "WB-MUG", MAIN)["available"] == 24  # 30 on hand − 4 committed − the buffer of 2
    assert level(shop, "WB-MUG", EAST)["available"] == 8

    # At the same time: a merchant counts the main location in the shop, and NetSuite's stock changes.
    count_in_shop(shop, "WB-MUG", MAIN, 5)
    internal_id, modified, cause = counted(netsuite, "WB-MUG", 40, 4, 10)
    event = notice(pipeline.ledger, "inventoryItem", internal_id, modified, cause=cause)
    assert sync(pipeline, event) == "synced"
    assert level(shop, "WB-MUG", MAIN)["available"] == 34  # the owner's: 40 − 4 − 2
    assert level(shop, "WB-MUG", EAST)["available"] == 8
    [conflict] = pipeline.ledger.conflicts()
    assert (conflict.event_id, conflict.field_name, conflict.owner) == (event, "available", "netsuite")
    assert (conflict.last_value, conflict.target_value, conflict.written_value) == ("24", "5", "34")
    assert conflict.record_type == "inventoryLevel" and conflict.record_id.endswith(f"|{MAIN}")
    assert (conflict.from_system, conflict.entity_type, conflict.entity_id, conflict.to_system) == (
        "netsuite", "inventoryItem", internal_id, "shopify")


def test_stock_changed_on_both_sides_without_an_owner_is_not_overwritten(pipeline_owning, netsuite, shop, order):
    pipeline = pipeline_owning(None)
    internal_id, modified, cause = counted(netsuite, "WB-CAP", 30, 4, 10)
    assert sync(pipeline, notice(pipeline.ledger, "inventoryItem", internal_id, modified, cause=cause)) == "synced"
    count_in_shop(shop, "WB-CAP", MAIN, 5)
    internal_id, modified, cause = counted(netsuite, "WB-CAP", 40, 4, 10)
    event = notice(pipeline.ledger, "inventoryItem", internal_id, modified, cause=cause)
    with pytest.raises(Exception, match="CHANGE_FROM_QUANTITY_STALE"):
        sync(pipeline, event)
    reason = pipeline.ledger.outcomes(event)[-1].reason or ""
    assert f"location {MAIN}: the shop holds 5 available where erpsync set or read 24 last" in reason
    assert level(shop, "WB-CAP", MAIN)["available"] == 5
    assert pipeline.ledger.conflicts() == []


def test_a_stock_write_whose_answer_was_lost_is_retried_as_the_same_request_not_read_as_a_conflict(
        tmp_path, netsuite, shop, order):
    # Every answer of the shop's GraphQL API lost after the call ran (graphql_faults.py), then none.
    def lose_answers(rate: float) -> None:
        httpx.post(f"{shop}/_sandbox/graphql/faults", json={"lost_rate": rate}).raise_for_status()

    class Impatient(ShopifyGraphQL):  # one attempt, so the lost answer reaches the pipeline as it would at the end
        def __init__(self) -> None:
            super().__init__(shop, SecretStr(TOKEN), max_attempts=1)

    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    pipeline = SyncPipeline(ledger, REPO / "mappings", writers=lambda name: netsuite_kept(netsuite) if
                            name == "netsuite" else ShopifyWriter(Impatient()))
    try:
        internal_id, modified, cause = counted(netsuite, "WB-MUG", 30, 4, 10)
        assert sync(pipeline, notice(ledger, "inventoryItem", internal_id, modified, cause=cause)) == "synced"
        assert level(shop, "WB-MUG", MAIN)["available"] == 24
        internal_id, modified, cause = counted(netsuite, "WB-MUG", 40, 4, 10)
        event = notice(ledger, "inventoryItem", internal_id, modified, cause=cause)
        lose_answers(1.0)
        with pytest.raises(Exception, match="HTTP 504"):
            sync(pipeline, event)
        lose_answers(0.0)
        assert level(shop, "WB-MUG", MAIN)["available"] == 34  # the write was made; only its answer was lost
        replayed = httpx.get(f"{shop}/_sandbox/graphql/idempotency").json()["replayed"]
        # The event retried: the same key for the same write, so the shop answers it as the first call (applied),
        # not as a stale change from 24, which would report a change in the shop that nobody made.
        assert sync(pipeline, event) == "synced"
        assert httpx.get(f"{shop}/_sandbox/graphql/idempotency").json()["replayed"] == replayed + 1
        assert level(shop, "WB-MUG", MAIN)["available"] == 34
        assert ledger.conflicts() == []

        # Without the event's key (a write made outside the pipeline: a fresh key each call) the same retry is a
        # new request, and the lost answer reads as a conflict: what the key is there to prevent.
        writer = ShopifyWriter(Impatient())
        mug = level(shop, "WB-MUG", MAIN)["inventoryItemId"]
        lose_answers(1.0)
        with pytest.raises(Exception, match="HTTP 504"):
            writer.upsert("inventoryLevel", "x", {"location": MAIN, "available": 40}, previous_id=f"{mug}|{MAIN}|34")
        lose_answers(0.0)
        with pytest.raises(ConflictingChange) as false_conflict:
            writer.upsert("inventoryLevel", "x", {"location": MAIN, "available": 40}, previous_id=f"{mug}|{MAIN}|34")
        assert "the shop holds 40 available where erpsync set or read 34" in false_conflict.value.reason
        writer.close()
    finally:
        lose_answers(0.0)
        pipeline.close()
        ledger.close()


def shop_price(shop: str, sku: str, price: str) -> None:
    """A merchant's price change, made in the shop through the GraphQL Admin API."""
    [variant] = [v for v in httpx.get(f"{shop}/_sandbox/variants").json()["variants"] if v["sku"] == sku]
    answer = httpx.post(f"{shop}/admin/api/2026-10/graphql.json", headers={"X-Shopify-Access-Token": TOKEN}, json={
        "query": "mutation($p: ID!, $v: [ProductVariantsBulkInput!]!) { productVariantsBulkUpdate(productId: $p, "
                 "variants: $v) { userErrors { message } } }",
        "variables": {"p": variant["productId"], "v": [{"id": variant["id"], "price": price}]}}).json()
    assert answer["data"]["productVariantsBulkUpdate"]["userErrors"] == []


def variant_prices(shop: str, sku: str) -> tuple[str, str | None]:
    [variant] = [v for v in httpx.get(f"{shop}/_sandbox/variants").json()["variants"] if v["sku"] == sku]
    return variant["price"], variant["compareAtPrice"]


def prices(base: float, msrp: float) -> dict[str, Any]:
    return {"price": {"items": [{"priceLevel": {"id": "1", "refName": "Base Price"}, "price": base},
                                {"priceLevel": {"id": "7", "refName": "MSRP"}, "price": msrp}]}}


def test_a_price_changed_on_both_sides_is_netsuites_and_the_shops_change_is_reported(pipeline, netsuite, shop, order,
                                                                                      monkeypatch, capsys):
    internal_id, modified = item(netsuite, "WB-MUG", prices(12.5, 15))
    assert sync(pipeline, notice(pipeline.ledger, "price", internal_id, modified)) == "synced"
    shop_price(shop, "WB-MUG", "11.00")  # a sale price set in the shop …
    internal_id, modified = item(netsuite, "WB-MUG", prices(13, 15))  # … while NetSuite's price changes
    event = notice(pipeline.ledger, "price", internal_id, modified)
    assert sync(pipeline, event) == "synced"
    assert variant_prices(shop, "WB-MUG") == ("13.00", "15.00")
    [conflict] = pipeline.ledger.conflicts()
    assert (conflict.field_name, conflict.owner, conflict.record_type) == ("price", "netsuite", "productVariant")
    assert (conflict.last_value, conflict.target_value, conflict.written_value) == ("12.5", "11.00", "13")
    # What an operator reads.
    monkeypatch.setenv("ERPSYNC_DATABASE_URL", str(pipeline.ledger.engine.url))
    assert main(["conflicts", "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) | {"at": None} == {
        "at": None, "event_id": event, "entity": f"netsuite/price/{internal_id}", "to_system": "shopify",
        "record": f"productVariant {conflict.record_id}", "field": "price", "owner": "netsuite",
        "erpsync_set": "12.5", "target_held": "11.00", "written": "13"}
    # Synced again with nothing changed in the shop since: no conflict.
    internal_id, modified = item(netsuite, "WB-MUG", prices(14, 15))
    assert sync(pipeline, notice(pipeline.ledger, "price", internal_id, modified)) == "synced"
    assert variant_prices(shop, "WB-MUG")[0] == "14.00"
    assert len(pipeline.ledger.conflicts()) == 1


def test_a_field_the_shop_owns_is_not_written_from_netsuite(pipeline_owning, netsuite, shop, order):
    pipeline = pipeline_owning("shopify:\n  productVariant:\n    price: netsuite\n    compareAtPrice: shopify\n")
    internal_id, modified = item(netsuite, "WB-CAP", prices(12, 19))
    before = variant_prices(shop, "WB-CAP")[1]
    event = notice(pipeline.ledger, "price", internal_id, modified)
    assert sync(pipeline, event) == "synced"
    assert variant_prices(shop, "WB-CAP") == ("12.00", before)
    assert "not written, owned by shopify: compareAtPrice" in (pipeline.ledger.outcomes(event)[-1].reason or "")


def test_a_price_change_sets_the_variants_prices(pipeline, netsuite, shop, order):
    internal_id, modified = item(netsuite, "WB-CAP", {"price": {"items": [
        {"priceLevel": {"id": "1", "refName": "Base Price"}, "price": 12.5},
        {"priceLevel": {"id": "7", "refName": "MSRP"}, "price": 15}]}})
    assert sync(pipeline, notice(pipeline.ledger, "price", internal_id, modified)) == "synced"
    [variant] = [v for v in httpx.get(f"{shop}/_sandbox/variants").json()["variants"] if v["sku"] == "WB-CAP"]
    assert (variant["price"], variant["compareAtPrice"]) == ("12.50", "15.00")


def same_second_as(first: str, second: str) -> bool:
    return first[:19] == second[:19]  # NetSuite's notices carry the change's time in whole seconds


def test_two_price_changes_in_one_second_both_reach_the_shop(pipeline, netsuite, shop, order):
    """The first change synced before the second one's notice came: the notice is the first's delivery id again,
    and the record is read again rather than the second change lost."""
    levels = lambda base: {"price": {"items": [{"priceLevel": {"id": "1", "refName": "Base Price"}, "price": base}]}}
    for _ in range(20):  # both changes must fall within one second of the ERP's clock
        internal_id, first = item(netsuite, "WB-MUG", levels(21))
        event = notice(pipeline.ledger, "price", internal_id, first)
        assert sync(pipeline, event) == "synced"
        internal_id, second = item(netsuite, "WB-MUG", levels(23))
        if same_second_as(first, second):
            break
    else:
        pytest.fail("no two changes within one second of the ERP sandbox's clock")
    again = notice(pipeline.ledger, "price", internal_id, second)
    assert again != event, "the second change was taken for a redelivery of the first, which had read the record"
    assert sync(pipeline, again) == "synced"
    [variant] = [v for v in httpx.get(f"{shop}/_sandbox/variants").json()["variants"] if v["sku"] == "WB-MUG"]
    assert variant["price"] == "23.00"


def test_a_notice_again_while_its_event_waits_is_a_redelivery(pipeline, netsuite):
    internal_id, modified = item(netsuite, "WB-CAP", {"price": {"items": [
        {"priceLevel": {"id": "1", "refName": "Base Price"}, "price": 9}]}})
    event = notice(pipeline.ledger, "price", internal_id, modified)
    assert notice(pipeline.ledger, "price", internal_id, modified) == event
    assert pipeline.ledger.get_event(event).redeliveries == 1


def shop_webhook(ledger: Ledger, topic: str, payload: dict[str, Any]) -> int:
    """A Shopify webhook as the receiver stores it."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return ledger.record_delivery(source="shopify", delivery_id=f"wb-{topic}-{payload['id']}-{payload['updated_at']}",
                                  topic=topic, shop="way-back.myshopify.com", triggered_at=payload["updated_at"],
                                  body=body, payload_sha256=hashlib.sha256(body).hexdigest()).event_id


def test_a_shop_fulfillment_made_from_a_netsuite_shipment_is_not_sent_back_no_echo(pipeline, netsuite, shop, order):
    """Without the guard the shop's fulfillments/create of the fulfillment erpsync made would become a second item
    fulfillment in NetSuite, whose notice would come back to the shop: the ping-pong the guard stops."""
    sales_order(netsuite, order)
    internal_id, modified = ship(netsuite, order, "wb-ship-8", [(7001, 1)], ["1Z080"])
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, modified)) == "synced"
    [made] = shop_fulfillments(shop, order)
    number = int(made["id"].rsplit("/", 1)[1])
    # What Shopify sends for it (fulfillments/create, as in tests/fixtures/shopify/fulfillments_create.json).
    event = shop_webhook(pipeline.ledger, "fulfillments/create", {
        "id": number, "order_id": order, "name": made["name"], "status": "success",
        "created_at": made["createdAt"], "updated_at": made["createdAt"], "tracking_company": None,
        "tracking_numbers": ["1Z080"], "admin_graphql_api_id": made["id"],
        "line_items": [{"id": 7001 + order, "sku": "WB-MUG", "quantity": 1, "price": "10.00", "title": "WB-MUG"}]})
    assert sync(pipeline, event) == "skipped"
    reason = pipeline.ledger.outcomes(event)[-1].reason or ""
    assert f"from netsuite itemFulfillment {internal_id}" in reason and "no echo" in reason
    assert netsuite.get("itemFulfillment", f"eid:shopify-fulfillment-{number}") is None
    assert len(shop_fulfillments(shop, order)) == 1


def test_lines_changed_after_shipping_cancel_the_shops_fulfillment_and_fulfil_it_anew(pipeline, netsuite, shop, order):
    """Shopify cannot edit a fulfillment's lines: the old one is cancelled and the shipment fulfilled as it is now."""
    sales_order(netsuite, order)
    internal_id, modified = ship(netsuite, order, "wb-ship-9", [(7001, 2)], ["1Z090"])
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, modified)) == "synced"
    [first] = shop_fulfillments(shop, order)
    record = netsuite.get("itemFulfillment", internal_id, expand_sub_resources=True)
    line = record["item"]["items"][0]
    # A clerk edits the shipped line's quantity in NetSuite: a PATCH of the item sublist (the connector's own
    # authenticated request; erpsync itself never edits a fulfillment's lines).
    netsuite._request("PATCH", f"/services/rest/record/v1/itemFulfillment/{internal_id}", what="edit the lines",
                      ok=(204,), json={"item": {"items": [{"line": line["line"], "quantity": 1}]}})
    edited = netsuite.get("itemFulfillment", internal_id)["lastModifiedDate"]
    assert sync(pipeline, notice(pipeline.ledger, "itemFulfillment", internal_id, edited)) == "synced"
    old, new = shop_fulfillments(shop, order)
    assert (old["id"], old["status"], new["status"]) == (first["id"], "CANCELLED", "SUCCESS")
    assert [(line["lineItemId"], line["quantity"]) for line in new["lineItems"]] == [
        (f"gid://shopify/LineItem/{7001 + order}", 1)]
    assert [t["number"] for t in new["trackingInfo"]] == ["1Z090"]
    assert remaining(shop, order)[str(7001 + order)] == 2
    [state] = pipeline.ledger.entity_states_of("netsuite", "itemFulfillment", [internal_id], "shopify")
    assert state.to_id == new["id"]
