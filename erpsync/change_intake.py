"""Changes out of an ERP into the inbox: a pass of the change reader, and the thin notice each change becomes.

An ERP such as NetSuite sends no webhooks. Its changes reach the inbox two ways, as the same notice:
- this reader (``erpsync poll``, the ``poll-netsuite`` flow every minute): for each record type, the changes since
  the cursor kept in the ledger (``ChangeReader.changes_since``, keyset-paged by modification time then id);
- a signed notice the ERP posts itself (NetSuite: the user-event script in netsuite/suitescript/), verified by the
  receiver as a Standard Webhooks delivery at ``POST /webhooks/<erp>``.

A notice is not the record: the pipeline reads the record's current state from the ERP before mapping it, so the
order in which notices arrive matters less. Both ways give a change the same delivery id,
``<erp>:<recordType>:<internal id>:<last modified, ISO, whole seconds, UTC>``, so the same change read twice, or
read and notified, is one inbox event (the second a redelivery). Topic ``<recordType>.changed``; body::

    {"type": "itemFulfillment.changed", "timestamp": "2026-11-28T03:01:20Z",
     "data": {"recordType": "itemFulfillment", "id": "4512", "externalId": null,
              "lastModified": "2026-11-28T03:01:20Z"}}

``timestamp`` is when the change happened (its last modified time), so the reader writes the same bytes each time.
The entity is (erp, recordType, id, shop) and its version ``data.lastModified``.

Record types read (the choice for NetSuite, issue 14): ``itemFulfillment`` (shipments), ``inventoryItem`` (an item
saved: a new item, its name), ``stockMove`` (stock) and ``price`` (an item's prices: ``data.recordType`` "price",
``data.id`` the item's internal id). Prices live on the item's pricing sublist, which has no record or modification
time of its own, so NetSuite's reader reads a price change as a change of the item (``item.lastmodifieddate``, moved
when the item is saved, which is where a price level's price is edited); an item's change is therefore both an
``inventoryItem`` and a ``price`` notice, and the pipeline finds an unchanged side unchanged. Stock is not saved on
the item: in NetSuite a quantity moves only by a transaction (an inventory adjustment, a fulfillment, a receipt, a
transfer), which leaves the item's modification time alone. ``stockMove`` reads those transactions by their own
modification time, keyset-paged by (second, transaction, item), with a cursor of its own in the ledger, and gives one
``inventoryItem`` change per (transaction, item), with ``data.cause`` naming the transaction
(``{"recordType": "inventoryadjustment", "id": "4513"}``) and the delivery id
``<erp>:inventoryItem:<item id>:<the transaction's last modified>:by-<transaction id>``: a move read again is the same
event, two moves of one item in one second are two, and the pipeline reads the item's quantities as they are now.
``notified_record_type`` says which notices a read record type gives (the reader's own answer; itself by default).

Two changes in one second: the ERP stamps a change to the second, so a second change within the second of the
first has the first one's delivery id and is stored as its redelivery. A notice names the record, it does not carry
it, so such a redelivery must not be lost when the first event has already read the record: ``reread_due`` says when
a redelivery arrives after its event finished having read the record possibly before the change's second was over
(the event read the record before that second's end plus a margin for the two clocks and a late commit:
``REREAD_CLOCK_MARGIN`` for a notice the ERP posts, ``REREAD_READER_MARGIN`` for this reader's), and the ledger then
stores a re-read event, ``<delivery id>#reread-<n>`` with ``"reread": n`` in its body (``reread_delivery``), which
reads the record again. A redelivery while the event still waits stays a plain redelivery: that event has not read
yet. A re-read event reads later than the change's second, so later repeats of the same change end as plain
redeliveries: at most an extra read or two per change, and none for a reader's repeat once the event read the
record seconds after the change.

The overlap window: a pass starts not after the newest change read but after the newest one older than
``overlap``, so a change committed late with a modification time already passed (a long transaction, clock skew
beyond the ERP client's own settle window) is still read. Re-reading costs nothing but a redelivery count.
Progress and counts are logged; never a record's content.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any

from erpsync.errors import ConfigError, ErpsyncError
from erpsync.ledger import InboxDelivery, Ledger, utcnow
from erpsync.ports import Change
from erpsync.run_control import RunControl, start_batch_runs
from erpsync.settings import DEFAULT_BATCH_RUNS

log = logging.getLogger(__name__)

DEFAULT_RECORD_TYPES = ("itemFulfillment", "inventoryItem", "stockMove", "price")
DEFAULT_OVERLAP = timedelta(minutes=2)
DEFAULT_PAGE_SIZE = 200
# A pass stops after this many pages of one record type and says so; the next pass goes on from its cursor.
DEFAULT_MAX_PAGES = 50
TOPIC_SUFFIX = ".changed"


def default_record_types(erp: str) -> tuple[str, ...]:
    """The record types ``erp``'s change reader reads when none are named, in its own names: those its package lists
    (``System.change_record_types``), else ``DEFAULT_RECORD_TYPES``, the first ERP's, whose package lists none."""
    from erpsync.systems import system  # the registry imports every system package: only when asked

    return tuple(system(erp).change_record_types) or DEFAULT_RECORD_TYPES


def change_topic(record_type: str) -> str:
    return f"{record_type}{TOPIC_SUFFIX}"


def whole_seconds_utc(moment: datetime) -> str:
    """``2026-11-28T03:01:20Z``: the change's time as both ways in write it (fractions dropped, not rounded)."""
    if moment.tzinfo is None:
        raise ValueError("a change's modification time needs a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notice_delivery_id(system: str, record_type: str, internal_id: str, modified: datetime,
                       cause_id: str | None = None) -> str:
    """``<erp>:<recordType>:<id>:<last modified>``, and ``:by-<cause id>`` for a change another record made."""
    base = f"{system}:{record_type}:{internal_id}:{whole_seconds_utc(modified)}"
    return base if cause_id is None else f"{base}:by-{cause_id}"


def notice_body(record_type: str, internal_id: str, external_id: str | None, modified: datetime,
                cause: Mapping[str, str] | None = None) -> bytes:
    """The thin notice of one change (Standard Webhooks shape), as compact JSON; ``cause`` (``{"recordType",
    "id"}``) names the record whose save made the change, when it is another one (a stock move's transaction)."""
    stamp = whole_seconds_utc(modified)
    data: dict[str, Any] = {"recordType": record_type, "id": str(internal_id), "externalId": external_id,
                            "lastModified": stamp}
    if cause is not None:
        data["cause"] = {"recordType": str(cause["recordType"]), "id": str(cause["id"])}
    return json.dumps({"type": change_topic(record_type), "timestamp": stamp, "data": data},
                      separators=(",", ":")).encode()


def change_cause(change: Change) -> Mapping[str, str] | None:
    """The record whose save made ``change`` (``Change.fields["cause"]``), or None when the record was saved itself."""
    cause = change.fields.get("cause")
    return cause if isinstance(cause, Mapping) else None


def notified_record_type(reader: Any, record_type: str) -> str:
    """The record type whose ``.changed`` notices a read of ``record_type`` gives: itself, unless the reader says
    otherwise (NetSuite's ``stockMove`` gives ``inventoryItem`` notices)."""
    notified = getattr(reader, "notified_record_type", None)
    return notified(record_type) if callable(notified) else record_type


# How long after a change's second its event's read may still have missed a second change of that second: the
# clocks' disagreement (the ERP stamps the change, we stamp the read) and, for a notice, the time a save takes to
# commit after its stamp. A notice posted again by the ERP's own script means a second save (or the script's
# retry), so it is judged generously; the reader's repeats are mostly its overlap window reading the same change
# again, so only the clocks' margin counts for them, which keeps its re-reads rare.
REREAD_CLOCK_MARGIN = timedelta(seconds=30)
REREAD_READER_MARGIN = timedelta(seconds=2)
REREAD_MARK = "#reread-"
# The inbox states of an event that has read its record (or needed not to) and will not read it again by itself.
READ_AND_FINISHED = frozenset({"synced", "skipped", "duplicate"})


def changed_at(body: bytes) -> datetime | None:
    """A notice's change time (``data.lastModified``), or None when the body does not say one."""
    try:
        stamp = json.loads(body)["data"]["lastModified"]
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return None
    return moment if moment.tzinfo is not None else None


def reread_due(body: bytes, state: str, read_at: datetime, margin: timedelta = REREAD_CLOCK_MARGIN) -> bool:
    """Whether a notice delivered again must be read again: its last event (``state``; ``read_at``, when it read the
    record, or an earlier time such as its arrival) finished, and may have read the record before every change of
    the notice's second was made (within ``margin`` after that second)."""
    if state not in READ_AND_FINISHED:
        return False  # still waiting (it will read the record), superseded by a later read, or a dead letter
    changed = changed_at(body)
    if changed is None:
        return True  # no change time to judge by: read again rather than lose a change
    second_over = changed.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    return read_at < second_over + margin


def reread_delivery(delivery: InboxDelivery, number: int) -> InboxDelivery:
    """The ``number``-th re-read of a notice: its own delivery id, and a body that differs from the notice's (so the
    pipeline's content check does not take it for the content already applied) by ``"reread": number``."""
    payload = json.loads(delivery.body)
    payload["reread"] = number
    body = json.dumps(payload, separators=(",", ":")).encode()
    return InboxDelivery(source=delivery.source, delivery_id=f"{base_delivery_id(delivery.delivery_id)}{REREAD_MARK}"
                         f"{number}", topic=delivery.topic, shop=delivery.shop, triggered_at=delivery.triggered_at,
                         body=body, payload_sha256=sha256(body).hexdigest())


def base_delivery_id(delivery_id: str) -> str:
    """The notice's own delivery id, without a re-read's suffix."""
    return delivery_id.split(REREAD_MARK, 1)[0]


def notice_delivery(system: str, change: Change) -> InboxDelivery:
    """The inbox delivery of a change the reader found: the same id and topic a signed notice of it carries."""
    cause = change_cause(change)
    body = notice_body(change.record_type, change.internal_id, change.external_id, change.modified, cause)
    delivery_id = notice_delivery_id(system, change.record_type, change.internal_id, change.modified,
                                     cause["id"] if cause else None)
    return InboxDelivery(
        source=system, delivery_id=delivery_id,
        topic=change_topic(change.record_type), shop=None, triggered_at=whole_seconds_utc(change.modified), body=body,
        payload_sha256=sha256(body).hexdigest())


@dataclass
class TypeResult:
    """One record type's part of a pass: counts and where its cursor stands; no record content."""

    record_type: str
    read: int = 0
    new: int = 0
    already: int = 0  # delivery ids the inbox held: a re-read of the overlap, or a change a notice brought first
    pages: int = 0
    more: bool = False  # stopped at max_pages with changes left: the next pass goes on
    skipped: str | None = None  # why the type was not read
    cursor: str | None = None
    newest_modified: datetime | None = None

    def line(self) -> str:
        if self.skipped:
            return f"{self.record_type}: not read ({self.skipped})"
        text = (f"{self.record_type}: {self.read} changes read in {self.pages} page{'s' if self.pages != 1 else ''}, "
                f"{self.new} new, {self.already} already in the inbox")
        if self.newest_modified is not None:
            text += f"; newest change {whole_seconds_utc(self.newest_modified)}"
        if self.more:
            text += "; more wait for the next pass"
        return text


@dataclass
class PassResult:
    system: str
    types: list[TypeResult] = field(default_factory=list)
    new_event_ids: list[int] = field(default_factory=list)

    @property
    def new(self) -> int:
        return sum(t.new for t in self.types)

    def lines(self) -> list[str]:
        return [f"{self.system} {t.line()}" for t in self.types]

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "new": self.new, "new_event_ids": list(self.new_event_ids),
                "types": {t.record_type: {"read": t.read, "new": t.new, "already": t.already, "pages": t.pages,
                                          "more": t.more, "skipped": t.skipped} for t in self.types}}


class ChangeIntake:
    """One pass over the configured record types of one ERP: changes since the ledger's cursor → inbox deliveries.

    ``reader`` is the ERP's ChangeReader (the registry's writer). ``handled``: the (source, topic) pairs some
    mapping handles; a record type whose ``<type>.changed`` no mapping handles is not read (its events could only
    fail), as the receiver refuses such a notice. ``start``: where a record type with no cursor yet starts
    (default: ``overlap`` before the pass); later passes go on from the ledger's cursor.
    """

    def __init__(self, ledger: Ledger, reader: Any, *, system: str, record_types: Sequence[str] = DEFAULT_RECORD_TYPES,
                 handled: Collection[tuple[str, str]] | None = None, overlap: timedelta = DEFAULT_OVERLAP,
                 page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = DEFAULT_MAX_PAGES,
                 start: datetime | None = None, clock: Callable[[], datetime] = utcnow):
        if not record_types:
            raise ConfigError("record types: name at least one ERP record type to read changes of")
        if overlap < timedelta(0):
            raise ConfigError("overlap: must not be negative")
        if page_size < 1 or max_pages < 1:
            raise ConfigError("page size and max pages: must be at least 1")
        if start is not None and start.tzinfo is None:
            raise ConfigError("start: needs a time zone, e.g. 2026-11-28T00:00:00Z")
        self.ledger, self.reader, self.system = ledger, reader, system
        self.record_types = list(dict.fromkeys(record_types))
        self.handled = None if handled is None else frozenset(handled)
        self.overlap, self.page_size, self.max_pages = overlap, page_size, max_pages
        self.start, self.clock = start, clock

    def run(self) -> PassResult:
        result = PassResult(self.system)
        for record_type in self.record_types:
            topic = change_topic(notified_record_type(self.reader, record_type))
            if self.handled is not None and (self.system, topic) not in self.handled:
                part = TypeResult(record_type, skipped=f"no mapping handles {self.system} {topic}")
            else:
                part = self._read(record_type, result.new_event_ids)
            log.info("poll %s %s", self.system, part.line())
            result.types.append(part)
        return result

    def _read(self, record_type: str, new_ids: list[int]) -> TypeResult:
        part = TypeResult(record_type)
        now = self.clock()
        settled_before = now - self.overlap
        state = self.ledger.change_cursor(self.system, record_type)
        if state is None:
            resume = self.reader.cursor_at(self.start or settled_before)
            newest_cursor, newest_modified = None, None
            log.info("poll %s %s: no cursor yet, reading changes from %s", self.system, record_type,
                     whole_seconds_utc(self.start or settled_before))
        else:
            resume, newest_cursor, newest_modified = state.cursor, state.newest_cursor, state.newest_modified
        cursor = resume
        while True:
            changes = self.reader.changes_since(record_type, cursor, limit=self.page_size)
            if not changes:
                break
            part.pages += 1
            part.read += len(changes)
            intakes = self.ledger.record_deliveries([notice_delivery(self.system, change) for change in changes],
                                                    reread_margin=REREAD_READER_MARGIN)
            for intake in intakes:
                if intake.is_new:
                    part.new += 1
                    new_ids.append(intake.event_id)
                else:
                    part.already += 1
            cursor = changes[-1].cursor
            newest_cursor, newest_modified = cursor, changes[-1].modified
            # The next pass starts after the newest change older than the overlap window: the ones within it are
            # read again, in case one committed late lands among them.
            for change in changes:
                if change.modified <= settled_before:
                    resume = change.cursor
            self.ledger.save_change_cursor(self.system, record_type, cursor=resume, newest_cursor=newest_cursor,
                                           newest_modified=newest_modified)
            if len(changes) < self.page_size:
                break
            if part.pages >= self.max_pages:
                part.more = True
                break
        if state is None and part.pages == 0:
            # Keep the starting point even when nothing changed yet: the next pass must not start later.
            self.ledger.save_change_cursor(self.system, record_type, cursor=resume, newest_cursor=None,
                                           newest_modified=None)
        part.cursor, part.newest_modified = resume, newest_modified
        return part


def dispatch_new(ledger: Ledger, runs: RunControl, event_ids: Sequence[int], *, batch_threshold: int,
                 batch_runs: int = DEFAULT_BATCH_RUNS) -> dict[str, int]:
    """Start the runs of the events a pass stored, as the receiver does: one run each, or ``batch_runs``
    sync-batch runs for a backlog (more than ``batch_threshold``). What cannot be dispatched now waits for the
    sweep."""
    if not event_ids:
        return {"dispatched": 0, "failed": 0, "left_to_batch": 0}
    if batch_threshold and len(event_ids) > batch_threshold:
        try:
            if not runs.active_batches():
                start_batch_runs(runs, f"poll-{time.time_ns()}", batch_runs)
            return {"dispatched": 0, "failed": 0, "left_to_batch": len(event_ids)}
        except ErpsyncError as exc:
            log.warning("%d new events: no batch run could be started, the sweep will dispatch them: %s",
                        len(event_ids), exc)
            return {"dispatched": 0, "failed": len(event_ids), "left_to_batch": 0}
    dispatched = failed = 0
    for event_id in event_ids:
        try:
            ledger.mark_dispatched(event_id, runs.dispatch(event_id))
            dispatched += 1
        except ErpsyncError as exc:
            failed += 1
            log.warning("event %s stored; dispatch deferred to the sweep: %s", event_id, exc)
    return {"dispatched": dispatched, "failed": failed, "left_to_batch": 0}
