"""The way back's drift: what the ERP says the shop should show and the shop does not, over a window, repaired as the
ERP's own change notices through the inbox.

Kinds (one row per ERP record, ids and quantities only):

    not_fulfilled_in_shop   a shipment the ERP shipped in the window, of an order that came from the shop, has no live
                            fulfillment in the shop (none made, or the one erpsync made was cancelled there) and the
                            shop's order is not fulfilled
    stock_differs           an item changed in the window (saved, or its stock moved by a transaction: NetSuite's
                            stockMove) whose available quantity at a mapped location, as the stock mapping computes
                            it from the ERP, is not what the shop holds there

Both sides are read through the same mappings that write the way back (the ERP's change notices for item
fulfillments and inventory items, read: and each: included), so the comparison uses the same rules as the sync:
a shipment the mapping skips (it came from the shop, or its order did not) or cancels (not shipped) is no drift,
and the stock rule (on hand − committed − the safety buffer, the location map) is the mapping's. The ERP side is
read with the ERP's ChangeReader over the window, the records with its reader's ``get``; the shop side with the
shop reader's ``fulfillment_states`` and ``available_levels`` (ports.ShopStateReader).

A repair is the notice the ERP's change reader writes for that record (same topic and body,
erpsync/change_intake.py), stored under a delivery id of this run
(``reconcile:<run>:<recordType>/<id>:<last modified>``) so the normal pipeline re-reads the record and writes the
shop; its entity's "content applied" mark is cleared first, as order repairs do (repair.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

from erpsync.change_intake import change_topic, notice_body, notified_record_type, whole_seconds_utc
from erpsync.errors import ConfigError, MappingError, SkipEvent
from erpsync.ledger import EntityKey, Ledger
from erpsync.mapping import Mapping as ErpMapping
from erpsync.mapping import find_mapping
from erpsync.ports import Change
from erpsync.reconcile.repair import DELIVERY_PREFIX, queue_repair
from erpsync.reconcile.windows import Window
from erpsync.run_control import Dispatcher

log = logging.getLogger(__name__)

WAY_BACK_KINDS = ("not_fulfilled_in_shop", "stock_differs")
# The ERP record types whose change notices carry the way back's shipments and stock (change_intake.py).
SHIPMENT_TYPE = "itemFulfillment"
STOCK_TYPE = "inventoryItem"
# The reader's record type of stock moved by transactions, whose changes are notices of the items moved.
STOCK_MOVE_TYPE = "stockMove"
PAGE = 200


@dataclass(frozen=True)
class WayBackRow:
    """One ERP record whose effect the shop lacks; ``detail`` holds ids and quantities, never customer data."""

    kind: str
    record_type: str
    internal_id: str
    modified: datetime
    detail: str
    external_id: str | None = None  # the ERP record's own, as its change notice carries it


@dataclass
class WayBackResult:
    rows: list[WayBackRow] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # ERP records compared, by record type
    planned: int = 0
    enqueued: int = 0
    already_in_inbox: int = 0
    dispatched: int = 0
    left_for_sweep: int = 0
    dry_run: bool = False
    event_ids: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for row in self.rows if row.kind == kind) for kind in WAY_BACK_KINDS}


@dataclass(frozen=True)
class WayBackMappings:
    """The ERP → shop mappings of shipments and stock, where the mappings directory has them."""

    shipments: ErpMapping | None
    stock: ErpMapping | None

    @classmethod
    def find(cls, mappings_dir: Path, erp: str, shop: str) -> WayBackMappings:
        def one(record_type: str) -> ErpMapping | None:
            try:
                mapping = find_mapping(mappings_dir, erp, change_topic(record_type))
            except ConfigError:
                return None  # this installation does not take that part of the way back
            return mapping if mapping.target == shop else None

        return cls(one(SHIPMENT_TYPE), one(STOCK_TYPE))


def changes_in_window(erp: Any, record_type: str, window: Window) -> Iterable[Change]:
    """The ERP's changes of ``record_type`` modified in the window's query range, oldest first (keyset pages)."""
    cursor = erp.cursor_at(window.query_start)
    while True:
        page = erp.changes_since(record_type, cursor, limit=PAGE)
        for change in page:
            if change.modified >= window.query_end:
                return
            yield change
        if len(page) < PAGE:
            return
        cursor = page[-1].cursor


def notice_view(mapping: ErpMapping, change: Change, erp: Any) -> dict[str, Any] | None:
    """The notice of ``change`` with what its mapping reads of the ERP now, as the pipeline builds it before mapping
    (erpsync/pipeline.py, read_source); None when a record it reads is gone."""
    payload = json.loads(notice_body(change.record_type, change.internal_id, change.external_id, change.modified))
    view = {**payload, "notice": payload.get("data")}
    for name, spec in (mapping.config.read or {}).items():
        record = erp.get(spec.record_type.render(view), spec.id.render(view), expand_sub_resources=True)
        if record is None:
            return None
        view[name] = record
    return view


def find_way_back_drift(window: Window, *, erp: Any, shop: Any, ledger: Ledger, mappings: WayBackMappings
                        ) -> WayBackResult:
    """Shipments not fulfilled in the shop and stock that differs per location, over ``window``."""
    result = WayBackResult()
    if mappings.shipments is not None:
        _shipments(window, erp, shop, ledger, mappings.shipments, result)
    if mappings.stock is not None:
        _stock(window, erp, shop, mappings.stock, result)
    return result


def _shipments(window: Window, erp: Any, shop: Any, ledger: Ledger, mapping: ErpMapping,
               result: WayBackResult) -> None:
    shipped: list[tuple[Change, str]] = []  # (change, the shop's order id)
    for change in changes_in_window(erp, SHIPMENT_TYPE, window):
        result.checked[SHIPMENT_TYPE] = result.checked.get(SHIPMENT_TYPE, 0) + 1
        view = notice_view(mapping, change, erp)
        if view is None:
            continue  # deleted since: its cancellation is the change reader's to bring
        try:
            record = mapping.apply(view)
        except SkipEvent:
            continue  # came from the shop, not the shop's order, or not shipped (a cancel: rule)
        except MappingError as exc:
            log.warning("reconcile: %s %s cannot be mapped (%s); left to its own event", SHIPMENT_TYPE,
                        change.internal_id, exc.field or "mapping")
            continue
        shipped.append((change, str(record.body.get("order"))))
    if not shipped:
        return
    states = {s.entity_id: s for s in ledger.entity_states_of(
        mapping.source, mapping.entity_type, [c.internal_id for c, _ in shipped], mapping.target)}
    orders = shop.fulfillment_states(sorted({order for _, order in shipped}))
    for change, order in shipped:
        in_shop = orders.get(order)
        if in_shop is None:
            continue  # the order is not in the shop: the order reconciliation reports that side
        state = states.get(change.internal_id)
        if state is not None and state.to_id in in_shop["live"]:
            continue
        if in_shop["fulfilled"]:
            continue  # fulfilled in the shop by other means: nothing left for this shipment to fulfil
        why = ("the fulfillment erpsync made is cancelled or gone in the shop" if state is not None
               else "no fulfillment in the shop")
        result.rows.append(WayBackRow("not_fulfilled_in_shop", SHIPMENT_TYPE, change.internal_id, change.modified,
                                      f"order {order}: {why}", change.external_id))


def stock_changes(erp: Any, window: Window) -> list[Change]:
    """The items whose stock may have changed in the window, once each (its newest change): items saved, and items
    a stock-moving transaction moved, where the ERP's reader reads those apart (NetSuite's ``stockMove``)."""
    newest: dict[str, Change] = {}
    for record_type in (STOCK_TYPE, STOCK_MOVE_TYPE):
        if record_type != STOCK_TYPE and notified_record_type(erp, record_type) != STOCK_TYPE:
            continue  # this ERP's reader has no such record type
        for change in changes_in_window(erp, record_type, window):
            if change.internal_id not in newest or change.modified > newest[change.internal_id].modified:
                newest[change.internal_id] = change
    return sorted(newest.values(), key=lambda change: (change.modified, change.internal_id))


def _stock(window: Window, erp: Any, shop: Any, mapping: ErpMapping, result: WayBackResult) -> None:
    wanted: list[tuple[Change, list[tuple[str, str, int]]]] = []
    for change in stock_changes(erp, window):
        result.checked[STOCK_TYPE] = result.checked.get(STOCK_TYPE, 0) + 1
        view = notice_view(mapping, change, erp)
        if view is None:
            continue
        try:
            records = mapping.apply_each(view).records
        except SkipEvent:
            continue
        except MappingError as exc:
            log.warning("reconcile: %s %s cannot be mapped (%s); left to its own event", STOCK_TYPE,
                        change.internal_id, exc.field or "mapping")
            continue
        levels = [(str(r.body["sku"]), str(r.body["location"]), int(r.body["available"])) for r in records]
        if levels:
            wanted.append((change, levels))
    if not wanted:
        return
    held = shop.available_levels(sorted({sku for _, levels in wanted for sku, _, _ in levels}))
    sold = {sku for sku, _ in held}  # an item the shop does not sell (or cannot name by SKU) is not its stock
    for change, levels in wanted:
        differing = [f"location {location}: ERP {available}, shop {held.get((sku, location), 'not stocked')}"
                     for sku, location, available in levels
                     if sku in sold and held.get((sku, location)) != available]
        if differing:
            result.rows.append(WayBackRow("stock_differs", STOCK_TYPE, change.internal_id, change.modified,
                                          "; ".join(differing), change.external_id))


def way_back_delivery_id(record_type: str, internal_id: str, modified: datetime, run: str) -> str:
    """``reconcile:<run>:itemFulfillment/4512:2026-11-28T03:01:20Z``: one repair per run, record and change."""
    if not run or ":" in run or len(run) > 60:
        raise ConfigError("run: a non-empty id of at most 60 characters without ':'")
    return f"{DELIVERY_PREFIX}:{run}:{record_type}/{internal_id}:{whole_seconds_utc(modified)}"


def enqueue_way_back_repairs(ledger: Ledger, result: WayBackResult, *, mappings: WayBackMappings, run: str,
                             dispatcher: Dispatcher | None = None, dry_run: bool = False) -> WayBackResult:
    """Store each drift row's change notice in the inbox and dispatch it (or count it, ``dry_run``)."""
    by_type = {SHIPMENT_TYPE: mappings.shipments, STOCK_TYPE: mappings.stock}
    todo = {(row.record_type, row.internal_id): row for row in result.rows}
    result.planned, result.dry_run = len(todo), dry_run
    result.enqueued = result.already_in_inbox = result.dispatched = result.left_for_sweep = 0
    result.event_ids = []
    if dry_run:
        return result
    for (record_type, internal_id), row in todo.items():
        mapping = by_type[record_type]
        assert mapping is not None  # a row exists only for a mapping that was read
        body = notice_body(record_type, internal_id, row.external_id, row.modified)
        intake = ledger.record_delivery(
            source=mapping.source, delivery_id=way_back_delivery_id(record_type, internal_id, row.modified, run),
            topic=change_topic(record_type), shop=None, triggered_at=whole_seconds_utc(row.modified), body=body,
            payload_sha256=sha256(body).hexdigest())
        queue_repair(ledger, intake, EntityKey(mapping.source, mapping.entity_type, internal_id, mapping.target),
                     dispatcher, result)
    return result


def way_back_rows(result: WayBackResult, limit: int = 50) -> list[dict[str, Any]]:
    """The first ``limit`` rows as JSON-ready dicts (a Prefect table artifact's rows): ids, kinds, quantities."""
    return [{"kind": row.kind, "record_type": row.record_type, "internal_id": row.internal_id,
             "modified": whole_seconds_utc(row.modified), "detail": row.detail} for row in result.rows[:limit]]
