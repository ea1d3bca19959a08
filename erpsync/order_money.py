"""The money of an order as the ERP needs it: options a mapping chooses, the computed lines and totals, rounding.

A source's payload says what its money fields mean only to someone who knows the platform (Shopify's
allocations and ``price_set``, WooCommerce's ``subtotal``/``total``): that knowledge lives per source, in
``erpsync/sources/<source>_money.py``. Each one turns a payload into an ``OrderMoney``: sales-order lines with
amounts to the cent, the header's shipping and discount, and the source's own total. The mapping engine puts
it at ``order`` in the payload it maps, so the mapping's ordinary rules read ``order.lines[].amount`` etc.

Rounding (docs/mapping-format.md, "Money"): every amount is in the transaction currency's minor units
(ISO 4217: 2 for USD, 0 for JPY, 3 for KWD), rounded half-up per line, never across lines. Amounts are
only ever split when part of a line's quantity was edited out: the part kept is rounded half-up and the
remainder cent goes with the part that left. ``rate`` is ``amount / quantity`` rounded half-up to two
places more than the currency's; ``amount`` is always sent, so NetSuite never recomputes it from the rate.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from erpsync.errors import InvalidPayload, MappingError

# ISO 4217 minor units where they are not 2. Currencies without minor units first, then those with three.
_MINOR_UNITS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}

# NetSuite's transaction line description holds at most 999 characters (longer text is refused, not cut).
DESCRIPTION_LENGTH = 999
_LIMIT = Decimal(10) ** 15  # no order line is worth this much; beyond it a float no longer holds the cents

LineKind = Literal["product", "custom", "gift_card", "tip", "shipping", "discount", "sales_tax", "duties",
                   "adjustment"]


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit (ISO 4217): 2 unless listed otherwise."""
    return _MINOR_UNITS.get(currency, 2)


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def round_money(amount: Decimal, places: int) -> Decimal:
    """Half-up to ``places`` decimals: the one rounding rule for money here (NetSuite's own for amounts)."""
    return amount.quantize(quantum(places), rounding=ROUND_HALF_UP)


def json_number(number: Decimal) -> int | float:
    """A plain JSON number with exactly these digits (int when whole)."""
    if number == number.to_integral_value():
        return int(number)
    return float(number)  # at most 15 significant digits here: amounts of an order


class FallbackItems(BaseModel):
    """NetSuite internal ids of the non-product items (the contract's default range 900–906)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    custom: str = Field("900", description="a line without SKU (custom item)")
    gift_card: str = Field("901", description="a gift card sold as a line")
    tip: str = Field("902", description="a tip")
    shipping: str = Field("903", description="shipping as an item line (shipping: line)")
    discount: str = Field("904", description="the discount item (header discountItem, or the unallocated rest)")
    sales_tax: str = Field("905", description="tax with no line to carry it (shipping tax when shipping: header)")
    duties: str = Field("906", description="duties and import taxes")
    adjustment: str = Field("907", description="a refund's adjustment: money returned that its lines do not explain")


class MoneyOptions(BaseModel):
    """The ``money:`` section of a mapping: how a consultant wants the order's money on the sales order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Literal["shop", "presentment"] = Field(
        "shop", description="the shop's currency, or the one the customer paid in (Shopify's presentment money)"
    )
    shipping: Literal["header", "line"] = Field(
        "header", description="shipMethod + shippingCost on the header, or an item line (items.shipping)"
    )
    discounts: Literal["header", "lines"] = Field(
        "header", description="discountItem + discountRate on the header, or line amounts net of their discounts"
    )
    tolerance: Decimal = Field(Decimal("0.00"), ge=0, description="allowed difference from the source total")
    sign: Literal["positive", "negative"] = Field(
        "positive", description="negative: the target records the source's money as a return, whose total is "
        "minus the source's (a refund as a Tryton return sale, with negative quantities)")
    items: FallbackItems = Field(default_factory=FallbackItems)
    description_length: int = Field(DESCRIPTION_LENGTH, ge=1, le=4000)

    @field_validator("tolerance", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        # A YAML float (0.1) is not the decimal the consultant wrote; text is exact.
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


@dataclass
class MoneyLine:
    key: str  # custcol_erpsync_line_key: the source's line id, or a fixed key (shipping, discount, tip, …)
    kind: LineKind
    quantity: int
    amount: Decimal
    sku: str | None = None
    item: str | None = None  # a fallback item id; None: found by SKU
    description: str | None = None
    tax_amount: Decimal = Decimal(0)
    tax_code: str | None = None  # the key of the tax-code lookup; None: untaxed
    source: str | None = None  # the source line it comes from (``line_items[3]``), for error messages


@dataclass
class OrderMoney:
    """What the mapping reads at ``order``, and what the pre-push check compares."""

    currency: str
    total: Decimal  # the source's own total, in ``currency``
    total_field: str  # where it comes from, e.g. total_price
    lines: list[MoneyLine] = field(default_factory=list)
    shipping_method: str | None = None
    shipping_cost: Decimal | None = None
    discount_item: str | None = None
    discount_rate: Decimal | None = None  # negative: an amount off

    @property
    def places(self) -> int:
        return minor_units(self.currency)

    def view(self) -> dict[str, Any]:
        """Plain JSON for the rules (numbers already rounded to the currency)."""
        places = self.places

        def money(amount: Decimal | None, where: str = "total") -> int | float | None:
            if amount is None:
                return None
            if abs(amount) >= _LIMIT:
                raise fail(where, "amount out of range (quantity × price of 10^15 or more)")
            return json_number(round_money(amount, places))

        lines = []
        for line in self.lines:
            where = line.source or line.key
            amount = money(line.amount, where)
            rate = line.amount / line.quantity if line.quantity else line.amount
            lines.append({
                "key": line.key,
                "kind": line.kind,
                "sku": line.sku,
                "item": line.item,
                "quantity": line.quantity,
                "rate": json_number(round_money(rate, places + 2)),
                "amount": amount,
                "description": line.description,
                "tax_amount": money(line.tax_amount, where),
                "tax_code": line.tax_code,
                "source": line.source,
            })
        return {
            "currency": self.currency,
            "total": money(self.total),
            "total_field": self.total_field,
            "shipping_method": self.shipping_method,
            "shipping_cost": money(self.shipping_cost),
            "discount_item": self.discount_item,
            "discount_rate": money(self.discount_rate),
            "lines": lines,
        }


_Model = TypeVar("_Model")


def parse_for_money(parse: Callable[[Any], _Model], payload: Any) -> _Model:
    """The typed payload; a bad money field is a MappingError naming it: the mapping needs it to add up."""
    try:
        return parse(payload)
    except InvalidPayload as exc:
        field_path = exc.field or "(payload)"
        raise MappingError(str(exc).removeprefix(f"{field_path}: "), field=field_path) from None


def description(text: str | None, length: int) -> str | None:
    """Entities decoded (``&ndash;`` → ``–``: WooCommerce stores names HTML-escaped), cut to the column."""
    if text is None:
        return None
    decoded = html.unescape(text).strip()
    return decoded[:length] or None


def fail(field_path: str, message: str) -> MappingError:
    return MappingError(message, field=field_path)


# model name (a mapping's `model:`) → compute(payload, options); filled by the per-source modules below.
Compute = Callable[[Any, MoneyOptions], OrderMoney]


def computations() -> dict[str, Compute]:
    from erpsync.systems import PAYLOAD_MODELS

    return {name: model.money for name, model in PAYLOAD_MODELS.items() if model.money is not None}


def source_reads() -> dict[str, tuple[str, ...]]:
    """Per model, the source paths its money computation reads: for drift reports, they are read."""
    from erpsync.systems import PAYLOAD_MODELS

    return {name: model.money_reads for name, model in PAYLOAD_MODELS.items() if model.money is not None}
