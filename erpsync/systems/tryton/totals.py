"""The totals Tryton computes for a sale body: what erpsync checks against the source before it writes.

Tryton's sale line amount is ``currency.round(Decimal(str(quantity)) * unit_price)``, and its currency rounds half
to even (trytond/modules/currency/currency.py, ``Currency.round``; sale.line ``on_change_with_amount``). The
untaxed amount is the sum of the line amounts; erpsync sends no Tryton taxes: the shop computed the tax, and the
writer adds the lines' ``tax_amount`` as one line of the body's ``tax_product`` (erpsync/systems/tryton/client.py).
Discounts and shipping are lines too (the mapping's ``money: shipping: line, discounts: lines``), so only the
subtotal and the tax are not zero.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from erpsync.ports import Totals, TotalsError, body_number


def sale_totals(body: dict[str, Any], places: int) -> Totals:
    """Tryton's totals of ``body`` in its currency, with ``places`` decimals (2 for USD, 0 for JPY)."""
    lines = body.get("lines")
    subtotal = tax = Decimal(0)
    step = Decimal(1).scaleb(-places)
    for n, line in enumerate(lines if isinstance(lines, list) else []):
        where = f"lines[{n}]"
        if not isinstance(line, dict):
            raise TotalsError(where, "expected an object")
        quantity = body_number(line.get("quantity", 0), f"{where}.quantity")
        price = body_number(line.get("unit_price", 0), f"{where}.unit_price")
        subtotal += (quantity * price).quantize(step, rounding=ROUND_HALF_EVEN)
        if line.get("tax_amount") is not None:
            tax += body_number(line["tax_amount"], f"{where}.tax_amount").quantize(step, rounding=ROUND_HALF_EVEN)
    zero = Decimal(0)
    return Totals(subtotal, zero, tax, zero, zero)
