"""The typed model of a WooCommerce order webhook body (REST API v3 order), validated with errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from erpsync.validation import Amount, NotBoolean, OptionalSku, parse_model


class _WooModel(BaseModel):
    # WooCommerce and its plugins add fields (meta_data, _links, …); only what the sync uses is typed.
    model_config = ConfigDict(extra="allow")


def _gmt(value: Any) -> Any:
    """WooCommerce's ``*_gmt`` timestamps are UTC written without an offset; one with an offset keeps it."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("expected an ISO 8601 timestamp such as 2024-05-02T14:15:00") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise ValueError("expected an ISO 8601 timestamp such as 2024-05-02T14:15:00")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class WooLineTax(_WooModel):
    id: int  # the rate id: tax_lines[].rate_id
    total: Amount | None = None

    @field_validator("total", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if value == "" else value


class WooLineItem(_WooModel):
    id: int
    sku: OptionalSku = None  # WooCommerce sends "" for a product without SKU: a fallback item then
    quantity: Annotated[int, NotBoolean] = Field(ge=0)  # 0: removed from the order by an edit
    # The unit price, a JSON number (total and subtotal are text). Informational: total/quantity, any digits.
    price: Annotated[Decimal, NotBoolean] = Field(ge=0, allow_inf_nan=False)
    name: str
    subtotal: Amount | None = None  # before discounts, without tax (also when prices include tax)
    total: Amount | None = None  # after discounts, without tax
    total_tax: Amount | None = None
    taxes: list[WooLineTax] = Field(default_factory=list)


class WooChargeLine(_WooModel):
    """A shipping line or a fee line: its total without tax, and the tax on it."""

    id: int | None = None
    method_id: str | None = None
    method_title: str | None = None
    name: str | None = None
    total: Amount
    total_tax: Amount | None = None
    taxes: list[WooLineTax] = Field(default_factory=list)


class WooTaxLine(_WooModel):
    rate_id: int
    rate_code: str | None = None
    label: str | None = None


class WooOrder(_WooModel):
    """The body of an ``order.created``/``order.updated`` webhook: the REST v3 representation of the order."""

    entity_type: ClassVar[str] = "order"

    id: int = Field(gt=0)
    number: str  # the order code staff see ("727"); text, as plugins may add prefixes
    status: str  # pending, processing, on-hold, completed, cancelled, refunded, failed, trash, …
    date_created_gmt: datetime
    date_modified_gmt: datetime
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: Amount
    prices_include_tax: bool = False
    line_items: list[WooLineItem] = Field(min_length=1)
    shipping_lines: list[WooChargeLine] = Field(default_factory=list)
    fee_lines: list[WooChargeLine] = Field(default_factory=list)
    tax_lines: list[WooTaxLine] = Field(default_factory=list)
    customer_id: int | None = None  # 0 for a guest
    customer_note: str | None = None

    @field_validator("number", mode="before")
    @classmethod
    def _number_text(cls, value: Any) -> Any:
        # Older stores and some plugins send the number as a JSON number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("date_created_gmt", "date_modified_gmt", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return _gmt(value)

    @property
    def entity_id(self) -> str:
        return str(self.id)

    @property
    def version(self) -> datetime:
        """``date_modified_gmt`` as UTC: a delivery older than the last applied one is superseded."""
        return self.date_modified_gmt


def parse_order(payload: Any) -> WooOrder:
    """Validate an order webhook body; raises InvalidPayload whose ``field`` is e.g. ``line_items[0].sku``."""
    return parse_model(WooOrder, payload)
