"""Shopify's mandatory compliance topics: what the ledger holds about a customer, erased or exported on request.

Shopify sends every app three topics (shopify.dev, "Privacy law compliance"), to be answered 200:

    customers/redact        erase what is stored about the customer and the orders it names
    shop/redact             erase everything stored about a shop, 48 hours after it uninstalled the app
    customers/data_request  the shop owner asks what is stored about a customer, to hand it over

They are not ERP records, so no mapping handles them: the receiver stores each delivery (durable, like any
other), acts on it here before it answers, and records the outcome (``redacted``, ``request_recorded``) with
ids only. A data request is recorded, not answered by itself: an operator runs ``erpsync privacy export
--customer ID`` and sends the file to the shop (docs/operations.md).

What "about a customer" means in the inbox: a stored body of the same shop that names the customer's id
(``customer.id``; ``id`` of a ``customers/*`` event), one of their orders (``id`` of an ``orders/*`` event;
``order_id`` of a refund, fulfillment or transaction; ``order_edit.order_id``) or their email. Orders found
through the customer count as theirs, so the refunds and fulfillments of those orders are found too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete

from erpsync.errors import InvalidPayload
from erpsync.ledger import DEFAULT_TARGET, EntityKey, Ledger
from erpsync.systems.shopify import models as shopify

log = logging.getLogger("erpsync.privacy")

CUSTOMERS_REDACT = "customers/redact"
SHOP_REDACT = "shop/redact"
DATA_REQUEST = "customers/data_request"
# (source, topic) pairs handled here rather than by an ERP mapping.
COMPLIANCE_TOPICS = frozenset({("shopify", CUSTOMERS_REDACT), ("shopify", SHOP_REDACT), ("shopify", DATA_REQUEST)})

REDACTED = "redacted"
REQUEST_RECORDED = "request_recorded"

# Keys of a stored payload that hold personal text: gathered from the bodies being erased, so the same text is
# also blanked wherever the ledger quoted it (an ERP error's detail in an outcome reason).
# Anywhere in a body these are the buyer's; inside a customer or address object, so are names and places.
_PERSONAL_KEYS = frozenset({"email", "contact_email", "phone", "note", "browser_ip"})
_PERSONAL_IN_OBJECTS = _PERSONAL_KEYS | {"first_name", "last_name", "name", "company", "address1", "address2",
                                         "city", "zip"}
_PERSONAL_OBJECTS = frozenset({"customer", "billing_address", "shipping_address", "default_address",
                               "addresses", "client_details", "destination"})


def handles(source: str, topic: str) -> bool:
    return (source, topic) in COMPLIANCE_TOPICS


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


def validate(topic: str, payload: Any) -> Any:
    """The typed compliance request; InvalidPayload names the field (the receiver answers 400 with it)."""
    parse = {CUSTOMERS_REDACT: shopify.parse_customer_redact, SHOP_REDACT: shopify.parse_shop_redact,
             DATA_REQUEST: shopify.parse_customer_data_request}[topic]
    return parse(payload)


def act(ledger: Ledger, event_id: int) -> str:
    """Carry out the stored compliance request ``event_id`` once; returns its outcome. Safe to repeat: a
    redelivery of a request already acted on changes nothing, one whose first attempt failed is done now."""
    done = ledger.handled_outcome(event_id, (REDACTED, REQUEST_RECORDED))
    if done is not None:
        return done.outcome
    event = ledger.get_event(event_id)
    if event is None:
        raise InvalidPayload(f"inbox event {event_id} does not exist")
    request = validate(event.topic, json.loads(event.body))
    if event.topic == CUSTOMERS_REDACT:
        subject = Subject(customer_id=str(request.customer.id), order_ids={str(o) for o in request.orders_to_redact},
                          shops=(request.shop_domain, None))
        subject.add_email(request.customer.email)
        found = find_events(ledger, subject, exclude=event_id)
        emptied = ledger.redact_events(found.event_ids, sorted(found.personal | _request_texts(request)))
        forgotten = forget_personal_keys(ledger, subject.emails)
        reason = (f"customers/redact of customer {request.customer.id}: {emptied} stored payloads erased "
                  f"({len(found.order_ids)} orders), {forgotten} personal cross-reference keys deleted")
        keep = {"shop_id": request.shop_id, "shop_domain": request.shop_domain,
                "customer": {"id": request.customer.id}, "orders_to_redact": request.orders_to_redact}
        key, outcome = EntityKey("shopify", "customer", str(request.customer.id), DEFAULT_TARGET), REDACTED
    elif event.topic == SHOP_REDACT:
        found = find_events(ledger, Subject(shops=(request.shop_domain,)), exclude=event_id, everything=True)
        emptied = ledger.redact_events(found.event_ids, sorted(found.personal))
        reason = f"shop/redact of shop {request.shop_id}: {emptied} stored payloads erased"
        keep = {"shop_id": request.shop_id, "shop_domain": request.shop_domain}
        key, outcome = EntityKey("shopify", "shop", str(request.shop_id), DEFAULT_TARGET), REDACTED
    else:
        request_id = request.data_request.id if request.data_request else None
        reason = (f"customers/data_request {request_id or ''} for customer {request.customer.id}: recorded; an "
                  f"operator runs `erpsync privacy export --customer {request.customer.id}` and sends the file "
                  f"to the shop").replace("  ", " ")
        keep = {"shop_id": request.shop_id, "shop_domain": request.shop_domain,
                "customer": {"id": request.customer.id}, "orders_requested": request.orders_requested,
                "data_request": {"id": request_id}}
        key, outcome = EntityKey("shopify", "customer", str(request.customer.id), DEFAULT_TARGET), REQUEST_RECORDED
    # The request's own email and phone go too: the stored body keeps its ids only.
    ledger.close_handled_event(event_id, source=event.source, outcome=outcome, key=key, reason=reason,
                               body=json.dumps(keep, sort_keys=True).encode())
    log.info("event %s %s: %s", event_id, event.topic, reason)  # ids and counts only
    return outcome


def _request_texts(request: Any) -> set[str]:
    return {t for t in (request.customer.email, request.customer.phone) if t}


def find_events(ledger: Ledger, subject: Subject, *, exclude: int | None = None,
                everything: bool = False) -> Found:
    """The shopify events whose stored body is about ``subject`` (every event of its shops if ``everything``).

    Two passes over the bodies: the first learns the customer's orders from the events that name the customer,
    the second collects every event naming the customer, one of those orders or an email.
    """
    order_ids = set(subject.order_ids)
    if not everything:
        for _, topic, _, payload in _payloads(ledger, subject, lambda: _needles(subject, set())):
            if _names_customer(topic, payload, subject):
                order_id = _order_of(topic, payload)
                if order_id is not None:
                    order_ids.add(order_id)
                # A recorded request names the orders Shopify counts as the customer's.
                for key in ("orders_requested", "orders_to_redact"):
                    named = payload.get(key)
                    if isinstance(named, list):
                        order_ids.update(t for t in map(_text, named) if t is not None)
                for email in _emails(payload):
                    subject.add_email(email)
    matched, personal = [], set()
    wanted = None if everything else (lambda: _needles(subject, order_ids))
    for event_id, topic, _, payload in _payloads(ledger, subject, wanted):
        if event_id == exclude:
            continue
        if everything or _names_customer(topic, payload, subject) or _order_of(topic, payload) in order_ids:
            matched.append(event_id)
            personal |= set(_personal_texts(payload))
    return Found(matched, personal, order_ids)


def _needles(subject: Subject, order_ids: set[str]) -> list[bytes] | None:
    """Texts one of which a body about the subject must contain; None when that cannot be told from bytes (an
    email with non-ASCII characters may be written with JSON escapes)."""
    texts = [*subject.emails, *order_ids, *([subject.customer_id] if subject.customer_id else [])]
    if not all(text.isascii() for text in texts):
        return None
    return [text.lower().encode() for text in texts]


def _payloads(ledger: Ledger, subject: Subject,
              needles: Callable[[], list[bytes] | None] | None = None) -> Iterator[tuple[int, str, str | None, Any]]:
    """The stored bodies of the subject's shops, parsed; with ``needles``, only those that contain one of them
    (a byte search is far cheaper than parsing every body of a large inbox, and Shopify waits for the answer)."""
    after = 0
    while True:
        rows = ledger.stored_bodies("shopify", after_id=after, shops=subject.shops)
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


def _names_customer(topic: str, payload: dict, subject: Subject) -> bool:
    ids = set()
    customer = payload.get("customer")
    if isinstance(customer, dict):
        ids.add(_text(customer.get("id")))
    if topic.startswith("customers/"):
        ids.add(_text(payload.get("id")))
    if subject.customer_id is not None and subject.customer_id in ids:
        return True
    return bool(subject.emails & {email.strip().lower() for email in _emails(payload)})


def _order_of(topic: str, payload: dict) -> str | None:
    """The Shopify order an event is about, if it is about one."""
    if topic.startswith("orders/") and topic != "orders/edited":
        return _text(payload.get("id"))
    edit = payload.get("order_edit")
    if isinstance(edit, dict):
        return _text(edit.get("order_id"))
    return _text(payload.get("order_id"))


def _emails(payload: Any) -> Iterator[str]:
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in ("email", "contact_email") and isinstance(value, str):
                yield value
            elif isinstance(value, (dict, list)):
                yield from _emails(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from _emails(value)


def _personal_texts(payload: Any, inside: bool = False) -> Iterator[str]:
    """Personal text of a body: every string under a customer or address object, and personal keys anywhere."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            within = inside or key in _PERSONAL_OBJECTS
            personal = key in (_PERSONAL_IN_OBJECTS if inside else _PERSONAL_KEYS)
            if isinstance(value, str) and personal and len(value.strip()) >= 3:
                yield value.strip()
            elif isinstance(value, (dict, list)):
                yield from _personal_texts(value, within)
    elif isinstance(payload, list):
        for value in payload:
            yield from _personal_texts(value, inside)


def forget_personal_keys(ledger: Ledger, emails: Iterable[str]) -> int:
    """Delete the ERP cross-reference cache's rows keyed by these emails (stored as their SHA-256)."""
    from erpsync.xref import XrefEntry

    keys = set()
    for email in emails:
        for variant in {email, email.strip(), email.strip().lower()}:
            keys.add("sha256:" + hashlib.sha256(variant.encode()).hexdigest())
    if not keys:
        return 0
    with ledger.session() as session:
        deleted = session.exec(delete(XrefEntry).where(XrefEntry.field == "email", XrefEntry.value.in_(sorted(keys))))
        session.commit()
        return deleted.rowcount


def export(ledger: Ledger, customer_id: str, *, emails: Iterable[str] = (), shop: str | None = None) -> dict:
    """What the ledger holds about a Shopify customer: the stored payloads about them and their orders, the
    ERP cross-reference of those entities, and every outcome recorded for those events. Plain JSON."""
    subject = Subject(customer_id=str(customer_id), shops=None if shop is None else (shop, None))
    for email in emails:
        subject.add_email(email)
    # Orders named by this customer's recorded compliance requests count as theirs as well.
    found = find_events(ledger, subject)
    events = ledger.events_by_id(found.event_ids)
    entities = [*ledger.entity_states_of("shopify", "customer", [subject.customer_id], DEFAULT_TARGET),
                *ledger.entity_states_of("shopify", "order", sorted(found.order_ids), DEFAULT_TARGET)]
    return {
        "subject": {"source": "shopify", "customer_id": subject.customer_id},
        "generated_at": datetime.now(UTC).isoformat(),
        "events": [{
            "event_id": e.id, "topic": e.topic, "shop": e.shop, "received_at": e.received_at.isoformat(),
            "state": e.state, "payload": json.loads(e.body),
        } for e in events],
        "erp_records": [{
            "entity": f"{s.entity_type}/{s.entity_id}", "erp_record_type": s.to_record_type,
            "external_id": s.external_id, "erp_id": s.to_id, "last_version": s.last_version.isoformat(),
        } for s in entities],
        "outcomes": [{
            "event_id": o.event_id, "outcome": o.outcome, "at": o.at.isoformat(), "entity_type": o.entity_type,
            "entity_id": o.entity_id, "external_id": o.external_id, "erp_id": o.to_id, "reason": o.reason,
        } for o in ledger.outcomes_of(found.event_ids)],
    }


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, (int, str)) else None
