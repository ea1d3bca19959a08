"""An order's money end to end: through the receiver, a Prefect run and the ERP sandbox, a test order ends as a
skipped run, an order that adds up lands at Shopify's total, and one that does not is never written."""

from __future__ import annotations

import json
import random

import pytest

from tests.conftest import fixture_path
from tests.e2e.conftest import send_event, wait_for_state

pytestmark = pytest.mark.e2e
DONE = ("synced", "failed", "duplicate", "superseded", "skipped")


def sample(**changes) -> dict:
    order = json.loads(fixture_path("shopify", "orders_create.json").read_text())
    return order | {"id": random.randint(10**12, 10**13), "cancelled_at": None, "cancel_reason": None} | changes


def sales_orders(http, config) -> dict[str, dict]:
    response = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).raise_for_status()
    return {r["external_id"]: r for r in response.json()["records"]}


def test_a_test_order_is_skipped_a_real_one_lands_at_388_and_a_wrong_total_is_never_written(stack, http):
    stack_, ledger = stack
    config = stack_.config

    test_order = sample()  # Shopify's sample is a test order
    event = wait_for_state(ledger, send_event(http, config, test_order), states=DONE)
    skipped = [o.reason or "" for o in ledger.outcomes(event.id) if o.outcome == "skipped"]
    assert event.state == "skipped" and skipped and "a test order" in skipped[0]

    real = sample(test=False)
    event = wait_for_state(ledger, send_event(http, config, real), states=DONE)
    assert event.state == "synced", [o.reason for o in ledger.outcomes(event.id)]
    body = sales_orders(http, config)[f"shopify-order-{real['id']}"]["body"]
    assert (body["shippingCost"], body["discountRate"], len(body["item"]["items"])) == (10, -20, 2)

    wrong = sample(test=False, total_price="400.00", total_price_set=None)
    event = wait_for_state(ledger, send_event(http, config, wrong), states=DONE)
    reasons = " ".join(o.reason or "" for o in ledger.outcomes(event.id))
    assert event.state == "failed" and "would total 388.00 USD" in reasons and "400.00 USD" in reasons
    assert f"shopify-order-{wrong['id']}" not in sales_orders(http, config)
