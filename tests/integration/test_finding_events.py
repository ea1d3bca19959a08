"""Finding the event a customer names (issue 17, items 2 and 6): validate records the entity and order code on the
inbox row; `erpsync dlq list/show` and `erpsync status` show them and look events up by either, naming the run
that holds each event's trace (its own sync-event run, or the sync-batch run and its table)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import update

from erpsync.deadletters import artifact_markdown, latest_failure, state_message
from erpsync.errors import InvalidPayload, MappingError
from erpsync.ledger import EventLabel, InboxEvent
from erpsync.pipeline import SyncPipeline
from orchestration.runs import PrefectRunControl
from tests.conftest import REPO
from tests.integration.test_pipeline import sample_order, store


@pytest.fixture
def pipeline(ledger):
    def no_erp():
        raise AssertionError("these tests never reach the ERP")

    return SyncPipeline(ledger, REPO / "mappings", no_erp)


def erpsync(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ERPSYNC_DATABASE_URL": database_url}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "erpsync", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def orders(ledger, pipeline):
    """Order A (#1042): created (dead letter, its own run) and updated (synced, its own run); order B (#1043): two
    events synced by one batch run; a WooCommerce order with the code #1042 too."""
    a, b = sample_order(name="#1042"), sample_order(name="#1043")
    made = {"a_created": store(ledger, a), "a_updated": store(ledger, a, "orders/updated"),
            "b_1": store(ledger, b), "b_2": store(ledger, b, "orders/updated"),
            "woo": store(ledger, {"id": 727})}
    pipeline.validate(made["a_created"], flow_run_id="run-a-created")
    pipeline.fail(made["a_created"], MappingError("line_items[0].sku: 'X' not found in lookup table 'sku_to_item'"))
    event = pipeline.validate(made["a_updated"], flow_run_id="run-a-updated")
    ledger.record_outcome(event_id=made["a_updated"], source="shopify", outcome="synced", key=event.key)
    ledger.take_for_batch("batch-run-b", limit=2)  # the two events of B (the other events have runs)
    for name in ("b_1", "b_2"):
        event = pipeline.validate(made[name], flow_run_id="batch-run-b", assigned=True)
        ledger.note_entities([event.about])
        ledger.record_outcome(event_id=made[name], source="shopify", outcome="synced", key=event.key)
    with ledger.session() as session:  # stands in for a WooCommerce order validated by its mapping
        session.exec(update(InboxEvent).where(InboxEvent.id == made["woo"]).values(source="woocommerce"))
        session.commit()
    ledger.note_entities([EventLabel(made["woo"], "order/727", "#1042")])
    return {**made, "a": a, "b": b}


def test_validate_records_the_entity_and_order_code_even_when_the_payload_is_then_refused(ledger, pipeline, orders):
    stored = ledger.get_event(orders["a_created"])
    assert (stored.entity, stored.entity_label) == (f"order/{orders['a']['id']}", "#1042")
    broken = sample_order(name="#2001")
    broken["line_items"][0]["price"] = "not money"
    event_id = store(ledger, broken)
    with pytest.raises(InvalidPayload):
        pipeline.validate(event_id)
    assert ledger.get_event(event_id).entity_label == "#2001"


def test_the_dead_letter_artifact_and_state_message_name_the_entity_and_order_code(ledger, orders):
    failed = latest_failure(ledger, orders["a_created"])
    markdown = artifact_markdown(failed)
    assert f"| entity | `order/{orders['a']['id']}` |" in markdown and "| order code | `#1042` |" in markdown
    assert markdown.startswith(f"# Dead letter: event {orders['a_created']} order/{orders['a']['id']} #1042")
    assert f"(event {orders['a_created']} order/{orders['a']['id']} #1042; erpsync dlq show" in \
        state_message(failed, orders["a_created"])


def test_dlq_list_and_show_find_a_dead_letter_by_entity_or_order_code(database_url, orders):
    a = orders["a"]["id"]
    listed = erpsync(database_url, "dlq", "list", "--events")
    assert listed.returncode == 0, listed.stderr
    assert f"{orders['a_created']} #1042" in listed.stdout and f"order/{a}" in listed.stdout
    # Order A has two events and #1042 a WooCommerce order too: of them, one dead letter, which is the one shown.
    for ref in ("#1042", f"order/{a}", f"shopify/order/{a}", str(orders["a_created"])):
        shown = erpsync(database_url, "dlq", "show", ref)
        assert shown.returncode == 0, (ref, shown.stderr)
        assert f"event        event {orders['a_created']} order/{a} #1042" in shown.stdout
        assert "trace        sync-event run run-a-created" in shown.stdout
        assert f"Retry on flow run event-{orders['a_created']} order/{a} #1042" in shown.stdout

    several = erpsync(database_url, "dlq", "show", f"order/{orders['b']['id']}")
    assert several.returncode == 2
    assert f"entity order/{orders['b']['id']} names 2 dead letters or events: event {orders['b_1']}" in \
        several.stderr and "name one by its event id" in several.stderr
    for ref, message in [("#9999999", "order code #9999999: no event in the inbox names it"),
                         ("a/b/c/d", "'a/b/c/d': not an entity; expected TYPE/ID")]:
        refused = erpsync(database_url, "dlq", "show", ref)
        assert refused.returncode == 2 and message in refused.stderr, (ref, refused.stderr)


def test_status_of_an_order_lists_its_events_and_where_each_ones_trace_is(database_url, orders):
    a, b = orders["a"]["id"], orders["b"]["id"]
    shown = erpsync(database_url, "status", f"order/{a}")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"order/{a} #1042  (shopify)")
    assert f"trace: sync-event run run-a-updated (named event-{orders['a_updated']} order/{a} #1042)" in shown.stdout
    assert f"dead letter: erpsync dlq show {orders['a_created']}" in shown.stdout

    batch = erpsync(database_url, "status", "#1043")
    assert batch.returncode == 0, batch.stderr
    assert batch.stdout.count("trace: sync-batch run batch-run-b") == 2
    assert "`sync-batch-events` artifact lists this event" in batch.stdout

    ambiguous = erpsync(database_url, "status", "#1042")
    assert ambiguous.returncode == 2
    assert f"order code #1042 names events of 2 entities: shopify/order/{a} #1042; woocommerce/order/727 #1042" \
        in ambiguous.stderr and f"erpsync status shopify/order/{a}" in ambiguous.stderr

    overview = erpsync(database_url, "status")
    assert f"event {orders['a_created']} order/{a} #1042 (orders/create)" in overview.stdout
    assert f"status {b}" not in overview.stdout


def test_a_run_is_renamed_through_prefects_api():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, request.content))
        return httpx.Response(204)

    runs = PrefectRunControl("http://prefect.test/api", transport=httpx.MockTransport(handler))
    runs.rename("run-1", "event-42 order/820982911946154508 #1042")
    assert calls == [("PATCH", "/api/flow_runs/run-1", b'{"name":"event-42 order/820982911946154508 #1042"}')]
