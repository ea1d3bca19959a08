"""What a Shopify refund's money means, computed into cash-refund lines whose total is the money returned.

The money a refund returned is its successful ``refund`` transactions, nothing else (shopify.dev, REST
``Refund``: "Transaction records of money returned to the customer"). The cash refund carries:
- one line per ``refund_line_items`` entry: its ``subtotal`` (after the line's discounts) with ``total_tax``,
  keyed by the order line's id, so it matches the sales order's line;
- refunded shipping (``refund_shipping_lines``; ``shipping_refund`` adjustments in older API versions) as the
  shipping line or the header's shipping cost, as the order mapping's ``money.shipping`` says;
- refunded duties (``total_duties_set``) on the duties item;
- ``order_adjustments`` of kind ``refund_discrepancy``: the difference Shopify recorded between the refund
  it calculated and the money returned. Shopify counts an adjustment against the refund (-5.00 means 5.00
  more went back), so it is booked negated, on the refund-adjustment item;
- what none of these explains, on the same adjustment item and described as unexplained, so the record still
  equals the money returned and a person sees the gap. Shopify's own sample has one: two 199.00 lines
  refunded, 85.00 returned, and no adjustment saying why.

Lines + tax + shipping + duties + adjustments = the money returned, to the minor unit of the currency; the
pre-push check compares the body with ``total`` like an order's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync.order_money import (
    MoneyLine,
    MoneyOptions,
    OrderMoney,
    description,
    fail,
    minor_units,
    parse_for_money,
    round_money,
)
from erpsync.systems.shopify.models import ShopifyMoneySet, ShopifyRefund, parse_refund

# Source paths the computation reads (a prefix reads everything below it), for drift reports.
READS = (
    "transactions", "refund_line_items", "refund_shipping_lines", "order_adjustments", "total_duties_set",
)

# The key and description of the line that carries what no field of the refund explains.
UNEXPLAINED_KEY = "refund-unexplained"


def parsed(payload: Any) -> ShopifyRefund:
    return parse_for_money(parse_refund, payload)


def refund_money(payload: Any, options: MoneyOptions) -> OrderMoney:
    refund = parsed(payload)
    presentment = options.currency == "presentment"
    currency = _currency(refund, presentment)
    places = minor_units(currency)

    def pick(plain: Decimal | None, money_set: ShopifyMoneySet | None, where: str) -> Decimal:
        if money_set is not None:
            chosen = money_set.presentment_money if presentment else money_set.shop_money
            if chosen.currency_code is not None and chosen.currency_code != currency:
                raise fail(f"{where}_set", f"in {chosen.currency_code}, the refund's other amounts in {currency}")
            return chosen.amount
        if plain is None:
            raise fail(where, "required source field is missing")
        if presentment and _shop_currency(refund) not in (None, currency):
            raise fail(f"{where}_set", "missing: the refund is in another presentment currency than the shop's, "
                                       "and only the *_set fields hold that currency's amounts")
        return plain

    returned = Decimal(0)
    for t, tx in enumerate(refund.transactions):
        if tx.kind != "refund" or tx.status != "success":
            continue
        where = f"transactions[{t}].amount"
        if tx.amount_set is not None:
            returned += pick(None, tx.amount_set, where)
        elif tx.currency is None or tx.currency == currency:
            returned += tx.amount
        else:
            raise fail(f"{where}_set", f"missing: the money went back in {tx.currency}, the refund is in {currency}")

    items = options.items
    lines: list[MoneyLine] = []
    for i, rl in enumerate(refund.refund_line_items):
        where = f"refund_line_items[{i}]"
        li = rl.line_item
        kind = "gift_card" if li.gift_card else "product" if li.sku else "custom"
        tax = (pick(rl.total_tax, rl.total_tax_set, f"{where}.total_tax")
               if rl.total_tax is not None or rl.total_tax_set is not None else Decimal(0))
        lines.append(MoneyLine(
            key=str(rl.line_item_id),
            kind=kind,
            quantity=rl.quantity,
            amount=pick(rl.subtotal, rl.subtotal_set, f"{where}.subtotal"),
            sku=li.sku if kind == "product" else None,
            item=None if kind == "product" else getattr(items, kind),
            description=description(li.title or li.name, options.description_length),
            tax_amount=tax,
        ))

    shipping = shipping_tax = Decimal(0)
    for j, sl in enumerate(refund.refund_shipping_lines):
        where = f"refund_shipping_lines[{j}]"
        shipping += pick(None, sl.subtotal_amount_set, f"{where}.subtotal_amount")
        if sl.tax_amount_set is not None:
            shipping_tax += pick(None, sl.tax_amount_set, f"{where}.tax_amount")
    adjusted = adjusted_tax = Decimal(0)
    for k, adj in enumerate(refund.order_adjustments):
        where = f"order_adjustments[{k}]"
        # Shopify counts an adjustment against the refund: -5.00 of shipping_refund is 5.00 of shipping given back.
        amount = -pick(adj.amount, adj.amount_set, f"{where}.amount")
        tax = -pick(adj.tax_amount, adj.tax_amount_set, f"{where}.tax_amount")
        if adj.kind == "shipping_refund":
            shipping, shipping_tax = shipping + amount, shipping_tax + tax
        else:
            adjusted, adjusted_tax = adjusted + amount, adjusted_tax + tax
    duties = (pick(None, refund.total_duties_set, "total_duties")
              if refund.total_duties_set is not None else Decimal(0))

    money = OrderMoney(currency=currency, total=round_money(returned, places),
                       total_field="transactions (successful refunds)", lines=lines)
    if shipping or shipping_tax:
        if options.shipping == "header":
            money.shipping_cost = shipping
            if shipping_tax:
                lines.append(MoneyLine("shipping-tax", "sales_tax", 1, shipping_tax, item=items.sales_tax,
                                       description="Shipping tax"))
        else:
            lines.append(MoneyLine("shipping", "shipping", 1, shipping, item=items.shipping,
                                   description="Shipping", tax_amount=shipping_tax))
    if duties:
        lines.append(MoneyLine("duties", "duties", 1, duties, item=items.duties, description="Duties"))
    if adjusted or adjusted_tax:
        lines.append(MoneyLine("refund-adjustment", "adjustment", 1, adjusted, item=items.adjustment,
                               description="Refund adjustment", tax_amount=adjusted_tax))
    # Each line is rounded on its own, as NetSuite sums them; what is left is not in any field of the refund.
    booked = sum((round_money(line.amount, places) + round_money(line.tax_amount, places) for line in lines),
                 round_money(money.shipping_cost or Decimal(0), places))
    unexplained = money.total - booked
    if unexplained:
        lines.append(MoneyLine(UNEXPLAINED_KEY, "adjustment", 1, unexplained, item=items.adjustment,
                               description="Refund difference not explained by the refund's lines"))
    return money


def _currency(refund: ShopifyRefund, presentment: bool) -> str:
    """The currency the refund is booked in: the side of the ``*_set`` amounts the mapping chose, else the
    currency the money went back in."""
    for money_set in _sets(refund):
        chosen = money_set.presentment_money if presentment else money_set.shop_money
        if chosen.currency_code:
            return chosen.currency_code
    for tx in refund.transactions:
        if tx.currency:
            return tx.currency
    raise fail("transactions", "no currency: neither a *_set amount nor a transaction names one")


def _shop_currency(refund: ShopifyRefund) -> str | None:
    for money_set in _sets(refund):
        if money_set.shop_money.currency_code:
            return money_set.shop_money.currency_code
    return None


def _sets(refund: ShopifyRefund) -> list[ShopifyMoneySet]:
    found: list[ShopifyMoneySet | None] = []
    for rl in refund.refund_line_items:
        found += [rl.subtotal_set, rl.total_tax_set]
    for sl in refund.refund_shipping_lines:
        found += [sl.subtotal_amount_set, sl.tax_amount_set]
    for adj in refund.order_adjustments:
        found += [adj.amount_set, adj.tax_amount_set]
    found += [tx.amount_set for tx in refund.transactions]
    return [s for s in found if s is not None]
