"""`erpsync sync PAYLOAD.json`: one payload through validate → dedupe → transform → push → confirm, in this process.

It is how a data engineer tries a mapping against the ERP sandbox or a NetSuite sandbox account without a
Prefect server: the payload is stored in the inbox like a delivery (so the ledger, `erpsync status` and
`erpsync dlq` see it as any other event), then run through the same `SyncPipeline` steps a `sync-event` run
takes, against the ERP configured in the environment. Nothing is retried beyond the connector's own quick
retries: a transient failure is reported, and running the command again is the retry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erpsync.batch import sync_one
from erpsync.errors import ConfigError
from erpsync.ledger import EntityKey, Ledger
from erpsync.mapping.xref_resolvers import OfflineXref
from erpsync.pipeline import SyncPipeline, ValidEvent
from erpsync.ports import RecordWriter

# The header totals NetSuite computes on a transaction, printed so the author sees what the ERP made of it.
ERP_TOTAL_FIELDS = ("currency", "subtotal", "discountTotal", "shippingCost", "handlingCost", "taxTotal", "total")


@dataclass(frozen=True)
class SyncResult:
    """What happened to the payload: the outcome, the ids on both sides, and the ERP's own totals."""

    event_id: int
    outcome: str  # synced, duplicate, superseded, skipped, failed, mismatched
    reason: str | None = None
    entity: str | None = None
    record_type: str | None = None
    external_id: str | None = None
    erp_id: str | None = None
    erp_totals: dict[str, Any] | None = None
    # With ``each:`` (a product's variants): every element's record as (external id, ERP id), in order.
    element_ids: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome not in ("failed", "mismatched")

    def lines(self) -> list[str]:
        out = [f"event {self.event_id}: {self.outcome}" + (f" ({self.entity})" if self.entity else "")]
        if self.erp_id is not None:
            out.append(f"ERP {self.record_type or 'record'} {self.erp_id} (external id {self.external_id})")
        for external_id, erp_id in self.element_ids:
            out.append(f"  ERP {self.record_type or 'record'} {erp_id} (external id {external_id})")
        if self.erp_totals:
            out.append("ERP totals: " + ", ".join(f"{name} {value}" for name, value in self.erp_totals.items()))
        if self.reason:
            out.append(f"reason: {self.reason}")
        return out


def read_payload(path: Path) -> bytes:
    """The file's bytes, if they hold one JSON object; ConfigError naming the file otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The position, never the content: a payload holds customer data.
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"{path}: not valid JSON{where}") from None
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: expected a JSON object (a webhook body), found {type(payload).__name__}")
    return raw


def sync_file(
    ledger: Ledger,
    mappings_dir: Path,
    writers: Callable[[str], RecordWriter],
    *,
    path: Path,
    source: str,
    topic: str,
    shop: str | None = None,
) -> SyncResult:
    """Store the payload in the inbox as a delivery of its own, then sync it; returns what happened."""
    body = read_payload(path)
    pipeline = SyncPipeline(ledger, mappings_dir, writers=writers)
    try:
        # The mapping, and its target's settings, are checked before anything is stored: a topic nothing handles
        # or an ERP not configured is a usage error, not an event.
        pipeline.writer(pipeline.mapping_for(source, topic).target)
        # A new delivery id every time: running the command twice is two deliveries of the same content, which
        # dedupe then recognises (layer 2), exactly as a webhook sent twice under two ids would be.
        intake = ledger.record_delivery(
            source=source,
            delivery_id=f"cli-sync:{uuid.uuid4()}",
            topic=topic,
            shop=shop,
            triggered_at=None,
            body=body,
            payload_sha256=hashlib.sha256(body).hexdigest(),
        )
        event_id = intake.event_id
        event: ValidEvent | None = None
        try:
            event = pipeline.validate(event_id)
            outcome = sync_one(pipeline, event)
        except Exception as exc:  # recorded as the dead letter it would be in a run
            reason = pipeline.fail(event_id, exc, event=event)
            # As the ledger recorded it: "failed", or "mismatched" for a payload that is not what the topic
            # carries (a wrong --topic, most often).
            recorded = ledger.outcomes(event_id)
            outcome = recorded[-1].outcome if recorded else "failed"
            return SyncResult(event_id, outcome, reason=reason, entity=str(event.key) if event else None)
        return _result(pipeline, ledger, event, outcome)
    finally:
        pipeline.close()


def _result(pipeline: SyncPipeline, ledger: Ledger, event: ValidEvent, outcome: str) -> SyncResult:
    recorded = [row for row in ledger.outcomes(event.event_id) if row.outcome == outcome]
    last = recorded[-1] if recorded else None
    state = ledger.entity_state(event.key)
    totals = None
    if state is not None:
        # Read back from the ERP, not from the body sent: the totals are what NetSuite computed from it.
        record = pipeline.writer(state.to_system).get(state.to_record_type, state.to_id) or {}
        totals = {name: _plain(record[name]) for name in ERP_TOTAL_FIELDS if name in record} or None
    return SyncResult(
        event.event_id, outcome, reason=last.reason if last else None,
        entity=str(event.key), record_type=state.to_record_type if state else None,
        external_id=state.external_id if state else None, erp_id=state.to_id if state else None,
        erp_totals=totals, element_ids=_element_ids(pipeline, ledger, event) if outcome == "synced" else (),
    )


def _element_ids(pipeline: SyncPipeline, ledger: Ledger, event: ValidEvent) -> tuple[tuple[str, str], ...]:
    """Each element's ERP id from its own ledger row, for a mapping with ``each:`` (else nothing)."""
    mapping = pipeline.mapping_for(event.source, event.topic)
    if mapping.config.each is None:
        return ()
    stored = ledger.get_event(event.event_id)
    payload = json.loads(stored.body) if stored is not None and stored.body else {}
    # External ids depend on the payload only, so the records are rebuilt offline: no ERP call here.
    records = mapping.apply_each(payload, xref=OfflineXref()).records
    found = []
    for record in records:
        state = ledger.entity_state(EntityKey(event.source, mapping.config.each.as_, record.external_id,
                                              mapping.target))
        if state is not None:
            found.append((record.external_id, state.to_id))
    return tuple(found)


def _plain(value: Any) -> Any:
    """A reference such as ``{"id": "1", "refName": "USD"}`` printed by its name."""
    if isinstance(value, dict):
        return value.get("refName") or value.get("id")
    return value
