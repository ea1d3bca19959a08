"""Privacy requests against the ledger: find what the inbox holds about a person, erase it, or export it.

A shop's package decides what its requests are and how its bodies name a person (``erpsync/systems/<name>/``,
through a :class:`BodyReading`); what is done with them is the same for every source, and lives here:

    find_events            the stored bodies of a source about a person (their id, their emails, their orders)
    Ledger.redact_events   empty those bodies, blank their personal text out of outcome reasons
    forget_personal_keys   drop the cross-reference cache's rows keyed by the person's emails
    export                 what the ledger holds about the person, as plain JSON (``erpsync privacy export``)

A request is recorded like any other event, with the outcome ``redacted`` or ``request_recorded`` and ids only.
What "about a person" means: a stored body of the same shops that names the person's id or one of their emails,
or one of their orders. Orders found through the person count as theirs, so their refunds and shipments are
found too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete

from erpsync.ledger import Ledger

# Outcomes of a privacy request, and the inbox states of its event (erpsync.ledger.PRIVACY_STATES).
REDACTED = "redacted"
REQUEST_RECORDED = "request_recorded"


@dataclass
class Subject:
    """Whom a request is about: a customer (id, emails), their orders, within some shops."""

    customer_id: str | None = None
    emails: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)
    shops: tuple[str | None, ...] | None = None  # None: any shop

    def add_email(self, email: Any) -> None:
        if isinstance(email, str) and email.strip():
            self.emails.add(email.strip().lower())


@dataclass
class Found:
    event_ids: list[int]
    personal: set[str]  # texts of the bodies found, to blank in outcome reasons
    order_ids: set[str]


class BodyReading(Protocol):
    """How one source's stored bodies name a person: what its package knows of its payloads."""

    def names_customer(self, topic: str, payload: dict, subject: Subject) -> bool:
        """Whether the body names the subject's customer id or one of their emails."""

    def order_of(self, topic: str, payload: dict) -> str | None:
        """The order the event is about, if it is about one."""

    def orders_named(self, payload: dict) -> Iterable[str]:
        """Orders a body about the customer counts as theirs besides its own (a recorded request's list)."""

    def emails(self, payload: Any) -> Iterable[str]:
        """Every email the body holds."""

    def personal_texts(self, payload: Any) -> Iterable[str]:
        """The body's personal text (names, addresses, phones), to blank wherever the ledger quoted it."""


def find_events(ledger: Ledger, source: str, reading: BodyReading, subject: Subject, *, exclude: int | None = None,
                everything: bool = False) -> Found:
    """The events of ``source`` whose stored body is about ``subject`` (every event of its shops if ``everything``).

    Two passes over the bodies: the first learns the customer's orders from the events that name the customer,
    the second collects every event naming the customer, one of those orders or an email.
    """
    order_ids = set(subject.order_ids)
    if not everything:
        for _, topic, _, payload in _payloads(ledger, source, subject, lambda: _needles(subject, set())):
            if reading.names_customer(topic, payload, subject):
                order_id = reading.order_of(topic, payload)
                if order_id is not None:
                    order_ids.add(order_id)
                order_ids.update(reading.orders_named(payload))
                for email in reading.emails(payload):
                    subject.add_email(email)
    matched, personal = [], set()
    wanted = None if everything else (lambda: _needles(subject, order_ids))
    for event_id, topic, _, payload in _payloads(ledger, source, subject, wanted):
        if event_id == exclude:
            continue
        if (everything or reading.names_customer(topic, payload, subject)
                or reading.order_of(topic, payload) in order_ids):
            matched.append(event_id)
            personal |= set(reading.personal_texts(payload))
    return Found(matched, personal, order_ids)


def _needles(subject: Subject, order_ids: set[str]) -> list[bytes] | None:
    """Texts one of which a body about the subject must contain; None when that cannot be told from bytes (an
    email with non-ASCII characters may be written with JSON escapes)."""
    texts = [*subject.emails, *order_ids, *([subject.customer_id] if subject.customer_id else [])]
    if not all(text.isascii() for text in texts):
        return None
    return [text.lower().encode() for text in texts]


def _payloads(ledger: Ledger, source: str, subject: Subject, needles: Callable[[], list[bytes] | None] | None = None
              ) -> Iterator[tuple[int, str, str | None, Any]]:
    """The stored bodies of the subject's shops, parsed; with ``needles``, only those that contain one of them
    (a byte search is far cheaper than parsing every body of a large inbox, and the shop waits for the answer)."""
    after = 0
    while True:
        rows = ledger.stored_bodies(source, after_id=after, shops=subject.shops)
        if not rows:
            return
        for event_id, topic, shop, body in rows:
            after = event_id
            wanted = needles() if needles is not None else None
            if wanted is not None:
                lowered = body.lower()
                if not any(needle in lowered for needle in wanted):
                    continue
            try:
                payload = json.loads(body)
            except ValueError:  # the receiver only stores JSON objects; an old row that is not is left alone
                continue
            if isinstance(payload, dict):
                yield event_id, topic, shop, payload


def forget_personal_keys(ledger: Ledger, emails: Iterable[str]) -> int:
    """Delete the cross-reference cache's rows keyed by these emails (stored as their SHA-256)."""
    from erpsync.xref_cache import XrefEntry

    keys = set()
    for email in emails:
        for variant in {email, email.strip(), email.strip().lower()}:
            keys.add("sha256:" + hashlib.sha256(variant.encode()).hexdigest())
    if not keys:
        return 0
    with ledger.session() as session:
        # Every system's rows: an email is the person's wherever it was looked up.
        deleted = session.exec(delete(XrefEntry).where(XrefEntry.field == "email",
                                                       XrefEntry.value.in_(sorted(keys))))
        session.commit()
        return deleted.rowcount


def export(ledger: Ledger, source: str, reading: BodyReading, subject: Subject) -> dict:
    """What the ledger holds about ``subject``, a customer of ``source``: the stored payloads about them and their
    orders, the cross-reference of those entities in every system they were written to, and every outcome
    recorded for those events. Plain JSON."""
    from erpsync.systems import SYSTEMS

    found = find_events(ledger, source, reading, subject)
    events = ledger.events_by_id(found.event_ids)
    targets = sorted(name for name, system in SYSTEMS.items() if system.writer is not None)
    entities = [state for target in targets for state in (
        *ledger.entity_states_of(source, "customer", [subject.customer_id], target),
        *ledger.entity_states_of(source, "order", sorted(found.order_ids), target))]
    return {
        "subject": {"source": source, "customer_id": subject.customer_id},
        "generated_at": datetime.now(UTC).isoformat(),
        "events": [{
            "event_id": e.id, "topic": e.topic, "shop": e.shop, "received_at": e.received_at.isoformat(),
            "state": e.state, "payload": json.loads(e.body),
        } for e in events],
        "erp_records": [{
            "entity": f"{s.entity_type}/{s.entity_id}", "system": s.to_system, "erp_record_type": s.to_record_type,
            "external_id": s.external_id, "erp_id": s.to_id, "last_version": s.last_version.isoformat(),
        } for s in entities],
        "outcomes": [{
            "event_id": o.event_id, "outcome": o.outcome, "at": o.at.isoformat(), "entity_type": o.entity_type,
            "entity_id": o.entity_id, "external_id": o.external_id, "erp_id": o.to_id, "reason": o.reason,
        } for o in ledger.outcomes_of(found.event_ids)],
    }
