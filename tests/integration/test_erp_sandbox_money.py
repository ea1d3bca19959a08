"""The ERP sandbox computes a transaction's totals as NetSuite does and refuses what NetSuite refuses in a body.

The totals are computed by the sandbox alone (erpsync_dev/sandboxes/netsuite/totals.py), so these expectations are
written out by hand from the rule, not from erpsync's own pre-push check.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from erpsync.errors import ErpRejected
from erpsync.systems.netsuite.client import NetSuiteClient
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET

# erp, ops and client: tests/integration/conftest.py.
ERP_SANDBOX_ARGS = ("--items", "1-999", "--customers", "110=Web Store,4242=Wholesale", "--list", "location=1-3")


def line(item: int = 98, quantity: float = 1, rate: float = 199.0, **extra: Any) -> dict[str, Any]:
    return {"item": {"id": str(item)}, "quantity": quantity, "rate": rate, **extra}


def order(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"entity": {"id": "110"}, "item": {"items": list(lines or [line()])}, **fields}


MONEY = ("subtotal", "discountTotal", "taxTotal", "shippingCost", "handlingCost", "total")


def totals(client: NetSuiteClient, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
    internal_id = client.upsert("salesOrder", external_id, body)
    record = client.get("salesOrder", internal_id, expand_sub_resources=True)
    assert record is not None
    return {name: record[name] for name in (*MONEY, "currency")} | {
        "amounts": [entry["amount"] for entry in record["item"]["items"]]}


# --- totals ------------------------------------------------------------------------------------------------------


def test_shopifys_sample_order_totals_388(client: NetSuiteClient) -> None:
    # Shopify's orders/create sample: 2 × 199.00, a 20.00 discount, 10.00 shipping; total_price 388.00.
    body = order(line(), line(item=99), currency={"id": "1"}, shipMethod={"id": "911"}, shippingCost=10.0,
                 discountItem={"id": "904"}, discountRate=-20.0)
    assert totals(client, "shopify-order-820982911946154508", body) == {
        "subtotal": 398, "discountTotal": -20, "taxTotal": 0, "shippingCost": 10, "handlingCost": 0, "total": 388,
        "currency": {"id": "1", "refName": "USD"}, "amounts": [199, 199],
    }
    [row] = client.suiteql("SELECT foreigntotal, currency FROM transaction WHERE externalid = ?",
                           ["shopify-order-820982911946154508"])
    assert row == {"foreigntotal": "388", "currency": "1"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (order(line(quantity=3, rate=33.335)),
         {"subtotal": 100.01, "total": 100.01, "amounts": [100.01]}),  # 100.005 rounded half-up
        (order(line(quantity=3, rate=10.0, amount=29.0)), {"subtotal": 29, "total": 29, "amounts": [29]}),
        (order(line(rate=99.99), discountItem={"id": "904"}, discountRate="-10%"),
         {"subtotal": 99.99, "discountTotal": -10.0, "total": 89.99}),  # 9.999 → 10.00
        (order(line(rate=100.0, tax1Amt=8.875), line(item=99, rate=50.0, tax1Amt=4.44), handlingCost=2.5),
         {"taxTotal": 13.32, "total": 165.82}),  # 8.875 → 8.88 per line, then summed
        (order(line(rate=100.0, isClosed=True), line(item=99, rate=-15.0)), {"subtotal": 85, "total": 85}),
        (order(line(quantity=3, rate=333.5), currency={"id": "5"}, shippingCost=500.4),
         {"subtotal": 1001, "shippingCost": 500, "total": 1501, "amounts": [1001],
          "currency": {"id": "5", "refName": "JPY"}}),  # yen have no minor units
    ],
    ids=["quantity x rate rounded half-up", "amount given wins", "percentage discount of the subtotal",
         "tax per line and handling", "closed lines and negative lines count", "yen"],
)
def test_totals_follow_netsuites_rule(client: NetSuiteClient, body: dict[str, Any], expected: dict[str, Any]) -> None:
    got = totals(client, "shopify-order-1", body)
    assert {name: got[name] for name in expected} == expected


def test_suiteql_lines_keep_their_posting_sign(client: NetSuiteClient) -> None:
    internal_id = client.upsert("salesOrder", "shopify-order-2",
                                order(line(quantity=2, rate=10.0, tax1Amt=1.6), shippingCost=5.0))
    rows = client.suiteql("SELECT id, mainline, quantity, foreignamount, tax1amt FROM transactionline "
                          "WHERE transaction = ? ORDER BY id", [internal_id])
    assert rows == [
        {"id": "0", "mainline": "T", "foreignamount": "26.6", "tax1amt": "1.6"},  # the total, positive
        {"id": "1", "mainline": "F", "quantity": "-2", "foreignamount": "-20", "tax1amt": "-1.6"},
    ]
    assert client.suiteql("SELECT symbol, currencyprecision FROM currency WHERE id = 5") == [
        {"symbol": "JPY", "currencyprecision": "0"}]


# --- what NetSuite refuses ---------------------------------------------------------------------------------------

ADDRESS = {"addressee": "Bob Norman", "addr1": "Chestnut Street 92", "city": "Louisville", "state": "KY",
           "zip": "40202", "country": {"id": "US"}, "addrPhone": "555-625-1199"}


@pytest.mark.parametrize(
    ("fields", "code", "path"),
    [
        ({"entity": {"id": "999"}}, "INVALID_CONTENT", "entity"),
        ({"currency": {"id": "9"}}, "INVALID_CONTENT", "currency"),
        ({"currency": "USD"}, "INVALID_CONTENT", "currency"),
        ({"subsidiary": {"id": "6"}}, "INVALID_CONTENT", "subsidiary"),
        ({"location": {"id": "4"}}, "INVALID_CONTENT", "location"),  # this sandbox: --list location=1-3
        ({"department": {"id": "10"}}, "INVALID_CONTENT", "department"),
        ({"class": {"id": "x"}}, "INVALID_CONTENT", "class"),
        ({"shipMethod": {"id": "21"}}, "INVALID_CONTENT", "shipMethod"),
        ({"discountItem": {"id": "5000"}, "discountRate": -5}, "INVALID_CONTENT", "discountItem"),
        ({"discountRate": -5}, "USER_ERROR", "discountItem"),
        ({"discountItem": {"id": "904"}, "discountRate": "ten"}, "INVALID_CONTENT", "discountRate"),
        ({"shippingCost": "10.00"}, "INVALID_CONTENT", "shippingCost"),
        ({"billingAddress": "Chestnut Street 92, Louisville"}, "INVALID_CONTENT", "billingAddress"),
        ({"shippingAddress": {**ADDRESS, "street": "x"}}, "INVALID_CONTENT", "shippingAddress.street"),
        ({"shippingAddress": {**ADDRESS, "country": {"id": "United States"}}}, "INVALID_CONTENT",
         "shippingAddress.country"),
        ({"item": {"items": [line(taxCode={"id": "51"})]}}, "INVALID_CONTENT", "item.items[0].taxCode"),
        ({"item": {"items": [line(), line(rate="199.00")]}}, "INVALID_CONTENT", "item.items[1].rate"),
        ({"item": {"items": [line(description="x" * 4001)]}}, "INVALID_CONTENT", "item.items[0].description"),
    ],
    ids=["unknown customer", "unknown currency", "currency not a reference", "unknown subsidiary",
         "unknown location", "unknown department", "class id not a number", "unknown ship method",
         "unknown discount item", "discount rate without item", "discount rate not a number",
         "money as text", "address as text", "unknown address field", "country not a code", "unknown tax code",
         "rate as text", "description too long"],
)
def test_what_netsuite_refuses_is_refused_naming_the_field(
    client: NetSuiteClient, fields: dict[str, Any], code: str, path: str
) -> None:
    with pytest.raises(ErpRejected) as raised:
        client.upsert("salesOrder", "shopify-order-3", order(**fields))
    assert (raised.value.status, raised.value.code, raised.value.path) == (400, code, path)
    # Customer data in the body is never quoted back in the detail (it reaches the ledger).
    assert "Chestnut" not in raised.value.detail and "Louisville" not in raised.value.detail


def test_what_a_full_body_may_carry_is_accepted(client: NetSuiteClient) -> None:
    body = order(line(description="x" * 4000, taxCode={"id": "301"}, location={"id": "3"}),
                 entity={"id": "4242"}, currency={"id": "4"}, subsidiary={"id": "5"}, location={"id": "1"},
                 department={"id": "9"}, **{"class": {"id": "1"}}, shipMethod={"id": "20"}, shippingCost=0,
                 billingAddress=ADDRESS, shippingAddress={"country": {"id": "GB"}, "city": "London"})
    internal_id = client.upsert("salesOrder", "shopify-order-4", body)
    record = client.get("salesOrder", internal_id)
    assert record is not None and record["shippingAddress"] == {"country": {"id": "GB"}, "city": "London"}
    assert record["entity"] == {"id": "4242"} and record["currency"]["refName"] == "EUR"
    customer = client.get("customer", "110")
    assert customer is not None and customer["companyName"] == "Web Store"


def test_external_ids_are_unique_per_record_type(client: NetSuiteClient, erp: str) -> None:
    customer = client.upsert("customer", "shopify-1001", {"companyName": "Acme"})
    order_id = client.upsert("salesOrder", "shopify-1001", order(entity={"id": customer}))
    assert customer != order_id
    assert client.get("customer", "eid:shopify-1001")["id"] == customer  # type: ignore[index]
    assert client.get("salesOrder", "eid:shopify-1001")["entity"] == {"id": customer}  # type: ignore[index]
    with httpx.Client(base_url=erp) as http:
        token = http.post("/services/rest/auth/oauth2/v1/token", data={"grant_type": "client_credentials"},
                          auth=(ERP_CLIENT_ID, ERP_CLIENT_SECRET)).json()["access_token"]
        again = http.post("/services/rest/record/v1/customer", json={"companyName": "Other", "externalId":
                                                                      "shopify-1001"},
                          headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 400 and again.json()["o:errorDetails"][0]["o:errorPath"] == "externalId"


# --- customers by email ------------------------------------------------------------------------------------------


def test_customers_are_found_by_email_through_suiteql_case_as_netsuite_compares(client: NetSuiteClient) -> None:
    customer = client.upsert("customer", "shopify-customer-7", {
        "isPerson": True, "firstName": "Bob", "lastName": "Norman", "email": "Bob.Norman@Example.com"})
    exact = client.suiteql("SELECT id FROM customer WHERE email = ?", ["Bob.Norman@Example.com"])
    literal = client.suiteql("SELECT id FROM customer WHERE email = 'Bob.Norman@Example.com'")
    assert exact == literal == [{"id": customer}]
    # Oracle compares text case-sensitively; erpsync's lookup compares LOWER(email).
    assert client.suiteql("SELECT id FROM customer WHERE email = ?", ["bob.norman@example.com"]) == []
    assert client.suiteql("SELECT id FROM customer WHERE email LIKE 'bob.%'") == []
    assert client.suiteql("SELECT id FROM customer WHERE LOWER(email) = 'bob.norman@example.com'") == [
        {"id": customer}]
