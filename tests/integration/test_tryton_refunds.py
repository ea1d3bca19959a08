"""A Shopify refund into a real Tryton as a return sale: the order's customer, negative quantities, processed into a
return shipment and a credit note, minus the money returned to the cent; and a refund that arrives before its
order waits for it instead of booking a return to nobody."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.errors import ErpsyncError, TransientError
from erpsync.pipeline import SyncPipeline
from erpsync.retry import RetryPolicy
from erpsync.settings import PROJECT_DIR
from erpsync.steps import run_steps
from erpsync.systems.tryton.client import SALE, TrytonClient
from erpsync.systems.tryton.settings import TrytonSettings
from erpsync_dev.tryton_server import RunningTryton, tryton_server
from tests.conftest import fixture_path, shopify_order_sample

MAPPINGS = PROJECT_DIR / "mappings" / "tryton"


@pytest.fixture(scope="module")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTryton]:
    with tryton_server(Path(tmp_path_factory.mktemp("tryton-refunds"))) as running:
        yield running


def client_of(tryton: RunningTryton, attempts: int = 3) -> TrytonClient:
    from pydantic import SecretStr

    settings = TrytonSettings(url=tryton.url, database=tryton.database, login=tryton.login,
                              password=SecretStr(tryton.password), concurrency_limit=1)
    return TrytonClient(settings, retry=RetryPolicy(max_attempts=attempts, base=0.05))


@pytest.fixture
def pipeline(ledger, tryton: RunningTryton) -> Iterator[SyncPipeline]:
    made = SyncPipeline(ledger, MAPPINGS, writers=lambda target: client_of(tryton))
    yield made
    made.close()


def store(ledger, payload: dict, topic: str) -> int:
    body = json.dumps(payload).encode()
    return ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic=topic, shop=None,
                                  triggered_at=None, body=body, payload_sha256=hashlib.sha256(body).hexdigest()
                                  ).event_id


def sync(pipeline: SyncPipeline, event_id: int) -> str:
    event = None
    try:
        event = pipeline.validate(event_id)
        result = run_steps(pipeline, event)
        return result.erp_id if result.outcome == "synced" else result.outcome
    except ErpsyncError as exc:
        pipeline.fail(event_id, exc, event=event)
        raise


def refund_of(order_id: int) -> dict:
    """Shopify's refunds/create sample (two 199.00 lines back, 85.00 of money) for ``order_id``."""
    refund = json.loads(fixture_path("shopify", "refunds_create.json").read_text())
    refund["id"] = 900000000000 + uuid.uuid4().int % 10**9
    refund["order_id"] = order_id
    return refund


def test_a_refund_is_a_processed_return_sale_of_the_orders_customer_minus_the_money_returned(
        pipeline: SyncPipeline, ledger, tryton: RunningTryton) -> None:
    order = shopify_order_sample()
    order["id"] = 810000000000 + uuid.uuid4().int % 10**9
    order.update(cancelled_at=None, cancel_reason=None)
    sync(pipeline, store(ledger, order, "orders/create"))
    refund = refund_of(order["id"])
    return_id = sync(pipeline, store(ledger, refund, "refunds/create"))

    with client_of(tryton) as tryton_client:
        sale = tryton_client.get_by_external_id(SALE, f"shopify-order-{order['id']}")
        returned = tryton_client.get_by_external_id(SALE, f"shopify-refund-{refund['id']}")
        assert returned is not None and str(returned["id"]) == return_id
        # The order's customer and addresses, not a guest: the accountant sees whose money went back.
        assert (returned["party"], returned["invoice_address"], returned["shipment_address"]) == (
            sale["party"], sale["invoice_address"], sale["shipment_address"])
        assert returned["state"] == "processing"
        # Linked to the sale it returns, as Tryton's own "Create Return" links it.
        [linked] = tryton_client.rpc.model(SALE, "read", [returned["id"]], ["origin"])
        assert linked["origin"] == f"{SALE},{sale['id']}"
        # Tryton's own total of the return is minus the money the refund's successful transactions returned.
        assert Decimal(str(returned["total_amount"])) == Decimal("-85.00")
        goods = [line for line in returned["lines"] if line["quantity"] < 0 and Decimal(str(line["unit_price"])) > 0]
        assert len(goods) == 2
        # Processing made the customer return shipment (the goods come back) and the credit note.
        rpc = tryton_client.rpc
        [record] = rpc.model(SALE, "read", [returned["id"]], ["shipment_returns", "invoices"])
        assert record["shipment_returns"], "a return shipment for the warehouse"
        invoices = rpc.model("account.invoice", "read", record["invoices"], ["total_amount"])
        assert [Decimal(str(i["total_amount"])) for i in invoices] == [Decimal("-85.00")]

    # The same refund delivered again: the ledger's dedupe, no second return.
    assert sync(pipeline, store(ledger, refund, "refunds/create")) == "duplicate"
    with client_of(tryton) as tryton_client:
        assert len(tryton_client.rpc.model(SALE, "search", [["reference", "=", f"shopify-refund-{refund['id']}"]],
                                           0, None, None)) == 1


def test_a_refund_before_its_order_waits_for_it_and_books_nothing(pipeline: SyncPipeline, ledger,
                                                                    tryton: RunningTryton) -> None:
    refund = refund_of(820000000000 + uuid.uuid4().int % 10**9)
    with pytest.raises(TransientError, match="not in Tryton yet"):
        sync(pipeline, store(ledger, refund, "refunds/create"))
    with client_of(tryton) as tryton_client:
        assert tryton_client.get_by_external_id(SALE, f"shopify-refund-{refund['id']}") is None
