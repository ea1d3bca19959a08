"""The typed model of an order event from a Standard Webhooks sender, in the JSON shape docs/sources.md defines."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from erpsync.validation import Amount, NotBoolean, OptionalSku, parse_model

# An id becomes part of an ERP external id, which NetSuite limits to letters, digits, _ and -.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class _StandardModel(BaseModel):
    # A sender may add fields anywhere (the spec's "additional metadata"); only what the sync uses is typed.
    model_config = ConfigDict(extra="allow")


class StandardOrderLine(_StandardModel):
    id: str | None = Field(None, pattern=ID_PATTERN)  # the sender's line id: the ERP line's key
    sku: OptionalSku = None  # none: a custom line (or a gift card / tip by `kind`), sent to a fallback item
    kind: Literal["product", "gift_card", "tip"] = "product"
    quantity: Annotated[int, NotBoolean] = Field(ge=0)  # 0: removed from the order
    price: Amount = Field(ge=0)  # the unit price; text ("12.50") or a JSON number
    title: str | None = None
    discount: Amount = Field(Decimal(0), ge=0)  # the line's share of every discount, as an amount
    tax: Amount = Field(Decimal(0), ge=0)  # the line's tax
    tax_code: str | None = None  # the sender's tax code or rate name, for the tax-code lookup


class StandardShipping(_StandardModel):
    method: str | None = None  # the sender's shipping method code
    price: Amount = Field(ge=0)
    discount: Amount = Field(Decimal(0), ge=0)
    tax: Amount = Field(Decimal(0), ge=0)
    tax_code: str | None = None


class StandardOrder(_StandardModel):
    """``data`` of an order event: the order as it is now."""

    id: str = Field(pattern=ID_PATTERN)
    number: str = Field(min_length=1)  # the order code staff search for, e.g. "SO-1001"
    created_at: AwareDatetime
    updated_at: AwareDatetime
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: Amount | None = None  # the grand total the customer pays; the money check compares against it
    taxes_included: bool = False  # prices and shipping price include their tax
    discount: Amount = Field(Decimal(0), ge=0)  # an order-level discount not already in the lines' discounts
    shipping: StandardShipping | None = None
    test: bool = False
    lines: list[StandardOrderLine] = Field(min_length=1)


class StandardOrderEvent(_StandardModel):
    """The whole body: ``{"type": "order.created", "timestamp": "...", "data": {...}}`` (Standard Webhooks' envelope)."""

    entity_type: ClassVar[str] = "order"

    type: Literal["order.created", "order.updated"]
    timestamp: AwareDatetime  # when the event happened; the order's own updated_at orders its versions
    data: StandardOrder

    @property
    def entity_id(self) -> str:
        return self.data.id

    @property
    def version(self) -> datetime:
        return self.data.updated_at


def parse_order(payload: Any) -> StandardOrderEvent:
    """Validate an order event body; raises InvalidPayload whose ``field`` is e.g. ``data.lines[0].quantity``."""
    return parse_model(StandardOrderEvent, payload)
