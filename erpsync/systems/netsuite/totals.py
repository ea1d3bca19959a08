"""The totals NetSuite computes for a sales-order body: what erpsync checks against the source before it writes.

The contract (docs/mapping-format.md, "Money"): a line's amount is ``amount`` when given, else quantity × rate
rounded half-up to the currency's minor units; closed lines still count; ``subtotal`` = Σ line amounts
(discount items are lines with negative amounts); ``discountTotal`` = ``discountRate`` (an amount, or a
percentage of the subtotal, rounded); ``taxTotal`` = Σ line ``tax1Amt``; ``total`` = subtotal + discountTotal
+ taxTotal + shippingCost + handlingCost. The ERP sandbox computes the same, so a test can compare both.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from erpsync.ports import Totals, TotalsError, body_number


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def sales_order_totals(body: dict[str, Any], places: int) -> Totals:
    """NetSuite's totals of ``body`` in its currency, with ``places`` decimals (2 for USD, 0 for JPY)."""
    item = body.get("item")
    lines = item.get("items") if isinstance(item, dict) else None
    subtotal = tax = Decimal(0)
    for n, line in enumerate(lines if isinstance(lines, list) else []):
        where = f"item.items[{n}]"
        if not isinstance(line, dict):
            raise TotalsError(where, "expected an object")
        if line.get("amount") is not None:
            amount = body_number(line["amount"], f"{where}.amount")
        else:
            quantity = body_number(line.get("quantity", 1), f"{where}.quantity")
            amount = body_number(line.get("rate", 0), f"{where}.rate") * quantity
        subtotal += _round(amount, places)
        if line.get("tax1Amt") is not None:
            tax += _round(body_number(line["tax1Amt"], f"{where}.tax1Amt"), places)
    discount = Decimal(0)
    rate = body.get("discountRate")
    if isinstance(rate, str) and rate.strip().endswith("%"):
        discount = _round(subtotal * body_number(rate.strip()[:-1], "discountRate") / 100, places)
    elif rate is not None:
        discount = _round(body_number(rate, "discountRate"), places)
    shipping = _round(body_number(body.get("shippingCost") or 0, "shippingCost"), places)
    handling = _round(body_number(body.get("handlingCost") or 0, "handlingCost"), places)
    return Totals(subtotal, discount, tax, shipping, handling)
