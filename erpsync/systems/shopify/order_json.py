"""A GraphQL Admin API ``Order`` node as the order JSON of Shopify's webhooks (the REST resource's shape), which the
order mapping, the money rules and a reconciliation repair's inbox event all read.

Each REST field comes from the GraphQL field Shopify pairs it with (https://shopify.dev/docs/api/admin-graphql/2026-10/objects/Order,
https://shopify.dev/docs/api/admin-graphql/2026-10/objects/LineItem, https://shopify.dev/docs/api/admin-graphql/2026-10/objects/MoneyBag):
``*_set`` from a ``MoneyBag`` (``shop_money``/``presentment_money`` from ``shopMoney``/``presentmentMoney``), the plain
amount from its ``shopMoney``; ids from the global ids' numbers; timestamps, UTC in GraphQL, written in the shop's
time zone (``Shop.ianaTimezone``) as the webhooks write them, so the order's date is the shop's calendar date.
What GraphQL does not carry is left out, never invented: ``tip_payment_gateway`` (a tip line is then read as a
custom line; the total still holds it), ``order_number`` is the number in the order's name.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from erpsync.errors import InvalidPayload

ORDER_GID = "gid://shopify/Order/"


def gid_number(value: Any, where: str) -> int:
    """``gid://shopify/Order/123`` → 123; InvalidPayload naming the place for anything else."""
    if isinstance(value, str):
        tail = value.rsplit("/", 1)[-1].split("?", 1)[0]
        if value.startswith("gid://shopify/") and tail.isdigit():
            return int(tail)
    raise InvalidPayload("not a Shopify global id", field=where)


def _local(value: Any, zone: tzinfo) -> str | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(zone).isoformat(timespec="seconds")


def _money_set(bag: Any) -> dict[str, Any] | None:
    if not isinstance(bag, dict) or not isinstance(bag.get("shopMoney"), dict):
        return None
    shop = bag["shopMoney"]
    presentment = bag.get("presentmentMoney") or shop
    return {"shop_money": {"amount": str(shop.get("amount")), "currency_code": shop.get("currencyCode")},
            "presentment_money": {"amount": str(presentment.get("amount")),
                                  "currency_code": presentment.get("currencyCode")}}


def _amount(bag: Any) -> str | None:
    money = _money_set(bag)
    return money["shop_money"]["amount"] if money else None


def _address(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {"name": value.get("name"), "first_name": value.get("firstName"), "last_name": value.get("lastName"),
            "company": value.get("company"), "address1": value.get("address1"), "address2": value.get("address2"),
            "city": value.get("city"), "province": value.get("province"), "province_code": value.get("provinceCode"),
            "zip": value.get("zip"), "country": value.get("country"), "country_code": value.get("countryCodeV2"),
            "phone": value.get("phone")}


def _tax_lines(lines: Any) -> list[dict[str, Any]]:
    return [{"title": t.get("title"), "rate": t.get("rate"), "price": _amount(t.get("priceSet")),
             "price_set": _money_set(t.get("priceSet"))} for t in lines or []]


def _allocations(lines: Any) -> list[dict[str, Any]]:
    return [{"amount": _amount(a.get("allocatedAmountSet")), "amount_set": _money_set(a.get("allocatedAmountSet"))}
            for a in lines or []]


def _nodes(connection: Any) -> list[Any]:
    if isinstance(connection, list):  # already gathered (a bulk operation's child lines)
        return connection
    if not isinstance(connection, dict):
        return []
    if "nodes" in connection:
        return list(connection["nodes"] or [])
    return [edge.get("node") for edge in connection.get("edges") or []]


def line_item(node: dict[str, Any], where: str) -> dict[str, Any]:
    line_id = gid_number(node.get("id"), f"{where}.id")
    variant, product = node.get("variant") or {}, node.get("product") or {}
    return {
        "id": line_id, "admin_graphql_api_id": node.get("id"), "sku": node.get("sku"), "title": node.get("title"),
        "name": node.get("name"), "quantity": node.get("quantity"), "current_quantity": node.get("currentQuantity"),
        "price": _amount(node.get("originalUnitPriceSet")), "price_set": _money_set(node.get("originalUnitPriceSet")),
        "gift_card": bool(node.get("isGiftCard")), "requires_shipping": node.get("requiresShipping"),
        "variant_id": gid_number(variant["id"], f"{where}.variant.id") if variant.get("id") else None,
        "product_id": gid_number(product["id"], f"{where}.product.id") if product.get("id") else None,
        "discount_allocations": _allocations(node.get("discountAllocations")),
        "tax_lines": _tax_lines(node.get("taxLines")),
        "duties": [{"price_set": _money_set(d.get("price")), "tax_lines": _tax_lines(d.get("taxLines"))}
                   for d in node.get("duties") or []],
    }


def shipping_line(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": node.get("code"), "title": node.get("title"),
        "price": _amount(node.get("originalPriceSet")), "price_set": _money_set(node.get("originalPriceSet")),
        "discounted_price": _amount(node.get("discountedPriceSet")),
        "discounted_price_set": _money_set(node.get("discountedPriceSet")),
        "is_removed": bool(node.get("isRemoved")), "tax_lines": _tax_lines(node.get("taxLines")),
        "discount_allocations": _allocations(node.get("discountAllocations")),
    }


def refund(node: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "refund_line_items": [
            {"line_item_id": gid_number((item.get("lineItem") or {}).get("id"), f"{where}.refundLineItems.lineItem.id"),
             "quantity": item.get("quantity")} for item in _nodes(node.get("refundLineItems"))],
        "transactions": [
            {"kind": str(tx.get("kind") or "").lower() or None, "status": str(tx.get("status") or "").lower() or None,
             "amount": _amount(tx.get("amountSet")), "amount_set": _money_set(tx.get("amountSet"))}
            for tx in _nodes(node.get("transactions"))],
    }


_FULFILLMENT_STATUS = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial", "RESTOCKED": "restocked"}


def rest_order(node: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    """The webhook-shaped order of one ``Order`` node whose connections are gathered (pages or bulk lines)."""
    order_id = gid_number(node.get("id"), "order.id")
    name = str(node.get("name") or "")
    digits = re.sub(r"\D", "", name)
    customer = node.get("customer")
    rest_customer = None
    if isinstance(customer, dict) and customer.get("id"):
        rest_customer = {"id": gid_number(customer["id"], "order.customer.id"), "email": customer.get("email"),
                         "first_name": customer.get("firstName"), "last_name": customer.get("lastName"),
                         "phone": customer.get("phone"), "default_address": _address(customer.get("defaultAddress"))}
    return {
        "id": order_id, "admin_graphql_api_id": node.get("id"), "name": name,
        "order_number": int(digits) if digits else order_id,
        "email": node.get("email"), "test": bool(node.get("test")),
        "created_at": _local(node.get("createdAt"), zone), "updated_at": _local(node.get("updatedAt"), zone),
        "processed_at": _local(node.get("processedAt"), zone),
        "cancelled_at": _local(node.get("cancelledAt"), zone), "closed_at": _local(node.get("closedAt"), zone),
        "cancel_reason": str(node["cancelReason"]).lower() if node.get("cancelReason") else None,
        "financial_status": str(node["displayFinancialStatus"]).lower() if node.get("displayFinancialStatus") else None,
        "fulfillment_status": _FULFILLMENT_STATUS.get(str(node.get("displayFulfillmentStatus"))),
        "currency": node.get("currencyCode"), "presentment_currency": node.get("presentmentCurrencyCode"),
        "taxes_included": bool(node.get("taxesIncluded")),
        "total_price": _amount(node.get("totalPriceSet")), "total_price_set": _money_set(node.get("totalPriceSet")),
        "current_total_price": _amount(node.get("currentTotalPriceSet")),
        "current_total_price_set": _money_set(node.get("currentTotalPriceSet")),
        "total_discounts": _amount(node.get("totalDiscountsSet")),
        "total_discounts_set": _money_set(node.get("totalDiscountsSet")),
        "total_tip_received": _amount(node.get("totalTipReceivedSet")),
        "customer": rest_customer,
        "billing_address": _address(node.get("billingAddress")),
        "shipping_address": _address(node.get("shippingAddress")),
        "line_items": [line_item(n, f"order.lineItems[{i}]") for i, n in enumerate(_nodes(node.get("lineItems")))],
        "shipping_lines": [shipping_line(n) for n in _nodes(node.get("shippingLines"))],
        "refunds": [refund(r, f"order.refunds[{i}]") for i, r in enumerate(node.get("refunds") or [])],
    }
