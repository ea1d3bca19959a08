"""An order the store sent (Shopify's REST/webhook JSON) as the GraphQL Admin API's ``Order`` shows the same facts:
money as ``MoneyBag`` (``shopMoney``/``presentmentMoney``, each ``amount`` and ``currencyCode``), the customer, the
addresses, the lines' prices, discount allocations, tax lines and duties, the shipping lines and the refunds.

Field names and types follow https://shopify.dev/docs/api/admin-graphql/2026-10/objects/Order,
https://shopify.dev/docs/api/admin-graphql/2026-10/objects/LineItem, https://shopify.dev/docs/api/admin-graphql/2026-10/objects/MoneyBag
and https://shopify.dev/docs/api/admin-graphql/2026-10/objects/ShippingLine; the REST field each one stands for is the
one Shopify's REST→GraphQL migration guide pairs it with (``total_price_set`` → ``totalPriceSet``, ``price_set`` →
``originalUnitPriceSet``, ``country_code`` → ``countryCodeV2``, …). Timestamps are UTC in GraphQL; the shop's own
time zone is ``Shop.ianaTimezone``.
"""

from __future__ import annotations

from typing import Any

# The scenario's shop keeps a fixed UTC-5 clock (its orders' timestamps carry -05:00); the IANA name of that offset
# is Etc/GMT+5 (POSIX signs are inverted in the Etc zone names).
SHOP_TIMEZONE = "Etc/GMT+5"
SHOP_NAME = "erpsync demo"


def money_v2(money: dict[str, Any] | None, fallback_currency: str) -> dict[str, Any]:
    money = money or {}
    return {"amount": str(money.get("amount", "0.00")), "currencyCode": money.get("currency_code") or fallback_currency}


def money_bag(money_set: dict[str, Any] | None, plain: Any, currency: str,
              presentment: str | None = None) -> dict[str, Any]:
    """``*_set`` as a MoneyBag; from the plain amount in the shop's currency when the order carries no set."""
    if isinstance(money_set, dict) and money_set.get("shop_money"):
        return {"shopMoney": money_v2(money_set.get("shop_money"), currency),
                "presentmentMoney": money_v2(money_set.get("presentment_money") or money_set.get("shop_money"),
                                             presentment or currency)}
    amount = str(plain if plain is not None else "0.00")
    return {"shopMoney": {"amount": amount, "currencyCode": currency},
            "presentmentMoney": {"amount": amount, "currencyCode": presentment or currency}}


def address(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {"name": value.get("name"), "firstName": value.get("first_name"), "lastName": value.get("last_name"),
            "company": value.get("company"), "address1": value.get("address1"), "address2": value.get("address2"),
            "city": value.get("city"), "province": value.get("province"), "provinceCode": value.get("province_code"),
            "zip": value.get("zip"), "country": value.get("country"), "countryCodeV2": value.get("country_code"),
            "phone": value.get("phone")}


def customer(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("id") is None:
        return None
    return {"__typename": "Customer", "id": f"gid://shopify/Customer/{value['id']}",
            "legacyResourceId": str(value["id"]), "email": value.get("email"), "firstName": value.get("first_name"),
            "lastName": value.get("last_name"), "phone": value.get("phone"),
            "defaultAddress": address(value.get("default_address"))}


def tax_lines(lines: Any, currency: str, presentment: str) -> list[dict[str, Any]]:
    return [{"title": t.get("title"), "rate": float(t["rate"]) if t.get("rate") is not None else None,
             "priceSet": money_bag(t.get("price_set"), t.get("price"), currency, presentment)}
            for t in lines or []]


def allocations(lines: Any, currency: str, presentment: str) -> list[dict[str, Any]]:
    return [{"allocatedAmountSet": money_bag(a.get("amount_set"), a.get("amount"), currency, presentment)}
            for a in lines or []]


def line_money(order: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """The money and kind fields of one ``LineItem`` node."""
    currency, presentment = currencies(order)
    return {
        "title": line.get("title") or line.get("name") or "",
        "originalUnitPriceSet": money_bag(line.get("price_set"), line.get("price"), currency, presentment),
        "isGiftCard": bool(line.get("gift_card")),
        "requiresShipping": bool(line.get("requires_shipping", True)),
        "discountAllocations": allocations(line.get("discount_allocations"), currency, presentment),
        "taxLines": lambda info, first=None: tax_lines(line.get("tax_lines"), currency, presentment)[:first],
        "duties": [{"id": f"gid://shopify/Duty/{d.get('id', n)}",
                    "price": money_bag(d.get("price_set"), None, currency, presentment),
                    "taxLines": tax_lines(d.get("tax_lines"), currency, presentment)}
                   for n, d in enumerate(line.get("duties") or [])],
    }


def currencies(order: dict[str, Any]) -> tuple[str, str]:
    currency = order.get("currency") or "USD"
    return currency, order.get("presentment_currency") or currency


def shipping_line(order: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    currency, presentment = currencies(order)
    return {"id": f"gid://shopify/ShippingLine/{line['id']}" if line.get("id") else None, "code": line.get("code"),
            "title": line.get("title") or "",
            "originalPriceSet": money_bag(line.get("price_set"), line.get("price"), currency, presentment),
            "discountedPriceSet": money_bag(line.get("discounted_price_set"), line.get("discounted_price",
                                                                                      line.get("price")),
                                            currency, presentment),
            "isRemoved": bool(line.get("is_removed")),
            "taxLines": tax_lines(line.get("tax_lines"), currency, presentment),
            "discountAllocations": allocations(line.get("discount_allocations"), currency, presentment)}


def transaction(order: dict[str, Any], tx: dict[str, Any], n: int) -> dict[str, Any]:
    currency, presentment = currencies(order)
    return {"id": f"gid://shopify/OrderTransaction/{tx.get('id', n)}", "kind": str(tx.get("kind") or "sale").upper(),
            "status": str(tx.get("status") or "success").upper(),
            "amountSet": money_bag(tx.get("amount_set"), tx.get("amount"), tx.get("currency") or currency, presentment)}


def order_money(order: dict[str, Any]) -> dict[str, Any]:
    """The order-level fields of an ``Order`` node beyond its ids and times."""
    currency, presentment = currencies(order)
    return {
        "email": order.get("email"),
        "test": bool(order.get("test")),
        "currencyCode": currency,
        "presentmentCurrencyCode": presentment,
        "taxesIncluded": bool(order.get("taxes_included")),
        "cancelReason": str(order["cancel_reason"]).upper() if order.get("cancel_reason") else None,
        "displayFinancialStatus": str(order["financial_status"]).upper() if order.get("financial_status") else None,
        "totalPriceSet": money_bag(order.get("total_price_set"), order.get("total_price"), currency, presentment),
        "currentTotalPriceSet": money_bag(order.get("current_total_price_set"),
                                          order.get("current_total_price", order.get("total_price")),
                                          currency, presentment),
        "totalDiscountsSet": money_bag(order.get("total_discounts_set"), order.get("total_discounts"), currency,
                                       presentment),
        "totalTipReceivedSet": money_bag(None, order.get("total_tip_received") or "0.00", currency, currency),
        "customer": customer(order.get("customer")),
        "billingAddress": address(order.get("billing_address")),
        "shippingAddress": address(order.get("shipping_address")),
    }
