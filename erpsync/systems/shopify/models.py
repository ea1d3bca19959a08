"""The typed models of Shopify webhook bodies, and their validation with errors that name the field."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from erpsync.validation import Amount, OptionalSku, Sku, parse_model


class _ShopifyModel(BaseModel):
    # Shopify adds fields in every API version; only what the sync uses is typed, the rest is kept as is.
    model_config = ConfigDict(extra="allow")


class _ShopifyEntity(_ShopifyModel):
    """A webhook body about one entity: its id, and the value that orders its versions."""

    entity_type: ClassVar[str]

    id: int

    @property
    def entity_id(self) -> str:
        return str(self.id)

    @property
    def version(self) -> datetime:
        """The entity's ``updated_at``: a delivery older than the last applied one is superseded."""
        return self.updated_at  # type: ignore[attr-defined, no-any-return]


class ShopifyOrderCustomer(_ShopifyModel):
    """The customer as an order embeds it (Shopify leaves its timestamps null there)."""

    id: int


class ShopifyLineItem(_ShopifyModel):
    id: int
    sku: Sku  # Shopify allows null/empty SKUs (custom items)
    quantity: int = Field(gt=0)
    price: Decimal = Field(ge=0)
    title: str


class ShopifyMoney(_ShopifyModel):
    amount: Amount
    currency_code: str | None = Field(None, pattern=r"^[A-Z]{3}$")


class ShopifyMoneySet(_ShopifyModel):
    """An amount in the shop's currency and in the one the customer paid in (``presentment``)."""

    shop_money: ShopifyMoney
    presentment_money: ShopifyMoney


class ShopifyAllocation(_ShopifyModel):
    """The part of one discount application that falls on a line (or a shipping line)."""

    amount: Amount = Field(ge=0)
    amount_set: ShopifyMoneySet | None = None


class ShopifyTaxLine(_ShopifyModel):
    title: str | None = None
    rate: Decimal | None = None
    price: Amount = Field(ge=0)
    price_set: ShopifyMoneySet | None = None


class ShopifyDuty(_ShopifyModel):
    price_set: ShopifyMoneySet | None = None
    tax_lines: list[ShopifyTaxLine] = Field(default_factory=list)


class ShopifyOrderLineItem(ShopifyLineItem):
    """A line of an order: without SKU it goes to a fallback item; ``current_quantity`` 0 was edited out."""

    sku: OptionalSku = None  # type: ignore[assignment]
    title: str | None = None  # type: ignore[assignment]
    name: str | None = None
    price: Amount = Field(ge=0)
    price_set: ShopifyMoneySet | None = None
    current_quantity: int | None = Field(None, ge=0)
    gift_card: bool = False
    tip_payment_gateway: str | None = None  # set on a tip: Shopify sells a tip as a line item (a TipSale)
    discount_allocations: list[ShopifyAllocation] = Field(default_factory=list)
    tax_lines: list[ShopifyTaxLine] = Field(default_factory=list)
    duties: list[ShopifyDuty] = Field(default_factory=list)

    @field_validator("discount_allocations", "tax_lines", "duties", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ShopifyShippingLine(_ShopifyModel):
    code: str | None = None
    title: str | None = None
    price: Amount = Field(ge=0)
    price_set: ShopifyMoneySet | None = None
    is_removed: bool = False
    discount_allocations: list[ShopifyAllocation] = Field(default_factory=list)
    tax_lines: list[ShopifyTaxLine] = Field(default_factory=list)

    @field_validator("discount_allocations", "tax_lines", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ShopifyOrderTransaction(_ShopifyModel):
    kind: str | None = None
    status: str | None = None
    amount: Amount = Field(ge=0)
    amount_set: ShopifyMoneySet | None = None
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")


class ShopifyOrderRefundLine(_ShopifyModel):
    line_item_id: int
    quantity: int = Field(ge=0)


class ShopifyOrderRefund(_ShopifyModel):
    """A refund as the order embeds it: which lines it took back, and the money it returned."""

    refund_line_items: list[ShopifyOrderRefundLine] = Field(default_factory=list)
    transactions: list[ShopifyOrderTransaction] = Field(default_factory=list)


class ShopifyOrder(_ShopifyEntity):
    """The body of an ``orders/create``/``orders/updated``/``orders/paid``/``orders/cancelled`` webhook."""

    entity_type: ClassVar[str] = "order"

    name: str  # "#1001": the shop's order code
    order_number: int
    email: str | None = None
    # Typed when present; whether the ERP needs it is the mapping's call (a renamed field is a mapping edit).
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    presentment_currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    test: bool = False
    taxes_included: bool = False
    total_price: Amount
    total_price_set: ShopifyMoneySet | None = None
    current_total_price: Amount | None = None
    current_total_price_set: ShopifyMoneySet | None = None
    total_discounts: Amount | None = None
    total_discounts_set: ShopifyMoneySet | None = None
    total_tip_received: Amount | None = None
    line_items: list[ShopifyOrderLineItem] = Field(min_length=1)
    shipping_lines: list[ShopifyShippingLine] = Field(default_factory=list)
    refunds: list[ShopifyOrderRefund] = Field(default_factory=list)
    customer: ShopifyOrderCustomer | None = None
    cancelled_at: AwareDatetime | None = None
    cancel_reason: str | None = None
    financial_status: str | None = None
    note: str | None = None
    tags: str = ""  # Shopify sends one comma-separated string

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("shipping_lines", "refunds", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("test", "taxes_included", mode="before")
    @classmethod
    def _null_is_false(cls, value: Any) -> Any:
        return False if value is None else value

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]


class ShopifyTransaction(_ShopifyModel):
    """A payment-gateway transaction, here the money movement of a refund."""

    id: int
    kind: str  # "refund" for the money a refund returned
    status: str  # only "success" moved money
    amount: Amount = Field(ge=0)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    amount_set: ShopifyMoneySet | None = None


class ShopifyRefundLineItem(_ShopifyModel):
    id: int
    line_item_id: int
    quantity: int = Field(gt=0)
    subtotal: Amount = Field(ge=0)  # what was refunded for this line, after its discounts
    subtotal_set: ShopifyMoneySet | None = None
    total_tax: Amount | None = Field(None, ge=0)
    total_tax_set: ShopifyMoneySet | None = None
    restock_type: str | None = None  # no_restock, cancel, return, legacy_restock
    # The order's line as it was sold: without SKU (a custom item, a gift card) it goes to a fallback item.
    line_item: ShopifyOrderLineItem


class ShopifyRefundShippingLine(_ShopifyModel):
    """Shipping given back by a refund (``refund_shipping_lines``, Admin API 2024-07 and later)."""

    id: int
    shipping_line_id: int | None = None
    subtotal_amount_set: ShopifyMoneySet
    tax_amount_set: ShopifyMoneySet | None = None


class ShopifyOrderAdjustment(_ShopifyModel):
    """The difference between the calculated and the actual refund (``refund_discrepancy``), or, in older API
    versions, refunded shipping (``shipping_refund``). Shopify writes it as a negative amount when it lowers
    what the refund's lines would have returned."""

    id: int
    kind: str
    amount: Amount
    tax_amount: Amount = Decimal(0)
    amount_set: ShopifyMoneySet | None = None
    tax_amount_set: ShopifyMoneySet | None = None

    @field_validator("tax_amount", mode="before")
    @classmethod
    def _no_tax(cls, value: Any) -> Any:
        return Decimal(0) if value is None else value


class ShopifyRefund(_ShopifyEntity):
    """The body of a ``refunds/create`` webhook: one refund of one order."""

    entity_type: ClassVar[str] = "refund"

    order_id: int
    created_at: AwareDatetime
    processed_at: AwareDatetime | None = None
    note: str | None = None
    restock: bool | None = None
    # Empty for a refund of shipping or of an amount only: valid at Shopify; a mapping decides what it needs.
    refund_line_items: list[ShopifyRefundLineItem] = Field(default_factory=list)
    transactions: list[ShopifyTransaction] = Field(default_factory=list)
    refund_shipping_lines: list[ShopifyRefundShippingLine] = Field(default_factory=list)
    order_adjustments: list[ShopifyOrderAdjustment] = Field(default_factory=list)
    total_duties_set: ShopifyMoneySet | None = None

    @field_validator("refund_line_items", "transactions", "refund_shipping_lines", "order_adjustments",
                     mode="before")
    @classmethod
    def _no_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def version(self) -> datetime:
        """A refund is never edited (Shopify sends no refunds/update): its creation orders it."""
        return self.created_at

    @property
    def refunded_amount(self) -> Decimal:
        """The money that actually went back: the successful refund transactions."""
        return sum(
            (t.amount for t in self.transactions if t.kind == "refund" and t.status == "success"), Decimal(0)
        )


class ShopifyFulfillment(_ShopifyEntity):
    """The body of a ``fulfillments/create``/``fulfillments/update`` webhook: one shipment of an order."""

    entity_type: ClassVar[str] = "fulfillment"

    order_id: int
    name: str | None = None  # "#1001.1": the order's code and the shipment's number
    status: str  # pending, open, success, cancelled, error, failure
    created_at: AwareDatetime
    updated_at: AwareDatetime
    tracking_company: str | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    line_items: list[ShopifyLineItem] = Field(min_length=1)

    @field_validator("tracking_numbers", mode="before")
    @classmethod
    def _no_tracking(cls, value: Any) -> Any:
        return [] if value is None else value


class ShopifyVariant(_ShopifyModel):
    id: int
    # Null is valid at Shopify (the products/update sample has none); a mapping that needs it says so.
    sku: str | None = None
    title: str | None = None
    price: Decimal = Field(ge=0)
    compare_at_price: Decimal | None = Field(None, ge=0)
    barcode: str | None = None
    taxable: bool = True
    inventory_quantity: int | None = None
    position: int | None = None


class ShopifyProduct(_ShopifyEntity):
    """The body of a ``products/create``/``products/update`` webhook: the product with all its variants."""

    entity_type: ClassVar[str] = "product"

    title: str
    updated_at: AwareDatetime
    status: str | None = None  # active, archived, draft
    product_type: str | None = None
    vendor: str | None = None
    handle: str | None = None
    variants: list[ShopifyVariant] = Field(min_length=1)


class ShopifyAddress(_ShopifyModel):
    country_code: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    province_code: str | None = None


class ShopifyCustomer(_ShopifyEntity):
    """The body of a ``customers/create``/``customers/update`` webhook.

    Names, email and phone are all optional at Shopify (a newsletter sign-up may have an email only);
    what the ERP needs of them is the mapping's rule, so the refusal names the mapping's field.
    """

    entity_type: ClassVar[str] = "customer"

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    state: str | None = None  # disabled, invited, enabled, declined
    tax_exempt: bool = False
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime
    default_address: ShopifyAddress | None = None


class ShopifyComplianceCustomer(_ShopifyModel):
    """The customer a compliance request is about; email and phone are personal data and never logged."""

    id: int
    email: str | None = None
    phone: str | None = None


class _ShopifyCompliance(_ShopifyModel):
    shop_id: int
    shop_domain: str = Field(min_length=1, max_length=255)


class ShopifyCustomerRedact(_ShopifyCompliance):
    """``customers/redact``: erase what is stored about this customer and these orders."""

    customer: ShopifyComplianceCustomer
    orders_to_redact: list[int] = Field(default_factory=list)

    @field_validator("orders_to_redact", mode="before")
    @classmethod
    def _no_orders(cls, value: Any) -> Any:
        return [] if value is None else value


class ShopifyDataRequestId(_ShopifyModel):
    id: int


class ShopifyCustomerDataRequest(_ShopifyCompliance):
    """``customers/data_request``: the shop owner must be given what is stored about this customer."""

    customer: ShopifyComplianceCustomer
    orders_requested: list[int] = Field(default_factory=list)
    data_request: ShopifyDataRequestId | None = None

    @field_validator("orders_requested", mode="before")
    @classmethod
    def _no_orders(cls, value: Any) -> Any:
        return [] if value is None else value


class ShopifyShopRedact(_ShopifyCompliance):
    """``shop/redact``: the shop uninstalled the app 48 hours ago; erase everything of that shop."""


_Model = TypeVar("_Model", bound=_ShopifyModel)


def parse_order(payload: Any) -> ShopifyOrder:
    """Validate an order webhook body; raises InvalidPayload whose ``field`` is e.g. ``line_items[0].quantity``."""
    return _parse(ShopifyOrder, payload)


def parse_refund(payload: Any) -> ShopifyRefund:
    """Validate a ``refunds/create`` body; e.g. ``refund_line_items[0].quantity`` names a bad quantity."""
    return _parse(ShopifyRefund, payload)


def parse_fulfillment(payload: Any) -> ShopifyFulfillment:
    """Validate a fulfillment webhook body; e.g. ``line_items[1].sku`` names a line without SKU."""
    return _parse(ShopifyFulfillment, payload)


def parse_product(payload: Any) -> ShopifyProduct:
    """Validate a product webhook body; e.g. ``variants[0].price`` names a price that is not a number."""
    return _parse(ShopifyProduct, payload)


def parse_customer(payload: Any) -> ShopifyCustomer:
    """Validate a customer webhook body; e.g. ``updated_at`` names a missing or naive timestamp."""
    return _parse(ShopifyCustomer, payload)


def parse_customer_redact(payload: Any) -> ShopifyCustomerRedact:
    """Validate a ``customers/redact`` body; e.g. ``customer.id`` names a missing customer id."""
    return _parse(ShopifyCustomerRedact, payload)


def parse_customer_data_request(payload: Any) -> ShopifyCustomerDataRequest:
    """Validate a ``customers/data_request`` body; e.g. ``orders_requested[0]`` names an id that is not one."""
    return _parse(ShopifyCustomerDataRequest, payload)


def parse_shop_redact(payload: Any) -> ShopifyShopRedact:
    """Validate a ``shop/redact`` body; e.g. ``shop_domain`` names a missing domain."""
    return _parse(ShopifyShopRedact, payload)


def _parse(model: type[_Model], payload: Any) -> _Model:
    """Validate ``payload`` as ``model``; InvalidPayload names the first bad field and never echoes a value."""
    return parse_model(model, payload)
