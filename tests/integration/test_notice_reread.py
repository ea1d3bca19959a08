"""The ledger's side of two changes in one second (a notice delivered again after its event finished is read again)
and of the echo guard (a record erpsync wrote, coming back), on SQLite and on PostgreSQL when it is set up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from erpsync.change_intake import REREAD_READER_MARGIN, notice_body, notice_delivery_id
from erpsync.ledger import EntityKey, InboxDelivery, Ledger, utcnow


def deliver(ledger: Ledger, changed: datetime, *, source: str = "netsuite", body: bytes | None = None,
            margin: timedelta | None = None):
    body = body or notice_body("price", "98", None, changed)
    delivery_id = notice_delivery_id(source, "price", "98", changed)
    return ledger.record_deliveries([InboxDelivery(source, delivery_id, "price.changed", None, None, body,
                                                   "sha-" + delivery_id)], reread_margin=margin)[0]


def finish(ledger: Ledger, event_id: int, outcome: str = "synced") -> None:
    ledger.record_outcome(event_id=event_id, source="netsuite", outcome=outcome)


def test_a_notice_again_after_its_event_read_within_the_changes_second_is_a_new_reread_event(ledger):
    changed = utcnow()
    first = deliver(ledger, changed)
    assert first.is_new
    # While the event waits, the same notice is a plain redelivery: it has not read the record yet.
    assert deliver(ledger, changed) == type(first)(first.event_id, False)
    finish(ledger, first.event_id)
    again = deliver(ledger, changed)
    assert again.is_new and again.event_id != first.event_id
    stored = ledger.get_event(again.event_id)
    assert stored.delivery_id == f"{ledger.get_event(first.event_id).delivery_id}#reread-1"
    assert stored.state == "received" and b'"reread":1' in stored.body
    # The re-read waits: the notice again is a redelivery (counted on the notice's own event), not a third event.
    assert deliver(ledger, changed) == type(first)(first.event_id, False)
    assert ledger.get_event(first.event_id).redeliveries == 3
    finish(ledger, again.event_id)
    third = deliver(ledger, changed)
    assert third.is_new and ledger.get_event(third.event_id).delivery_id.endswith("#reread-2")


def test_a_notice_again_long_after_its_change_is_a_plain_redelivery(ledger):
    changed = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)  # its event arrived long after that second was over
    first = deliver(ledger, changed)
    finish(ledger, first.event_id)
    again = deliver(ledger, changed)
    assert (again.event_id, again.is_new) == (first.event_id, False)


def test_a_dead_lettered_notice_again_is_not_read_again_its_replay_reads(ledger):
    changed = utcnow()
    first = deliver(ledger, changed)
    finish(ledger, first.event_id, "failed")
    assert deliver(ledger, changed).event_id == first.event_id


def test_only_notices_are_read_again(ledger):
    changed = utcnow() - timedelta(seconds=1)
    body = b'{"id": 1, "data": {"lastModified": "' + changed.strftime("%Y-%m-%dT%H:%M:%SZ").encode() + b'"}}'
    first = deliver(ledger, changed, source="shopify", body=body)
    finish(ledger, first.event_id)
    assert deliver(ledger, changed, source="shopify", body=body).event_id == first.event_id


def test_a_record_erpsync_wrote_is_known_when_it_comes_back(ledger):
    ledger.record_outcome(event_id=1, source="netsuite", outcome="synced",
                          key=EntityKey("netsuite", "itemFulfillment", "812", "shopify"),
                          external_id="netsuite-fulfillment-812", to_id="gid://shopify/Fulfillment/4_2",
                          payload_sha256="x", mapping_version="m", applied=("fulfillment", utcnow()))
    found = ledger.written_by_us(EntityKey("shopify", "fulfillment", "4_2", "netsuite"))
    assert found is not None and found.entity_id == "812"
    # Another record type, another id, or an id whose last segment only looks alike: not ours.
    assert ledger.written_by_us(EntityKey("shopify", "order", "4_2", "netsuite")) is None
    assert ledger.written_by_us(EntityKey("shopify", "fulfillment", "2", "netsuite")) is None
    assert ledger.written_by_us(EntityKey("shopify", "fulfillment", "4x2", "netsuite")) is None


def test_the_readers_repeat_after_a_read_seconds_after_the_change_is_a_plain_redelivery(ledger):
    changed = utcnow() - timedelta(seconds=10)
    first = deliver(ledger, changed)
    ledger.note_read(first.event_id)  # its run read the record ten seconds after the change
    finish(ledger, first.event_id)
    assert deliver(ledger, changed, margin=REREAD_READER_MARGIN).event_id == first.event_id
    # The ERP's script posting the notice again means a save, which may have committed late: read again.
    assert deliver(ledger, changed).is_new
