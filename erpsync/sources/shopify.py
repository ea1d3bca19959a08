"""The typed model of a Shopify order webhook body, and its validation with errors that name the field."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from erpsync.errors import InvalidPayload


class _ShopifyModel(BaseModel):
    # Shopify adds fields in every API version; only what the sync uses is typed, the rest is kept as is.
    model_config = ConfigDict(extra="allow")


class ShopifyCustomer(_ShopifyModel):
    id: int


class ShopifyLineItem(_ShopifyModel):
    id: int
    # Shopify allows null/empty SKUs (custom items, products without one). The ERP item is found by SKU, so
    # such a line cannot be synced: refusing it here names `line_items[i].sku` instead of a lookup failure.
    sku: str
    quantity: int = Field(gt=0)
    price: Decimal = Field(ge=0)
    title: str

    @field_validator("sku", mode="before")
    @classmethod
    def _sku_present(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("a SKU is required to sync a line item to the ERP")
        return value


class ShopifyOrder(_ShopifyModel):
    """The body of an ``orders/create``/``orders/updated``/``orders/paid``/``orders/cancelled`` webhook."""

    entity_type: ClassVar[str] = "order"

    id: int
    name: str  # "#1001": the shop's order code
    order_number: int
    email: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total_price: Decimal
    line_items: list[ShopifyLineItem] = Field(min_length=1)
    customer: ShopifyCustomer | None = None
    cancelled_at: AwareDatetime | None = None
    financial_status: str | None = None
    note: str | None = None
    tags: str = ""  # Shopify sends one comma-separated string

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        return "" if value is None else value

    @property
    def entity_id(self) -> str:
        return str(self.id)

    @property
    def version(self) -> datetime:
        """Orders change under one id; a delivery older than the last applied ``updated_at`` is superseded."""
        return self.updated_at

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]


def parse_order(payload: Any) -> ShopifyOrder:
    """Validate a webhook body; raises InvalidPayload whose ``field`` is e.g. ``line_items[0].quantity``.

    The message lists every problem by path and never echoes a value: pydantic's own text carries
    ``input_value=…``, which may be a name or an email, so it is rebuilt from the error parts and the
    original exception is not chained (a logged traceback would print it).
    """
    try:
        return ShopifyOrder.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    problems = [(_location(e["loc"]), _message(e)) for e in errors]
    field, message = problems[0]
    if len(problems) > 1:
        shown = problems[1:11]
        message += "; also " + "; ".join(f"{where}: {text}" for where, text in shown)
        if len(problems) > 11:
            message += f"; and {len(problems) - 11} more"
    raise InvalidPayload(message, field=field) from None


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
