"""Every shipped mapping, end to end: Shopify's own sample payloads (with fresh ids) through the receiver, a
Prefect run and the ERP sandbox — an order's life (created, fulfilled, refunded, cancelled), a product and a
customer. Adding these topics took mapping files only: the same `sync-event` deployment runs them all."""

from __future__ import annotations

import copy
import json
import random

import pytest

from tests.conftest import fixture_path
from tests.e2e.conftest import send_event, wait_for_state

pytestmark = pytest.mark.e2e


def sample(name: str) -> dict:
    return json.loads(fixture_path("shopify", f"{name}.json").read_text())


def fresh_id() -> int:
    return random.randint(10**12, 10**13)


def erp_records(http, config, record_type: str) -> dict[str, dict]:
    response = http.get(f"{config.erp_url}/_sandbox/records", params={"type": record_type}).raise_for_status()
    return {r["external_id"]: r for r in response.json()["records"]}


def suiteql(http, config, query: str) -> list[dict]:
    """Through the sandbox's own SuiteQL endpoint, as reconciliation will ask a real NetSuite."""
    token = http.post(f"{config.erp_url}/services/rest/auth/oauth2/v1/token",
                      data={"grant_type": "client_credentials"}, auth=("sandbox", "sandbox-secret")).json()
    response = http.post(f"{config.erp_url}/services/rest/query/v1/suiteql", json={"q": query},
                         headers={"Authorization": f"Bearer {token['access_token']}", "Prefer": "transient"})
    return response.raise_for_status().json()["items"]


def sync(http, stack, payload: dict, topic: str) -> None:
    stack_, ledger = stack
    event_id = send_event(http, stack_.config, payload, topic=topic)
    event = wait_for_state(ledger, event_id)
    reasons = [o.reason for o in ledger.outcomes(event_id) if o.reason]
    assert event.state == "synced", (topic, reasons)


def test_an_orders_life_reaches_the_erp_as_sales_order_fulfillment_refund_and_closing(stack, http):
    config = stack[0].config
    order_id = fresh_id()
    order = sample("orders_create") | {"id": order_id, "test": False, "cancelled_at": None, "cancel_reason": None,
                                       "updated_at": "2026-11-01T10:00:00-05:00"}
    sync(http, stack, order, "orders/create")
    sales_order = erp_records(http, config, "salesOrder")[f"shopify-order-{order_id}"]
    assert not any(line.get("isClosed") for line in sales_order["body"]["item"]["items"])

    # Shopify's sample is pending, which waits; shipped, NetSuite makes it from the order (!transform).
    fulfillment = sample("fulfillments_create") | {"id": fresh_id(), "order_id": order_id, "status": "success"}
    sync(http, stack, fulfillment, "fulfillments/create")
    shipped = erp_records(http, config, "itemFulfillment")[f"shopify-fulfillment-{fulfillment['id']}"]
    assert shipped["body"]["createdFrom"] == {"id": sales_order["internal_id"]}

    refund = sample("refunds_create") | {"id": fresh_id(), "order_id": order_id}
    sync(http, stack, refund, "refunds/create")
    assert f"shopify-refund-{refund['id']}" in erp_records(http, config, "cashRefund")

    cancelled = sample("orders_cancelled") | {"id": order_id, "test": False, "updated_at": "2026-11-02T10:00:00-05:00"}
    sync(http, stack, cancelled, "orders/cancelled")
    closed = erp_records(http, config, "salesOrder")[f"shopify-order-{order_id}"]
    assert closed["internal_id"] == sales_order["internal_id"], "the same sales order, upserted"
    assert all(line["isClosed"] is True for line in closed["body"]["item"]["items"])
    [row] = suiteql(http, config, f"SELECT status FROM transaction WHERE externalid = 'shopify-order-{order_id}'")
    assert row["status"] == "H"


def test_a_product_is_one_inventory_item_per_variant_sku_and_an_order_finds_them(stack, http):
    config = stack[0].config
    product = sample("products_update")
    product["id"] = fresh_id()
    skus = [f"E2E-{fresh_id()}-S", f"E2E-{fresh_id()}-M"]
    product["variants"] = [copy.deepcopy(variant) | {"id": fresh_id(), "sku": sku}
                           for variant, sku in zip(product["variants"], skus, strict=True)]
    sync(http, stack, product, "products/update")
    items = erp_records(http, config, "inventoryItem")
    written = [items[f"shopify-variant-{variant['id']}"] for variant in product["variants"]]
    assert [item["body"]["itemId"] for item in written] == skus
    assert suiteql(http, config, f"SELECT id FROM item WHERE itemid = '{skus[1]}'")

    # No row in the SKU table: the order's lines find the variants' items through the cross-reference.
    order = sample("orders_create") | {"id": fresh_id(), "test": False, "updated_at": "2026-11-01T10:00:00-05:00"}
    order["line_items"] = [line | {"sku": sku} for line, sku in zip(order["line_items"], skus, strict=True)]
    sync(http, stack, order, "orders/create")
    sales_order = erp_records(http, config, "salesOrder")[f"shopify-order-{order['id']}"]
    lines = sales_order["body"]["item"]["items"]
    assert [line["item"]["id"] for line in lines[:2]] == [item["internal_id"] for item in written]


def test_a_customer_becomes_an_erp_customer(stack, http):
    config = stack[0].config
    customer = copy.deepcopy(sample("orders_create")["customer"])
    customer |= {"id": fresh_id(), "email": f"e2e-{fresh_id()}@example.com",
                 "created_at": "2026-11-01T10:00:00-05:00", "updated_at": "2026-11-01T10:00:00-05:00"}
    sync(http, stack, customer, "customers/create")
    assert f"shopify-customer-{customer['id']}" in erp_records(http, config, "customer")
    assert suiteql(http, config, f"SELECT id FROM customer WHERE email = '{customer['email']}'")
