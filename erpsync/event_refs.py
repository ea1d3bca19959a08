"""An inbox event as an operator names it: by id, by entity or by order code; how it is shown, and where its trace is.

A customer names an order (#1042), not an inbox event id. The inbox row records who each event is about when a run
validates it (``entity``: ``order/820982911946154508``; ``entity_label``: the mapping's ``entity.label``, the code
staff search for). Everything that shows an event (run names, `erpsync dlq`, `erpsync status`, the dead-letter and
batch artifacts) shows both beside the id, in the forms made here, and `dlq show`/`status` take either to find it.
Only ids and order codes: never a name, an email or an address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from erpsync.errors import ConfigError
from erpsync.ledger import HANDLED_IN_RECEIVER, InboxEvent, Ledger

_ENTITY = re.compile(r"^(?:(?P<source>[a-z][a-z0-9_]*)/)?(?P<type>[A-Za-z][A-Za-z0-9_]*)/(?P<id>[^/\s]+)$")
# A run's name holds what the UI's search box finds: the id, the entity and the order code, nothing else.
_NAME_UNSAFE = re.compile(r"[^\w#./:\-]")
MAX_LISTED = 10
BATCH_ARTIFACT_KEY = "sync-batch-events"


def order_code_text(label: str | None) -> str:
    return label or "-"


def describe(event_id: int, entity: str | None, label: str | None) -> str:
    """``event 42 order/820982911946154508 #1042``: how an event is shown in text."""
    return " ".join(filter(None, [f"event {event_id}", entity, label]))


def event_run_name(event_id: int, entity: str | None = None, label: str | None = None) -> str:
    """The name of an event's `sync-event` run: ``event-42 order/820982911946154508 #1042`` once the run knows
    who the event is about, ``event-42`` before."""
    parts = [f"event-{event_id}", entity, label]
    return " ".join(_NAME_UNSAFE.sub("_", p) for p in parts if p)


def batch_run_name(event_ids: Sequence[int], *, finished: bool) -> str:
    """The name of a `sync-batch` run: ``batch-54 events-1001..1054`` (how many, first..last event id);
    ``batch events-1001..`` while it runs; the events' own ids and order codes are in its table artifact."""
    if not event_ids:
        return "batch-0 events" if finished else "batch events"
    first, last = min(event_ids), max(event_ids)
    if not finished:
        return f"batch events-{first}.."
    return f"batch-{len(event_ids)} events-{first}..{last}"


@dataclass(frozen=True)
class EventRef:
    """What an operator typed: an event id (``42``), an entity (``order/820982911946154508``, optionally with its
    source, ``shopify/order/…``) or an order code (``#1042``, ``SO-1001``)."""

    text: str
    event_id: int | None = None
    entity: str | None = None
    source: str | None = None
    label: str | None = None

    @classmethod
    def parse(cls, text: str) -> EventRef:
        raw = (text or "").strip()
        if not raw:
            raise ConfigError("EVENT: empty; give an event id (42), an entity (order/820982911946154508) or an "
                              "order code ('#1042')")
        if raw.isdigit():
            return cls(raw, event_id=int(raw))
        if "/" in raw:
            match = _ENTITY.match(raw)
            if match is None:
                raise ConfigError(f"{raw!r}: not an entity; expected TYPE/ID such as order/820982911946154508 "
                                  f"(or SOURCE/TYPE/ID, shopify/order/820982911946154508)")
            return cls(raw, entity=f"{match['type']}/{match['id']}", source=match["source"])
        return cls(raw, label=raw)

    @property
    def kind(self) -> str:
        return "event" if self.event_id is not None else "entity" if self.entity else "order code"


def find_events(ledger: Ledger, ref: EventRef, *, limit: int = 200) -> list[InboxEvent]:
    """The inbox events ``ref`` names, oldest first."""
    if ref.event_id is not None:
        event = ledger.get_event(ref.event_id)
        return [event] if event else []
    if ref.entity is not None:
        return ledger.events_about(entity=ref.entity, source=ref.source, limit=limit)
    return ledger.events_about(label=ref.label, limit=limit)


def not_found(ref: EventRef) -> ConfigError:
    if ref.event_id is not None:
        return ConfigError(f"event {ref.event_id}: not in the inbox")
    return ConfigError(f"{ref.kind} {ref.text}: no event in the inbox names it (an event is labelled when a run "
                       f"validates it; older events are found by id: erpsync dlq list --events)")


def one_event(ledger: Ledger, text: str, *, prefer: Callable[[InboxEvent], bool] | None = None,
              what: str = "events", hint: str = "") -> InboxEvent:
    """The one event ``text`` names; among several, the one ``prefer`` picks (a dead letter); else a ConfigError
    listing them, so the operator can name one by id."""
    ref = EventRef.parse(text)
    events = find_events(ledger, ref)
    if not events:
        raise not_found(ref)
    if len(events) > 1 and prefer is not None:
        preferred = [e for e in events if prefer(e)]
        if len(preferred) == 1:
            return preferred[0]
        if preferred:
            events = preferred
    if len(events) == 1:
        return events[0]
    raise several(ref, events, what=what, hint=hint)


def several(ref: EventRef, events: Sequence[InboxEvent], *, what: str, hint: str = "") -> ConfigError:
    listed = "; ".join(f"{describe(e.id, e.entity, e.entity_label)} ({e.source} {e.topic}, {e.state})"
                       for e in events[:MAX_LISTED])
    more = f"; … and {len(events) - MAX_LISTED} more" if len(events) > MAX_LISTED else ""
    return ConfigError(f"{ref.kind} {ref.text} names {len(events)} {what}: {listed}{more}; name one by its event "
                       f"id{hint}")


def trace_of(ledger: Ledger, event: InboxEvent) -> str:
    """Where the event's run, logs and artifacts are: its own `sync-event` run, or the `sync-batch` run that
    handled it (every event a batch takes names that run in the inbox, and its table artifact lists it)."""
    run = event.flow_run_id
    if run is None:
        return "no flow run yet (waiting for dispatch; the sweep-inbox flow starts one)"
    if run == HANDLED_IN_RECEIVER:
        return "handled by the receiver itself (no flow run); its outcome below is the whole trace"
    if ledger.events_of_run(run) > 1:
        return (f"sync-batch run {run} (named batch-…): its `{BATCH_ARTIFACT_KEY}` artifact lists this event "
                f"with its outcome and ERP id; a batch logs only the events it hands to their own runs")
    return f"sync-event run {run} (named {event_run_name(event.id, event.entity, event.entity_label)})"
