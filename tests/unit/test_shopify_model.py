"""The Shopify order model: Shopify's own samples parse; bad payloads name the field and never echo a value."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import InvalidPayload
from erpsync.systems.shopify.models import ShopifyOrder, parse_order

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify"
ORDER_TOPICS = ["orders_create", "orders_updated", "orders_paid", "orders_cancelled"]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ORDER_TOPICS)
def test_shopify_samples_parse(name: str) -> None:
    order = parse_order(fixture(name))
    assert order.entity_id == "820982911946154508"
    assert order.version == datetime(2021, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5)))
    assert order.version.tzinfo is not None
    assert order.total_price == Decimal("388.00")
    assert [(li.sku, li.quantity, li.price) for li in order.line_items] == [
        ("IPOD2008PINK", 1, Decimal("199.00")),
        ("IPOD2008PINK", 1, Decimal("199.00")),
    ]
    assert order.customer is not None and order.customer.id == 115310627314723954
    assert order.tag_list == ["tag1", "tag2"]


def test_entity_type_and_untyped_fields_kept() -> None:
    order = parse_order(fixture("orders_create"))
    assert ShopifyOrder.entity_type == "order" and order.entity_type == "order"
    # extra="allow": fields the sync does not type are still there for later use
    assert order.model_extra is not None and order.model_extra["source_name"] == "web"


def _broken(change) -> dict:
    payload = copy.deepcopy(fixture("orders_create"))
    change(payload)
    return payload


# (id, change, expected field, expected message substring)
INVALID_PAYLOADS = [
    ("zero quantity", lambda p: p["line_items"][0].update(quantity=0), "line_items[0].quantity", "greater than 0"),
    ("negative current_quantity", lambda p: p["line_items"][1].update(current_quantity=-1),
     "line_items[1].current_quantity", "greater than or equal to 0"),
    ("bad allocation", lambda p: p["line_items"][0].update(discount_allocations=[{"amount": "NaN"}]),
     "line_items[0].discount_allocations[0].amount", "finite"),
    ("bad presentment price", lambda p: p["line_items"][0]["price_set"]["presentment_money"].update(amount="x"),
     "line_items[0].price_set.presentment_money.amount", "decimal"),
    ("no line items", lambda p: p.update(line_items=[]), "line_items", "at least 1 item"),
    ("missing id", lambda p: p.pop("id"), "id", "required field is missing"),
    ("missing updated_at", lambda p: p.pop("updated_at"), "updated_at", "required field is missing"),
    ("naive updated_at", lambda p: p.update(updated_at="2021-12-31T19:00:00"), "updated_at", "timezone"),
    ("bad price", lambda p: p["line_items"][0].update(price="lots"), "line_items[0].price", "decimal"),
    ("bad currency", lambda p: p.update(currency="dollars"), "currency", "pattern"),
    ("bad customer id", lambda p: p["customer"].update(id="someone"), "customer.id", "integer"),
]


@pytest.mark.parametrize(
    ("change", "field", "message"), [c[1:] for c in INVALID_PAYLOADS], ids=[c[0] for c in INVALID_PAYLOADS]
)
def test_invalid_payload_names_the_field(change, field: str, message: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_order(_broken(change))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize("sku", [None, "", "  "])
def test_a_line_without_sku_is_valid_and_reads_as_none(sku: Any) -> None:
    # A custom line, a gift card or a tip has no SKU: the mapping sends it to a fallback item.
    order = parse_order(_broken(lambda p: p["line_items"][1].update(sku=sku)))
    assert order.line_items[1].sku is None and order.line_items[0].sku == "IPOD2008PINK"


def test_every_problem_is_listed_by_path() -> None:
    def two_problems(p: dict) -> None:
        p["line_items"][0]["quantity"] = -1
        p["email"] = 42

    with pytest.raises(InvalidPayload) as caught:
        parse_order(_broken(two_problems))
    assert caught.value.field == "email"
    assert "also line_items[0].quantity" in str(caught.value)


CUSTOMER_VALUES = ["Jane Q. Customer", "jane.customer@example.com", "+1 555 0100 999"]


@pytest.mark.parametrize("secret", CUSTOMER_VALUES)
def test_no_customer_value_in_the_error(secret: str) -> None:
    def leak(p: dict) -> None:
        p["email"] = {"value": secret}  # not a string: pydantic's own text would echo the input
        p["currency"] = secret
        p["created_at"] = secret
        p["line_items"][0]["quantity"] = secret
        p["line_items"][0]["sku"] = [secret]
        p["customer"]["id"] = secret

    with pytest.raises(InvalidPayload) as caught:
        parse_order(_broken(leak))
    error = caught.value
    assert secret not in str(error) and secret not in error.reason
    assert "input_value" not in str(error)
    # not chained: a logged traceback of the InvalidPayload must not print pydantic's ValidationError
    assert error.__cause__ is None and error.__suppress_context__


def test_not_an_object() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_order(["not", "an", "order"])
    assert caught.value.field == "(payload)"
