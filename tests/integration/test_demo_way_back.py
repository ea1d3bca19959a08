"""The demo's and chaos's way-back check (erpsync_dev/way_back.py) against the shop sandbox as a process: it passes
when the shop holds exactly the shipments, counts and prices, and names what is missing, extra or wrong."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.writer import ShopifyWriter
from erpsync_dev.way_back import NOTICE, READER, Shipment, ShopView, StockCount, check_shop, plan_shipments
from tests.sandbox_procs import start_shop_sandbox

TOKEN = "shpat_demo_way_back"
ORDER_ID = 6_700_000_001
MAIN, EAST = "gid://shopify/Location/71000000001", "gid://shopify/Location/71000000002"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_shop_sandbox(tmp_path_factory.mktemp("shop"), "--orders", "3", "--access-token", TOKEN,
                            env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "demo-way-back"}) as base_url:
        order = {"id": ORDER_ID, "name": "#6701", "created_at": "2026-11-28T09:00:00+00:00",
                 "updated_at": "2026-11-28T09:00:00+00:00",
                 "line_items": [{"id": 7201, "variant_id": 4_400_201, "product_id": 3_300_201, "sku": "DWB-MUG",
                                 "title": "DWB-MUG", "quantity": 3, "price": "10.00"}]}
        httpx.post(f"{base_url}/_sandbox/orders", json=order).raise_for_status()
        yield base_url


def fulfil(shop: str, external_id: str, quantity: int, number: str) -> str:
    with ShopifyWriter(ShopifyGraphQL(shop, SecretStr(TOKEN))) as writer:
        return writer.upsert("fulfillment", external_id, {
            "order": str(ORDER_ID), "lines": [{"lineItemId": "7201", "quantity": quantity}],
            "tracking": {"company": "UPS", "numbers": [number]}, "notifyCustomer": False})


def shipment(quantity: int, number: str) -> Shipment:
    return Shipment(kind="shipment", path=NOTICE, label="test", order_id=ORDER_ID, sales_order="1",
                    lines=(("7201", quantity),), carrier=("913", "UPS"), tracking=(number,))


def test_exactly_the_shipments_pass_and_a_fulfillment_not_shipped_is_named(shop):
    with httpx.Client() as http:
        view = ShopView(shop, http)
        first = shipment(1, "1ZDWB0001")
        assert check_shop(view, [first], buffer=2) == [f"order {ORDER_ID}: shipment ((('7201', 1),), ('1ZDWB0001',), "
                                                       f"'UPS') missing in the shop"]
        fulfil(shop, "netsuite-fulfillment-1", 1, "1ZDWB0001")
        assert check_shop(view, [first], buffer=2) == []
        fulfil(shop, "netsuite-fulfillment-2", 2, "1ZDWB0002")
        [problem] = check_shop(view, [first], buffer=2)
        assert problem.startswith(f"order {ORDER_ID}: 1 fulfillment(s)") and "not shipped in the ERP" in problem
        assert check_shop(view, [first, shipment(2, "1ZDWB0002")], buffer=2) == []


def test_a_count_passes_only_with_each_locations_quantity_and_the_price(shop):
    with httpx.Client() as http:
        view = ShopView(shop, http)
        variant = next(v for v in view.variants() if v["sku"] == "DWB-MUG")
        item = variant["inventoryItemId"]
        for location, available in ((MAIN, 20), (EAST, 4)):
            http.post(f"{shop}/_sandbox/inventory", json={"inventoryItemId": item, "locationId": location,
                                                          "available": available}).raise_for_status()
        count = StockCount(kind="stock", path=READER, label="test", sku="DWB-MUG", variant_id=4_400_201,
                           counts={"1": (25, 3), "2": (6, 0)}, price=Decimal(variant["price"]))

        def stock_problems() -> list[str]:  # this test's part: the fulfillments belong to the test above
            return [p for p in check_shop(view, [count], buffer=2) if p.startswith("DWB-MUG")]

        assert stock_problems() == []
        count.counts["2"] = (9, 0)
        count.price = Decimal("11.00")
        assert stock_problems() == [f"DWB-MUG at {EAST}: 4 available, the ERP's count gives 7 (9 on hand − 0 committed − "
                            f"buffer 2)", f"DWB-MUG: price {variant['price']}, the ERP's base price is 11.00"]


def test_the_first_order_of_more_than_one_unit_ships_in_two_parts_covering_every_unit():
    orders = {11: ("501", [("a", 1)]), 12: ("502", [("b", 2), ("c", 1)]), 13: ("503", [("d", 4)])}
    shipments = plan_shipments(orders, [NOTICE, NOTICE, READER], random.Random(1))
    assert [(s.order_id, s.lines, s.path) for s in shipments] == [
        (11, (("a", 1),), NOTICE), (12, (("b", 2),), NOTICE), (12, (("c", 1),), NOTICE), (13, (("d", 4),), READER)]
    assert len({t for s in shipments for t in s.tracking}) == sum(len(s.tracking) for s in shipments)
