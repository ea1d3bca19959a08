"""The receiver process over real HTTP: no topic of an order's life is lost, and Shopify's compliance topics are
answered 200, stored and acted on before the answer."""

from __future__ import annotations

import json
import os
import sys
import uuid

import httpx
import pytest

from erpsync.ledger import HANDLED_IN_RECEIVER, EntityKey, Ledger
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from tests.conftest import REPO, fixture_path

SECRET = "lifecycle-webhook-secret"
SHOP = "erpsync-test.myshopify.com"


@pytest.fixture
def receiver(database_url, tmp_path):
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SECRET}
    env.pop("ERPSYNC_SHOPIFY_ORDER_DELETE", None)  # the default: report
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    child = group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            ledger = Ledger.connect(database_url)
            yield client, ledger, child.log_path
            ledger.close()
    finally:
        group.stop()


def post(client: httpx.Client, topic: str, payload: dict | bytes, *, secret: str = SECRET,
         delivery_id: str | None = None) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhooks/shopify", content=body, headers={
        "Content-Type": "application/json", "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": shopify_signature(secret, body), "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": delivery_id or str(uuid.uuid4()), "X-Shopify-API-Version": "2025-01"})


def sample(name: str) -> dict:
    return json.loads(fixture_path("shopify", f"{name}.json").read_text())


@pytest.mark.parametrize("topic, fixture", [("orders/edited", "orders_edited"),
                                            ("fulfillments/update", "fulfillments_update"),
                                            ("refunds/create", "refunds_create")])
def test_lifecycle_topics_a_mapping_handles_are_stored_for_their_flow_run(receiver, topic, fixture):
    client, ledger, _ = receiver
    response = post(client, topic, sample(fixture))
    assert response.status_code == 202, response.text
    event = ledger.get_event(response.json()["event_id"])
    assert (event.topic, event.state, event.flow_run_id) == (topic, "received", None)


def test_a_topic_nothing_handles_is_still_404(receiver):
    client, ledger, _ = receiver
    assert post(client, "orders/partially_fulfilled", {"id": 1}).status_code == 404
    assert ledger.inbox_counts()["events"] == 0


def test_orders_delete_is_reported_as_a_dead_letter_naming_the_sales_order(receiver):
    client, ledger, _ = receiver
    response = post(client, "orders/delete", sample("orders_delete"))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "failed"
    event = ledger.get_event(response.json()["event_id"])
    assert (event.state, event.flow_run_id) == ("failed", HANDLED_IN_RECEIVER)  # the sweep leaves it alone
    (outcome,) = ledger.outcomes(event.id)
    assert outcome.reason.startswith("OrderDeleted: Shopify order 820982911946154508 was deleted")
    assert "shopify-order-820982911946154508" in outcome.reason
    assert outcome.external_id == "shopify-order-820982911946154508"


def test_orders_delete_without_an_id_is_400_naming_the_field(receiver):
    client, ledger, _ = receiver
    response = post(client, "orders/delete", {"admin_graphql_api_id": "gid://shopify/Order/1"})
    assert response.status_code == 400
    assert response.json()["error"] == "orders/delete: id: expected the deleted order's id, a positive integer"
    assert ledger.inbox_counts()["events"] == 0


def test_customers_redact_is_answered_200_after_the_customers_payloads_are_erased(receiver):
    client, ledger, log_path = receiver
    order = sample("orders_create")
    stored = post(client, "orders/create", order).json()["event_id"]
    refund = post(client, "refunds/create", sample("refunds_create") | {"order_id": order["id"]}).json()["event_id"]
    other = post(client, "orders/create", order | {"id": 1, "email": "someone.else@example.com",
                                                    "customer": {"id": 77}, "contact_email": None,
                                                    "billing_address": None, "shipping_address": None}).json()
    request = {"shop_id": 954889, "shop_domain": SHOP, "orders_to_redact": [order["id"]],
               "customer": {"id": order["customer"]["id"], "email": order["email"], "phone": None}}

    response = post(client, "customers/redact", request, delivery_id="redact-1")

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "redacted"
    assert ledger.get_event(stored).body == b"" and ledger.get_event(refund).body == b""
    assert b"someone.else@example.com" in ledger.get_event(other["event_id"]).body
    event = ledger.get_event(response.json()["event_id"])
    assert (event.state, event.flow_run_id) == ("redacted", HANDLED_IN_RECEIVER)
    assert order["email"].encode() not in event.body
    # Shopify repeats a delivery it had no 2xx for: the same answer, nothing done twice.
    again = post(client, "customers/redact", request, delivery_id="redact-1")
    assert again.status_code == 200 and again.json()["duplicate_delivery"] is True
    assert [o.outcome for o in ledger.outcomes(event.id)] == ["redacted"]
    assert order["email"] not in log_path.read_text()


def test_customers_data_request_is_recorded_for_an_operator(receiver):
    client, ledger, _ = receiver
    response = post(client, "customers/data_request", {
        "shop_id": 954889, "shop_domain": SHOP, "orders_requested": [299938],
        "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
        "data_request": {"id": 9999}})
    assert response.status_code == 200, response.text
    event = ledger.get_event(response.json()["event_id"])
    assert event.state == "request_recorded" and b"john@example.com" not in event.body
    (outcome,) = ledger.outcomes(event.id)
    assert (outcome.entity_type, outcome.entity_id) == ("customer", "191167")
    assert "erpsync privacy export --customer 191167" in outcome.reason


def test_shop_redact_is_answered_200(receiver):
    client, ledger, _ = receiver
    stored = post(client, "orders/create", sample("orders_create")).json()["event_id"]
    response = post(client, "shop/redact", {"shop_id": 954889, "shop_domain": SHOP})
    assert (response.status_code, response.json()["outcome"]) == (200, "redacted")
    assert ledger.get_event(stored).body == b""


@pytest.mark.parametrize("payload, field", [
    ({"shop_id": 1, "shop_domain": SHOP, "customer": {"email": "x@example.com"}}, "customer.id"),
    ({"shop_id": 1, "customer": {"id": 5}}, "shop_domain"),
])
def test_a_compliance_request_missing_a_field_is_400_naming_it_and_never_its_values(receiver, payload, field):
    client, ledger, _ = receiver
    response = post(client, "customers/redact", payload)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"customers/redact: {field}: ")
    assert "x@example.com" not in response.text
    assert ledger.inbox_counts()["events"] == 0


def test_a_compliance_request_with_a_bad_signature_is_401(receiver):
    client, ledger, _ = receiver
    response = post(client, "shop/redact", {"shop_id": 1, "shop_domain": SHOP}, secret="not-the-secret")
    assert response.status_code == 401
    assert ledger.inbox_counts()["events"] == 0
    assert ledger.entity_state(EntityKey("shopify", "shop", "1", "netsuite")) is None
