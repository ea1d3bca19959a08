"""Validating a source payload against its pydantic model, with an InvalidPayload that names fields, never values."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError

from erpsync.errors import InvalidPayload

_Model = TypeVar("_Model", bound=BaseModel)


def _sku_present(value: Any) -> Any:
    # Platforms allow lines without a SKU (custom items). The ERP item is found by SKU, so such a line cannot
    # be synced: refusing it here names `line_items[i].sku` instead of a lookup failure later.
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("a SKU is required to sync a line to the ERP")
    return value


def _not_boolean(value: Any) -> Any:
    # JSON true/false would otherwise pass as 1/0.
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return value


Sku = Annotated[str, BeforeValidator(_sku_present)]
NotBoolean = BeforeValidator(_not_boolean)


def parse_model(model: type[_Model], payload: Any) -> _Model:
    """Validate ``payload`` as ``model``; raises InvalidPayload naming the first bad field.

    The message lists every problem by path and never echoes a value: pydantic's own text carries
    ``input_value=…``, which may be a name or an email, so it is rebuilt from the error parts and the
    original exception is not chained (a logged traceback would print it).
    """
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    problems = [(_location(e["loc"]), _message(e)) for e in errors]
    field, message = problems[0]
    if len(problems) > 1:
        shown = problems[1:11]
        message += "; also " + "; ".join(f"{where}: {text}" for where, text in shown)
        if len(problems) > 11:
            message += f"; and {len(problems) - 11} more"
    raise InvalidPayload(message, field=field, problems=tuple(problems)) from None


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(payload)"


def _message(error: Any) -> str:
    kind = error.get("type")
    if kind == "missing":
        return "required field is missing"
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    value = error.get("input")
    # Belt and braces: no pydantic message we know of quotes the input, but a future one might.
    if isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) >= 3:
        message = message.replace(str(value), "<redacted>")
    return message


def _amount(value: Any) -> Any:
    # Money of one order: far below 10^15, and a handful of decimals at most. Anything else is no amount,
    # and would make decimal arithmetic raise or crawl further on.
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("expected a finite amount")
        if value and not -12 <= value.adjusted() < 15:
            raise ValueError("out of range for an amount")
        if value.as_tuple().exponent < -12:  # type: ignore[operator]
            raise ValueError("more than 12 decimal places")
    return value


def _optional_sku(value: Any) -> Any:
    # A line without SKU (a custom item, a gift card, a tip) is valid: the mapping sends it to a fallback item.
    if isinstance(value, str) and not value.strip():
        return None
    return value


# An amount: a decimal from text ("12.50", exact) or a JSON number, never a boolean, NaN or absurdly large.
Amount = Annotated[Decimal, NotBoolean, AfterValidator(_amount)]
OptionalSku = Annotated[str | None, BeforeValidator(_optional_sku)]
