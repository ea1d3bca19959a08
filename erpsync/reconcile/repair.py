"""Repairs: which drift is re-synced, and re-syncing it through the normal pipeline (inbox event + dispatch).

A repair is never a side door to the ERP. The source record is stored in the inbox as if it had been
delivered (delivery id ``reconcile:<run>:<entity type>/<entity id>:<version>``, topic ``orders/updated``) and
the usual sync-event run picks it up: same validation, dedupe, ledger and upsert as a webhook.

The run is part of the delivery id: one run never queues the same repair twice (a retried run of the same
flow run id finds its events already in the inbox), while a later run can repair the same version again
when the ERP lost it again. Before queueing, the entity's "this content is applied" mark in the ledger is
cleared, because the comparison has just shown the ERP does not hold it; otherwise dedupe's layer 2 would
skip the repair as a duplicate of the content it is restoring. The version guard (layer 3) stays: a repair
never overwrites a newer applied version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from erpsync.errors import ConfigError, ErpsyncError, MappingError
from erpsync.ledger import EntityKey, Ledger
from erpsync.mapping import Mapping as ErpMapping
from erpsync.reconcile.compare import DriftSet
from erpsync.run_control import Dispatcher

log = logging.getLogger(__name__)

REPAIR_TOPIC = "orders/updated"
DELIVERY_PREFIX = "reconcile"
FETCH_BATCH = 250


@dataclass(frozen=True)
class Repair:
    """One entity to re-sync, and why (no customer data: ids, kinds and field names only)."""

    entity_id: str
    external_id: str | None
    kind: str
    fields: str | None
    newer: str


@dataclass
class RepairResult:
    """What ``enqueue_repairs`` did (or, with ``dry_run``, would do)."""

    planned: int = 0
    enqueued: int = 0
    already_in_inbox: int = 0
    dispatched: int = 0
    left_for_sweep: int = 0
    gone_at_source: int = 0
    dry_run: bool = False
    event_ids: list[int] = field(default_factory=list)


def plan_repairs(
    drift: DriftSet | pd.DataFrame,
    *,
    authoritative_fields: Iterable[str] = (),
    retry_dead_letters: bool = False,
) -> list[Repair]:
    """The drift rows to re-sync from the source; everything else is reported only.

    - ``missing_in_erp`` whose record the mapping accepts: re-sync.
    - ``mismatch`` where the source is newer or neither side is (``newer`` source/same): re-sync.
    - ``mismatch`` where the ERP is newer (a hand edit) or both changed: re-sync only if every differing field
      is in ``authoritative_fields`` (the source owns it), else report — a person's edit is not overwritten.
    - ``erp_only``: never (deleting or overwriting an ERP record is a person's decision).
    - ``dead_lettered``: only with ``retry_dead_letters`` and when the mapping now accepts the record;
      otherwise a re-sync would fail the same way.
    """
    owned = set(authoritative_fields) | {"version"}
    frames = [drift] if isinstance(drift, pd.DataFrame) else drift.chunks()
    repairs: list[Repair] = []
    for frame in frames:
        for row in frame.itertuples(index=False):
            if _should_repair(row, owned, retry_dead_letters):
                repairs.append(Repair(
                    entity_id=str(row.entity_id), external_id=_text(row.external_id), kind=row.kind,
                    fields=_text(row.fields), newer=row.newer,
                ))
    return repairs


def _should_repair(row: Any, owned: set[str], retry_dead_letters: bool) -> bool:
    mapping_fails = isinstance(row.detail, str) and row.detail.startswith("mapping fails")
    if row.entity_id is None or pd.isna(row.entity_id) or mapping_fails:
        return False
    if row.kind == "missing_in_erp":
        return True
    if row.kind == "mismatch":
        if row.fields == "mapping":
            return False
        if row.newer in ("source", "same"):
            return True
        differing = set(str(row.fields or "").split(",")) - {""}
        return bool(differing) and differing <= owned and differing != {"version"}
    if row.kind == "dead_lettered":
        return retry_dead_letters
    return False


def delivery_id(entity_type: str, entity_id: str, version: datetime | int | float | str, run: str) -> str:
    """``reconcile:<run>:order/123:2026-11-27T10:00:00+00:00``: one inbox event per run, entity and version.

    ``run`` names the reconciliation run (its flow run id, or its start time): the same run queueing the same
    repair again finds it in the inbox (layer-1 dedupe); a later run gets an event of its own.
    """
    if not run or ":" in run or len(run) > 60:
        raise ConfigError("run: a non-empty id of at most 60 characters without ':'")
    stamp = version.astimezone(UTC).isoformat() if isinstance(version, datetime) else str(version)
    return f"{DELIVERY_PREFIX}:{run}:{entity_type}/{entity_id}:{stamp}"


def run_stamp(moment: datetime) -> str:
    """A run id from a start time, for runs outside Prefect: ``20261128T020000.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def enqueue_repairs(
    ledger: Ledger,
    repairs: Iterable[Repair],
    *,
    mapping: ErpMapping,
    fetch_orders: Callable[[list[str]], Iterable[list[Mapping[str, Any]]]],
    run: str,
    dispatcher: Dispatcher | None = None,
    shop: str | None = None,
    topic: str = REPAIR_TOPIC,
    dry_run: bool = False,
) -> RepairResult:
    """Store each repair's current source record as an inbox event and dispatch it (or count it, ``dry_run``).

    ``fetch_orders(entity_ids)`` yields pages of source records (``ShopOrderReader.orders_by_ids``): the
    record is read again now, so the newest version is what gets synced. An entity the source no longer has
    is counted in ``gone_at_source``. Without a ``dispatcher``, or when dispatch fails transiently, the
    events wait for the sweep-inbox flow, exactly like a webhook received while Prefect was away.
    """
    # One repair per entity and run, however many drift rows named it.
    todo = list({repair.entity_id: repair for repair in repairs}.values())
    result = RepairResult(planned=len(todo), dry_run=dry_run)
    if dry_run or not todo:
        return result
    for start in range(0, len(todo), FETCH_BATCH):
        batch = todo[start: start + FETCH_BATCH]
        wanted = {repair.entity_id for repair in batch}
        found: set[str] = set()
        for page in fetch_orders(sorted(wanted)):
            for payload in page:
                entity_id = mapping.entity_id(payload)
                if entity_id not in wanted or entity_id in found:
                    continue
                found.add(entity_id)
                _enqueue_one(ledger, mapping, payload, entity_id, run, dispatcher, shop, topic, result)
        result.gone_at_source += len(wanted - found)
    return result


def _enqueue_one(
    ledger: Ledger,
    mapping: ErpMapping,
    payload: Mapping[str, Any],
    entity_id: str,
    run: str,
    dispatcher: Dispatcher | None,
    shop: str | None,
    topic: str,
    result: RepairResult,
) -> None:
    try:
        version = mapping.source_version(payload)
    except MappingError:
        version = "unversioned"
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    intake = ledger.record_delivery(
        source=mapping.source,
        delivery_id=delivery_id(mapping.entity_type, entity_id, version, run),
        topic=topic,
        shop=shop,
        triggered_at=datetime.now(UTC).isoformat(),
        body=body,
        payload_sha256=hashlib.sha256(body).hexdigest(),
    )
    queue_repair(ledger, intake, EntityKey(mapping.source, mapping.entity_type, entity_id, mapping.target),
                 dispatcher, result)


def queue_repair(ledger: Ledger, intake: Any, key: EntityKey, dispatcher: Dispatcher | None, result: Any) -> None:
    """What follows a repair's ``record_delivery``, for orders and for the way back alike: count it, make the
    entity's last content forgettable, and dispatch it (or leave it for sweep-inbox).

    ``intake`` is the ledger's answer to ``record_delivery``; ``result`` counts (``already_in_inbox``, ``enqueued``,
    ``event_ids``, ``dispatched``, ``left_for_sweep``)."""
    if not intake.is_new:
        result.already_in_inbox += 1
        return
    # The target lacks what this content wrote: without this, dedupe would skip the repair as already applied.
    ledger.forget_applied_content(key)
    result.enqueued += 1
    result.event_ids.append(intake.event_id)
    if dispatcher is None:
        result.left_for_sweep += 1
        return
    try:
        flow_run_id = dispatcher.dispatch(intake.event_id)
    except ErpsyncError as exc:
        # The event is safe in the inbox; sweep-inbox dispatches it later, as for any webhook.
        log.warning("repair event %s not dispatched (%s); left for sweep-inbox", intake.event_id, type(exc).__name__)
        result.left_for_sweep += 1
        return
    ledger.mark_dispatched(intake.event_id, flow_run_id)
    result.dispatched += 1


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
