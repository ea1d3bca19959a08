"""NetSuite's totals of a body, a mapping's `money:` options (presentment money, tolerance, line and header modes),
descriptions, drift reports and previews of the computed order."""

from __future__ import annotations

import copy
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping import InMemoryXref, Mapping, load_mapping
from erpsync.mapping.commands import preview
from erpsync.mapping.money_check import check_total
from erpsync.systems.netsuite.totals import TotalsError, sales_order_totals

REPO = Path(__file__).parents[2]
SHOPIFY = REPO / "mappings" / "shopify_order_to_netsuite_sales_order.yaml"
SAMPLE = REPO / "tests" / "fixtures" / "shopify" / "orders_create.json"


# -- NetSuite's totals -----------------------------------------------------------------------------------------

def test_totals_follow_netsuites_formula() -> None:
    body = {
        "item": {"items": [
            {"quantity": 3, "rate": 0.335},                      # no amount: 1.005 rounded half-up → 1.01
            {"quantity": 1, "rate": 5, "amount": 4.5, "tax1Amt": 0.36},  # the amount wins over quantity × rate
            {"quantity": 1, "amount": -2, "isClosed": True},     # a closed discount line still counts
        ]},
        "discountRate": "-10%", "shippingCost": 7.25, "handlingCost": 1,
    }
    totals = sales_order_totals(body, 2)
    assert (totals.subtotal, totals.discount, totals.tax, totals.shipping) == (
        Decimal("3.51"), Decimal("-0.35"), Decimal("0.36"), Decimal("7.25"))
    assert totals.total == Decimal("11.77")


def test_totals_in_a_currency_without_minor_units() -> None:
    totals = sales_order_totals({"item": {"items": [{"quantity": 3, "rate": 333.5}]}, "discountRate": -100}, 0)
    assert (totals.subtotal, totals.total) == (Decimal(1001), Decimal(901))


@pytest.mark.parametrize(("body", "field"), [
    ({"item": {"items": [{"amount": "ten"}]}}, "item.items[0].amount"),
    ({"item": {"items": [{"quantity": True, "rate": 1}]}}, "item.items[0].quantity"),
    ({"item": {"items": ["x"]}}, "item.items[0]"),
    ({"shippingCost": "NaN"}, "shippingCost"),
])
def test_a_body_that_is_not_numbers_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(TotalsError) as caught:
        sales_order_totals(body, 2)
    assert caught.value.field == field


# -- money options ---------------------------------------------------------------------------------------------

def variant(tmp_path: Path, **money: Any) -> Mapping:
    shutil.copytree(REPO / "mappings", tmp_path, dirs_exist_ok=True)
    config = yaml.safe_load(SHOPIFY.read_text())
    config["money"].update(money)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_mapping(path)


def money_set(shop: str, presentment: str) -> dict[str, Any]:
    return {"shop_money": {"amount": shop, "currency_code": "USD"},
            "presentment_money": {"amount": presentment, "currency_code": "EUR"}}


# Shop in USD, the customer paid in EUR: every amount has both, and Shopify's total in each adds up.
PRESENTMENT_ORDER: dict[str, Any] = {
    "id": 7001, "name": "#7001", "order_number": 7001, "test": False,
    "created_at": "2024-05-02T10:15:00+02:00", "updated_at": "2024-05-02T10:15:00+02:00",
    "currency": "USD", "presentment_currency": "EUR",
    "total_price": "64.60", "total_price_set": money_set("64.60", "59.43"),
    "total_discounts": "5.40", "total_discounts_set": money_set("5.40", "4.97"),
    "line_items": [{
        "id": 71, "sku": "TEE-BLK-M", "title": "Logo Tee", "quantity": 2,
        "price": "27.00", "price_set": money_set("27.00", "24.84"),
        "discount_allocations": [{"amount": "5.40", "amount_set": money_set("5.40", "4.97")}],
    }],
    "shipping_lines": [{"code": "Express", "title": "Express", "price": "16.00", "price_set": money_set("16.00", "14.72")}],
}


def test_a_presentment_order_booked_in_the_customers_currency(tmp_path: Path) -> None:
    mapping = variant(tmp_path, currency="presentment", discounts="lines")
    record = mapping.apply(PRESENTMENT_ORDER)
    totals = check_total(record)
    assert totals is not None and totals.total == Decimal("59.43")
    assert record.body["currency"] == {"id": "4"} and record.body["subsidiary"] == {"id": "2"}
    [line] = record.body["item"]["items"]
    assert (line["amount"], line["rate"], record.body["shippingCost"]) == (44.71, 22.355, 14.72)


def test_the_same_order_booked_in_the_shops_currency(tmp_path: Path) -> None:
    record = variant(tmp_path).apply(PRESENTMENT_ORDER)
    assert check_total(record).total == Decimal("64.60")  # type: ignore[union-attr]
    assert record.body["currency"] == {"id": "1"} and record.body["discountRate"] == -5.4


def test_presentment_money_without_its_sets_is_named(tmp_path: Path) -> None:
    order = copy.deepcopy(PRESENTMENT_ORDER)
    del order["line_items"][0]["price_set"]
    with pytest.raises(MappingError) as caught:
        variant(tmp_path, currency="presentment").apply(order)
    assert caught.value.field == "line_items[0].price_set"


def test_shipping_and_discounts_as_lines_with_fixed_keys(tmp_path: Path) -> None:
    sample = json.loads(SAMPLE.read_text()) | {"test": False}
    xref = InMemoryXref({"customer.email": {"john@example.com": "1201"}})
    record = variant(tmp_path, shipping="line", discounts="lines").apply(sample, xref=xref)
    assert check_total(record).total == Decimal("388.00")  # type: ignore[union-attr]
    lines = {line["custcol_erpsync_line_key"]: line for line in record.body["item"]["items"]}
    assert (lines["shipping"]["item"], lines["shipping"]["amount"]) == ({"id": "903"}, 10)
    assert (lines["discount"]["item"], lines["discount"]["amount"]) == ({"id": "904"}, -20)
    assert "shippingCost" not in record.body and "discountRate" not in record.body


def test_a_tolerance_lets_a_declared_difference_through(tmp_path: Path) -> None:
    order = copy.deepcopy(PRESENTMENT_ORDER) | {"total_price": "64.61"}
    del order["total_price_set"]
    with pytest.raises(MappingError, match="difference -0.01 USD"):
        check_total(variant(tmp_path).apply(order))
    assert check_total(variant(tmp_path, tolerance="0.01").apply(order)) is not None


def test_descriptions_are_decoded_and_cut_to_netsuites_column(tmp_path: Path) -> None:
    order = copy.deepcopy(PRESENTMENT_ORDER)
    order["line_items"][0]["title"] = "Tee &ndash; " + "x" * 2000
    [line] = variant(tmp_path).apply(order).body["item"]["items"]
    assert line["description"].startswith("Tee – x") and len(line["description"]) == 999


@pytest.mark.parametrize(("money", "message"), [
    ({"shipping": "footer"}, "money.shipping: Input should be 'header' or 'line'"),
    ({"tolerance": "-1"}, "money.tolerance: Input should be greater than or equal to 0"),
    ({"items": {"giftcard": "901"}}, "money.items.giftcard"),
])
def test_bad_money_options_are_named(tmp_path: Path, money: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        variant(tmp_path, **money)


def test_money_needs_a_model_with_money_rules(tmp_path: Path) -> None:
    shutil.copytree(REPO / "mappings", tmp_path, dirs_exist_ok=True)
    config = yaml.safe_load(SHOPIFY.read_text())
    config["model"] = "shopify.product"
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(ConfigError, match="money: model 'shopify.product' has no money rules"):
        load_mapping(path)


def test_a_payload_with_its_own_order_field_is_refused() -> None:
    sample = json.loads(SAMPLE.read_text()) | {"test": False, "order": {"lines": []}}
    with pytest.raises(MappingError) as caught:
        load_mapping(SHOPIFY).apply(sample)
    assert caught.value.field == "order"


# -- drift and preview -----------------------------------------------------------------------------------------

def test_fields_the_money_rules_read_are_not_drift() -> None:
    # include_ignored: the shipped mapping names every other field of the sample under ignore:
    unread = load_mapping(SHOPIFY).unread_fields(json.loads(SAMPLE.read_text()), include_ignored=True)
    for read in ("line_items[].price_set.presentment_money.amount", "total_price_set.shop_money.amount",
                 "shipping_lines[].price", "line_items[].discount_allocations[]", "total_discounts"):
        assert read not in unread
    assert not any(name.startswith("order.") for name in unread)
    assert "total_weight" in unread, "a field nothing reads is still reported"


def test_preview_shows_the_money_check_and_a_skip(tmp_path: Path) -> None:
    out = io.StringIO()
    assert preview(SHOPIFY, SAMPLE, out) == 0
    assert "SKIP test: a test order" in out.getvalue()
    real = tmp_path / "real.json"
    real.write_text(json.dumps(json.loads(SAMPLE.read_text()) | {"test": False}))
    out = io.StringIO()
    assert preview(SHOPIFY, real, out) == 0
    assert "money check: NetSuite total 388.00 USD = source total_price 388.00" in out.getvalue()


# -- Shopify specifics: duties, partial edits ------------------------------------------------------------------

def shopify_order(**changes: Any) -> dict[str, Any]:
    return {"id": 7100, "name": "#7100", "order_number": 7100, "test": False, "currency": "USD",
            "created_at": "2024-05-02T10:15:00-04:00", "updated_at": "2024-05-02T10:15:00-04:00", **changes}


def test_duties_go_to_the_duties_item_with_their_tax() -> None:
    usd = {"shop_money": {"amount": "4.00", "currency_code": "USD"},
           "presentment_money": {"amount": "4.00", "currency_code": "USD"}}
    order = shopify_order(total_price="34.40", line_items=[{
        "id": 1, "sku": "TEE-BLK-S", "title": "Tee", "quantity": 1, "price": "30.00",
        "duties": [{"price_set": usd, "tax_lines": [{"title": "VAT", "price": "0.40"}]}],
    }])
    record = load_mapping(SHOPIFY).apply(order)
    assert check_total(record).total == Decimal("34.40")  # type: ignore[union-attr]
    duties = record.body["item"]["items"][-1]
    assert (duties["item"], duties["amount"], duties["tax1Amt"], duties["custcol_erpsync_line_key"]) == (
        {"id": "906"}, 4, 0.4, "duties")


def test_a_partly_edited_line_keeps_its_discount_and_tax_in_proportion() -> None:
    # 3 × 10.00 less a 3.00 allocation, 6 % tax on 27.00 = 1.62; an edit takes 2 units off the order.
    order = shopify_order(total_price="28.62", current_total_price="9.54", line_items=[{
        "id": 1, "sku": "TEE-BLK-S", "title": "Tee", "quantity": 3, "current_quantity": 1, "price": "10.00",
        "discount_allocations": [{"amount": "3.00"}], "tax_lines": [{"title": "State Tax", "price": "1.62"}],
    }], total_discounts="3.00")
    record = load_mapping(SHOPIFY).apply(order)
    totals = check_total(record)
    assert totals is not None and totals.total == Decimal("9.54")
    [line] = record.body["item"]["items"]
    assert (line["quantity"], line["amount"], line["tax1Amt"], record.body["discountRate"]) == (1, 10, 0.54, -1)
