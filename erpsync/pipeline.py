"""The steps of one event's sync — validate, dedupe, transform, push, confirm — free of Prefect.

`tasks/` wraps each step in a Prefect task (retries, names in the UI); `flows/sync_event.py` orders them.
Steps pass ids and small records between them, never the raw payload: it is re-read from the inbox where needed,
so customer data stays in our database and out of Prefect's.

Which mapping handles an event is data: the mapping file that declares the event's source and topic. It also
says which entity the event is about and where its version is, so a new topic needs a mapping file, not code.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from erpsync import failpoints
from erpsync.dedupe import decide
from erpsync.drift_fields import DriftMemory
from erpsync.errors import (
    ConfigError,
    ConflictingChange,
    DuplicateEvent,
    EntityBusy,
    ErpRejected,
    ErpsyncError,
    InvalidPayload,
    MappingError,
    PayloadMismatch,
    PermanentError,
    SkipEvent,
    SupersededEvent,
    TransientError,
    WithdrawRecord,
)
from erpsync.field_ownership import FieldOwnership, load_ownership
from erpsync.ledger import EntityKey, EventLabel, FieldConflict, InboxEvent, Ledger, utcnow
from erpsync.mapping import MappedRecord, Mapping, find_mapping
from erpsync.mapping.money_check import check_total
from erpsync.ports import RecordWriter
from erpsync.systems import DEFAULT_TARGET, MODELS
from erpsync.write_context import event_identity, writing_for
from erpsync.xref_cache import LedgerXref

log = logging.getLogger(__name__)

# A claim older than this belongs to a run that died without releasing it. Longer than the slowest live
# push (connector retries × timeout, plus the push task's retries), and matched by dedupe's wait in tasks/.
CLAIM_STALE_AFTER = timedelta(minutes=15)
# How long, and for how many events at most, a payload validate read is kept for the transform after it.
READ_ONCE_SECONDS = 30.0
READ_ONCE_KEPT = 1000
# Writes over a field the target keeps changing between erpsync's read and its write, before the event is retried.
OVERWRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class ValidEvent:
    """What the later steps need to know of a validated event — no customer data."""

    event_id: int
    source: str
    topic: str
    key: EntityKey
    version: datetime
    payload_sha256: str
    flow_run_id: str | None = None  # the run syncing it, recorded on the entity's claim
    label: str | None = None  # the order code staff know it by (the mapping's entity.label), e.g. #1042

    @property
    def about(self) -> EventLabel:
        """Who the event is about, as the inbox records it for an operator to find."""
        return EventLabel(self.event_id, f"{self.key.entity_type}/{self.key.entity_id}", self.label)


@dataclass(frozen=True)
class Elements:
    """The records of an ``each:`` mapping (a product's variants), pushed one after the other under the
    event's claim. Each has a ledger row of its own, ``<source>/<as>/<external id>`` (``shopify/variant/
    shopify-variant-7``), written as soon as the ERP took it, so every id stays findable even when a later
    element is refused."""

    source: str
    entity_type: str  # the mapping's each.as
    records: tuple[tuple[MappedRecord, str | None], ...]  # each with the ERP id it was last written to
    skipped: tuple[str, ...]  # the elements left out, with why
    version: datetime
    payload_sha256: str
    to_system: str


@dataclass(frozen=True)
class Transformed:
    record: MappedRecord  # with each:, the first element's
    mapping_version: str
    # The ERP id this entity was last written to, if any: an update must key its sublist lines to the record's
    # existing lines, a first write need not read the record first.
    previous_erp_id: str | None = None
    elements: Elements | None = None
    # The mapping's cancel: held (the source undid the record): the push withdraws what previous_erp_id names.
    withdraw: str | None = None
    # The event and entity, for the push to report a conflict settled by ownership against them.
    event_id: int | None = None
    key: EntityKey | None = None
    # The event's payload hash: with its id, what a target's request keys are derived from (write_context.py).
    payload_sha256: str | None = None
    # Mapped fields left out because the target owns them (erpsync/field_ownership.py).
    target_owned: tuple[str, ...] = ()


class ElementRefused(ErpRejected):
    """The ERP refused one element's record: the message names the element's key (a SKU, no customer data)."""

    def __init__(self, exc: ErpRejected, record: MappedRecord):
        super().__init__(exc.status, exc.code, exc.detail, exc.path)
        self.element = f"{record.key_source} {record.key!r} ({record.record_type} {record.external_id})"
        self.args = (f"{record.key_source} {record.key!r}: the ERP refused {record.record_type} "
                     f"{record.external_id} ({self}); records of the elements before it were written",)

    @property
    def reason(self) -> str:
        # Shaped as the ERP's own refusal, so that dead letters group by its code and field; the element and
        # its key lead the detail, which `erpsync dlq show` prints.
        where = f" at {self.path}" if self.path else ""
        return f"ErpRejected: HTTP {self.status} {self.code}{where}: {self.element}: {self.detail}"


class SyncPipeline:
    """The steps, over one ledger and one mappings folder, writing to each mapping's target (``to:``).

    ``writers(name)`` opens a writer for the system ``name`` (production: ``erpsync.systems.open_writer`` with the
    ledger's URL, so every worker shares the ERP's slots); ``erp()`` is the shorter form for a pipeline that writes
    to the default target only (a test, a one-ERP tool). A mapping whose target has no writer is a ConfigError
    naming it, never a write to another system.
    """

    def __init__(self, ledger: Ledger, mappings_dir: Path, erp: Callable[[], RecordWriter] | None = None, *,
                 writers: Callable[[str], RecordWriter] | None = None):
        if (erp is None) == (writers is None):
            raise TypeError("pass one of erp (the default target's writer) or writers (a writer per target)")
        self.ledger = ledger
        self.mappings_dir = Path(mappings_dir)
        self._open = writers or _default_target_only(erp)
        self._writers: dict[str, RecordWriter] = {}
        self._xrefs: dict[str, LedgerXref] = {}
        # A batch's threads reach for a writer at once: one client (one set of slot connections) per target and
        # pipeline, made under this lock, not one per thread that happened to look first.
        self._lazy = threading.Lock()
        self._drift = DriftMemory(ledger.engine)
        # The payload validate read, kept for the transform that follows it (erpsync/batch.py runs the two
        # moments apart; sync-event as consecutive tasks of one process): one read and parse per event, not two.
        # Taken once, and only for READ_ONCE_SECONDS: a transform retried later reads the inbox again, so a
        # payload redacted or purged meanwhile is not mapped from memory.
        self._read_once: OrderedDict[int, tuple[float, dict]] = OrderedDict()
        self._read_once_lock = threading.Lock()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def writer(self, target: str) -> RecordWriter:
        """The writer of system ``target``, opened at first use."""
        writer = self._writers.get(target)
        if writer is None:
            with self._lazy:
                writer = self._writers.get(target)
                if writer is None:
                    writer = self._writers[target] = self._open(target)
        return writer

    @property
    def erp(self) -> RecordWriter:
        """The default target's writer."""
        return self.writer(DEFAULT_TARGET)

    def xref_for(self, target: str) -> LedgerXref:
        """``target``'s internal ids by natural key (SKU, email), cached in the ledger, asked of it on a miss."""
        xref = self._xrefs.get(target)
        if xref is None:
            writer = self.writer(target)
            with self._lazy:
                xref = self._xrefs.get(target)
                if xref is None:
                    xref = self._xrefs[target] = LedgerXref(self.ledger.engine, writer, system=target)
        return xref

    @property
    def xref(self) -> LedgerXref:
        return self.xref_for(DEFAULT_TARGET)

    def _payload(self, event_id: int) -> tuple[InboxEvent, dict]:
        event = self.ledger.get_event(event_id)
        if event is None:
            raise PermanentError(f"inbox event {event_id} does not exist")
        if not event.body:
            raise PermanentError(f"inbox event {event_id}: its payload was purged (erpsync purge); "
                                 f"the source must send it again")
        return event, json.loads(event.body)

    def _keep_for_transform(self, event_id: int, payload: dict) -> None:
        now = time.monotonic()
        with self._read_once_lock:
            self._read_once[event_id] = (now, payload)
            self._read_once.move_to_end(event_id)  # oldest first, also for an event validated again
            # Events skipped at dedupe never come to take theirs: dropped, oldest first, once past either bound,
            # so no customer data stays in memory longer than READ_ONCE_SECONDS after the next event's validate.
            while len(self._read_once) > READ_ONCE_KEPT or self._oldest_kept_age(now) > READ_ONCE_SECONDS:
                self._read_once.popitem(last=False)

    def _oldest_kept_age(self, now: float) -> float:
        kept_at, _ = next(iter(self._read_once.values()))
        return now - kept_at

    def _kept_for_transform(self, event_id: int) -> dict | None:
        with self._read_once_lock:
            kept = self._read_once.pop(event_id, None)
        if kept is None or time.monotonic() - kept[0] > READ_ONCE_SECONDS:
            return None
        return kept[1]

    def mapping_for(self, source: str, topic: str) -> Mapping:
        """The mapping that handles this source and topic, read from disk now (a fixed file applies on retry)."""
        return find_mapping(self.mappings_dir, source, topic)

    def validate(self, event_id: int, *, flow_run_id: str | None = None, assigned: bool = False) -> ValidEvent:
        """Read and check the event. ``assigned``: the inbox already names ``flow_run_id`` as its run (a batch
        took it), so there is nothing to note — a write saved per event."""
        if flow_run_id is not None and not assigned:
            self.ledger.note_run(event_id, flow_run_id)
        event, payload = self._payload(event_id)
        mapping = self.mapping_for(event.source, event.topic)
        label = mapping.entity_label(payload)
        if not assigned:  # a batch records a whole chunk's at once (erpsync/batch.py)
            self._note_entity(event_id, mapping, payload, label)
        if mapping.model is not None:
            try:
                MODELS[mapping.model](payload)  # raises InvalidPayload naming the field
            except InvalidPayload as exc:
                if not _lacks_the_topics_own_fields(exc):
                    raise  # the topic's payload with a bad value: a dead letter, as any other
                message = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
                raise PayloadMismatch(message, field=exc.field) from None
        version = mapping.source_version(payload)
        if not isinstance(version, datetime):
            raise ConfigError(f"{mapping.ref}: entity.version must name a timestamp field; numeric versions "
                              f"are not supported by the ledger yet")
        self._log_drift(mapping, payload)
        self._keep_for_transform(event_id, payload)
        return ValidEvent(
            event_id=event_id,
            source=event.source,
            topic=event.topic,
            key=EntityKey(event.source, mapping.entity_type, mapping.entity_id(payload), mapping.target),
            version=version,
            payload_sha256=event.payload_sha256,
            flow_run_id=flow_run_id,
            label=label,
        )

    def _note_entity(self, event_id: int, mapping: Mapping, payload: dict, label: str | None) -> None:
        """Record who the event is about before anything can fail, so a dead letter is found by its order too."""
        try:
            entity = f"{mapping.entity_type}/{mapping.entity_id(payload)}"
        except ErpsyncError:
            entity = None  # its field is missing: validation says so next
        if entity or label:
            self.ledger.note_entities([EventLabel(event_id, entity, label)])

    def _log_drift(self, mapping: Mapping, payload: dict) -> None:
        """Log the source fields no rule reads nor ``ignore:`` names, the first time any worker meets each.

        Not fatal: a new source field is how a platform change announces itself, once. Names only, no values.
        """
        unread = mapping.unread_fields(payload)
        if not unread:
            return
        try:
            new = self._drift.first_seen(mapping.name, unread)
        except SQLAlchemyError as exc:
            # The report must not fail the event: say the fields without the memory of having said them.
            log.warning("%s: drift fields not remembered (%s)", mapping.ref, type(exc).__name__)
            new = unread
        if new:
            shown = ", ".join(new[:20]) + (f", … ({len(new) - 20} more)" if len(new) > 20 else "")
            log.info("%s: %d new source field(s) no rule reads (see `erpsync mapping drift --new`; add them to "
                     "the mapping's fields or ignore:): %s", mapping.ref, len(new), shown)

    def dedupe(self, event: ValidEvent) -> SkipEvent | None:
        """Claim the entity; return why the event needs no ERP write, or None to apply it."""
        if not self.ledger.claim(event.key, event.event_id, stale_after=CLAIM_STALE_AFTER,
                                 flow_run_id=event.flow_run_id):
            raise EntityBusy(f"{event.key} is being synced by another event")
        failpoints.hit("dedupe.after")
        origin = self.ledger.written_by_us(event.key)
        if origin is not None:
            # No echo: the record is one erpsync wrote from the other side, which owns it; sending it back would
            # make a second record there (a shop fulfillment made from a NetSuite shipment would ship it again).
            return SkipEvent(f"{event.key}: erpsync wrote this {event.key.entity_type} ({origin.to_id}) from "
                             f"{origin.from_system} {origin.entity_type} {origin.entity_id}; it is not sent back "
                             f"(no echo), and a change made to it in {event.source} is not written to "
                             f"{origin.from_system}, which owns it")
        state = self.ledger.entity_state(event.key)
        decision = decide(
            version=event.version,
            payload_sha256=event.payload_sha256,
            last_version=state.last_version if state else None,
            last_payload_sha256=state.last_payload_sha256 if state else None,
            event_already_applied=self.ledger.event_applied(event.event_id),
        )
        if decision == "duplicate":
            return DuplicateEvent(f"{event.key}: this content was already applied")
        if decision == "superseded":
            return SupersededEvent(
                f"{event.key}: version {event.version.isoformat()} is older than the applied "
                f"{state.last_version.isoformat()}"
            )
        return None

    def transform(self, event: ValidEvent) -> Transformed:
        """The mapped record, checked: SkipEvent when the mapping skips the event (``skip:``), MappingError when
        it cannot be mapped or, for a mapping with ``money:``, when its total is not the source's."""
        mapping = self.mapping_for(event.source, event.topic)
        payload = self._kept_for_transform(event.event_id) or self._payload(event.event_id)[1]
        if mapping.config.read:
            # Noted before the read: a notice of the same change delivered again later is judged by it.
            self.ledger.note_read(event.event_id)
            payload = self.read_source(mapping, payload)
        state = self.ledger.entity_state(event.key)
        try:
            result = mapping.apply_each(payload, xref=self.xref_for(mapping.target))
        except WithdrawRecord as undone:
            if state is None or not state.to_id:
                raise SkipEvent(f"{undone}; erpsync wrote nothing for it in {mapping.target}") from None
            record = MappedRecord(mapping.config.record_type, state.external_id, {}, target=mapping.target)
            return Transformed(record=record, mapping_version=mapping.version, previous_erp_id=state.to_id,
                               withdraw=str(undone), event_id=event.event_id, key=event.key,
                               payload_sha256=event.payload_sha256)
        owners = load_ownership(self.mappings_dir)
        kept = [_without_target_owned(r, owners, event.source) for r in result.records]
        owned = tuple(sorted({name for _, left in kept for name in left}))
        records_now = [record for record, _ in kept]
        for record in records_now:
            self.check_money(record, mapping.ref)
        each = mapping.config.each
        if each is None:
            return Transformed(record=records_now[0], mapping_version=mapping.version,
                               previous_erp_id=state.to_id if state else None, event_id=event.event_id,
                               key=event.key, target_owned=owned, payload_sha256=event.payload_sha256)
        known = {s.entity_id: s.to_id for s in self.ledger.entity_states_of(
            event.source, each.as_, [r.external_id for r in records_now], event.key.to_system)}
        records = tuple((r, known.get(r.external_id)) for r in records_now)
        return Transformed(record=records[0][0], mapping_version=mapping.version, previous_erp_id=records[0][1],
                           elements=Elements(event.source, each.as_, records, result.skipped, event.version,
                                             event.payload_sha256, event.key.to_system),
                           event_id=event.event_id, key=event.key, target_owned=owned,
                           payload_sha256=event.payload_sha256)

    def read_source(self, mapping: Mapping, payload: dict) -> dict:
        """The notice and what its mapping reads (``read:``) of the source system now, for the rules to map.

        A notice says only that a record changed: its current state is read (sublists expanded) right before
        mapping, so notices arriving late or out of order still write the latest state. The rules see the
        payload, its ``data`` again as ``notice``, and each read under its name. A record that is gone is a skip
        with the reason (what its deletion undoes in the target is not synced yet)."""
        reader = self.writer(mapping.source)
        view = {**payload, "notice": payload.get("data")}
        for name, spec in (mapping.config.read or {}).items():
            try:
                record_type, internal_id = spec.record_type.render(view), spec.id.render(view)
            except MappingError as exc:
                raise MappingError(str(exc), field=f"read.{name}") from None
            record = reader.get(record_type, internal_id, expand_sub_resources=True)  # type: ignore[call-arg]
            if record is None:
                if mapping.config.cancel:
                    # Its cancel: rules decide (a shipment deleted cancels the shop's); the reads after it may
                    # name it, so none is made, and the rules see neither.
                    log.info("%s: read.%s: %s %s %s no longer exists", mapping.ref, name, mapping.source,
                             record_type, internal_id)
                    break
                raise SkipEvent(f"read.{name}: {mapping.source} {record_type} {internal_id} no longer exists;"
                                " nothing to sync")
            view[name] = record
        return view

    @staticmethod
    def check_money(record: MappedRecord, ref: str) -> None:
        """The pre-push invariant: the target's total of the body equals the source's total to the cent."""
        check_total(record, ref)

    def push(self, transformed: Transformed) -> str:
        """Write the record; the ERP id it was last written to lets an update keep each line's identity."""
        record = transformed.record
        failpoints.hit("push.before")
        if transformed.withdraw is not None:
            assert transformed.previous_erp_id is not None  # transform withdraws only what was written
            # False: withdrawn already (a retry after a crash before the ledger's commit), which is as good.
            self.writer(record.target or DEFAULT_TARGET).delete(record.record_type, transformed.previous_erp_id)
            erp_id = transformed.previous_erp_id
        elif transformed.elements is not None:
            erp_id = self._push_elements(transformed, transformed.mapping_version)
        else:
            erp_id = self._upsert(transformed, record, transformed.previous_erp_id or None)
        failpoints.hit("push.after")
        return erp_id

    def _upsert(self, transformed: Transformed, record: MappedRecord, previous: str | None) -> str:
        """Upsert one record; a field changed in the target since erpsync set it is settled by its owner.

        The writing side owns every such field: written over the target's change (the writer compares again with
        what it just read), and the change is reported. Otherwise (nobody owns one, or the target does) the
        ConflictingChange stands: nothing is written and the event is a dead letter naming both values."""
        target = record.target or DEFAULT_TARGET
        writer = self.writer(target)
        key = transformed.key
        owners = load_ownership(self.mappings_dir) if key is not None else None
        settled: list[FieldConflict] = []
        identity = (event_identity(transformed.event_id, transformed.payload_sha256)
                    if transformed.event_id is not None else None)
        for _ in range(OVERWRITE_ATTEMPTS):
            try:
                with writing_for(identity):
                    erp_id = writer.upsert(record.record_type, record.external_id, record.body, previous_id=previous)
            except ConflictingChange as exc:
                if key is None or owners is None or any(
                        owners.owner(target, record.record_type, name) != key.from_system for name in exc.fields):
                    raise
                settled.extend(_conflicts(exc, transformed, key, target, owners))
                previous = exc.current_id
                continue
            if settled:
                self.ledger.record_conflicts(settled)
                log.warning("event %s: %d field(s) changed in %s since erpsync set them, written over by their "
                            "owner %s (erpsync conflicts): %s", transformed.event_id, len(settled), target,
                            key.from_system if key else "?", ", ".join(sorted({c.field_name for c in settled})))
            return erp_id
        raise TransientError(f"{record.record_type} {record.external_id}: changed in {target} again at each of "
                             f"{OVERWRITE_ATTEMPTS} writes; retried later")

    def _push_elements(self, transformed: Transformed, mapping_version: str) -> str:
        """Each element's record in turn; the first one's ERP id is the entity's. Safe to repeat: each is an
        upsert by its own external id."""
        elements = transformed.elements
        assert elements is not None
        first: str | None = None
        for record, previous in elements.records:
            try:
                erp_id = self._upsert(transformed, record, previous or None)
            except ErpRejected as exc:
                raise ElementRefused(exc, record) from None
            self.ledger.record_element(
                EntityKey(elements.source, elements.entity_type, record.external_id, elements.to_system),
                record_type=record.record_type, external_id=record.external_id, to_id=erp_id,
                version=elements.version, payload_sha256=elements.payload_sha256, mapping_version=mapping_version)
            first = first or erp_id
        assert first is not None  # apply_each skips an event without records
        return first

    def confirm(self, event: ValidEvent, transformed: Transformed, erp_id: str) -> None:
        self.ledger.record_outcome(
            event_id=event.event_id,
            source=event.source,
            outcome="synced",
            key=event.key,
            reason=(f"withdrawn: {transformed.record.record_type} {erp_id} in {event.key.to_system} "
                    f"({transformed.withdraw})" if transformed.withdraw else _left_out(transformed)),
            external_id=transformed.record.external_id,
            to_id=erp_id,
            mapping_version=transformed.mapping_version,
            payload_sha256=event.payload_sha256,
            applied=(transformed.record.record_type, event.version),
            release=True,
        )
        failpoints.hit("confirm.after")
        elements = transformed.elements
        if elements is not None:
            log.info("event %s synced: %s → ERP %d %s records (%d elements left out)", event.event_id, event.key,
                     len(elements.records), transformed.record.record_type, len(elements.skipped))
        else:
            log.info("event %s synced: %s → ERP %s %s", event.event_id, event.key,
                     transformed.record.record_type, erp_id)

    def skip(self, event: ValidEvent, exc: SkipEvent) -> str:
        state = self.ledger.entity_state(event.key)
        self.ledger.record_outcome(
            event_id=event.event_id,
            source=event.source,
            outcome=exc.outcome,
            key=event.key,
            reason=str(exc),
            external_id=state.external_id if state else None,
            to_id=state.to_id if state else None,
            payload_sha256=event.payload_sha256,
            release=True,
        )
        log.info("event %s %s: %s", event.event_id, exc.outcome, exc)
        return exc.outcome

    def fail(self, event_id: int, exc: BaseException, *, event: ValidEvent | None = None,
             transformed: Transformed | None = None) -> str:
        """Record why the event is dead-lettered; the caller then lets the run end Failed.

        Returns the reason as it may be logged: without the ERP's detail text, which only the ledger keeps.
        """
        if isinstance(exc, PermanentError):
            reason = exc.reason
        elif isinstance(exc, ConfigError):
            reason = f"ConfigError (fix the configuration, then retry the run): {exc}"
        elif isinstance(exc, ErpsyncError):
            reason = f"gave up after retries: {type(exc).__name__}: {exc}"
        else:
            # Unknown errors keep only their type: their text may quote payload data.
            reason = f"unexpected {type(exc).__name__}; see the flow run's logs"
        if event is not None:
            source = event.source
        else:
            stored = self.ledger.get_event(event_id)
            source = stored.source if stored else "unknown"
        self.ledger.record_outcome(
            event_id=event_id,
            source=source,
            outcome="mismatched" if isinstance(exc, PayloadMismatch) else "failed",
            key=event.key if event else None,
            reason=reason,
            external_id=transformed.record.external_id if transformed else None,
            mapping_version=transformed.mapping_version if transformed else None,
            payload_sha256=event.payload_sha256 if event else None,
            release=True,
        )
        # The log (and Prefect) get the error's message; the ledger's reason may hold the ERP's own detail text.
        summary = f"{type(exc).__name__}: {exc}" if isinstance(exc, ErpsyncError) else reason
        log.error("event %s dead-lettered: %s", event_id, summary)
        return summary


def _lacks_the_topics_own_fields(exc: InvalidPayload) -> bool:
    """True when every problem of a model check is a top-level field missing: the payload is another kind of
    thing (a product body under refunds/create), not a bad one of this kind (a line with quantity 0)."""
    return bool(exc.problems) and all(
        message == "required field is missing" and field_path.isidentifier() for field_path, message in exc.problems
    )


def _left_out(transformed: Transformed) -> str | None:
    """A synced outcome's note of the elements an ``each:`` mapping left out (``variants[2]: no SKU, …``) and of
    the fields left out because the target owns them."""
    notes = []
    elements = transformed.elements
    if elements is not None and elements.skipped:
        notes.append(f"{len(elements.skipped)} left out: " + "; ".join(elements.skipped))
    if transformed.target_owned:
        notes.append(f"not written, owned by {transformed.key.to_system if transformed.key else 'the target'}: "
                     + ", ".join(transformed.target_owned))
    return "; ".join(notes) or None


def _without_target_owned(record: MappedRecord, owners: FieldOwnership, source: str
                          ) -> tuple[MappedRecord, tuple[str, ...]]:
    """The record without the fields its target owns (a mapping from the other side never writes them)."""
    target = record.target or DEFAULT_TARGET
    left = tuple(name for name in record.body
                 if (owner := owners.owner(target, record.record_type, name)) is not None and owner != source)
    if not left:
        return record, ()
    return replace(record, body={k: v for k, v in record.body.items() if k not in left}), left


def _conflicts(exc: ConflictingChange, transformed: Transformed, key: EntityKey, target: str,
               owners: FieldOwnership) -> list[FieldConflict]:
    now = utcnow()
    return [FieldConflict(
        at=now, event_id=transformed.event_id or 0, from_system=key.from_system, entity_type=key.entity_type,
        entity_id=key.entity_id, to_system=key.to_system, record_type=exc.record_type, record_id=exc.record_id[:200],
        field_name=name, owner=owners.owner(target, exc.record_type, name) or "", last_value=last[:200],
        target_value=held[:200], written_value=wanted[:200],
        resolution=f"{key.from_system} owns {exc.record_type}.{name}: its {wanted!r} written over the {held!r} "
                   f"{target} held (erpsync had set {last!r})"[:300])
        for name, (last, held, wanted) in exc.fields.items()]


def _default_target_only(erp: Callable[[], RecordWriter]) -> Callable[[str], RecordWriter]:
    def open_writer(target: str) -> RecordWriter:
        if target != DEFAULT_TARGET:
            raise ConfigError(f"this pipeline writes to {DEFAULT_TARGET} only; a mapping writes to {target!r}")
        return erp()
    return open_writer
