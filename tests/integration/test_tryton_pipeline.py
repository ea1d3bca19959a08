"""An order's whole path to a real Tryton without Prefect: the inbox, the five steps, the ledger with both ids, and
the same outcomes an operator sees with NetSuite (duplicate, dead letter with its reason)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from erpsync.pipeline import SyncPipeline
from erpsync.settings import PROJECT_DIR
from erpsync.steps import run_steps
from erpsync.systems import open_writer
from erpsync.systems.tryton.client import SALE
from erpsync_dev.tryton_server import RunningTryton, tryton_server
from tests.conftest import shopify_order_sample

MAPPINGS = PROJECT_DIR / "mappings" / "tryton"


@pytest.fixture(scope="module")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTryton]:
    with tryton_server(Path(tmp_path_factory.mktemp("tryton-pipeline"))) as running:
        yield running


@pytest.fixture
def pipeline(ledger, database_url, tryton: RunningTryton) -> Iterator[SyncPipeline]:
    # The writer as a worker opens it: from the environment, under the ERP slots the ledger's database shares.
    environ = {"ERPSYNC_TRYTON_URL": tryton.url, "ERPSYNC_TRYTON_DATABASE": tryton.database,
               "ERPSYNC_TRYTON_LOGIN": tryton.login, "ERPSYNC_TRYTON_PASSWORD": tryton.password,
               "ERPSYNC_TRYTON_CONCURRENCY_LIMIT": "1"}
    made = SyncPipeline(ledger, MAPPINGS, writers=lambda target: open_writer(target, database_url, environ))
    yield made
    made.close()


def store(ledger, order: dict, topic: str = "orders/create") -> int:
    body = json.dumps(order).encode()
    return ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic=topic, shop=None,
                                  triggered_at=None, body=body, payload_sha256=hashlib.sha256(body).hexdigest()
                                  ).event_id


def sync(pipeline: SyncPipeline, event_id: int):
    result = run_steps(pipeline, pipeline.validate(event_id))
    return result.erp_id if result.outcome == "synced" else result.outcome


def test_an_order_reaches_tryton_processed_once_and_an_edit_of_a_confirmed_sale_is_a_dead_letter(
        pipeline: SyncPipeline, ledger) -> None:
    order = shopify_order_sample()
    order["id"] = 800000000000 + uuid.uuid4().int % 10**9
    order.update(cancelled_at=None, cancel_reason=None)  # Shopify's sample is a cancelled order
    first_event = store(ledger, order)
    erp_id = sync(pipeline, first_event)
    outcome, = ledger.outcomes_of([first_event])
    assert (outcome.outcome, outcome.to_system, outcome.to_id, outcome.external_id) == (
        "synced", "tryton", erp_id, f"shopify-order-{order['id']}")
    writer = pipeline.writer("tryton")
    sale = writer.get_by_external_id(SALE, f"shopify-order-{order['id']}")
    assert sale is not None and str(sale["id"]) == erp_id
    assert sale["state"] == "processing"
    assert str(sale["total_amount"]) == order["total_price"]
    # The same order delivered again (a new delivery id, the same content): the ledger's dedupe, nothing written.
    assert sync(pipeline, store(ledger, order)) == "duplicate"
    # An edit of the now confirmed sale: refused by the writer, the event failed with Tryton's reason.
    edited = json.loads(json.dumps(order))
    edited["updated_at"] = "2099-01-01T00:00:00-05:00"
    edited["line_items"][0]["title"] += " (engraved)"
    event_id = store(ledger, edited, "orders/updated")
    with pytest.raises(Exception) as failed:
        sync(pipeline, event_id)
    assert "SALE_NOT_DRAFT" in str(getattr(failed.value, "reason", failed.value))
    assert len(writer.rpc.model(SALE, "search", [["reference", "=", f"shopify-order-{order['id']}"]],
                                0, None, None)) == 1
