"""A Shopify refund becomes a cash refund worth the money returned: lines + shipping + adjustments, to the cent."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpsync.errors import MappingError
from erpsync.mapping import load_mapping
from erpsync.mapping.money_check import check_total
from erpsync.order_money import MoneyOptions, minor_units
from erpsync.systems.netsuite.totals import sales_order_totals
from erpsync.systems.shopify.refund_money import UNEXPLAINED_KEY, refund_money
from tests.conftest import REPO, fixture_path

MAPPING = REPO / "mappings" / "shopify_refund_to_netsuite_cash_refund.yaml"
SKUS = [line.split(",")[0] for line in (REPO / "mappings/lookups/sku_to_item.csv").read_text().splitlines()[1:4]]


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(MAPPING)


def sample() -> dict:
    return json.loads(Path(fixture_path("shopify", "refunds_create.json")).read_text())


def test_shopifys_sample_is_a_cash_refund_of_the_85_returned_not_the_398_of_its_lines(mapping):
    record = mapping.apply(sample())
    totals = check_total(record)
    assert totals is not None and totals.total == Decimal("85.00")
    assert sales_order_totals(record.body, 2).total == Decimal("85.00")
    lines = record.body["item"]["items"]
    assert [line["amount"] for line in lines] == [199, 199, -313]
    assert lines[-1]["custcol_erpsync_line_key"] == UNEXPLAINED_KEY
    # Linked to its order by a reference field: NetSuite creates cash refunds from cash sales and returns only.
    assert record.body["custbody_erpsync_sales_order"] == {"externalId": "shopify-order-820982911946154508"}
    assert "createdFrom" not in record.body


def test_a_body_that_does_not_add_up_to_the_money_returned_is_not_written(mapping):
    record = mapping.apply(sample())
    record.body["item"]["items"].pop()  # the old mapping's body: the lines' 398.00
    with pytest.raises(MappingError, match=r"398\.00 USD.*85\.00 USD: difference 313\.00 USD"):
        check_total(record)


def test_failed_and_non_refund_transactions_return_no_money():
    payload = sample()
    payload["transactions"][0]["status"] = "failure"
    payload["transactions"][1]["kind"] = "sale"
    assert refund_money(payload, MoneyOptions()).total == 0


def test_a_discrepancy_shopify_recorded_leaves_nothing_unexplained():
    payload = sample()
    payload["order_adjustments"] = [{"id": 1, "kind": "refund_discrepancy", "amount": "313.00", "tax_amount": "0.00"}]
    money = refund_money(payload, MoneyOptions())
    assert [line.key for line in money.lines][-1] == "refund-adjustment"
    assert UNEXPLAINED_KEY not in [line.key for line in money.lines]


def test_a_legacy_shipping_refund_adjustment_is_refunded_shipping():
    payload = sample()
    payload["refund_line_items"] = []
    payload["order_adjustments"] = [{"id": 1, "kind": "shipping_refund", "amount": "-10.00", "tax_amount": "-0.80"}]
    payload["transactions"] = [{"id": 5, "kind": "refund", "status": "success", "amount": "10.80", "currency": "USD"}]
    payload["total_duties_set"] = None
    money = refund_money(payload, MoneyOptions(shipping="line"))
    assert [(line.kind, line.amount, line.tax_amount) for line in money.lines] == [
        ("shipping", Decimal("10.00"), Decimal("0.80"))]


# --- generated refunds ----------------------------------------------------------------------------------------

CURRENCIES = ["USD", "EUR", "JPY", "KWD"]


def amounts(places: int, high: int = 100_000):
    return st.integers(0, high * 10**places).map(lambda n: Decimal(n).scaleb(-places))


def money_set(amount: Decimal, currency: str) -> dict:
    return {"shop_money": {"amount": str(amount), "currency_code": currency},
            "presentment_money": {"amount": str(amount), "currency_code": currency}}


@st.composite
def refunds(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    places = minor_units(currency)
    lines = []
    for n in range(draw(st.integers(0, 100 if draw(st.booleans()) else 5))):
        subtotal, tax = draw(amounts(places, 2_000)), draw(amounts(places, 200))
        sku = draw(st.sampled_from([*SKUS, None]))
        lines.append({"id": n + 1, "line_item_id": 1000 + n, "quantity": draw(st.integers(1, 5)),
                      "subtotal": str(subtotal), "subtotal_set": money_set(subtotal, currency),
                      "total_tax": str(tax), "total_tax_set": money_set(tax, currency),
                      "restock_type": draw(st.sampled_from(["no_restock", "return", "cancel", None])),
                      "line_item": {"id": 1000 + n, "sku": sku, "quantity": 5, "price": str(subtotal),
                                    "title": f"Line {n}", "gift_card": sku is None and draw(st.booleans())}})
    shipping = []
    if draw(st.booleans()):
        cost, tax = draw(amounts(places, 50)), draw(amounts(places, 5))
        shipping.append({"id": 1, "subtotal_amount_set": money_set(cost, currency),
                         "tax_amount_set": money_set(tax, currency)})
    adjustments = []
    if draw(st.booleans()):
        amount = draw(amounts(places, 500)) * draw(st.sampled_from([1, -1]))
        adjustments.append({"id": 1, "kind": "refund_discrepancy", "amount": str(amount), "tax_amount": "0",
                            "amount_set": money_set(amount, currency),
                            "tax_amount_set": money_set(Decimal(0), currency)})
    transactions = [{"id": n, "kind": draw(st.sampled_from(["refund", "refund", "sale"])),
                     "status": draw(st.sampled_from(["success", "success", "failure"])),
                     "amount": str(draw(amounts(places, 5_000))), "currency": currency}
                    for n in range(draw(st.integers(1, 3)))]
    return currency, {"id": 77, "order_id": 7, "created_at": "2024-05-04T10:00:00Z", "refund_line_items": lines,
                      "refund_shipping_lines": shipping, "order_adjustments": adjustments,
                      "transactions": transactions}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(refunds())
def test_every_generated_refund_adds_up_to_the_money_returned(mapping, generated):
    currency, payload = generated
    places = minor_units(currency)
    returned = sum((Decimal(t["amount"]) for t in payload["transactions"]
                    if t["kind"] == "refund" and t["status"] == "success"), Decimal(0))
    if currency not in ("USD", "EUR", "JPY"):  # the currency lookup holds the sandbox's currencies only
        money = refund_money(payload, mapping.config.money)
        body_total = sum((line.amount + line.tax_amount for line in money.lines), Decimal(0))
        assert body_total == returned
        return
    record = mapping.apply(payload)
    assert sales_order_totals(record.body, places).total == returned
    check_total(record)  # the pre-push check agrees
    lines = record.body.get("item", {}).get("items", [])
    keys = [line["custcol_erpsync_line_key"] for line in lines]
    assert len(keys) == len(set(keys)), "a line key appears twice"
    assert keys[:len(payload["refund_line_items"])] == [str(li["line_item_id"]) for li in payload["refund_line_items"]]
    for line in lines:
        assert Decimal(str(line["amount"])) == Decimal(str(line["amount"])).quantize(Decimal(1).scaleb(-places))


@settings(max_examples=60, deadline=None)
@given(refunds())
def test_a_refund_whose_parts_explain_the_money_has_no_unexplained_line(generated):
    currency, payload = generated
    # Make the money returned exactly what the parts say, as Shopify's own refunds are.
    parts = sum((Decimal(li["subtotal"]) + Decimal(li["total_tax"]) for li in payload["refund_line_items"]), Decimal(0))
    for sl in payload["refund_shipping_lines"]:
        parts += Decimal(sl["subtotal_amount_set"]["shop_money"]["amount"])
        parts += Decimal(sl["tax_amount_set"]["shop_money"]["amount"])
    parts -= sum((Decimal(a["amount"]) for a in payload["order_adjustments"]), Decimal(0))
    payload["transactions"] = [{"id": 1, "kind": "refund", "status": "success", "amount": str(parts),
                                "currency": currency}]
    if parts < 0:
        return  # a refund returns money; a negative one is not a refund Shopify makes
    money = refund_money(payload, MoneyOptions(shipping="line"))
    assert UNEXPLAINED_KEY not in [line.key for line in money.lines]
    assert money.total == parts
