"""How an event is named and looked up (issue 17, items 2 and 6): run names, references an operator types, the
mapping's entity.label, and a batch run's table."""

from __future__ import annotations

import pytest

from erpsync.batch import HANDED_OFF, BatchEvent, ChunkResult, table_rows
from erpsync.errors import ConfigError
from erpsync.event_refs import EventRef, batch_run_name, describe, event_run_name
from erpsync.mapping.config import EntityConfig


def test_run_names_carry_the_event_id_entity_and_order_code_and_nothing_else():
    assert event_run_name(42) == "event-42"
    assert event_run_name(42, "order/820982911946154508", "#1042") == "event-42 order/820982911946154508 #1042"
    assert event_run_name(7, None, "SO 1001\n") == "event-7 SO_1001_"
    assert describe(42, "order/1", None) == "event 42 order/1"
    assert batch_run_name([1003, 1001, 1054], finished=True) == "batch-3 events-1001..1054"
    assert batch_run_name([1001, 1002], finished=False) == "batch events-1001.."
    assert batch_run_name([], finished=False) == "batch events"


@pytest.mark.parametrize("text, kind, fields", [
    ("42", "event", {"event_id": 42}),
    ("order/820982911946154508", "entity", {"entity": "order/820982911946154508", "source": None}),
    ("shopify/order/82", "entity", {"entity": "order/82", "source": "shopify"}),
    ("#1042", "order code", {"label": "#1042"}),
    ("SO-1001", "order code", {"label": "SO-1001"}),
])
def test_a_reference_is_an_event_id_an_entity_or_an_order_code(text, kind, fields):
    ref = EventRef.parse(text)
    assert ref.kind == kind and all(getattr(ref, name) == value for name, value in fields.items())


@pytest.mark.parametrize("text, message", [("", "EVENT: empty"), ("a/b/c/d", "not an entity"),
                                           ("order/", "not an entity")])
def test_a_bad_reference_is_refused_saying_what_is_expected(text, message):
    with pytest.raises(ConfigError, match=message):
        EventRef.parse(text)


def test_entity_label_is_a_key_template_and_a_missing_field_gives_no_label():
    entity = EntityConfig.model_validate({"type": "order", "id": "{id}", "label": "#{number}", "version": "x"})
    assert entity.label.render({"number": 727}) == "#727"
    with pytest.raises(ValueError, match="Jinja syntax"):
        EntityConfig.model_validate({"type": "order", "id": "{id}", "label": "{{ name }}", "version": "x"})


def test_a_batch_table_lists_each_event_and_says_when_it_is_cut():
    result = ChunkResult(events=[BatchEvent(1, "order/1", "#1", "synced", "5501"),
                                 BatchEvent(2, None, None, HANDED_OFF, why="InvalidPayload")])
    rows, note = table_rows(result)
    assert rows == [{"event": "1", "entity": "order/1", "order code": "#1", "outcome": "synced", "ERP id": "5501"},
                    {"event": "2", "entity": "-", "order code": "-",
                     "outcome": "handed off (InvalidPayload): its own sync-event run", "ERP id": "-"}]
    assert note == ""
    rows, note = table_rows(result, limit=1)
    assert len(rows) == 1 and note.startswith("The first 1 of 2 events")
