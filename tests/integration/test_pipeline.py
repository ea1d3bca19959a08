"""The five steps of one event, without Prefect: a real ledger (SQLite / PostgreSQL) and the ERP sandbox process."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from erpsync import pipeline as pipeline_module
from erpsync.errors import (
    ConfigError,
    EntityBusy,
    ErpRejected,
    InvalidPayload,
    MappingError,
    PermanentError,
)
from erpsync.ledger import InboxEvent
from erpsync.pipeline import SyncPipeline
from erpsync.retry import RetryPolicy
from erpsync.settings import PROJECT_DIR
from erpsync.steps import run_steps
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from tests.conftest import shopify_order_sample
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory):
    # Item 901 (the gift-card fallback item) is unknown to this ERP: NetSuite answers 400 for it.
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), "--items", "1-900,902-999") as base_url:
        yield base_url


@pytest.fixture
def pipeline(ledger, erp_url):
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=SecretStr(ERP_CLIENT_SECRET))
    pipeline = SyncPipeline(ledger, PROJECT_DIR / "mappings",
                            lambda: NetSuiteClient(settings, RetryPolicy(max_attempts=2, base=0.01)))
    yield pipeline
    pipeline.close()


def sample_order(**changes) -> dict:
    """Shopify's sample order as a real one, under an id of its own (tests share the ERP sandbox)."""
    order = shopify_order_sample()
    order["id"] = 900000000000 + uuid.uuid4().int % 10**9
    order.update(changes)
    return order


def set_total(order: dict, total: str) -> None:
    order["total_price"] = total
    for money in order["total_price_set"].values():
        money["amount"] = total


def store(ledger, order: dict, topic: str = "orders/create") -> int:
    body = json.dumps(order).encode()
    return ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic=topic, shop=None,
                                  triggered_at=None, body=body, payload_sha256=hashlib.sha256(body).hexdigest()
                                  ).event_id


def sync(pipeline, event_id: int):
    """What flows/sync_event.py runs, minus Prefect: the outcome name, or the ERP internal id."""
    result = run_steps(pipeline, pipeline.validate(event_id))
    return result.erp_id if result.outcome == "synced" else result.outcome


def test_an_order_becomes_a_sales_order_with_both_ids_in_the_ledger(pipeline, ledger):
    order = sample_order()
    event_id = store(ledger, order)
    erp_id = sync(pipeline, event_id)
    record = pipeline.erp.get("salesOrder", f"eid:shopify-order-{order['id']}")
    assert str(record["id"]) == erp_id
    [outcome] = ledger.outcomes(event_id)
    assert (outcome.outcome, outcome.external_id, outcome.to_id) == ("synced", f"shopify-order-{order['id']}", erp_id)
    assert outcome.mapping_version and ledger.get_event(event_id).state == "synced"


def test_same_content_is_a_duplicate_older_is_superseded_newer_updates_the_same_record(pipeline, ledger, erp_url):
    order = sample_order(updated_at="2026-11-01T10:00:00-05:00")
    first = sync(pipeline, store(ledger, order))
    assert sync(pipeline, store(ledger, order, topic="orders/paid")) == "duplicate"
    older = copy.deepcopy(order) | {"updated_at": "2026-11-01T09:00:00-05:00", "note": "older"}
    assert sync(pipeline, store(ledger, older, topic="orders/updated")) == "superseded"
    newer = copy.deepcopy(order) | {"updated_at": "2026-11-01T11:00:00-05:00"}
    newer["line_items"][0]["quantity"] = newer["line_items"][0]["current_quantity"] = 3
    set_total(newer, "786.00")  # 3 × 199 + 199 − 20 discount + 10 shipping
    assert sync(pipeline, store(ledger, newer, topic="orders/updated")) == first, "upsert keeps the internal id"
    [record] = [r for r in httpx.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
                if r["external_id"] == f"shopify-order-{order['id']}"]
    assert [line["quantity"] for line in record["body"]["item"]["items"]] == [3, 1]


def test_a_rerun_of_an_applied_event_is_a_duplicate(pipeline, ledger):
    event_id = store(ledger, sample_order())
    sync(pipeline, event_id)
    assert sync(pipeline, event_id) == "duplicate"


def test_one_event_per_entity_at_a_time(pipeline, ledger):
    order = sample_order()
    a = pipeline.validate(store(ledger, order))
    b = pipeline.validate(store(ledger, order | {"updated_at": "2030-01-01T00:00:00Z"}, topic="orders/updated"))
    assert pipeline.dedupe(a) is None
    with pytest.raises(EntityBusy):
        pipeline.dedupe(b)
    transformed = pipeline.transform(a)
    pipeline.confirm(a, transformed, pipeline.push(transformed))
    assert pipeline.dedupe(b) is None, "the claim is released by confirm"


def test_a_bad_payload_fails_naming_the_field_and_no_customer_value(pipeline, ledger):
    order = sample_order()
    order["line_items"][1]["quantity"] = 0
    event_id = store(ledger, order)
    with pytest.raises(InvalidPayload) as caught:
        pipeline.validate(event_id)
    reason = pipeline.fail(event_id, caught.value)
    assert "line_items[1].quantity" in reason
    assert "jon@example.com" not in reason and "Steve" not in reason
    assert ledger.get_event(event_id).state == "failed"


def test_an_erp_rejection_is_recorded_with_netsuites_code_and_path(pipeline, ledger):
    order = sample_order()
    order["line_items"] = order["line_items"][:1]
    order["line_items"][0].update(sku=None, gift_card=True, title="Gift card")
    set_total(order, "189.00")  # 199 − 20 discount + 10 shipping
    event_id = store(ledger, order)
    event = pipeline.validate(event_id)
    assert pipeline.dedupe(event) is None
    transformed = pipeline.transform(event)
    with pytest.raises(ErpRejected) as caught:
        pipeline.push(transformed)
    logged = pipeline.fail(event_id, caught.value, event=event, transformed=transformed)
    assert "INVALID_CONTENT" in logged and "item.items[0].item" in logged
    assert "Invalid Field Value" not in logged, "NetSuite's detail may quote our data: ledger only"
    [outcome] = ledger.outcomes(event_id)
    assert (outcome.outcome, outcome.external_id) == ("failed", f"shopify-order-{order['id']}")
    assert "INVALID_CONTENT" in outcome.reason and "Invalid Field Value" in outcome.reason
    assert ledger.claim(event.key, 999, stale_after=timedelta(minutes=5)), "a failed event releases its claim"


def test_shopifys_sample_lands_at_388_with_shipping_discount_and_addresses(pipeline, ledger):
    order = sample_order()
    sync(pipeline, store(ledger, order))
    record = pipeline.erp.get("salesOrder", f"eid:shopify-order-{order['id']}", expand_sub_resources=True)
    assert (record["shippingCost"], record["discountRate"]) == (10, -20)
    assert [line["amount"] for line in record["item"]["items"]] == [199, 199]
    assert record["shippingAddress"]["country"]["id"] == "US" and record["currency"]["id"] == "1"
    if "total" in record:  # the sandbox computes NetSuite's totals from the body, as the pre-push check did
        assert record["total"] == 388


def test_a_test_order_is_recorded_as_skipped_with_its_reason(pipeline, ledger, erp_url):
    order = sample_order(test=True)
    event_id = store(ledger, order)
    assert sync(pipeline, event_id) == "skipped"
    [outcome] = ledger.outcomes(event_id)
    assert outcome.outcome == "skipped" and "a test order" in outcome.reason
    records = httpx.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    assert f"shopify-order-{order['id']}" not in {r["external_id"] for r in records}


def test_a_body_that_does_not_add_up_is_not_written_and_names_both_totals(pipeline, ledger, erp_url):
    order = sample_order()
    set_total(order, "400.00")
    event_id = store(ledger, order)
    event = pipeline.validate(event_id)
    assert pipeline.dedupe(event) is None
    with pytest.raises(MappingError) as caught:
        pipeline.transform(event)
    reason = pipeline.fail(event_id, caught.value, event=event)
    assert "would total 388.00 USD" in reason and "total_price is 400.00 USD" in reason
    assert "difference -12.00 USD" in reason and "Steve" not in reason
    records = httpx.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    assert f"shopify-order-{order['id']}" not in {r["external_id"] for r in records}


def test_a_topic_no_mapping_handles_is_dead_lettered_by_name(pipeline, ledger):
    event_id = store(ledger, sample_order(), topic="orders/fulfilled")
    with pytest.raises(ConfigError, match="no mapping handles shopify topic 'orders/fulfilled'") as caught:
        pipeline.validate(event_id)
    pipeline.fail(event_id, caught.value)
    [outcome] = ledger.outcomes(event_id)
    assert "fix the configuration, then retry" in outcome.reason



def test_a_broken_mapping_for_another_topic_does_not_stop_orders(ledger, erp_url, tmp_path):
    import shutil

    mappings = tmp_path / "mappings"
    shutil.copytree(PROJECT_DIR / "mappings", mappings)
    refund = mappings / "shopify_refund_to_netsuite_cash_refund.yaml"
    refund.write_text(refund.read_text() + "\nintegr: true   # a typo: an unknown key\n")
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=SecretStr(ERP_CLIENT_SECRET))
    pipeline = SyncPipeline(ledger, mappings, lambda: NetSuiteClient(settings))
    try:
        assert sync(pipeline, store(ledger, sample_order())).isdigit(), "orders still sync"
        with pytest.raises(ConfigError, match="integr"):
            pipeline.validate(store(ledger, {"id": 1}, topic="refunds/create"))
    finally:
        pipeline.close()


def test_a_batchs_threads_share_one_erp_client(ledger, erp_url):
    """The pipeline makes its ERP client once, however many threads reach for it first (one set of slots)."""
    made = []

    def factory() -> NetSuiteClient:
        time.sleep(0.05)  # long enough for every thread to find no client yet
        client = NetSuiteClient(NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID,
                                                 client_secret=SecretStr(ERP_CLIENT_SECRET)))
        made.append(client)
        return client

    pipeline = SyncPipeline(ledger, PROJECT_DIR / "mappings", factory)
    try:
        with ThreadPoolExecutor(8) as pool:
            clients = list(pool.map(lambda _: (pipeline.erp, pipeline.xref.erp), range(8)))
        assert len(made) == 1
        assert all(erp is made[0] and xref_erp is made[0] for erp, xref_erp in clients)
    finally:
        pipeline.close()
        for client in made[1:]:
            client.close()


def purge(ledger, event_id: int) -> None:
    """The event's payload emptied in the inbox, as `erpsync purge` does."""
    with ledger.session() as session:
        session.get(InboxEvent, event_id).body = b""
        session.commit()


def test_transform_maps_the_payload_validate_read_and_reads_again_once_it_is_old(pipeline, ledger, monkeypatch):
    # Purged between the steps: a transform moments after validate maps what validate read (one read per
    # event), a transform later than READ_ONCE_SECONDS reads the inbox again.
    soon = store(ledger, sample_order())
    event = pipeline.validate(soon)
    purge(ledger, soon)
    assert pipeline.transform(event).record.record_type == "salesOrder"
    with pytest.raises(PermanentError, match="its payload was purged"):  # taken once: a retry reads again
        pipeline.transform(event)

    late = store(ledger, sample_order())
    event = pipeline.validate(late)
    purge(ledger, late)
    monkeypatch.setattr(pipeline_module, "READ_ONCE_SECONDS", 0.0)
    with pytest.raises(PermanentError, match="its payload was purged"):
        pipeline.transform(event)


def test_a_payload_nobody_takes_is_dropped_at_the_next_validate_once_it_is_old(pipeline, ledger, monkeypatch):
    # An event skipped at dedupe never reaches transform: its payload must not stay in memory past the bound.
    untaken = store(ledger, sample_order())
    event = pipeline.validate(untaken)
    monkeypatch.setattr(pipeline_module, "READ_ONCE_SECONDS", 0.0)
    pipeline.validate(store(ledger, sample_order()))  # drops what is older than the bound
    monkeypatch.setattr(pipeline_module, "READ_ONCE_SECONDS", 30.0)
    purge(ledger, untaken)
    with pytest.raises(PermanentError, match="its payload was purged"):  # read from the inbox: nothing kept
        pipeline.transform(event)
