"""Number transforms: whole numbers, exact decimals with a rounding mode, cents ↔ amounts."""

from __future__ import annotations

import decimal
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, model_validator

from erpsync.mapping.transforms.registry import NoParams, TransformContext, TransformParams, kind, transform

Rounding = Literal["half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"]
ROUNDING_MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}


MAX_INTEGER_DIGITS = 30  # digits before the decimal point of any number a transform reads
MAX_EXPONENT = 30  # smallest magnitude (1e-30) of a non-zero number a transform reads


def decimal_of(value: Any, ctx: TransformContext) -> Decimal:
    if isinstance(value, bool):
        raise ctx.fail("expected a number, found bool")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # repr gives the shortest text that reads back as this float: 19.99, not 19.989999999999998…
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ctx.fail("not a decimal number") from None
    else:
        raise ctx.fail(f"expected a number, found {kind(value)}")
    if not number.is_finite():
        raise ctx.fail("not a finite number")
    # Far beyond any amount or quantity, and big enough to make int() or quantize() fail or crawl.
    if number and not -MAX_EXPONENT <= number.adjusted() < MAX_INTEGER_DIGITS:
        raise ctx.fail(f"out of range (at most {MAX_INTEGER_DIGITS} digits before the point, nothing below 1e-{MAX_EXPONENT})")
    if not number and number.as_tuple().exponent < -MAX_EXPONENT:  # type: ignore[operator]
        number = Decimal(0)
    return number


def quantized(number: Decimal, places: int, rounding: str | None, ctx: TransformContext) -> Decimal:
    """``number`` with exactly ``places`` decimals; without a rounding mode, more digits are an error."""
    quantum = Decimal(1).scaleb(-places)
    try:
        if rounding is not None:
            return number.quantize(quantum, rounding=ROUNDING_MODES[rounding])
        padded = number.quantize(quantum)
    except InvalidOperation:  # more digits than decimal arithmetic keeps (28), e.g. 1E+26 to 2 places
        raise ctx.fail(f"too many digits to keep {places} decimal places") from None
    if padded != number:
        raise ctx.fail(f"has more than {places} decimal places (set a rounding mode to round it)")
    return padded


def json_number(number: Decimal, render: str, ctx: TransformContext) -> int | float | str:
    """A plain-JSON form of an exact decimal.

    The body must stay plain JSON (the connector, the ledger's hashes and the case files handle it as such),
    so a number is rendered as ``int`` when whole, else as the ``float`` whose shortest repr is the same decimal
    text: json.dumps then writes exactly these digits. When no float has that property (over 15 significant
    digits) this is an error telling the operator to use ``render: string``.
    """
    if render == "string":
        return str(number)
    if number == number.to_integral_value():
        return int(number)
    as_float = float(number)
    if Decimal(repr(as_float)) != number:
        raise ctx.fail("cannot be written exactly as a JSON number; use render: string")
    return as_float


@transform("int")
def to_int(value: Any, params: NoParams, ctx: TransformContext) -> int:
    """A whole number, from a number or numeric text; a fraction is an error, never truncated.

    Example:
        transform: int
        input: "2.00"
        output: 2

    Example:
        transform: int
        input: "1.5"
        error: not a whole number
    """
    number = decimal_of(value, ctx)
    if number != number.to_integral_value():
        raise ctx.fail("not a whole number")
    return int(number)


class DecimalParams(TransformParams):
    render: Literal["number", "string"] = Field(
        "number", description="JSON number (NetSuite's usual form) or JSON string of the exact decimal"
    )
    places: int | None = Field(None, ge=0, le=12, description="this many decimal places")
    rounding: Rounding | None = Field(
        None, description="how to round to `places`; without it, more digits than `places` are an error"
    )

    @model_validator(mode="after")
    def _rounding_needs_places(self) -> DecimalParams:
        if self.rounding is not None and self.places is None:
            raise ValueError("rounding needs places (the number of decimals to round to)")
        return self


@transform("decimal", DecimalParams)
def to_decimal(value: Any, params: DecimalParams, ctx: TransformContext) -> int | float | str:
    """An exact decimal (from text or a number), optionally rounded, rendered as a JSON number or string.

    Rounding modes: half_up, half_even (banker's), half_down, up, down, ceiling, floor. Like every number
    transform, it refuses a number of more than 30 digits before the point or a non-zero one below 1e-30.

    Example:
        transform: decimal
        input: "199.00"
        output: 199

    Example:
        transform: {name: decimal, places: 2, rounding: half_up}
        input: "2.345"
        output: 2.35

    Example:
        transform: {name: decimal, places: 2, render: string}
        input: "1.5"
        output: "1.50"
    """
    number = decimal_of(value, ctx)
    if params.places is not None:
        number = quantized(number, params.places, params.rounding, ctx)
    return json_number(number, params.render, ctx)


@transform("negate", NoParams)
def negate(value: Any, params: NoParams, ctx: TransformContext) -> int | float:
    """The number with its sign turned: a refund's quantities and tax on an ERP that records a return as negative
    quantities (a Tryton return sale). Exact: the decimal is negated, not a float.

    Example:
        transform: negate
        input: 2
        output: -2

    Example:
        transform: negate
        input: "-1.25"
        output: 1.25
    """
    return json_number(-decimal_of(value, ctx), "number", ctx)


class CentsParams(TransformParams):
    places: int = Field(2, ge=0, le=4, description="minor units of the currency (2 for USD/EUR, 0 for JPY)")
    render: Literal["number", "string"] = Field("number", description="JSON number or JSON string")


@transform("cents_to_amount", CentsParams)
def cents_to_amount(value: Any, params: CentsParams, ctx: TransformContext) -> int | float | str:
    """An amount from an integer count of minor units (cents).

    Example:
        transform: cents_to_amount
        input: 1999
        output: 19.99
    """
    number = decimal_of(value, ctx)
    if number != number.to_integral_value():
        raise ctx.fail("a count of cents must be a whole number")
    return json_number(number.scaleb(-params.places), params.render, ctx)


class ToCentsParams(TransformParams):
    places: int = Field(2, ge=0, le=4, description="minor units of the currency (2 for USD/EUR, 0 for JPY)")
    rounding: Rounding | None = Field(None, description="how to round a fraction of a cent; default: refuse it")


@transform("amount_to_cents", ToCentsParams)
def amount_to_cents(value: Any, params: ToCentsParams, ctx: TransformContext) -> int:
    """An integer count of minor units (cents) from an amount; a fraction of a cent is an error unless rounded.

    Example:
        transform: amount_to_cents
        input: "19.99"
        output: 1999
    """
    number = quantized(decimal_of(value, ctx), params.places, params.rounding, ctx)
    return int(number.scaleb(params.places))
