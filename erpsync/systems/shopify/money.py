"""What a Shopify order's money fields mean, computed into sales-order lines and the total to compare against.

Shopify's rules, as its Admin REST ``Order`` resource states them:
- ``price`` is the unit price before discounts; ``discount_allocations`` are the parts of each discount
  (line, order-level "across", or a code) that fall on the line, summing to the discount applied;
  ``total_discounts`` may hold more than the allocations (an order-level amount with no allocation): the rest.
- ``tax_lines`` per line (and per shipping line) hold the tax of that line; with ``taxes_included`` the prices
  already hold it, so the net amount is the price less its tax.
- every amount has a ``*_set`` with ``shop_money`` and ``presentment_money`` (what the customer paid in).
- ``current_quantity`` is the quantity less what was removed by an edit or refunded; a refund of a line is a
  record of its own in the ERP, so the sales order keeps refunded units and leaves out only edited-out ones.
- ``total_price`` is the order as placed; after an edit ``current_total_price`` is the order as it stands less
  the money refunded, so the sales order's total is ``current_total_price`` plus the refunded money.
- gift cards used as payment are payments, not on the order; gift cards sold are lines (``gift_card: true``);
  a tip is a line item with ``tip_payment_gateway`` (and counted in ``total_tip_received``); duties per line
  in ``duties[]``.
"""

from __future__ import annotations

from collections import defaultdict
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
from erpsync.systems.shopify.models import ShopifyMoneySet, ShopifyOrder, ShopifyTaxLine, parse_order

# Source paths the computation reads (a prefix reads everything below it), for drift reports.
READS = (
    "currency", "presentment_currency", "taxes_included", "cancelled_at",
    "total_price", "total_price_set", "current_total_price", "current_total_price_set",
    "total_discounts", "total_discounts_set", "total_tip_received",
    "line_items[].id", "line_items[].sku", "line_items[].title", "line_items[].name", "line_items[].quantity",
    "line_items[].current_quantity", "line_items[].price", "line_items[].price_set", "line_items[].gift_card",
    "line_items[].discount_allocations", "line_items[].tax_lines", "line_items[].duties",
    "line_items[].tip_payment_gateway",
    "shipping_lines", "refunds[].refund_line_items", "refunds[].transactions",
)


def parsed(payload: Any) -> ShopifyOrder:
    return parse_for_money(parse_order, payload)


def order_money(payload: Any, options: MoneyOptions) -> OrderMoney:
    order = parsed(payload)
    presentment = options.currency == "presentment"
    currency = (order.presentment_currency or order.currency) if presentment else order.currency
    places = minor_units(currency)

    def pick(plain: Decimal | None, money_set: ShopifyMoneySet | None, where: str) -> Decimal:
        if money_set is not None:
            return (money_set.presentment_money if presentment else money_set.shop_money).amount
        if plain is None:
            raise fail(where, "required source field is missing")
        if currency != order.currency:
            raise fail(f"{where}_set", "missing: the order is in another presentment currency than the shop's, "
                                       "and only the *_set fields hold that currency's amounts")
        return plain

    def taxes(tax_lines: list[ShopifyTaxLine], where: str) -> Decimal:
        return sum((pick(t.price, t.price_set, f"{where}.tax_lines[{k}].price") for k, t in enumerate(tax_lines)),
                   Decimal(0))

    refunded_units: dict[int, int] = defaultdict(int)
    for refund in order.refunds:
        for refunded in refund.refund_line_items:
            refunded_units[refunded.line_item_id] += refunded.quantity

    items = options.items
    lines: list[MoneyLine] = []
    edited = False
    kept_allocations = all_allocations = Decimal(0)
    duties = duties_tax = Decimal(0)
    for i, li in enumerate(order.line_items):
        where = f"line_items[{i}]"
        quantity = li.quantity
        if li.current_quantity is not None and order.cancelled_at is None:
            # A cancelled order keeps its lines (closed by the mapping): cancelling is not an edit.
            quantity = min(li.quantity, li.current_quantity + refunded_units[li.id])
        allocations = sum((pick(a.amount, a.amount_set, f"{where}.discount_allocations[{k}].amount")
                           for k, a in enumerate(li.discount_allocations)), Decimal(0))
        all_allocations += allocations
        if quantity < li.quantity:
            edited = True
        if quantity == 0:
            continue
        tax = taxes(li.tax_lines, where)
        duty = Decimal(0)
        duty_tax = Decimal(0)
        for k, d in enumerate(li.duties):
            duty += pick(None, d.price_set, f"{where}.duties[{k}].price")
            duty_tax += taxes(d.tax_lines, f"{where}.duties[{k}]")
        if quantity != li.quantity:
            # Part of the line was edited out: its discount, tax and duty go with it in proportion.
            share = Decimal(quantity) / Decimal(li.quantity)
            allocations, tax = round_money(allocations * share, places), round_money(tax * share, places)
            duty, duty_tax = round_money(duty * share, places), round_money(duty_tax * share, places)
        kept_allocations += allocations
        duties += duty
        duties_tax += duty_tax
        amount = pick(li.price, li.price_set, f"{where}.price") * quantity
        if options.discounts == "lines":
            amount -= allocations
        if order.taxes_included:
            amount -= tax
        kind = "gift_card" if li.gift_card else "tip" if li.tip_payment_gateway else "product" if li.sku else "custom"
        lines.append(MoneyLine(
            key=str(li.id),
            kind=kind,
            quantity=quantity,
            amount=amount,
            sku=li.sku if kind == "product" else None,
            item=None if kind == "product" else getattr(items, kind),
            description=description(li.title or li.name, options.description_length),
            tax_amount=tax,
            tax_code=tax_code(li.tax_lines),
            source=where,
        ))

    shipping_cost = shipping_tax = shipping_allocations = Decimal(0)
    method: str | None = None
    method_tax_code: str | None = None
    shipped = False
    for j, sl in enumerate(order.shipping_lines):
        where = f"shipping_lines[{j}]"
        allocations = sum((pick(a.amount, a.amount_set, f"{where}.discount_allocations[{k}].amount")
                           for k, a in enumerate(sl.discount_allocations)), Decimal(0))
        shipping_allocations += allocations
        if sl.is_removed:
            edited = True
            continue
        shipped = True
        tax = taxes(sl.tax_lines, where)
        # A shipping discount is part of the shipping price the customer paid, in either discount mode.
        cost = pick(sl.price, sl.price_set, f"{where}.price") - allocations
        if order.taxes_included:
            cost -= tax
        shipping_cost += cost
        shipping_tax += tax
        method = method or sl.code or sl.title
        method_tax_code = method_tax_code or tax_code(sl.tax_lines)

    total_discounts = (pick(order.total_discounts, order.total_discounts_set, "total_discounts")
                       if order.total_discounts is not None or order.total_discounts_set is not None else Decimal(0))
    # An order-level discount without allocations (Shopify's own sample has one): the rest of total_discounts.
    unallocated = max(Decimal(0), total_discounts - all_allocations - shipping_allocations)

    money = OrderMoney(currency=currency, total=Decimal(0), total_field="total_price", lines=lines)
    if shipped:
        if options.shipping == "header":
            money.shipping_method, money.shipping_cost = method, shipping_cost
            if shipping_tax:
                lines.append(MoneyLine("shipping-tax", "sales_tax", 1, shipping_tax, item=items.sales_tax,
                                       description="Shipping tax"))
        else:
            lines.append(MoneyLine("shipping", "shipping", 1, shipping_cost, item=items.shipping,
                                   description=description(method, options.description_length),
                                   tax_amount=shipping_tax, tax_code=method_tax_code))
    if options.discounts == "header":
        if kept_allocations + unallocated:
            money.discount_item, money.discount_rate = items.discount, -(kept_allocations + unallocated)
    elif unallocated:
        lines.append(MoneyLine("discount", "discount", 1, -unallocated, item=items.discount, description="Discount"))
    # A tip is usually a line item of its own (above); a tip the order counts in total_tip_received but
    # carries on no line still belongs to the order's total.
    tip_lines = sum((line.amount for line in lines if line.kind == "tip"), Decimal(0))
    received = order.total_tip_received or Decimal(0)
    if currency == order.currency:
        untold = received - tip_lines
    else:  # total_tip_received is stated in shop money only: tip lines, if any, say it all
        untold = Decimal(0) if any(line.kind == "tip" for line in lines) else received
    if untold > 0:
        lines.append(MoneyLine("tip", "tip", 1, pick(untold, None, "total_tip_received"), item=items.tip,
                               description="Tip"))
    if duties or duties_tax:
        lines.append(MoneyLine("duties", "duties", 1, duties, item=items.duties, description="Duties",
                               tax_amount=duties_tax))

    if not edited:
        money.total = pick(order.total_price, order.total_price_set, "total_price")
    else:
        if order.current_total_price is None and order.current_total_price_set is None:
            raise fail("current_total_price", "required source field is missing (lines were edited out)")
        refunded = Decimal(0)
        for r, refund in enumerate(order.refunds):
            for t, tx in enumerate(refund.transactions):
                if tx.kind == "refund" and tx.status == "success":
                    where = f"refunds[{r}].transactions[{t}].amount"
                    if tx.amount_set is None and tx.currency is not None and tx.currency != currency:
                        raise fail(f"{where}_set", "missing: the refund is in another currency than the order's")
                    refunded += tx.amount if tx.amount_set is None else pick(None, tx.amount_set, where)
        money.total = pick(order.current_total_price, order.current_total_price_set, "current_total_price") + refunded
        money.total_field = "current_total_price + refunded"
    return money


def tax_code(tax_lines: list[ShopifyTaxLine]) -> str | None:
    """The tax-code lookup key of a line: its tax lines' titles (``CA State Tax + LA County Tax``)."""
    titles = [t.title or (f"{t.rate}" if t.rate is not None else "tax") for t in tax_lines]
    return " + ".join(titles) or None

