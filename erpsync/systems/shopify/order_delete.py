"""Shopify's ``orders/delete``: the order is gone from the shop; its ERP record is closed or left for a person.

The payload is the order's id and nothing else: no timestamp to order it by, no lines, so no mapping can
turn it into a record (a mapping's version must be a timestamp). The receiver stores it like any delivery,
then acts here before it answers:

    report (default)  the event becomes a dead letter whose reason names the ERP record and what to do: close
                      it in the ERP, or ``erpsync lifecycle close-order EVENT_ID``. Deleting an order in
                      Shopify is rare and often a mistake (a test order, a duplicate import); a person decides.
    close             every line of the record is closed through the ERP's RecordWriter (erpsync/lifecycle.py).
                      A failure is the same dead letter as a report, with the ERP's reason.

``ERPSYNC_SHOPIFY_ORDER_DELETE`` chooses (``report`` or ``close``). The ERP, its record type and the external id
rule are the order mapping's (the one handling ``orders/create``); without one, the registry's default target
and the shipped mapping's ``salesOrder`` and ``shopify-order-{id}``. ``close`` needs that ERP's settings on the
receiver.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from erpsync.errors import ConfigError, ErpsyncError, InvalidPayload, PermanentError
from erpsync.ledger import EntityKey, Ledger
from erpsync.lifecycle import CLOSED, REPORTED, close_lines

log = logging.getLogger("erpsync.lifecycle")

SOURCE = "shopify"
TOPIC = "orders/delete"
MODES = ("report", "close")
MODE_ENV = "ERPSYNC_SHOPIFY_ORDER_DELETE"
# The order mapping: the topic whose mapping says where an order is written, and the shipped one's choices.
ORDER_TOPIC = "orders/create"
DEFAULT_RECORD_TYPE = "salesOrder"


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


@dataclass(frozen=True)
class OrderTarget:
    """Where an order was written: the ERP (registry name and the name messages use) and its record type."""

    system: str
    title: str
    record_type: str


def order_target(environ: Mapping[str, str] = os.environ) -> OrderTarget:
    """The order mapping's target and record type; the registry's default target when no mapping is readable."""
    from erpsync.mapping import find_mapping
    from erpsync.settings import Settings
    from erpsync.systems import DEFAULT_TARGET, system

    try:
        mapping = find_mapping(Settings.from_env(environ).mappings_dir, SOURCE, ORDER_TOPIC)
        target, record_type = mapping.target, mapping.config.record_type
    except ConfigError:
        target, record_type = DEFAULT_TARGET, DEFAULT_RECORD_TYPE
    return OrderTarget(target, system(target).title or target, record_type)


def act(ledger: Ledger, event_id: int, *, mode: str, target: OrderTarget, erp: Callable[[], Any] | None = None) -> str:
    """Handle the stored ``orders/delete`` event once; returns its outcome (``synced`` closed, ``failed``
    reported). ``erp()`` gives the target's RecordWriter (close mode). A redelivery of an event already handled
    changes nothing."""
    done = ledger.handled_outcome(event_id, (CLOSED, REPORTED))
    if done is not None:
        return done.outcome
    event = ledger.get_event(event_id)
    if event is None:
        raise InvalidPayload(f"inbox event {event_id} does not exist")
    shop_id = order_id(json.loads(event.body))
    key = EntityKey(SOURCE, "order", shop_id, target.system)
    state = ledger.entity_state(key)
    external = state.external_id if state else external_id(shop_id)
    known = f" (internal id {state.to_id})" if state else " (no sync of it recorded)"
    where = f"{target.title} {target.record_type} {external}{known}"
    if mode == "close" and erp is not None:
        try:
            erp_id = close_lines(erp(), target.record_type, external)
        except ErpsyncError as exc:
            reason = (f"OrderDeleted: Shopify order {shop_id} was deleted; closing {where} failed: "
                      f"{exc.reason if isinstance(exc, PermanentError) else exc}; close it in {target.title}, or "
                      f"retry with `erpsync lifecycle close-order {event_id}`")
            return _finish(ledger, event_id, event.source, key, REPORTED, reason, external, state)
        if erp_id is None:
            reason = f"Shopify order {shop_id} was deleted; {where} does not exist in the ERP: nothing to close"
            return _finish(ledger, event_id, event.source, key, CLOSED, reason, external, None)
        reason = f"Shopify order {shop_id} was deleted; every line of {where} closed"
        return _finish(ledger, event_id, event.source, key, CLOSED, reason, external, state, erp_id)
    reason = (f"OrderDeleted: Shopify order {shop_id} was deleted; {where} is left as it is. Close it in "
              f"{target.title} (or void it), or run `erpsync lifecycle close-order {event_id}`; {MODE_ENV}=close "
              f"does it for every deleted order")
    return _finish(ledger, event_id, event.source, key, REPORTED, reason, external, state)


def _finish(ledger: Ledger, event_id: int, source: str, key: EntityKey, outcome: str, reason: str, external: str,
            state: Any, erp_id: str | None = None) -> str:
    # The payload is the order's id only: nothing to erase from it.
    ledger.close_handled_event(event_id, source=source, outcome=outcome, key=key, reason=reason, body=None,
                               external_id=external, to_id=erp_id or (state.to_id if state else None))
    (log.info if outcome == CLOSED else log.warning)("event %s orders/delete: %s", event_id, reason)
    return outcome


def close_reported(ledger: Ledger, event_id: int, erp: Any, target: OrderTarget) -> str:
    """``erpsync lifecycle close-order``: close the ERP record of a reported ``orders/delete`` event now."""
    event = ledger.get_event(event_id)
    if event is None or (event.source, event.topic) != (SOURCE, TOPIC):
        raise ConfigError(f"event {event_id} is not a stored Shopify orders/delete event")
    shop_id = order_id(json.loads(event.body))
    key = EntityKey(SOURCE, "order", shop_id, target.system)
    state = ledger.entity_state(key)
    external = state.external_id if state else external_id(shop_id)
    erp_id = close_lines(erp, target.record_type, external)
    where = f"{target.title} {target.record_type} {external}"
    reason = (f"Shopify order {shop_id} was deleted; every line of {where} closed by hand (erpsync lifecycle)"
              if erp_id else f"Shopify order {shop_id} was deleted; {where} does not exist in the ERP")
    return _finish(ledger, event_id, event.source, key, CLOSED, reason, external, state, erp_id)


def _open_writer(target: OrderTarget, environ: Mapping[str, str]) -> Any:
    """The target's RecordWriter from the environment, under the ERP slots the ledger's database shares."""
    from erpsync.settings import Settings
    from erpsync.systems import open_writer

    return open_writer(target.system, Settings.from_env(environ).database_url, environ)


class OrderDeletions:
    """The receiver's handler of ``orders/delete`` (erpsync.ports.IntakeHandler)."""

    def validate(self, topic: str, payload: Any) -> object:
        return order_id(payload)

    def start(self, environ: Mapping[str, str]) -> Callable[[Ledger, int], str]:
        """Read the mode, and in close mode make the ERP's client now: a missing setting stops the receiver at
        start rather than at the first deletion."""
        mode = mode_from_env(environ)
        target = order_target(environ)
        erp = None
        if mode == "close":
            writer = _open_writer(target, environ)

            def erp() -> Any:
                return writer

        return lambda ledger, event_id: act(ledger, event_id, mode=mode, target=target, erp=erp)

    def close_order(self, ledger: Ledger, event_id: int, environ: Mapping[str, str] = os.environ) -> str:
        target = order_target(environ)
        writer = _open_writer(target, environ)
        try:
            return close_reported(ledger, event_id, writer, target)
        finally:
            writer.close()


HANDLER = OrderDeletions()
