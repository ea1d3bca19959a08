"""Orders end to end into a real Tryton: through the receiver, the Prefect server and a worker into a trytond.

A stack of its own (the shared one writes to the NetSuite sandbox): ``erp="tryton"`` starts a trytond serving a copy
of the seed database (erpsync_dev/tryton_server.py) where the NetSuite sandbox would be, and the workers write with
mappings/tryton. An order is synced once and confirmed in Tryton at Shopify's total; the same order delivered again
under another delivery id starts no run and writes nothing; an order for a product Tryton does not have is a dead letter naming the line, and once the product
is made in Tryton a replay of the same run books it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from erpsync.ledger import Ledger
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync.systems.tryton.client import SALE, TrytonClient
from erpsync_dev.processes import free_port
from erpsync_dev.stack import LocalStack, StackConfig
from tests.conftest import POSTGRES_URL, REPO, _postgres_database, shopify_order_sample
from tests.e2e.conftest import event_runs, send_event, wait_for_state

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tryton_stack(tmp_path_factory) -> Iterator[tuple[LocalStack, Ledger, TrytonClient]]:
    home = tmp_path_factory.mktemp("tryton-stack")
    # The ledger on PostgreSQL when CI provides one, as the shared stack's; Tryton's own database on SQLite.
    databases = _postgres_database() if POSTGRES_URL else None
    database_url = next(databases) if databases else None
    config = StackConfig(home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
                         shop_port=free_port(), orders=3, seed=11, database_url=database_url, erp="tryton")
    stack = LocalStack(config, dict(os.environ), progress=lambda m: None)
    try:
        stack.start()
        ledger = Ledger.connect(config.ledger_url)
        # The test's own reads of Tryton take the ERP slot the workers share (one call at a time on SQLite).
        with TrytonClient.from_env(config.ledger_url, stack.env) as tryton:
            yield stack, ledger, tryton
        ledger.close()
    finally:
        stack.stop()
        if databases:
            next(databases, None)


def new_order(sku: str | None = None) -> dict:
    order = shopify_order_sample()
    order |= {"id": 10**12 + uuid.uuid4().int % 10**12, "cancelled_at": None, "cancel_reason": None}
    if sku is not None:
        order["line_items"][0]["sku"] = sku  # the money as it is: only the product is wrong
    return order


def shopify_headers(config, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": shopify_signature(config.webhook_secret, body),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Shop-Domain": "erpsync-test.myshopify.com"}


def sales_of(tryton: TrytonClient, order: dict) -> list[dict]:
    return tryton.rpc.model(SALE, "search_read", [["reference", "=", f"shopify-order-{order['id']}"]], 0, None,
                            None, ["id", "state", "total_amount"])


def finished_run(http, config, event_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        [run] = event_runs(http, config, event_id)
        if run["state_type"] in ("FAILED", "COMPLETED", "CRASHED") or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


def test_an_order_is_one_confirmed_sale_at_shopifys_total_and_a_second_delivery_writes_nothing(tryton_stack, http):
    stack, ledger, tryton = tryton_stack
    config = stack.config
    order = new_order()
    event = wait_for_state(ledger, send_event(http, config, order))
    assert event.state == "synced", [o.reason for o in ledger.outcomes(event.id)]
    [outcome] = [o for o in ledger.outcomes(event.id) if o.outcome == "synced"]
    [sale] = sales_of(tryton, order)
    assert (outcome.to_system, outcome.to_id) == ("tryton", str(sale["id"]))
    assert sale["state"] == "processing"
    assert Decimal(str(sale["total_amount"])) == Decimal(order["total_price"])
    assert finished_run(http, config, event.id)["state_type"] == "COMPLETED"

    # The same order under a new delivery id (a second webhook subscription): the inbox keeps it as a duplicate of
    # the first event and starts no run; Tryton still holds one sale.
    again = http.post(f"{config.receiver_url}/webhooks/shopify", content=json.dumps(order).encode(),
                      headers=shopify_headers(config, json.dumps(order).encode()))
    assert again.status_code == 200 and again.json()["duplicate_of"] == event.id, again.text
    assert ledger.get_event(again.json()["event_id"]).state == "duplicate"
    assert event_runs(http, config, again.json()["event_id"]) == []
    assert [s["id"] for s in sales_of(tryton, order)] == [sale["id"]]


def test_an_unknown_product_is_a_dead_letter_and_a_replay_books_it_once_the_product_is_in_tryton(tryton_stack, http):
    stack, ledger, tryton = tryton_stack
    config = stack.config
    sku = f"E2E-{uuid.uuid4().hex[:8].upper()}"
    order = new_order(sku)
    event_id = send_event(http, config, order)
    assert wait_for_state(ledger, event_id).state == "failed"
    run = finished_run(http, config, event_id)
    assert run["state_type"] == "FAILED"
    assert run["state"]["message"].startswith("dead-lettered: ErpRejected UNKNOWN_PRODUCT at lines[].product")
    assert sales_of(tryton, order) == []

    make_product(tryton, sku)  # the fix, made in Tryton as a person would
    replayed = subprocess.run([sys.executable, "-m", "erpsync", "dlq", "replay", "--reason", sku], cwd=REPO,
                              env=stack.env, capture_output=True, text=True, timeout=300)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "1 dead letters chosen: 1 runs rescheduled" in replayed.stdout, replayed.stdout
    assert wait_for_state(ledger, event_id, states=("synced",)).state == "synced"
    after = finished_run(http, config, event_id)
    assert after["id"] == run["id"] and after["state_type"] == "COMPLETED", "one event keeps one run"
    [sale] = sales_of(tryton, order)
    assert sale["state"] == "processing"
    assert Decimal(str(sale["total_amount"])) == Decimal(order["total_price"])


def make_product(tryton: TrytonClient, code: str) -> None:
    """A salable product with ``code``, in the seed's category (which carries the revenue account)."""
    [category] = tryton.rpc.model("product.category", "search", [["name", "=", "Sold through erpsync"]], 0, 1, None)
    [unit] = tryton.rpc.model("product.uom", "search", [["name", "=", "Unit"]], 0, 1, None)
    tryton.rpc.model("product.template", "create", [{
        "name": f"Product {code}", "code": code, "type": "goods", "salable": True, "list_price": Decimal("10.00"),
        "default_uom": unit, "sale_uom": unit, "account_category": category, "products": [["create", [{}]]]}])
    assert tryton.rpc.model("product.product", "search", [["code", "=", code]], 0, None, None)
