"""The ERP sandbox's record types beyond the sales order, through the NetSuite connector against its own process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import SQLModel

from erpsync.errors import ErpRejected
from erpsync.ledger import Ledger
from erpsync.mapping import MappedRecord, load_mapping
from erpsync.retry import RetryPolicy
from erpsync.systems import MODELS
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.xref_cache import LedgerXref
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

FAST = RetryPolicy(max_attempts=3, base=0.01, cap=0.05, max_retry_after=0.05)
FIXTURES = Path(__file__).parents[1] / "fixtures" / "netsuite"
# Items 1-200 as item-N, the fallback items, and two with the SKU as their name, like an account the shop syncs with.
ITEMS = "1-200,900-999,98=IPOD2008PINK,99=IPOD2008BLACK"  # 900-999: fallback items (contract: 900-906)


ERP_SANDBOX_ARGS = ("--items", ITEMS)  # erp, ops and client: tests/integration/conftest.py


@pytest.fixture
def headers(erp: str, client: NetSuiteClient) -> dict[str, str]:
    """A bearer token for raw requests, for what the connector does not send (a direct fulfillment create)."""
    token = httpx.post(f"{erp}/services/rest/auth/oauth2/v1/token", data={"grant_type": "client_credentials"},
                       auth=(ERP_CLIENT_ID, ERP_CLIENT_SECRET)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def lines(*items: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {"items": [{"item": {"id": str(item)}, "quantity": quantity, **extra} for item, quantity in items]}


def sales_order(**fields: Any) -> dict[str, Any]:
    return {"entity": {"id": "110"}, "tranDate": "2021-12-31", "item": lines((98, 1), (99, 2)), **fields}


def rejected(client: NetSuiteClient, record_type: str, external_id: str, body: dict[str, Any]) -> ErpRejected:
    with pytest.raises(ErpRejected) as raised:
        client.upsert(record_type, external_id, body)
    assert raised.value.status == 400
    return raised.value


# --- customer ------------------------------------------------------------------------------------------------


def test_customer_upserts_and_shows_in_suiteql(client: NetSuiteClient) -> None:
    body = {"isPerson": True, "firstName": "John", "lastName": "Smith", "email": "john@example.com",
            "subsidiary": {"id": "1"}}
    internal_id = client.upsert("customer", "shopify-customer-115310627314723954", body)
    assert client.upsert("customer", "shopify-customer-115310627314723954", {**body, "phone": "123"}) == internal_id
    company = client.upsert("customer", "shopify-customer-2", {"isPerson": False, "companyName": "Shipping Company"})

    rows = client.suiteql(
        "SELECT id, entityid, email, externalid, companyname, isperson FROM customer ORDER BY id"
    )
    assert rows == [
        {"id": "110", "entityid": "Web Store", "companyname": "Web Store", "isperson": "F"},  # seeded: the guest
        {"id": internal_id, "entityid": "John Smith", "email": "john@example.com",
         "externalid": "shopify-customer-115310627314723954", "isperson": "T"},
        {"id": company, "entityid": "Shipping Company", "externalid": "shopify-customer-2",
         "companyname": "Shipping Company", "isperson": "F"},
    ]
    by_email = client.suiteql("SELECT id FROM customer WHERE email = ?", ["john@example.com"])
    assert by_email == [{"id": internal_id}]


@pytest.mark.parametrize(
    ("body", "code", "path", "detail"),
    [
        ({"isPerson": True, "email": "a@example.com"}, "USER_ERROR", None,
         "Please enter value(s) for: First Name, Last Name."),
        ({"isPerson": True, "firstName": "John"}, "USER_ERROR", None, "Please enter value(s) for: Last Name."),
        ({"isPerson": False, "firstName": "John", "lastName": "Smith"}, "USER_ERROR", None, "Company Name"),
        ({"email": "a@example.com"}, "USER_ERROR", None, "Company Name"),
        ({"companyName": "Acme", "email": "John Smith"}, "INVALID_CONTENT", "email", "valid email address"),
        ({"companyName": "Acme", "subsidiary": {}}, "USER_ERROR", "subsidiary", "Subsidiary"),
        ({"companyName": "Acme", "isPerson": "yes"}, "INVALID_CONTENT", "isPerson", "isperson"),
    ],
    ids=["person without names", "person without last name", "company without name", "no name at all",
         "bad email", "subsidiary without id", "isPerson not a boolean"],
)
def test_customer_validation(client: NetSuiteClient, body: dict[str, Any], code: str, path: str | None,
                             detail: str) -> None:
    error = rejected(client, "customer", "shopify-customer-9", body)
    assert (error.code, error.path) == (code, path)
    assert detail in error.detail
    assert "John Smith" not in error.detail  # a customer value is never quoted back


def test_missing_names_answer_like_netsuite(client: NetSuiteClient, erp: str) -> None:
    published = json.loads((FIXTURES / "error_400_user_error_missing_fields.github-issue.json").read_text())
    token = client_token(erp)
    response = httpx.put(f"{erp}/services/rest/record/v1/customer/eid:c-1", json={"isPerson": True},
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/vnd.oracle.resource+json; type=error")
    assert response.json() == published


def client_token(erp: str) -> str:
    response = httpx.post(f"{erp}/services/rest/auth/oauth2/v1/token", data={
        "grant_type": "client_credentials", "client_id": ERP_CLIENT_ID, "client_secret": ERP_CLIENT_SECRET})
    response.raise_for_status()
    return str(response.json()["access_token"])


# --- inventoryItem -------------------------------------------------------------------------------------------


def test_inventory_item_becomes_a_known_item(client: NetSuiteClient) -> None:
    body = {"itemId": "TEE-BLK-S", "displayName": "Example T-Shirt - Small", "salesDescription": "An example"}
    internal_id = client.upsert("inventoryItem", "shopify-variant-642667041472713922", body)
    assert int(internal_id) > 200  # after the --items ids: an item id is never shared
    again = client.upsert("inventoryItem", "shopify-variant-642667041472713922", {**body, "displayName": "Tee S"})
    assert again == internal_id

    rows = client.suiteql("SELECT id, itemid, externalid, displayname FROM item WHERE itemid = ?", ["TEE-BLK-S"])
    assert rows == [{"id": internal_id, "itemid": "TEE-BLK-S", "externalid": "shopify-variant-642667041472713922",
                     "displayname": "Tee S"}]
    seeded = client.suiteql("SELECT id, itemid FROM item WHERE itemid LIKE 'IPOD%' ORDER BY id")
    assert seeded == [{"id": "98", "itemid": "IPOD2008PINK"}, {"id": "99", "itemid": "IPOD2008BLACK"}]

    # Now a sales order may sell it.
    order = {"entity": {"id": "110"}, "item": lines((int(internal_id), 1))}
    client.upsert("salesOrder", "shopify-order-77", order)


def test_inventory_item_validation(client: NetSuiteClient) -> None:
    missing = rejected(client, "inventoryItem", "shopify-variant-1", {"displayName": "No SKU"})
    assert (missing.code, missing.path) == ("USER_ERROR", "itemId")
    assert "Item Name/Number" in missing.detail

    taken = rejected(client, "inventoryItem", "shopify-variant-2", {"itemId": "ipod2008pink"})
    assert (taken.code, taken.path) == ("USER_ERROR", "itemId")
    assert "already used by another item" in taken.detail

    client.upsert("inventoryItem", "shopify-variant-3", {"itemId": "MUG-WHT-11OZ"})
    client.upsert("inventoryItem", "shopify-variant-3", {"itemId": "MUG-WHT-11OZ"})  # its own name is no clash
    other = rejected(client, "inventoryItem", "shopify-variant-4", {"itemId": "MUG-WHT-11OZ"})
    assert other.path == "itemId"


# --- salesOrder closed ---------------------------------------------------------------------------------------


def test_closing_every_line_closes_the_sales_order(client: NetSuiteClient) -> None:
    internal_id = client.upsert("salesOrder", "shopify-order-1", sales_order())
    status = "SELECT status FROM transaction WHERE id = ?"
    assert client.suiteql(status, [internal_id]) == [{"status": "B"}]

    closed = sales_order(item=lines((98, 1), (99, 2), isClosed=True))
    assert client.upsert("salesOrder", "shopify-order-1", closed) == internal_id
    assert client.suiteql(status, [internal_id]) == [{"status": "H"}]
    stored = client.get_by_external_id("salesOrder", "shopify-order-1", expand_sub_resources=True)
    assert stored is not None and [line["isClosed"] for line in stored["item"]["items"]] == [True, True]


def test_is_closed_must_be_a_boolean(client: NetSuiteClient) -> None:
    error = rejected(client, "salesOrder", "shopify-order-2", sales_order(item=lines((98, 1), isClosed="yes")))
    assert (error.code, error.path) == ("INVALID_CONTENT", "item.items[0].isClosed")


# --- itemFulfillment -----------------------------------------------------------------------------------------


def transform(ops: httpx.Client, headers: dict[str, str], order_ref: str, body: dict[str, Any]) -> httpx.Response:
    return ops.post(f"/services/rest/record/v1/salesOrder/{order_ref}/!transform/itemFulfillment", json=body,
                    headers=headers)


def detail_of(response: httpx.Response) -> tuple[str, str | None]:
    [detail] = response.json()["o:errorDetails"]
    return detail["o:errorCode"], detail.get("o:errorPath")


def test_item_fulfillment_is_made_by_transforming_its_sales_order(
    client: NetSuiteClient, ops: httpx.Client, headers: dict[str, str]
) -> None:
    order_id = client.upsert("salesOrder", "shopify-order-820982911946154508", sales_order())
    first = transform(ops, headers, "eid:shopify-order-820982911946154508", {
        "externalId": "shopify-fulfillment-123456", "tranDate": "2021-12-31",
        "item": {"items": [{"orderLine": 1, "quantity": 1}, {"orderLine": 2, "itemReceive": False}]},
        "package": {"items": [{"packageTrackingNumber": "1Z999"}]},
    })
    assert first.status_code == 204, first.text
    # By internal id, without listing the lines: NetSuite receives every line still to fulfil, in full.
    second = transform(ops, headers, order_id, {"externalId": "shopify-fulfillment-123457"})
    assert second.status_code == 204, second.text
    first_id, second_id = (r.headers["location"].rsplit("/", 1)[1] for r in (first, second))

    rows = client.suiteql(
        "SELECT id, externalid, type, trandate FROM transaction WHERE type = ? ORDER BY id", ["ItemShip"]
    )
    assert rows == [
        {"id": first_id, "externalid": "shopify-fulfillment-123456", "type": "ItemShip", "trandate": "2021-12-31"},
        {"id": second_id, "externalid": "shopify-fulfillment-123457", "type": "ItemShip",
         "trandate": rows[1]["trandate"]},
    ]
    shipped = client.get("itemFulfillment", first_id, expand_sub_resources=True)
    assert shipped is not None and shipped["createdFrom"] == {"id": order_id}
    assert [(line["orderLine"], line["item"], line["quantity"]) for line in shipped["item"]["items"]] == [
        (1, {"id": "98"}, 1)
    ]
    assert shipped["package"]["items"][0]["packageTrackingNumber"] == "1Z999"
    rest = client.get("itemFulfillment", second_id, expand_sub_resources=True)
    assert rest is not None and [(line["orderLine"], line["quantity"]) for line in rest["item"]["items"]] == [(2, 2)]
    order = client.get("salesOrder", order_id, expand_sub_resources=True)
    assert order is not None and [line["quantityFulfilled"] for line in order["item"]["items"]] == [1, 2]


def test_item_fulfillment_cannot_be_created_directly(
    client: NetSuiteClient, ops: httpx.Client, headers: dict[str, str]
) -> None:
    order_id = client.upsert("salesOrder", "shopify-order-5", sales_order())
    body = {"createdFrom": {"id": order_id}, "item": lines((98, 1))}
    put = ops.put("/services/rest/record/v1/itemFulfillment/eid:f-1", json=body, headers=headers)
    post = ops.post("/services/rest/record/v1/itemFulfillment", json={**body, "externalId": "f-2"}, headers=headers)
    for response in (put, post):
        assert response.status_code == 400
        assert detail_of(response)[0] == "USER_ERROR"
        assert "!transform/itemFulfillment" in response.json()["o:errorDetails"][0]["detail"]
    assert ops.get("/_sandbox/records", params={"type": "itemFulfillment"}).json()["records"] == []


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        ({"item": {"items": [{"orderLine": 7}]}}, "INVALID_CONTENT", "item.items[0].orderLine"),
        ({"item": {"items": [{"quantity": 1}]}}, "INVALID_CONTENT", "item.items[0].orderLine"),
        ({"item": {"items": [{"orderLine": 2, "quantity": 3}]}}, "USER_ERROR", "item.items[0].quantity"),
        ({"item": {"items": [{"orderLine": 1, "quantity": 0}]}}, "INVALID_CONTENT", "item.items[0].quantity"),
        ({"item": {"items": [{"orderLine": 1, "itemReceive": "yes"}]}}, "INVALID_CONTENT",
         "item.items[0].itemReceive"),
        ({"item": {"items": [{"orderLine": 1, "itemReceive": False}, {"orderLine": 2, "itemReceive": False}]}},
         "USER_ERROR", "item.items"),
    ],
    ids=["no such order line", "no order line", "more than ordered", "zero", "itemReceive not a boolean",
         "nothing received"],
)
def test_item_fulfillment_transform_validation(
    client: NetSuiteClient, ops: httpx.Client, headers: dict[str, str], body: dict[str, Any], code: str, path: str
) -> None:
    client.upsert("salesOrder", "shopify-order-6", sales_order())
    response = transform(ops, headers, "eid:shopify-order-6", body)
    assert response.status_code == 400
    assert detail_of(response) == (code, path)


def test_item_fulfillment_ships_each_line_once(
    client: NetSuiteClient, ops: httpx.Client, headers: dict[str, str]
) -> None:
    client.upsert("salesOrder", "shopify-order-7", sales_order())
    whole = transform(ops, headers, "eid:shopify-order-7", {"externalId": "f-7"})
    assert whole.status_code == 204
    again = transform(ops, headers, "eid:shopify-order-7", {"externalId": "f-8"})
    assert (again.status_code, detail_of(again)) == (400, ("USER_ERROR", "item.items"))
    same_id = transform(ops, headers, "eid:shopify-order-7", {"externalId": "f-7"})
    assert (same_id.status_code, detail_of(same_id)) == (400, ("USER_ERROR", "externalId"))
    missing = transform(ops, headers, "eid:shopify-order-404", {"externalId": "f-9"})
    assert (missing.status_code, detail_of(missing)[0]) == (404, "NONEXISTENT_ID")
    # Deleting the fulfillment reverses it: the lines are open on the order again.
    fulfillment_id = whole.headers["location"].rsplit("/", 1)[1]
    assert ops.delete(f"/services/rest/record/v1/itemFulfillment/{fulfillment_id}", headers=headers).status_code == 204
    order = client.get("salesOrder", "eid:shopify-order-7", expand_sub_resources=True)
    assert order is not None and [line["quantityFulfilled"] for line in order["item"]["items"]] == [0, 0]
    assert transform(ops, headers, "eid:shopify-order-7", {"externalId": "f-7"}).status_code == 204


# --- cashRefund and creditMemo -------------------------------------------------------------------------------


def test_cash_refund_upserts_and_shows_in_suiteql(client: NetSuiteClient) -> None:
    body = {"entity": {"id": "110"}, "tranDate": "2021-12-31", "memo": "Shopify refund 890088186047892319",
            "item": {"items": [{"item": {"id": "98"}, "quantity": 1, "amount": 199.0}]}}
    internal_id = client.upsert("cashRefund", "shopify-refund-890088186047892319", body)
    rows = client.suiteql("SELECT id, type, recordtype, tranid, entity FROM transaction WHERE externalid = ?",
                          ["shopify-refund-890088186047892319"])
    assert rows == [{"id": internal_id, "type": "CashRfnd", "recordtype": "cashrefund", "tranid": f"CR{internal_id}",
                     "entity": "110"}]

    client.upsert("cashSale", "shopify-cashsale-1", {"entity": {"id": "110"}, "item": lines((98, 1))})
    from_sale = {"createdFrom": {"externalId": "shopify-cashsale-1"}, "item": lines((98, 1))}
    client.upsert("cashRefund", "shopify-refund-2", from_sale)
    client.upsert("creditMemo", "shopify-credit-1", {"entity": {"id": "110"}, "item": lines((99, 1))})
    assert client.suiteql("SELECT type FROM transaction WHERE externalid = ?", ["shopify-credit-1"]) == [
        {"type": "CustCred"}
    ]


@pytest.mark.parametrize(
    ("body", "code", "path", "detail"),
    [
        ({"item": lines((98, 1))}, "USER_ERROR", None, "Please enter value(s) for: Customer."),
        ({"entity": {"id": "110"}}, "USER_ERROR", None, "Please enter value(s) for: Items."),
        ({"entity": {"id": "110"}, "item": lines((9999, 1))}, "INVALID_CONTENT", "item.items[0].item",
         "Invalid Field Value 9999"),
        ({"createdFrom": {"externalId": "shopify-cashsale-404"}, "item": lines((98, 1))}, "INVALID_CONTENT",
         "createdFrom", "createdfrom"),
    ],
    ids=["no customer", "no lines", "unknown item", "unknown source"],
)
def test_cash_refund_validation(client: NetSuiteClient, body: dict[str, Any], code: str, path: str | None,
                                detail: str) -> None:
    error = rejected(client, "cashRefund", "shopify-refund-9", body)
    assert (error.code, error.path) == (code, path)
    assert detail in error.detail


# --- the derived tables survive a restart --------------------------------------------------------------------


def test_suiteql_tables_are_rebuilt_from_the_records(tmp_path: Path) -> None:
    db = tmp_path / "erp.db"
    with start_erp_sandbox(tmp_path, "--db", str(db), "--items", "1-5") as base_url:
        settings = NetSuiteSettings(base_url=base_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
        with NetSuiteClient(settings, retry=FAST) as netsuite:
            item = netsuite.upsert("inventoryItem", "shopify-variant-1", {"itemId": "CAP-NVY-OS"})
            netsuite.upsert("customer", "shopify-customer-1", {"companyName": "Acme"})
    with start_erp_sandbox(tmp_path, "--db", str(db), "--items", "1-3") as base_url:
        settings = NetSuiteSettings(base_url=base_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
        with NetSuiteClient(settings, retry=FAST) as netsuite:
            assert netsuite.suiteql("SELECT id, itemid FROM item ORDER BY id") == [
                {"id": "1", "itemid": "item-1"}, {"id": "2", "itemid": "item-2"}, {"id": "3", "itemid": "item-3"},
                {"id": item, "itemid": "CAP-NVY-OS"},
            ]
            assert netsuite.suiteql("SELECT companyname FROM customer ORDER BY id") == [
                {"companyname": "Web Store"}, {"companyname": "Acme"},  # the seeded guest customer, then Acme
            ]


# --- the shipped mappings land in the sandbox ----------------------------------------------------------------

REPO = Path(__file__).parents[2]
SHOPIFY = REPO / "tests/fixtures/shopify"


def mapped(mapping_file: str, payload: dict[str, Any], xref: LedgerXref | None = None) -> MappedRecord:
    mapping = load_mapping(REPO / "mappings" / mapping_file)
    assert mapping.model is not None
    MODELS[mapping.model](payload)  # the pipeline validates with the mapping's model first
    return mapping.apply(payload, xref=xref)


def shopify_sample(name: str) -> dict[str, Any]:
    path = SHOPIFY / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text(encoding="utf-8"))


REAL = {"test": False}  # Shopify's samples are test orders, which the order mapping does not book


def test_an_order_lifecycle_from_shopifys_samples(client: NetSuiteClient, ledger: Ledger) -> None:
    ids: dict[str, str] = {}
    SQLModel.metadata.create_all(ledger.engine)  # the cross-reference's table, as tests/integration/test_xref.py
    xref = LedgerXref(ledger.engine, client)  # the order's customer, found or created in the sandbox

    def push(mapping_file: str, payload: dict[str, Any]) -> str:
        record = mapped(mapping_file, payload, xref)
        ids[record.external_id] = client.upsert(record.record_type, record.external_id, record.body,
                                                previous_id=ids.get(record.external_id))
        return ids[record.external_id]

    # Shopify's sample is pending; shipped, it is the fulfillment NetSuite makes from the order.
    shipped = shopify_sample("fulfillments_create") | {"status": "success"}
    early = mapped("shopify_fulfillment_to_netsuite_item_fulfillment.yaml", shipped)
    with pytest.raises(ErpRejected) as raised:  # the order has not synced yet
        client.upsert(early.record_type, early.external_id, early.body)
    assert (raised.value.code, raised.value.path) == ("NONEXISTENT_ID", "createdFrom")

    # The sample order is a cancelled one; open, as it was when created.
    created = shopify_sample("orders_create") | REAL | {"cancelled_at": None, "cancel_reason": None}
    order_id = push("shopify_order_to_netsuite_sales_order.yaml", created)
    fulfilment = push("shopify_fulfillment_to_netsuite_item_fulfillment.yaml", shipped)
    refund = push("shopify_refund_to_netsuite_cash_refund.yaml", shopify_sample("refunds_create"))
    assert push("shopify_order_to_netsuite_sales_order.yaml", shopify_sample("orders_cancelled") | REAL) == order_id

    rows = client.suiteql("SELECT id, type, status FROM transaction ORDER BY id")
    assert rows == [
        {"id": order_id, "type": "SalesOrd", "status": "H"},
        {"id": fulfilment, "type": "ItemShip"},
        {"id": refund, "type": "CashRfnd"},
    ]
    order = client.get("salesOrder", order_id, expand_sub_resources=True)
    assert order is not None
    # The cancellation closed the order's lines in place: the shipped lines keep their fulfilment.
    keyed = [line for line in order["item"]["items"] if line.get("custcol_erpsync_line_key") not in (None, "shipping")]
    assert [(line["isClosed"], line["quantityFulfilled"]) for line in keyed] == [(True, 1), (True, 1)]


def test_a_product_and_a_customer_from_shopifys_samples(client: NetSuiteClient) -> None:
    product = shopify_sample("products_update")
    product["variants"] = product["variants"][:1]
    product["variants"][0]["sku"] = "TEE-BLK-S"
    # One record per variant (each:): this product has one.
    [item] = load_mapping(REPO / "mappings" / "shopify_product_to_netsuite_inventory_item.yaml").apply_each(
        product).records
    item_id = client.upsert(item.record_type, item.external_id, item.body)
    assert client.suiteql("SELECT id FROM item WHERE itemid = ?", ["TEE-BLK-S"]) == [{"id": item_id}]

    customer = shopify_sample("orders_create")["customer"]
    customer["updated_at"] = "2021-12-31T19:00:00-05:00"
    record = mapped("shopify_customer_to_netsuite_customer.yaml", customer)
    customer_id = client.upsert(record.record_type, record.external_id, record.body)
    assert client.suiteql("SELECT id, entityid FROM customer WHERE email = ?", ["john@example.com"]) == [
        {"id": customer_id, "entityid": "John Smith"}
    ]
