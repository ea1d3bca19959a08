"""The registry of named transforms a mapping field may apply: ``uppercase``, ``decimal``, ``date``, ``lookup``, …

A transform is a function ``(value, params, context) -> value`` registered under a name, with a pydantic model
of its parameters (``extra="forbid"``), so a mapping file is checked against the registry when it is loaded.
Adding one is a decorated function here; nothing else changes.

Error messages never contain the value being transformed (it may be customer data), except ``lookup``, whose
keys are codes such as SKUs that an operator needs to see to fix the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from erpsync.errors import MappingError
from erpsync.mapping.lookups import LookupTable


class TransformParams(BaseModel):
    """Base of every transform's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def tables_used(self) -> frozenset[str]:
        """Names of the lookup tables these parameters refer to; checked against the mapping's ``lookups``."""
        return frozenset()


class NoParams(TransformParams):
    pass


@dataclass(frozen=True)
class TransformContext:
    """What a transform sees besides its value: where the value came from, and the mapping's tables."""

    field: str  # the concrete source path, e.g. line_items[2].sku; every error names it
    tables: Mapping[str, LookupTable]

    def fail(self, message: str) -> MappingError:
        return MappingError(message, field=self.field)


TransformFunc = Callable[[Any, Any, TransformContext], Any]


@dataclass(frozen=True)
class TransformSpec:
    name: str
    func: TransformFunc
    params: type[TransformParams]

    @property
    def summary(self) -> str:
        """The first line of the function's docstring, for `erpsync mapping` listings."""
        return (self.func.__doc__ or "").strip().partition("\n")[0]


TRANSFORMS: dict[str, TransformSpec] = {}


def transform(name: str, params: type[TransformParams] = NoParams) -> Callable[[TransformFunc], TransformFunc]:
    """Register ``func`` under ``name``."""

    def register(func: TransformFunc) -> TransformFunc:
        if name in TRANSFORMS:
            raise RuntimeError(f"transform {name!r} registered twice")
        TRANSFORMS[name] = TransformSpec(name, func, params)
        return func

    return register


def known_transforms() -> str:
    return ", ".join(sorted(TRANSFORMS))


def _kind(value: Any) -> str:
    return type(value).__name__


# --- text ---------------------------------------------------------------------------------------


def _text(value: Any, ctx: TransformContext) -> str:
    if not isinstance(value, str):
        raise ctx.fail(f"expected text, found {_kind(value)}")
    return value


@transform("uppercase")
def uppercase(value: Any, params: NoParams, ctx: TransformContext) -> str:
    """Text in upper case."""
    return _text(value, ctx).upper()


@transform("lowercase")
def lowercase(value: Any, params: NoParams, ctx: TransformContext) -> str:
    """Text in lower case."""
    return _text(value, ctx).lower()


@transform("string")
def to_string(value: Any, params: NoParams, ctx: TransformContext) -> str:
    """Text, or a number written as text (ids above 2^53 stay exact)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ctx.fail(f"expected text or an integer, found {_kind(value)}")
    return str(value)


# --- numbers ------------------------------------------------------------------------------------


def _decimal(value: Any, ctx: TransformContext) -> Decimal:
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
        raise ctx.fail(f"expected a number, found {_kind(value)}")
    if not number.is_finite():
        raise ctx.fail("not a finite number")
    return number


@transform("int")
def to_int(value: Any, params: NoParams, ctx: TransformContext) -> int:
    """A whole number, from a number or numeric text; a fraction is an error, never truncated."""
    number = _decimal(value, ctx)
    if number != number.to_integral_value():
        raise ctx.fail("not a whole number")
    return int(number)


class DecimalParams(TransformParams):
    render: Literal["number", "string"] = Field(
        "number", description="JSON number (NetSuite's usual form) or JSON string of the exact decimal"
    )
    places: int | None = Field(
        None, ge=0, le=12, description="pad to this many decimal places; more digits are an error, never rounded"
    )


@transform("decimal", DecimalParams)
def to_decimal(value: Any, params: DecimalParams, ctx: TransformContext) -> int | float | str:
    """An exact decimal (from text or a number), rendered as a JSON number or a string.

    The body must stay plain JSON (the connector, the ledger's hashes and the case files all handle it as
    such), so a number is rendered as ``int`` when whole, else as the ``float`` whose shortest repr is the same
    decimal text: json.dumps then writes exactly the digits Shopify sent. When no float has that property
    (over 15 significant digits) this is an error telling the operator to use ``render: string``.
    """
    number = _decimal(value, ctx)
    if params.places is not None:
        quantum = Decimal(1).scaleb(-params.places)
        padded = number.quantize(quantum)
        if padded != number:
            raise ctx.fail(f"has more than {params.places} decimal places")
        number = padded
    if params.render == "string":
        return str(number)
    if number == number.to_integral_value():
        return int(number)
    as_float = float(number)
    if Decimal(repr(as_float)) != number:
        raise ctx.fail("cannot be written exactly as a JSON number; use render: string")
    return as_float


# --- dates --------------------------------------------------------------------------------------


class DateParams(TransformParams):
    tz: str | None = Field(
        None, description="IANA time zone to take the date in (e.g. America/New_York); default: the timestamp's own"
    )

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, tz: str | None) -> str | None:
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {tz!r}") from None
        return tz


@transform("date", DateParams)
def to_date(value: Any, params: DateParams, ctx: TransformContext) -> str:
    """An ISO 8601 timestamp with offset → NetSuite's date ``YYYY-MM-DD``.

    The calendar date depends on the zone: 2021-12-31T19:00:00-05:00 is the 31st in New York and the 1st in
    UTC. Without ``tz`` the date is the one the timestamp itself states (the shop's local date).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ctx.fail("not an ISO 8601 timestamp") from None
    elif isinstance(value, date):
        return value.isoformat()
    else:
        raise ctx.fail(f"expected an ISO 8601 timestamp, found {_kind(value)}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ctx.fail("timestamp has no UTC offset, so its date is ambiguous")
    if params.tz is not None:
        moment = moment.astimezone(ZoneInfo(params.tz))
    return moment.date().isoformat()


# --- lookups ------------------------------------------------------------------------------------


class LookupParams(TransformParams):
    table: str = Field(description="name of a table declared under the mapping's `lookups:`")
    redact_key: bool = Field(
        False, description="leave the key out of error messages (set it when keys are not plain codes)"
    )

    def tables_used(self) -> frozenset[str]:
        return frozenset({self.table})


@transform("lookup", LookupParams)
def lookup(value: Any, params: LookupParams, ctx: TransformContext) -> str:
    """The value in a lookup table for this key (e.g. SKU → ERP item id); an unknown key is an error."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ctx.fail(f"a lookup key must be text or an integer, found {_kind(value)}")
    table = ctx.tables[params.table]
    found = table.get(str(value))
    if found is None:
        key = "key" if params.redact_key else repr(str(value))
        raise ctx.fail(f"{key} not found in lookup table {params.table!r} ({table.display})")
    return found
