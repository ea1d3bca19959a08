"""Reconciliation's GraphQL order reading, the pure parts: an Order node in the webhooks' JSON shape, a bulk result's
lines gathered under their parents, and the window's search string."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from erpsync.errors import ConfigError, InvalidPayload, PermanentError
from erpsync.systems.shopify.bulk import gather
from erpsync.systems.shopify.order_json import rest_order
from erpsync.systems.shopify.orders_graphql import window_search


def bag(amount: str, presentment: str | None = None, currency: str = "USD", other: str = "EUR") -> dict:
    return {"shopMoney": {"amount": amount, "currencyCode": currency},
            "presentmentMoney": {"amount": presentment or amount, "currencyCode": other if presentment else currency}}


NODE = {
    "id": "gid://shopify/Order/5001", "name": "#1042", "email": "a@example.com", "test": False,
    "createdAt": "2026-11-28T03:30:00Z", "updatedAt": "2026-11-28T04:00:00Z", "processedAt": "2026-11-28T03:30:00Z",
    "cancelledAt": None, "cancelReason": None, "closedAt": None, "currencyCode": "USD",
    "presentmentCurrencyCode": "EUR", "taxesIncluded": False, "displayFinancialStatus": "PAID",
    "displayFulfillmentStatus": "PARTIALLY_FULFILLED",
    "totalPriceSet": bag("21.00", "19.00"), "currentTotalPriceSet": bag("21.00", "19.00"),
    "totalDiscountsSet": bag("0.00"), "totalTipReceivedSet": bag("0.00"),
    "customer": {"id": "gid://shopify/Customer/77", "email": "a@example.com", "firstName": "A", "lastName": "B",
                 "phone": None, "defaultAddress": None},
    "billingAddress": {"name": "A B", "countryCodeV2": "US", "provinceCode": "NY"}, "shippingAddress": None,
    "lineItems": [{"id": "gid://shopify/LineItem/9", "sku": "MUG", "title": "Mug", "name": "Mug", "quantity": 2,
                   "currentQuantity": 2, "isGiftCard": False, "requiresShipping": True,
                   "originalUnitPriceSet": bag("8.00", "7.00"), "variant": {"id": "gid://shopify/ProductVariant/3"},
                   "product": None, "discountAllocations": [], "duties": [],
                   "taxLines": [{"title": "State Tax", "rate": 0.05, "priceSet": bag("0.80")}]}],
    "shippingLines": {"nodes": [{"code": "Standard", "title": "Standard", "isRemoved": False,
                                 "originalPriceSet": bag("4.20"), "discountedPriceSet": bag("4.20"), "taxLines": [],
                                 "discountAllocations": []}]},
    "refunds": [{"id": "gid://shopify/Refund/1",
                 "refundLineItems": {"nodes": [{"quantity": 1, "lineItem": {"id": "gid://shopify/LineItem/9"}}]},
                 "transactions": {"nodes": [{"kind": "REFUND", "status": "SUCCESS", "amountSet": bag("8.40")}]}}],
}


def test_an_order_node_reads_as_the_webhooks_json_in_the_shops_time_zone():
    order = rest_order(NODE, ZoneInfo("Etc/GMT+5"))
    assert (order["id"], order["order_number"], order["name"]) == (5001, 1042, "#1042")
    # 03:30 UTC is the evening before in the shop's zone: the order's date is the shop's calendar date.
    assert order["created_at"] == "2026-11-27T22:30:00-05:00" and order["updated_at"] == "2026-11-27T23:00:00-05:00"
    assert order["total_price"] == "21.00"
    assert order["total_price_set"] == {"shop_money": {"amount": "21.00", "currency_code": "USD"},
                                        "presentment_money": {"amount": "19.00", "currency_code": "EUR"}}
    [line] = order["line_items"]
    assert (line["id"], line["sku"], line["price"], line["variant_id"], line["product_id"]) == (9, "MUG", "8.00", 3,
                                                                                                  None)
    assert line["tax_lines"] == [{"title": "State Tax", "rate": 0.05, "price": "0.80",
                                  "price_set": {"shop_money": {"amount": "0.80", "currency_code": "USD"},
                                                "presentment_money": {"amount": "0.80", "currency_code": "USD"}}}]
    assert order["shipping_lines"][0]["price"] == "4.20" and order["shipping_lines"][0]["code"] == "Standard"
    assert order["refunds"][0]["refund_line_items"] == [{"line_item_id": 9, "quantity": 1}]
    assert order["refunds"][0]["transactions"][0]["kind"] == "refund"
    assert order["customer"]["id"] == 77 and order["billing_address"]["country_code"] == "US"
    assert (order["financial_status"], order["fulfillment_status"], order["currency"]) == ("paid", "partial", "USD")


def test_an_id_that_is_not_a_global_id_is_refused_naming_its_place():
    broken = {**NODE, "lineItems": [{**NODE["lineItems"][0], "id": "9"}]}
    with pytest.raises(InvalidPayload, match=r"order\.lineItems\[0\]\.id: not a Shopify global id"):
        rest_order(broken, UTC)


def test_bulk_lines_are_gathered_under_their_parent_order_or_refund():
    lines = [
        {"id": "gid://shopify/Order/1", "refunds": [{"id": "gid://shopify/Refund/10"}]},
        {"__typename": "LineItem", "id": "gid://shopify/LineItem/5", "__parentId": "gid://shopify/Order/1"},
        {"__typename": "RefundLineItem", "quantity": 1, "__parentId": "gid://shopify/Refund/10"},
        {"id": "gid://shopify/Order/2"},
        {"__typename": "ShippingLine", "code": "x", "__parentId": "gid://shopify/Order/2"},
    ]
    first, second = gather(iter(lines))
    assert [line["id"] for line in first["lineItems"]] == ["gid://shopify/LineItem/5"]
    assert first["refunds"][0]["refundLineItems"] == [{"__typename": "RefundLineItem", "quantity": 1}]
    assert second["shippingLines"][0]["code"] == "x" and "lineItems" not in second


def test_a_bulk_line_whose_parent_did_not_come_first_or_whose_type_is_unknown_is_refused():
    with pytest.raises(PermanentError, match="names a parent .* that did not come before it"):
        list(gather(iter([{"__typename": "LineItem", "__parentId": "gid://shopify/Order/9"}])))
    with pytest.raises(PermanentError, match="unknown type 'Fulfillment'"):
        list(gather(iter([{"id": "gid://shopify/Order/1"},
                          {"__typename": "Fulfillment", "__parentId": "gid://shopify/Order/1"}])))


def test_the_window_is_searched_to_the_second_in_utc_and_only_ever_widens():
    start = datetime(2026, 11, 27, 23, 0, 0, 500_000, tzinfo=timezone(timedelta(hours=-5)))
    assert window_search(start, start + timedelta(days=1)) == (
        "updated_at:>='2026-11-28T04:00:00Z' updated_at:<'2026-11-29T04:00:01Z'")
    with pytest.raises(ConfigError, match="need a time zone"):
        window_search(datetime(2026, 11, 27), datetime(2026, 11, 28))
