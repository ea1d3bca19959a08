"""The Shopify refund, fulfillment, product and customer models, and the registry mappings name them by."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import InvalidPayload
from erpsync.systems import MODELS
from erpsync.systems.shopify.models import (
    ShopifyCustomer,
    ShopifyFulfillment,
    ShopifyOrder,
    ShopifyProduct,
    ShopifyRefund,
    parse_customer,
    parse_fulfillment,
    parse_order,
    parse_product,
    parse_refund,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify"
SHOP_TIME = datetime(2021, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5)))


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def customer_payload() -> dict[str, Any]:
    """A customers/create body: Shopify's order sample embeds one, with the timestamps a webhook carries."""
    customer = copy.deepcopy(fixture("orders_create")["customer"])
    customer.update(created_at="2021-12-30T10:00:00-05:00", updated_at="2021-12-31T19:00:00-05:00")
    return customer


def test_registry_names_every_model() -> None:
    # Other sources register their own models beside these (tests/unit/test_woocommerce_*, test_standard_*).
    assert {name: parse for name, parse in MODELS.items() if name.startswith("shopify.")} == {
        "shopify.order": parse_order,
        "shopify.refund": parse_refund,
        "shopify.fulfillment": parse_fulfillment,
        "shopify.product": parse_product,
        "shopify.customer": parse_customer,
    }


def test_refund_sample() -> None:
    refund = MODELS["shopify.refund"](fixture("refunds_create"))
    assert isinstance(refund, ShopifyRefund)
    assert (refund.entity_type, refund.entity_id) == ("refund", "890088186047892319")
    assert refund.order_id == 820982911946154508
    assert refund.version == SHOP_TIME
    assert [(line.line_item.sku, line.quantity, line.subtotal) for line in refund.refund_line_items] == [
        ("IPOD2008PINK", 1, Decimal("199")),
        ("IPOD2008PINK", 1, Decimal("199")),
    ]
    assert refund.refunded_amount == Decimal("85.00")


def test_fulfillment_sample() -> None:
    fulfillment = MODELS["shopify.fulfillment"](fixture("fulfillments_create"))
    assert isinstance(fulfillment, ShopifyFulfillment)
    assert (fulfillment.entity_type, fulfillment.entity_id) == ("fulfillment", "123456")
    assert fulfillment.order_id == 820982911946154508 and fulfillment.version == SHOP_TIME
    assert fulfillment.tracking_numbers == ["1z827wk74630"]
    assert [(line.sku, line.quantity) for line in fulfillment.line_items] == [("IPOD2008PINK", 1)] * 2


def test_fulfillment_update_sample() -> None:
    assert parse_fulfillment(fixture("fulfillments_update")).entity_id == "123456"


def test_product_sample() -> None:
    product = MODELS["shopify.product"](fixture("products_update"))
    assert isinstance(product, ShopifyProduct)
    assert (product.entity_type, product.entity_id, product.version) == ("product", "788032119674292922", SHOP_TIME)
    # Shopify's sample: two variants, neither with a SKU — valid at Shopify, the mapping decides.
    assert [(v.title, v.sku, v.price) for v in product.variants] == [
        ("Small", None, Decimal("19.99")),
        ("Medium", None, Decimal("19.99")),
    ]


def test_customer_from_the_order_sample() -> None:
    customer = MODELS["shopify.customer"](customer_payload())
    assert isinstance(customer, ShopifyCustomer)
    assert (customer.entity_type, customer.entity_id) == ("customer", "115310627314723954")
    assert customer.version == SHOP_TIME
    assert customer.default_address is not None and customer.default_address.country_code == "CA"


def test_an_order_embedded_customer_is_not_a_customer_webhook() -> None:
    # The order sample's customer has updated_at null: no version to order customer updates by.
    with pytest.raises(InvalidPayload) as caught:
        parse_customer(fixture("orders_create")["customer"])
    assert caught.value.field == "updated_at"


def test_cancelled_order_sample() -> None:
    order = MODELS["shopify.order"](fixture("orders_cancelled"))
    assert isinstance(order, ShopifyOrder)
    assert order.cancelled_at is not None and order.cancel_reason == "customer"


def test_untyped_fields_are_kept() -> None:
    product = parse_product(fixture("products_update"))
    assert product.model_extra is not None and product.model_extra["body_html"] == "An example T-Shirt"
    assert product.variants[0].model_extra is not None and product.variants[0].model_extra["option1"] == "Small"


Change = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Change:
    """A change that sets ``a.b[0].c`` to ``value``."""

    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.replace("]", "").replace("[", ".").split(".")
        node: Any = payload
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return change


def _drop(key: str) -> Change:
    return lambda payload: payload.pop(key)


# (id, model, payload factory, change, expected field, expected message substring)
INVALID_PAYLOADS: list[tuple[str, str, Callable[[], dict[str, Any]], Change, str, str]] = [
    ("refund zero quantity", "shopify.refund", lambda: fixture("refunds_create"),
     _set("refund_line_items[0].quantity", 0), "refund_line_items[0].quantity", "greater than 0"),
    # A refunded line without SKU is valid (a custom line: the mapping sends it to a fallback item).
    ("refund line without its order line", "shopify.refund", lambda: fixture("refunds_create"),
     _set("refund_line_items[1].line_item_id", None), "refund_line_items[1].line_item_id", "valid integer"),
    ("refund adjustment without amount", "shopify.refund", lambda: fixture("refunds_create"),
     _set("order_adjustments", [{"id": 1, "kind": "refund_discrepancy", "amount": "a lot"}]),
     "order_adjustments[0].amount", "decimal"),
    ("refund bad subtotal", "shopify.refund", lambda: fixture("refunds_create"),
     _set("refund_line_items[0].subtotal", "a lot"), "refund_line_items[0].subtotal", "decimal"),
    ("refund bad transaction amount", "shopify.refund", lambda: fixture("refunds_create"),
     _set("transactions[1].amount", "-3"), "transactions[1].amount", "greater than or equal to 0"),
    ("refund missing order id", "shopify.refund", lambda: fixture("refunds_create"),
     _drop("order_id"), "order_id", "required field is missing"),
    ("refund naive created_at", "shopify.refund", lambda: fixture("refunds_create"),
     _set("created_at", "2021-12-31T19:00:00"), "created_at", "timezone"),
    ("fulfillment no lines", "shopify.fulfillment", lambda: fixture("fulfillments_create"),
     _set("line_items", []), "line_items", "at least 1 item"),
    ("fulfillment blank sku", "shopify.fulfillment", lambda: fixture("fulfillments_create"),
     _set("line_items[1].sku", " "), "line_items[1].sku", "SKU is required"),
    ("fulfillment missing order id", "shopify.fulfillment", lambda: fixture("fulfillments_create"),
     _drop("order_id"), "order_id", "required field is missing"),
    ("fulfillment tracking numbers not a list", "shopify.fulfillment", lambda: fixture("fulfillments_create"),
     _set("tracking_numbers", "1z827wk74630"), "tracking_numbers", "list"),
    ("product no variants", "shopify.product", lambda: fixture("products_update"),
     _set("variants", []), "variants", "at least 1 item"),
    ("product bad variant price", "shopify.product", lambda: fixture("products_update"),
     _set("variants[1].price", "cheap"), "variants[1].price", "decimal"),
    ("product missing updated_at", "shopify.product", lambda: fixture("products_update"),
     _drop("updated_at"), "updated_at", "required field is missing"),
    ("customer bad id", "shopify.customer", customer_payload,
     _set("id", "someone"), "id", "integer"),
    ("customer bad country code", "shopify.customer", customer_payload,
     _set("default_address.country_code", "Canada"), "default_address.country_code", "pattern"),
    ("customer email not text", "shopify.customer", customer_payload,
     _set("email", ["a", "b"]), "email", "string"),
]


@pytest.mark.parametrize(
    ("model", "payload", "change", "field", "message"),
    [case[1:] for case in INVALID_PAYLOADS],
    ids=[case[0] for case in INVALID_PAYLOADS],
)
def test_invalid_payload_names_the_field(
    model: str, payload: Callable[[], dict[str, Any]], change: Change, field: str, message: str
) -> None:
    body = payload()
    change(body)
    with pytest.raises(InvalidPayload) as caught:
        MODELS[model](body)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert message in str(caught.value)


SECRET = "jane.customer@example.com"


@pytest.mark.parametrize(
    ("model", "payload", "fields"),
    [
        ("shopify.customer", customer_payload, ["id", "email", "first_name", "updated_at", "default_address"]),
        ("shopify.refund", lambda: fixture("refunds_create"), ["note", "created_at", "order_id"]),
        ("shopify.fulfillment", lambda: fixture("fulfillments_create"), ["name", "status", "created_at"]),
        ("shopify.product", lambda: fixture("products_update"), ["title", "vendor", "updated_at"]),
    ],
)
def test_no_customer_value_in_the_error(model: str, payload: Callable[[], dict[str, Any]], fields: list[str]) -> None:
    body = payload()
    for name in fields:
        body[name] = {"value": SECRET} if name != "created_at" else SECRET
    with pytest.raises(InvalidPayload) as caught:
        MODELS[model](body)
    assert SECRET not in str(caught.value) and "input_value" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize("model", sorted(MODELS))
def test_not_an_object(model: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        MODELS[model](["not", "an", "object"])
    assert caught.value.field == "(payload)"
