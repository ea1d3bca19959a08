"""The change reader's pass (erpsync/change_intake.py): notices of the shared shape, one delivery per change however
often it is read, the cursor kept in the ledger with its overlap window, and record types no mapping handles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from erpsync.change_intake import ChangeIntake, dispatch_new, notice_body, notice_delivery_id
from erpsync.errors import ConfigError, TransientError
from erpsync.ledger import Ledger
from erpsync.ports import Change
from erpsync.systems import MODELS

T0 = datetime(2026, 11, 28, 3, 1, 20, 400000, tzinfo=UTC)


class FakeReader:
    """Changes kept in (modified second, id) order; a cursor is the index of the last change read."""

    def __init__(self) -> None:
        self.changes: list[tuple[datetime, int, str | None]] = []
        self.calls: list[str | None] = []

    def add(self, modified: datetime, internal_id: int, external_id: str | None = None) -> None:
        self.changes.append((modified.replace(microsecond=0), internal_id, external_id))
        self.changes.sort(key=lambda c: (c[0], c[1]))

    def cursor_at(self, moment: datetime) -> str:
        return f"{moment.replace(microsecond=0).isoformat()}|0"

    def changes_since(self, record_type: str, cursor: str | None, *, limit: int = 100) -> list[Change]:
        self.calls.append(cursor)
        moment, _, last = (cursor or "0001-01-01T00:00:00+00:00|0").rpartition("|")
        after = (datetime.fromisoformat(moment), int(last))
        found = [c for c in self.changes if (c[0], c[1]) > after][:limit]
        return [Change(record_type, str(i), eid, m, f"{m.isoformat()}|{i}") for m, i, eid in found]


@pytest.fixture
def ledger(tmp_path: Path):
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger
    ledger.close()


def intake(ledger, reader, now, **options) -> ChangeIntake:
    return ChangeIntake(ledger, reader, system="netsuite", record_types=["itemFulfillment"],
                        clock=lambda: now, **options)


def test_a_notice_has_the_shared_shape_and_the_pipeline_reads_it():
    body = notice_body("itemFulfillment", "4512", None, T0)
    assert json.loads(body) == {
        "type": "itemFulfillment.changed", "timestamp": "2026-11-28T03:01:20Z",
        "data": {"recordType": "itemFulfillment", "id": "4512", "externalId": None,
                 "lastModified": "2026-11-28T03:01:20Z"}}
    assert notice_delivery_id("netsuite", "itemFulfillment", "4512", T0) == \
        "netsuite:itemFulfillment:4512:2026-11-28T03:01:20Z"
    if "netsuite.change" in MODELS:  # the model the way back's mappings validate a notice with
        assert MODELS["netsuite.change"](json.loads(body)).entity_id == "4512"


def test_each_change_becomes_one_inbox_event_and_a_second_pass_adds_none(ledger):
    reader = FakeReader()
    for number in (7, 3, 9):
        reader.add(T0, number, f"eid-{number}")
    first = intake(ledger, reader, T0 + timedelta(minutes=10), start=T0 - timedelta(hours=1)).run()
    assert (first.types[0].read, first.types[0].new) == (3, 3)
    events = ledger.events_by_id(first.new_event_ids)
    assert [e.delivery_id for e in events] == [f"netsuite:itemFulfillment:{n}:2026-11-28T03:01:20Z" for n in (3, 7, 9)]
    assert {(e.source, e.topic, e.triggered_at) for e in events} == {
        ("netsuite", "itemFulfillment.changed", "2026-11-28T03:01:20Z")}
    again = intake(ledger, reader, T0 + timedelta(minutes=11)).run()
    assert again.new_event_ids == [] and again.types[0].read == 0


def test_changes_within_the_overlap_are_read_again_as_redeliveries_and_a_late_commit_is_caught(ledger):
    reader = FakeReader()
    reader.add(T0, 10)
    reader.add(T0 + timedelta(seconds=30), 11)
    now = T0 + timedelta(seconds=60)
    first = intake(ledger, reader, now, start=T0, overlap=timedelta(seconds=45)).run()
    assert first.types[0].new == 2
    # Committed late: modified in the second already read, with a smaller id than the newest read.
    reader.add(T0 + timedelta(seconds=30), 5)
    second = intake(ledger, reader, now + timedelta(seconds=5), overlap=timedelta(seconds=45)).run()
    part = second.types[0]
    assert (part.read, part.new, part.already) == (2, 1, 1)  # 5 is new; 11 is read again, one delivery
    [late] = ledger.events_by_id(second.new_event_ids)
    assert late.delivery_id.startswith("netsuite:itemFulfillment:5:")
    counts = ledger.inbox_counts()
    assert (counts["events"], counts["redeliveries"]) == (3, 1)
    # Once the overlap has passed, the cursor moves past them: nothing is read again.
    third = intake(ledger, reader, now + timedelta(minutes=5), overlap=timedelta(seconds=45)).run()
    assert third.types[0].read == 2  # read once more: they were inside the window at the second pass
    fourth = intake(ledger, reader, now + timedelta(minutes=6), overlap=timedelta(seconds=45)).run()
    assert fourth.types[0].read == 0


def test_the_first_pass_starts_at_now_less_the_overlap_and_keeps_that_start(ledger):
    reader = FakeReader()
    reader.add(T0 - timedelta(days=30), 1)  # history before erpsync read this ERP: not replayed
    now = T0
    first = intake(ledger, reader, now).run()
    assert first.types[0].read == 0
    assert ledger.change_cursor("netsuite", "itemFulfillment").cursor == reader.cursor_at(now - timedelta(minutes=2))
    reader.add(now - timedelta(seconds=30), 2)  # committed after the first pass, inside its window
    second = intake(ledger, reader, now + timedelta(minutes=1)).run()
    assert second.types[0].new == 1


def test_pages_are_followed_and_a_pass_stops_at_max_pages_saying_more_wait(ledger):
    reader = FakeReader()
    for number in range(1, 8):
        reader.add(T0 + timedelta(seconds=number), number)
    now = T0 + timedelta(hours=1)
    first = intake(ledger, reader, now, start=T0, page_size=2, max_pages=2).run()
    assert (first.types[0].read, first.types[0].pages, first.types[0].more) == (4, 2, True)
    assert "more wait for the next pass" in first.lines()[0]
    second = intake(ledger, reader, now, page_size=2, max_pages=5).run()
    assert (second.types[0].read, second.types[0].new, second.types[0].more) == (3, 3, False)


def test_a_record_type_no_mapping_handles_is_not_read(ledger):
    reader = FakeReader()
    reader.add(T0, 1)
    done = ChangeIntake(ledger, reader, system="netsuite", record_types=["itemFulfillment", "inventoryItem"],
                        handled={("netsuite", "inventoryItem.changed")}, start=T0, clock=lambda: T0).run()
    assert done.types[0].skipped == "no mapping handles netsuite itemFulfillment.changed"
    assert reader.calls == [reader.cursor_at(T0)]  # only the handled type was asked for
    assert ledger.change_cursor("netsuite", "itemFulfillment") is None


def test_an_erp_failure_keeps_what_the_pages_before_it_stored(ledger):
    reader = FakeReader()
    for number in range(1, 4):
        reader.add(T0 + timedelta(seconds=number), number)
    original = reader.changes_since

    def fail_second_page(record_type, cursor, *, limit=100):
        if len(reader.calls) == 1:
            raise TransientError("NetSuite: 503")
        return original(record_type, cursor, limit=limit)

    reader.changes_since = fail_second_page
    with pytest.raises(TransientError):
        intake(ledger, reader, T0 + timedelta(hours=1), start=T0, page_size=2).run()
    assert ledger.inbox_counts()["events"] == 2
    reader.changes_since = original
    done = intake(ledger, reader, T0 + timedelta(hours=1), page_size=2).run()
    assert (done.types[0].read, done.types[0].new) == (1, 1)


@pytest.mark.parametrize("options, message", [
    ({"record_types": []}, "record types: name at least one"),
    ({"overlap": timedelta(seconds=-1)}, "overlap: must not be negative"),
    ({"page_size": 0}, "page size"),
    ({"start": datetime(2026, 1, 1)}, "start: needs a time zone"),
])
def test_bad_options_are_refused_naming_them(ledger, options, message):
    with pytest.raises(ConfigError, match=message):
        ChangeIntake(ledger, FakeReader(), system="netsuite", **{"record_types": ["itemFulfillment"], **options})


class FakeRuns:
    def __init__(self, fail: bool = False) -> None:
        self.fail, self.dispatched, self.batches = fail, [], []

    def dispatch(self, event_id: int) -> str:
        if self.fail:
            raise TransientError("Prefect away")
        self.dispatched.append(event_id)
        return f"run-{event_id}"

    def active_batches(self) -> list[str]:
        return list(self.batches)

    def start_batch(self, key: str) -> str:
        self.batches.append(key)
        return key


def test_new_events_are_dispatched_one_run_each_or_one_batch_run_for_a_backlog(ledger):
    reader = FakeReader()
    for number in range(1, 5):
        reader.add(T0, number)
    ids = intake(ledger, reader, T0 + timedelta(hours=1), start=T0).run().new_event_ids
    runs = FakeRuns()
    assert dispatch_new(ledger, runs, ids[:2], batch_threshold=3) == {"dispatched": 2, "failed": 0,
                                                                       "left_to_batch": 0}
    assert [e.flow_run_id for e in ledger.events_by_id(ids[:2])] == [f"run-{i}" for i in ids[:2]]
    assert dispatch_new(ledger, runs, ids, batch_threshold=3, batch_runs=2)["left_to_batch"] == 4
    assert len(runs.batches) == len(set(runs.batches)) == 2, "two batch runs share the backlog, each once-only"
    assert dispatch_new(ledger, runs, ids, batch_threshold=3, batch_runs=1) and len(runs.batches) == 2, \
        "no new batch run while one is active"
    assert dispatch_new(ledger, FakeRuns(fail=True), ids[2:], batch_threshold=0)["failed"] == 2
