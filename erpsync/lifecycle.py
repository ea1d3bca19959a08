"""Shopify's ``orders/delete``: the order is gone from the shop; its sales order is closed or left for a person.

The payload is the order's id and nothing else: no timestamp to order it by, no lines, so no mapping can
turn it into a record (a mapping's version must be a timestamp). The receiver stores it like any delivery,
then acts here before it answers:

    report (default)  the event becomes a dead letter whose reason names the sales order and what to do: close
                      it in NetSuite, or ``erpsync lifecycle close-order EVENT_ID``. Deleting an order in
                      Shopify is rare and often a mistake (a test order, a duplicate import); a person decides.
    close             every line of the sales order is closed (``isClosed: true``), through the connector's
                      ``get`` and ``upsert``: NetSuite has no "delete" for a booked order a consultant would
                      use, and a sales order whose lines are all closed is Closed (Oracle, "Closing a Sales
                      Order"). A failure is the same dead letter as a report, with the ERP's reason.

``ERPSYNC_SHOPIFY_ORDER_DELETE`` chooses (``report`` or ``close``); ``close`` needs the ERPSYNC_NETSUITE_*
settings on the receiver.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from erpsync.errors import ConfigError, ErpsyncError, InvalidPayload, PermanentError
from erpsync.ledger import DEFAULT_TARGET, EntityKey, Ledger

log = logging.getLogger("erpsync.lifecycle")

ORDER_DELETE = ("shopify", "orders/delete")
MODES = ("report", "close")
MODE_ENV = "ERPSYNC_SHOPIFY_ORDER_DELETE"
# Outcome recorded when the order was closed (the event is done) or left for a person (a dead letter).
CLOSED, REPORTED = "synced", "failed"


class OrderDeleted(PermanentError):
    """The order was deleted in the shop; its ERP record waits for a person (the dead letter's reason)."""


class RecordClient(Protocol):
    def get(self, record_type: str, id_or_eid: str, *, expand_sub_resources: bool = False) -> dict[str, Any] | None:
        ...

    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any], *,
               previous_id: str | None = None) -> str: ...


def handles(source: str, topic: str) -> bool:
    return (source, topic) == ORDER_DELETE


def mode_from_env(environ: Mapping[str, str] = os.environ) -> str:
    mode = (environ.get(MODE_ENV) or "report").strip().lower()
    if mode not in MODES:
        raise ConfigError(f"{MODE_ENV}: expected one of {', '.join(MODES)}, got {mode!r}")
    return mode


def order_id(payload: Any) -> str:
    """The deleted order's id; InvalidPayload naming ``id`` when it is not one."""
    value = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidPayload("expected the deleted order's id, a positive integer", field="id")
    return str(value)


def external_id(shop_order_id: str) -> str:
    # The order mapping's external id rule (mappings/shopify_order_to_netsuite_sales_order.yaml).
    return f"shopify-order-{shop_order_id}"


def close_sales_order(erp: RecordClient, external: str) -> str | None:
    """Close every line of the sales order with this external id; its internal id, or None if there is none.

    The body sends back each existing line as NetSuite holds it, with ``isClosed: true`` and its ``line``: the
    connector replaces the item sublist, so a line left out would be removed rather than closed.
    """
    record = erp.get("salesOrder", f"eid:{external}", expand_sub_resources=True)
    if record is None:
        return None
    lines = ((record.get("item") or {}).get("items")) or []
    closed = []
    for line in lines:
        kept = {k: v for k, v in line.items() if k in _LINE_FIELDS}
        closed.append({**kept, "isClosed": True})
    return erp.upsert("salesOrder", external, {"item": {"items": closed}}, previous_id=str(record["id"]))


# What a line is made of, sent back unchanged when it is closed (links and computed fields left out).
_LINE_FIELDS = frozenset({"line", "item", "quantity", "rate", "amount", "description", "taxCode", "tax1Amt",
                          "custcol_erpsync_line_key", "price", "location", "department", "class"})


def act(ledger: Ledger, event_id: int, *, mode: str, erp: Callable[[], RecordClient] | None = None) -> str:
    """Handle the stored ``orders/delete`` event once; returns its outcome (``synced`` closed, ``failed``
    reported). A redelivery of an event already handled changes nothing."""
    done = ledger.handled_outcome(event_id, (CLOSED, REPORTED))
    if done is not None:
        return done.outcome
    event = ledger.get_event(event_id)
    if event is None:
        raise InvalidPayload(f"inbox event {event_id} does not exist")
    shop_id = order_id(json.loads(event.body))
    key = EntityKey("shopify", "order", shop_id, DEFAULT_TARGET)
    state = ledger.entity_state(key)
    external = state.external_id if state else external_id(shop_id)
    known = f" (internal id {state.to_id})" if state else " (no sync of it recorded)"
    where = f"NetSuite salesOrder {external}{known}"
    if mode == "close" and erp is not None:
        try:
            erp_id = close_sales_order(erp(), external)
        except ErpsyncError as exc:
            reason = (f"OrderDeleted: Shopify order {shop_id} was deleted; closing {where} failed: "
                      f"{exc.reason if isinstance(exc, PermanentError) else exc}; close it in NetSuite, or retry "
                      f"with `erpsync lifecycle close-order {event_id}`")
            return _finish(ledger, event_id, event.source, key, REPORTED, reason, external, state)
        if erp_id is None:
            reason = f"Shopify order {shop_id} was deleted; {where} does not exist in the ERP: nothing to close"
            return _finish(ledger, event_id, event.source, key, CLOSED, reason, external, None)
        reason = f"Shopify order {shop_id} was deleted; every line of {where} closed"
        return _finish(ledger, event_id, event.source, key, CLOSED, reason, external, state, erp_id)
    reason = (f"OrderDeleted: Shopify order {shop_id} was deleted; {where} is left as it is. Close it in NetSuite "
              f"(or void it), or run `erpsync lifecycle close-order {event_id}`; {MODE_ENV}=close does it for "
              f"every deleted order")
    return _finish(ledger, event_id, event.source, key, REPORTED, reason, external, state)


def _finish(ledger: Ledger, event_id: int, source: str, key: EntityKey, outcome: str, reason: str, external: str,
            state: Any, erp_id: str | None = None) -> str:
    # The payload is the order's id only: nothing to erase from it.
    ledger.close_handled_event(event_id, source=source, outcome=outcome, key=key, reason=reason, body=None,
                               external_id=external, to_id=erp_id or (state.to_id if state else None))
    (log.info if outcome == CLOSED else log.warning)("event %s orders/delete: %s", event_id, reason)
    return outcome


def close_reported(ledger: Ledger, event_id: int, erp: RecordClient) -> str:
    """``erpsync lifecycle close-order``: close the sales order of a reported ``orders/delete`` event now."""
    event = ledger.get_event(event_id)
    if event is None or not handles(event.source, event.topic):
        raise ConfigError(f"event {event_id} is not a stored Shopify orders/delete event")
    shop_id = order_id(json.loads(event.body))
    key = EntityKey("shopify", "order", shop_id, DEFAULT_TARGET)
    state = ledger.entity_state(key)
    external = state.external_id if state else external_id(shop_id)
    erp_id = close_sales_order(erp, external)
    where = f"NetSuite salesOrder {external}"
    reason = (f"Shopify order {shop_id} was deleted; every line of {where} closed by hand (erpsync lifecycle)"
              if erp_id else f"Shopify order {shop_id} was deleted; {where} does not exist in the ERP")
    return _finish(ledger, event_id, event.source, key, CLOSED, reason, external, state, erp_id)
