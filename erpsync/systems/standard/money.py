"""What a Standard Webhooks order's money fields mean (the shape docs/sources.md defines), as sales-order lines.

A line's amount is ``price × quantity − discount`` (less ``tax`` when ``taxes_included``), its tax ``tax``;
shipping is ``shipping.price − shipping.discount`` with ``shipping.tax``; ``discount`` at the order level is a
discount no line carries. ``total`` is the grand total the customer pays: lines, shipping and taxes, less the
order-level discount. One currency; a line with quantity 0 was removed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync.order_money import MoneyLine, MoneyOptions, OrderMoney, description, fail, parse_for_money
from erpsync.systems.standard.models import StandardOrderEvent, parse_order

READS = (
    "data.currency", "data.total", "data.taxes_included", "data.discount", "data.shipping",
    "data.lines[].id", "data.lines[].sku", "data.lines[].kind", "data.lines[].quantity", "data.lines[].price",
    "data.lines[].title", "data.lines[].discount", "data.lines[].tax", "data.lines[].tax_code",
)


def parsed(payload: Any) -> StandardOrderEvent:
    return parse_for_money(parse_order, payload)


def order_money(payload: Any, options: MoneyOptions) -> OrderMoney:
    order = parsed(payload).data
    if order.total is None:
        raise fail("data.total", "required source field is missing (the money check compares against it)")
    items = options.items
    lines: list[MoneyLine] = []
    allocated = Decimal(0)
    for i, li in enumerate(order.lines):
        if li.quantity == 0:
            continue
        amount = li.price * li.quantity
        allocated += li.discount
        if options.discounts == "lines":
            amount -= li.discount
        if order.taxes_included:
            amount -= li.tax
        kind = li.kind if li.kind != "product" else "product" if li.sku else "custom"
        lines.append(MoneyLine(
            key=li.id or f"line-{i + 1}",
            kind=kind,
            quantity=li.quantity,
            amount=amount,
            sku=li.sku if kind == "product" else None,
            item=None if kind == "product" else getattr(items, kind),
            description=description(li.title, options.description_length),
            tax_amount=li.tax,
            tax_code=li.tax_code,
            source=f"data.lines[{i}]",
        ))
    money = OrderMoney(currency=order.currency, total=order.total, total_field="data.total", lines=lines)
    ship = order.shipping
    if ship is not None:
        cost = ship.price - ship.discount - (ship.tax if order.taxes_included else Decimal(0))
        if options.shipping == "header":
            money.shipping_method, money.shipping_cost = ship.method, cost
            if ship.tax:
                lines.append(MoneyLine("shipping-tax", "sales_tax", 1, ship.tax, item=items.sales_tax,
                                       description="Shipping tax"))
        else:
            lines.append(MoneyLine("shipping", "shipping", 1, cost, item=items.shipping,
                                   description=description(ship.method, options.description_length),
                                   tax_amount=ship.tax, tax_code=ship.tax_code))
    if options.discounts == "header":
        if allocated + order.discount:
            money.discount_item, money.discount_rate = items.discount, -(allocated + order.discount)
    elif order.discount:
        lines.append(MoneyLine("discount", "discount", 1, -order.discount, item=items.discount,
                               description="Discount"))
    return money
