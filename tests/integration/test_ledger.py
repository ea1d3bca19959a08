"""The inbox and ledger against a real database (SQLite, and PostgreSQL when configured)."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from erpsync.ledger import EntityKey

KEY = EntityKey("shopify", "order", "1001", "netsuite")
V1 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def deliver(ledger, delivery_id="d-1", body=b"{}"):
    return ledger.record_delivery(source="shopify", delivery_id=delivery_id, topic="orders/create",
                                  shop="s.myshopify.com", triggered_at="2026-11-01T12:00:00Z", body=body,
                                  payload_sha256="h" + delivery_id)


def test_a_delivery_id_is_stored_once_and_redeliveries_are_counted(ledger):
    first = deliver(ledger)
    again = deliver(ledger)
    assert first.is_new and not again.is_new
    assert again.event_id == first.event_id
    assert ledger.inbox_counts() == {"received": 1, "events": 1, "redeliveries": 1}


def test_concurrent_redeliveries_create_one_event(ledger):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: deliver(ledger, "same"), range(16)))
    assert len({r.event_id for r in results}) == 1
    assert sum(r.is_new for r in results) == 1
    assert ledger.inbox_counts()["redeliveries"] == 15


def test_body_is_kept_byte_for_byte(ledger):
    body = b'{"note": "caf\xc3\xa9",  "id": 1}'
    event = ledger.get_event(deliver(ledger, body=body).event_id)
    assert event.body == body and event.received_at.tzinfo is not None


def test_claims_serialize_an_entity(ledger):
    assert ledger.claim(KEY, 1, stale_after=timedelta(minutes=5))
    assert not ledger.claim(KEY, 2, stale_after=timedelta(minutes=5))
    assert ledger.claim(KEY, 1, stale_after=timedelta(minutes=5)), "a retry of the holder keeps its claim"
    ledger.release(KEY, 2)  # not the holder: no effect
    assert not ledger.claim(KEY, 2, stale_after=timedelta(minutes=5))
    ledger.release(KEY, 1)
    assert ledger.claim(KEY, 2, stale_after=timedelta(minutes=5))


def test_a_stale_claim_is_taken_over(ledger):
    assert ledger.claim(KEY, 1, stale_after=timedelta(minutes=5))
    assert ledger.claim(KEY, 2, stale_after=timedelta(0))
    assert not ledger.claim(KEY, 1, stale_after=timedelta(minutes=5))


def test_concurrent_claims_have_one_winner(ledger):
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: ledger.claim(KEY, i, stale_after=timedelta(minutes=5)), range(1, 17)))
    assert sum(won) == 1


def test_synced_outcome_updates_the_cross_reference_atomically(ledger):
    event_id = deliver(ledger).event_id
    ledger.record_outcome(event_id=event_id, source="shopify", outcome="synced", key=KEY,
                          external_id="shopify-order-1001", to_id="501", mapping_version="m1",
                          payload_sha256="abc", applied=("salesOrder", V1))
    state = ledger.entity_state(KEY)
    assert (state.external_id, state.to_id, state.last_version, state.last_payload_sha256) == (
        "shopify-order-1001", "501", V1, "abc")
    assert ledger.event_applied(event_id)
    assert ledger.get_event(event_id).state == "synced"
    [outcome] = ledger.outcomes(event_id)
    assert (outcome.outcome, outcome.to_id, outcome.mapping_version) == ("synced", "501", "m1")


def test_outcomes_are_append_only(ledger):
    event_id = deliver(ledger).event_id
    ledger.record_outcome(event_id=event_id, source="shopify", outcome="failed", reason="HTTP 503 gave up")
    ledger.record_outcome(event_id=event_id, source="shopify", outcome="synced", key=KEY, external_id="x",
                          to_id="1", mapping_version="m", payload_sha256="p", applied=("salesOrder", V1))
    assert [o.outcome for o in ledger.outcomes(event_id)] == ["failed", "synced"]


def test_undispatched_events_wait_for_the_sweep(ledger):
    a = deliver(ledger, "a").event_id
    b = deliver(ledger, "b").event_id
    ledger.mark_dispatched(a, "run-a")
    assert ledger.undispatched(older_than=timedelta(0)) == [b]
    assert ledger.undispatched(older_than=timedelta(hours=1)) == []


def test_purge_empties_old_handled_payloads_and_keeps_the_audit_trail(ledger):
    done = deliver(ledger, "done").event_id
    failed = deliver(ledger, "failed").event_id
    pending = deliver(ledger, "pending").event_id
    ledger.record_outcome(event_id=done, source="shopify", outcome="synced", key=KEY, external_id="x", to_id="1",
                          mapping_version="m", payload_sha256="hdone", applied=("salesOrder", V1))
    ledger.record_outcome(event_id=failed, source="shopify", outcome="failed", reason="HTTP 400 INVALID_CONTENT")
    assert ledger.purge_payloads(older_than=timedelta(hours=1)) == 0, "nothing is old enough"
    assert ledger.purge_payloads(older_than=timedelta(0), dry_run=True) == 1
    assert ledger.purge_payloads(older_than=timedelta(0)) == 1
    assert ledger.get_event(done).body == b"" and ledger.get_event(done).payload_sha256 == "hdone"
    assert ledger.get_event(failed).body == b"{}", "a dead letter keeps its payload for replay"
    assert ledger.get_event(pending).body == b"{}"
    assert [o.outcome for o in ledger.outcomes(done)] == ["synced"]
    assert ledger.purge_payloads(older_than=timedelta(0), include_failed=True) == 1
