"""What a WooCommerce order's money fields mean, computed into sales-order lines and the total to compare against.

WooCommerce's REST v3 order (its documentation, "Order properties" and "Line items properties"):
- a line's ``subtotal`` is before discounts and ``total`` after, both without tax, whether or not the shop's
  prices include tax (``prices_include_tax`` only says how the customer saw them); ``total_tax`` is the tax of
  the discounted line, split by rate in ``taxes[]`` (``id`` = ``tax_lines[].rate_id``, named by ``rate_code``);
- ``shipping_lines[]`` and ``fee_lines[]`` carry ``total`` without tax and ``total_tax``; a negative fee is a
  discount added by hand;
- the order's ``total`` is the grand total: line totals, fees and shipping with their taxes. Refunds do not
  change it (they are records of their own), so it is the sales order's total;
- a line with quantity 0 was removed by an edit; the order has one currency (no presentment money).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync.order_money import MoneyLine, MoneyOptions, OrderMoney, description, fail, parse_for_money
from erpsync.systems.woocommerce.models import WooLineTax, WooOrder, parse_order

READS = (
    "currency", "total", "prices_include_tax",
    "line_items[].id", "line_items[].sku", "line_items[].name", "line_items[].quantity", "line_items[].price",
    "line_items[].subtotal", "line_items[].total", "line_items[].total_tax", "line_items[].taxes",
    "shipping_lines", "fee_lines", "tax_lines",
)


def parsed(payload: Any) -> WooOrder:
    return parse_for_money(parse_order, payload)


def order_money(payload: Any, options: MoneyOptions) -> OrderMoney:
    order = parsed(payload)
    codes = {t.rate_id: t.rate_code or t.label or str(t.rate_id) for t in order.tax_lines}

    def tax_code(taxes: list[WooLineTax]) -> str | None:
        return " + ".join(codes.get(t.id, str(t.id)) for t in taxes if t.total is None or t.total) or None

    items = options.items
    lines: list[MoneyLine] = []
    discount = Decimal(0)
    for i, li in enumerate(order.line_items):
        if li.quantity == 0:
            continue
        where = f"line_items[{i}]"
        if li.total is None:
            raise fail(f"{where}.total", "required source field is missing")
        subtotal = li.total if li.subtotal is None else li.subtotal
        discount += subtotal - li.total
        kind = "product" if li.sku else "custom"
        lines.append(MoneyLine(
            key=str(li.id),
            kind=kind,
            quantity=li.quantity,
            amount=li.total if options.discounts == "lines" else subtotal,
            sku=li.sku,
            item=None if kind == "product" else items.custom,
            description=description(li.name, options.description_length),
            tax_amount=li.total_tax or Decimal(0),
            tax_code=tax_code(li.taxes),
            source=where,
        ))
    for k, fee in enumerate(order.fee_lines):
        lines.append(MoneyLine(
            key=f"fee-{fee.id if fee.id is not None else k}",
            kind="custom",
            quantity=1,
            amount=fee.total,
            item=items.custom,
            description=description(fee.name, options.description_length),
            tax_amount=fee.total_tax or Decimal(0),
            tax_code=tax_code(fee.taxes),
        ))

    money = OrderMoney(currency=order.currency, total=order.total, total_field="total", lines=lines)
    if order.shipping_lines:
        cost = sum((s.total for s in order.shipping_lines), Decimal(0))
        tax = sum((s.total_tax or Decimal(0) for s in order.shipping_lines), Decimal(0))
        first = order.shipping_lines[0]
        method = first.method_id or first.method_title
        if options.shipping == "header":
            money.shipping_method, money.shipping_cost = method, cost
            if tax:
                lines.append(MoneyLine("shipping-tax", "sales_tax", 1, tax, item=items.sales_tax,
                                       description="Shipping tax"))
        else:
            lines.append(MoneyLine("shipping", "shipping", 1, cost, item=items.shipping,
                                   description=description(first.method_title or method, options.description_length),
                                   tax_amount=tax, tax_code=tax_code(first.taxes)))
    if options.discounts == "header" and discount:
        money.discount_item, money.discount_rate = items.discount, -discount
    return money
