"""The receiver's group commit in the ledger: a batch stores new ids in one INSERT .. ON CONFLICT, and an id
stored before (earlier, in the same batch, or by another process at the same time) counts as a redelivery."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

import erpsync.db
from erpsync.db import normalise_url
from erpsync.errors import TransientError
from erpsync.ledger import InboxDelivery, Ledger
from tests.conftest import POSTGRES_URL, _postgres_database


def delivery(delivery_id: str, source: str = "shopify") -> InboxDelivery:
    body = b'{"id": "%s"}' % delivery_id.encode()
    return InboxDelivery(source=source, delivery_id=delivery_id, topic="orders/create", shop="s.myshopify.com",
                         triggered_at="2026-11-01T12:00:00Z", body=body, payload_sha256="h" + delivery_id)


def test_a_batch_mixing_new_known_and_repeated_ids(ledger):
    [known] = ledger.record_deliveries([delivery("known")])
    intakes = ledger.record_deliveries([delivery("a"), delivery("known"), delivery("a"), delivery("b"),
                                        delivery("a", source="woocommerce"), delivery("known")])
    assert [i.is_new for i in intakes] == [True, False, False, True, True, False]
    assert intakes[1].event_id == intakes[5].event_id == known.event_id
    assert intakes[0].event_id == intakes[2].event_id
    assert len({intakes[0].event_id, intakes[3].event_id, intakes[4].event_id, known.event_id}) == 4
    assert ledger.inbox_counts() == {"received": 4, "events": 4, "redeliveries": 3}
    assert ledger.get_event(known.event_id).redeliveries == 2
    assert ledger.get_event(intakes[0].event_id).redeliveries == 1


def test_a_batch_of_known_ids_only(ledger):
    first = ledger.record_deliveries([delivery("x"), delivery("y")])
    again = ledger.record_deliveries([delivery("y"), delivery("x")])
    assert not any(i.is_new for i in again)
    assert [i.event_id for i in again] == [first[1].event_id, first[0].event_id]


def test_two_processes_storing_the_same_ids_at_once_create_one_event_each(database_url):
    """Two ledgers (as two receiver processes would) write overlapping batches concurrently."""
    ledgers = [Ledger.connect(database_url) for _ in range(2)]
    ids = [f"d-{n}" for n in range(40)]
    results: list[list] = [[], []]
    start = threading.Barrier(2)

    def write(index: int) -> None:
        start.wait()
        for offset in range(0, len(ids), 8):
            batch = ids[offset:offset + 8] if index == 0 else list(reversed(ids[offset:offset + 8]))
            results[index].extend(zip(batch, ledgers[index].record_deliveries([delivery(d) for d in batch])))

    try:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        stored = {}
        for delivery_id, intake in results[0] + results[1]:
            assert stored.setdefault(delivery_id, intake.event_id) == intake.event_id
        assert sum(intake.is_new for _, intake in results[0] + results[1]) == len(ids)
        assert ledgers[0].inbox_counts() == {"received": len(ids), "events": len(ids), "redeliveries": len(ids)}
    finally:
        for ledger in ledgers:
            ledger.close()


@pytest.fixture
def postgres_ledger():
    if not POSTGRES_URL:
        pytest.skip("needs ERPSYNC_TEST_POSTGRES_URL")
    throwaway = _postgres_database()
    database_url = next(throwaway)
    ledger = Ledger.connect(database_url)
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    yield ledger, database_url.rsplit("/", 1)[1], admin
    ledger.close()
    admin.dispose()
    throwaway.close()


def _kill_connections(admin, name: str) -> None:
    with admin.connect() as pg:
        pg.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})


def test_an_idle_pooled_connection_the_server_dropped_is_replaced_unnoticed(postgres_ledger, monkeypatch):
    ledger, name, admin = postgres_ledger
    ledger.record_deliveries([delivery("before")])
    monkeypatch.setattr(erpsync.db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
    _kill_connections(admin, name)
    [intake] = ledger.record_deliveries([delivery("after")])
    assert intake.is_new


def test_a_connection_dropped_while_hot_fails_once_as_transient_then_the_pool_reconnects(postgres_ledger,
                                                                                         monkeypatch):
    """Used a moment ago, the connection is not pinged: the batch fails as TransientError (the receiver's 503,
    nothing acknowledged), and the next batch gets a new connection."""
    ledger, name, admin = postgres_ledger
    ledger.record_deliveries([delivery("before")])
    monkeypatch.setattr(erpsync.db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    _kill_connections(admin, name)
    with pytest.raises(TransientError):
        ledger.record_deliveries([delivery("during")])
    [intake] = ledger.record_deliveries([delivery("during")])
    assert intake.is_new
    assert ledger.inbox_counts()["events"] == 2
