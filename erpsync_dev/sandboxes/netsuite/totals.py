"""A transaction's totals as NetSuite computes them, and the currencies the ERP sandbox knows.

Computed here from the record body alone, apart from erpsync's own pre-push check, so that a mistake in one
cannot hide the same mistake in the other. What NetSuite does, per the sales order form (Oracle: "Sales Order",
https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_159665260887.html, and the record's
fields in the REST API Browser):

- a line's amount is its ``amount`` when given, else quantity × rate; either is rounded half-up to the
  currency's minor units (the currency's precision: 0 for yen). Closed lines still count: closing a line
  stops its fulfilment, not its billing history;
- ``subtotal`` is the sum of the line amounts (a discount or markdown item is a line with a negative amount);
- ``discountTotal`` is the header ``discountRate``: an amount (negative for a discount), or a percentage
  (``"-10%"``) of the subtotal, rounded;
- ``taxTotal`` is the sum of the lines' ``tax1Amt``;
- ``total`` = subtotal + discountTotal + taxTotal + shippingCost + handlingCost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# id → (ISO code, name, minor units). NetSuite's currency record calls the ISO code its symbol and the
# minor units its currency precision; the ids are the ones the shared contract gives the sandbox.
CURRENCIES: dict[int, tuple[str, str, int]] = {
    1: ("USD", "US Dollar", 2),
    2: ("GBP", "British pound", 2),
    3: ("CAD", "Canadian Dollar", 2),
    4: ("EUR", "Euro", 2),
    5: ("JPY", "Japanese Yen", 0),
    6: ("AUD", "Australian Dollar", 2),
}
# The subsidiary's base currency, which a transaction takes when it names none.
BASE_CURRENCY = 1
_PERCENT = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*%\s*")
# Header money fields; a value must be a JSON number (discountRate may also be a percentage text).
HEADER_MONEY = ("shippingCost", "handlingCost")
LINE_NUMBERS = ("quantity", "rate", "amount", "tax1Amt")


def field(document: Any, name: str) -> Any:
    """NetSuite field names are case-insensitive (``otherRefNum`` and ``otherrefnum`` both work)."""
    if not isinstance(document, dict):
        return None
    if name in document:
        return document[name]
    lowered = name.lower()
    return next((value for key, value in document.items() if key.lower() == lowered), None)


def decimal(value: Any) -> Decimal | None:
    """A JSON number as a Decimal (through its text, so 0.1 stays 0.1); ``None`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def percentage(value: Any) -> Decimal | None:
    """``"-10%"`` → Decimal('-10'); ``None`` when the value is not a percentage text."""
    if not isinstance(value, str):
        return None
    match = _PERCENT.fullmatch(value)
    return Decimal(match.group(1)) if match else None


def places(currency_id: int) -> int:
    return CURRENCIES.get(currency_id, CURRENCIES[BASE_CURRENCY])[2]


def rounded(value: Decimal, minor_units: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-minor_units), rounding=ROUND_HALF_UP)


def json_number(value: Decimal) -> int | float:
    """How the amount is answered: a JSON number, whole amounts without a fraction (as NetSuite answers them)."""
    return int(value) if value == value.to_integral_value() else float(value)


def currency_id(body: dict[str, Any]) -> int:
    """The transaction's currency id (the base currency when the body names none or an unknown one)."""
    raw = field(field(body, "currency"), "id")
    try:
        number = int(str(raw))
    except ValueError:
        return BASE_CURRENCY
    return number if number in CURRENCIES else BASE_CURRENCY


@dataclass(frozen=True)
class Totals:
    currency: int
    line_amounts: tuple[Decimal | None, ...]  # one per item line, None when it has neither amount nor rate
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    shipping_cost: Decimal
    handling_cost: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.discount_total + self.tax_total + self.shipping_cost + self.handling_cost

    def as_fields(self) -> dict[str, Any]:
        """The header fields a GET answers."""
        code = CURRENCIES[self.currency][0]
        return {
            "currency": {"id": str(self.currency), "refName": code},
            "subtotal": json_number(self.subtotal),
            "discountTotal": json_number(self.discount_total),
            "taxTotal": json_number(self.tax_total),
            "shippingCost": json_number(self.shipping_cost),
            "handlingCost": json_number(self.handling_cost),
            "total": json_number(self.total),
        }


def line_amount(line: Any, minor_units: int) -> Decimal | None:
    amount = decimal(field(line, "amount"))
    if amount is None:
        quantity, rate = decimal(field(line, "quantity")), decimal(field(line, "rate"))
        if rate is None:
            return None
        amount = (quantity if quantity is not None else Decimal(1)) * rate
    return rounded(amount, minor_units)


def totals(body: dict[str, Any]) -> Totals:
    """The totals NetSuite shows on this transaction; unreadable values count as zero (the checks refuse them)."""
    currency = currency_id(body)
    units = places(currency)
    lines = field(field(body, "item"), "items") or []
    amounts = tuple(line_amount(line, units) for line in lines)
    subtotal = sum((amount for amount in amounts if amount is not None), Decimal(0))
    tax = sum((rounded(decimal(field(line, "tax1Amt")) or Decimal(0), units) for line in lines), Decimal(0))
    rate = field(body, "discountRate")
    if (percent := percentage(rate)) is not None:
        discount = rounded(subtotal * percent / 100, units)
    else:
        discount = rounded(decimal(rate) or Decimal(0), units)
    shipping = rounded(decimal(field(body, "shippingCost")) or Decimal(0), units)
    handling = rounded(decimal(field(body, "handlingCost")) or Decimal(0), units)
    return Totals(currency, amounts, subtotal, discount, tax, shipping, handling)
