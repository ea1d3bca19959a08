"""WooCommerce and Standard Webhooks orders reach the ERP sandbox end to end, each signed with its own scheme,
through the same receiver, inbox, `sync-event` deployment and connector as Shopify's."""

from __future__ import annotations

import json
import random
import uuid

import pytest

from erpsync.systems.standard.webhooks import standard_webhook_headers
from erpsync.systems.woocommerce.webhooks import woocommerce_signature
from tests.e2e.conftest import wait_for_state

pytestmark = pytest.mark.e2e


def post(http, config, source: str, body: bytes, headers: dict[str, str]) -> int:
    response = http.post(f"{config.receiver_url}/webhooks/{source}", content=body,
                         headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 202, response.text
    return response.json()["event_id"]


def sales_order(http, config, external_id: str) -> dict:
    records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    [record] = [r for r in records if r["external_id"] == external_id]
    return record["body"]


def assert_synced(ledger, event_id):
    event = wait_for_state(ledger, event_id)
    assert event.state == "synced", [o.reason for o in ledger.outcomes(event_id)]


def test_a_woocommerce_order_becomes_a_sales_order(stack, http):
    stack_, ledger = stack
    config = stack_.config
    order_id = random.randint(10**6, 10**7)
    order = {"id": order_id, "number": str(order_id), "status": "processing", "currency": "USD",
             "date_created_gmt": "2026-11-01T14:15:00", "date_modified_gmt": "2026-11-01T14:16:00", "total": "25.00",
             "billing": {"first_name": "Test", "last_name": "Customer", "email": "test@example.com"},
             "line_items": [{"id": 1, "name": "USB-C cable 1 m", "sku": "CABLE-USBC-1M", "quantity": 2,
                             "price": 12.5, "total": "25.00"}]}
    body = json.dumps(order).encode()
    event_id = post(http, config, "woocommerce", body, {
        "X-WC-Webhook-Source": "https://shop.example.com/", "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order", "X-WC-Webhook-Event": "created", "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
        "X-WC-Webhook-Signature": woocommerce_signature(config.woocommerce_secret, body)})
    assert_synced(ledger, event_id)
    lines = sales_order(http, config, f"woocommerce-order-{order_id}")["item"]["items"]
    assert [(line["item"]["id"], line["quantity"]) for line in lines] == [("140", 2)]


def test_a_standard_webhooks_order_becomes_a_sales_order(stack, http):
    stack_, ledger = stack
    config = stack_.config
    order_id = f"ord_{uuid.uuid4().hex[:16]}"
    event = {"type": "order.created", "timestamp": "2026-11-01T14:15:01Z",
             "data": {"id": order_id, "number": "SO-77", "created_at": "2026-11-01T10:15:00-04:00",
                      "updated_at": "2026-11-01T10:15:00-04:00", "currency": "USD", "total": "9.90",
                      "lines": [{"sku": "CASE-NANO-RED", "quantity": 1, "price": "9.90", "title": "Nano case"}]}}
    body = json.dumps(event).encode()
    event_id = post(http, config, "standard", body,
                    standard_webhook_headers(config.standard_secret, f"msg_{uuid.uuid4().hex}", body))
    assert_synced(ledger, event_id)
    lines = sales_order(http, config, f"standard-order-{order_id}")["item"]["items"]
    assert [(line["item"]["id"], line["quantity"]) for line in lines] == [("161", 1)]


def test_forged_deliveries_of_every_source_are_refused_and_store_nothing(stack, http):
    stack_, ledger = stack
    config = stack_.config
    before = ledger.inbox_counts()["events"]
    body = json.dumps({"id": 1}).encode()
    forged = {
        "shopify": {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "f1",
                    "X-Shopify-Hmac-Sha256": woocommerce_signature("not-the-secret", body)},
        "woocommerce": {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Delivery-ID": "f2",
                        "X-WC-Webhook-Signature": woocommerce_signature("not-the-secret", body)},
        "standard": standard_webhook_headers("whsec_" + "A" * 32, "msg_forged", body),
    }
    for source, headers in forged.items():
        response = http.post(f"{config.receiver_url}/webhooks/{source}", content=body,
                             headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 401, (source, response.text)
    assert ledger.inbox_counts()["events"] == before


def test_the_reconcile_deployment_compares_both_sides_and_leaves_artifacts(stack, http):
    """After the scenario: the nightly deployment, run now over today, finds the dead letter and nothing to
    repair (webhooks delivered everything), and leaves its table and markdown artifacts on the run."""
    import time

    stack_, _ = stack
    api = stack_.config.prefect_api
    deployment = http.get(f"{api}/deployments/name/reconcile/reconcile-nightly").raise_for_status().json()
    run = http.post(f"{api}/deployments/{deployment['id']}/create_flow_run",
                    json={"parameters": {"since": "2000-01-01", "dry_run": True}}).raise_for_status().json()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run = http.get(f"{api}/flow_runs/{run['id']}").json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED"):
            break
        time.sleep(1)
    assert run["state_type"] == "COMPLETED", run["state"]
    artifacts = http.post(f"{api}/artifacts/filter",
                          json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    assert {a["key"] for a in artifacts} == {"reconcile-drift", "reconcile-summary"}
    summary = next(a for a in artifacts if a["key"] == "reconcile-summary")["data"]
    assert "dead_lettered" in summary and "missing_in_erp" in summary
