"""Shopify's mandatory compliance topics, carried out by the receiver before it answers (erpsync/privacy.py does it).

Shopify sends every app three topics (shopify.dev, "Privacy law compliance"), to be answered 200:

    customers/redact        erase what is stored about the customer and the orders it names
    shop/redact             erase everything stored about a shop, 48 hours after it uninstalled the app
    customers/data_request  the shop owner asks what is stored about a customer, to hand it over

They are not ERP records, so no mapping handles them: the receiver stores each delivery (durable, like any
other), acts on it here before it answers, and records the outcome (``redacted``, ``request_recorded``) with
ids only. A data request is recorded, not answered by itself: an operator runs ``erpsync privacy export
--customer ID`` and sends the file to the shop (docs/operations.md).

How a Shopify body names a customer: ``customer.id``, ``id`` of a ``customers/*`` event, or their email; one of
their orders: ``id`` of an ``orders/*`` event, ``order_id`` of a refund, fulfillment or transaction,
``order_edit.order_id``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from erpsync.errors import InvalidPayload
from erpsync.ledger import EntityKey, Ledger
from erpsync.privacy import REDACTED, REQUEST_RECORDED, Subject, export, find_events, forget_personal_keys
from erpsync.systems.shopify import models

log = logging.getLogger("erpsync.privacy")

SOURCE = "shopify"
CUSTOMERS_REDACT = "customers/redact"
SHOP_REDACT = "shop/redact"
DATA_REQUEST = "customers/data_request"
TOPICS = (CUSTOMERS_REDACT, SHOP_REDACT, DATA_REQUEST)

# Keys of a stored payload that hold personal text: gathered from the bodies being erased, so the same text is
# also blanked wherever the ledger quoted it (an ERP error's detail in an outcome reason).
# Anywhere in a body these are the buyer's; inside a customer or address object, so are names and places.
_PERSONAL_KEYS = frozenset({"email", "contact_email", "phone", "note", "browser_ip"})
_PERSONAL_IN_OBJECTS = _PERSONAL_KEYS | {"first_name", "last_name", "name", "company", "address1", "address2",
                                         "city", "zip"}
_PERSONAL_OBJECTS = frozenset({"customer", "billing_address", "shipping_address", "default_address",
                               "addresses", "client_details", "destination"})


def validate(topic: str, payload: Any) -> Any:
    """The typed compliance request; InvalidPayload names the field (the receiver answers 400 with it)."""
    parse = {CUSTOMERS_REDACT: models.parse_customer_redact, SHOP_REDACT: models.parse_shop_redact,
             DATA_REQUEST: models.parse_customer_data_request}[topic]
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
        found = find_events(ledger, SOURCE, READING, subject, exclude=event_id)
        emptied = ledger.redact_events(found.event_ids, sorted(found.personal | _request_texts(request)))
        forgotten = forget_personal_keys(ledger, subject.emails)
        reason = (f"customers/redact of customer {request.customer.id}: {emptied} stored payloads erased "
                  f"({len(found.order_ids)} orders), {forgotten} personal cross-reference keys deleted")
        keep = {"shop_id": request.shop_id, "shop_domain": request.shop_domain,
                "customer": {"id": request.customer.id}, "orders_to_redact": request.orders_to_redact}
        entity, outcome = ("customer", str(request.customer.id)), REDACTED
    elif event.topic == SHOP_REDACT:
        found = find_events(ledger, SOURCE, READING, Subject(shops=(request.shop_domain,)), exclude=event_id,
                            everything=True)
        emptied = ledger.redact_events(found.event_ids, sorted(found.personal))
        reason = f"shop/redact of shop {request.shop_id}: {emptied} stored payloads erased"
        keep = {"shop_id": request.shop_id, "shop_domain": request.shop_domain}
        entity, outcome = ("shop", str(request.shop_id)), REDACTED
    else:
        request_id = request.data_request.id if request.data_request else None
        reason = (f"customers/data_request {request_id or ''} for customer {request.customer.id}: recorded; an "
                  f"operator runs `erpsync privacy export --customer {request.customer.id}` and sends the file "
                  f"to the shop").replace("  ", " ")
        keep = {"shop_id": request.shop_id, "shop_domain": request.shop_domain,
                "customer": {"id": request.customer.id}, "orders_requested": request.orders_requested,
                "data_request": {"id": request_id}}
        entity, outcome = ("customer", str(request.customer.id)), REQUEST_RECORDED
    # The request's own email and phone go too: the stored body keeps its ids only.
    ledger.close_handled_event(event_id, source=event.source, outcome=outcome, key=_key(*entity), reason=reason,
                               body=json.dumps(keep, sort_keys=True).encode())
    log.info("event %s %s: %s", event_id, event.topic, reason)  # ids and counts only
    return outcome


def _key(entity_type: str, entity_id: str) -> EntityKey:
    # A request is about the customer everywhere it was written; the outcome names the default target's key.
    from erpsync.systems import DEFAULT_TARGET

    return EntityKey(SOURCE, entity_type, entity_id, DEFAULT_TARGET)


def _request_texts(request: Any) -> set[str]:
    return {t for t in (request.customer.email, request.customer.phone) if t}


def export_customer(ledger: Ledger, customer_id: str, *, emails: Iterable[str] = (), shop: str | None = None) -> dict:
    """What the ledger holds about a Shopify customer (``erpsync privacy export``); erpsync/privacy.py's export.
    Orders named by this customer's recorded compliance requests count as theirs as well."""
    subject = Subject(customer_id=str(customer_id), shops=None if shop is None else (shop, None))
    for email in emails:
        subject.add_email(email)
    return export(ledger, SOURCE, READING, subject)


class ShopifyBodies:
    """How a stored Shopify body names a customer and their orders (erpsync.privacy.BodyReading)."""

    def names_customer(self, topic: str, payload: dict, subject: Subject) -> bool:
        ids = set()
        customer = payload.get("customer")
        if isinstance(customer, dict):
            ids.add(_text(customer.get("id")))
        if topic.startswith("customers/"):
            ids.add(_text(payload.get("id")))
        if subject.customer_id is not None and subject.customer_id in ids:
            return True
        return bool(subject.emails & {email.strip().lower() for email in self.emails(payload)})

    def order_of(self, topic: str, payload: dict) -> str | None:
        if topic.startswith("orders/") and topic != "orders/edited":
            return _text(payload.get("id"))
        edit = payload.get("order_edit")
        if isinstance(edit, dict):
            return _text(edit.get("order_id"))
        return _text(payload.get("order_id"))

    def orders_named(self, payload: dict) -> Iterator[str]:
        # A recorded request names the orders Shopify counts as the customer's.
        for key in ("orders_requested", "orders_to_redact"):
            named = payload.get(key)
            if isinstance(named, list):
                yield from (t for t in map(_text, named) if t is not None)

    def emails(self, payload: Any) -> Iterator[str]:
        if isinstance(payload, dict):
            for key, value in payload.items():
                if key in ("email", "contact_email") and isinstance(value, str):
                    yield value
                elif isinstance(value, (dict, list)):
                    yield from self.emails(value)
        elif isinstance(payload, list):
            for value in payload:
                yield from self.emails(value)

    def personal_texts(self, payload: Any, inside: bool = False) -> Iterator[str]:
        """Every string under a customer or address object, and personal keys anywhere."""
        if isinstance(payload, dict):
            for key, value in payload.items():
                within = inside or key in _PERSONAL_OBJECTS
                personal = key in (_PERSONAL_IN_OBJECTS if inside else _PERSONAL_KEYS)
                if isinstance(value, str) and personal and len(value.strip()) >= 3:
                    yield value.strip()
                elif isinstance(value, (dict, list)):
                    yield from self.personal_texts(value, within)
        elif isinstance(payload, list):
            for value in payload:
                yield from self.personal_texts(value, inside)


READING = ShopifyBodies()


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, (int, str)) else None


class ComplianceRequests:
    """The receiver's handler of the three compliance topics (erpsync.ports.IntakeHandler); needs no settings."""

    def validate(self, topic: str, payload: Any) -> object:
        return validate(topic, payload)

    def start(self, environ: Mapping[str, str]) -> Callable[[Ledger, int], str]:
        return act

    def export(self, ledger: Ledger, customer_id: str, *, emails: Iterable[str] = (),
               shop: str | None = None) -> dict:
        return export_customer(ledger, customer_id, emails=emails, shop=shop)


HANDLER = ComplianceRequests()
