"""The inbox and the ledger: what arrived, what was applied to the ERP, and every outcome, in one database.

Tables
- ``inbox_event``   one row per webhook delivery (unique per source + delivery id), committed before the 2xx
- ``entity_state``  per entity and direction (from system, entity type, entity id, to system): the other side's
                    record (type, id, version; external id ↔ record id), the last applied version and payload
                    hash — what dedupe layers 2 and 3 compare against
- ``entity_claim``  who is working on an entity right now (per-entity serialization across processes)
- ``outcome``       append-only log of every decision: synced, duplicate, superseded, failed + reason
- ``change_cursor`` per ERP and record type: where the change reader (erpsync/change_intake.py) goes on from

The schema is versioned (erpsync/migrations): a change to a table here needs a revision there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    not_,
    or_,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import Field, Session, SQLModel, select

from erpsync.db import dialect_insert, make_engine, prepare_schema
from erpsync.errors import TransientError


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# Terminal states of the compliance topics the receiver acts on itself (erpsync/privacy.py), not a flow run.
PRIVACY_STATES = ("redacted", "request_recorded")
# Terminal inbox states: the event needs no more work. ``skipped``: a mapping's ``skip:`` rule held.
DONE_STATES = ("synced", "duplicate", "superseded", "skipped", *PRIVACY_STATES)
# The inbox's "flow run" of an event the receiver handled itself: not a Prefect run id (never asked of Prefect,
# since its state is terminal), only a mark that keeps the sweep from dispatching the event to sync-event.
HANDLED_IN_RECEIVER = "handled-by-receiver"


def receiver_topics() -> dict[str, tuple[str, ...]]:
    """Source → the topics the receiver acts on itself (each source's ``System.intake``: privacy requests, order
    deletions). No flow run takes them, not even in the moment between their storing and the receiver's outcome."""
    from erpsync.systems import SYSTEMS  # the registry's packages import the ledger

    return {name: tuple(system.intake) for name, system in SYSTEMS.items() if system.intake}


class InboxEvent(SQLModel, table=True):
    __tablename__ = "inbox_event"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id", name="uq_inbox_source_delivery"),
        Index("ix_inbox_state_received", "state", "received_at"),
        # The intake looks up a body, and a source's own event id, stored under another delivery id (replays).
        Index("ix_inbox_source_sha256", "source", "payload_sha256"),
        Index("ix_inbox_source_event", "source", "source_event_id"),
        # An operator looks an event up by its entity or order code (erpsync dlq show, erpsync status).
        Index("ix_inbox_entity", "entity"),
        Index("ix_inbox_entity_label", "entity_label"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)
    delivery_id: str = Field(max_length=200)
    topic: str = Field(max_length=100)
    shop: str | None = Field(default=None, max_length=255)
    triggered_at: str | None = Field(default=None, max_length=64, description="As the source sent it.")
    received_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    payload_sha256: str = Field(max_length=64)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    redeliveries: int = Field(default=0, description="Later deliveries of the same delivery id.")
    state: str = Field(default="received", max_length=20)
    flow_run_id: str | None = Field(default=None, max_length=64)
    dispatched_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # Shopify's X-Shopify-Event-Id: the same event delivered again under another webhook id (one delivery per
    # subscription) carries the same value, and Shopify names it for deduplication.
    source_event_id: str | None = Field(default=None, max_length=200)
    # The API version the payload is shaped by (X-Shopify-API-Version), for reading it later.
    api_version: str | None = Field(default=None, max_length=32)
    # The event this delivery repeats (same body, or same source event id, under another delivery id).
    duplicate_of: int | None = Field(default=None)
    # Who the event is about, written when a run validates it: the entity ("order/820982911946154508") and its
    # order code as the source shows it to staff ("#1042", the mapping's entity.label), never customer data.
    entity: str | None = Field(default=None, max_length=150)
    entity_label: str | None = Field(default=None, max_length=100)
    # When its run last read the record a change notice names (a mapping's read:): a notice delivered again after
    # that read may name a second change of the same second (erpsync/change_intake.py, reread_due).
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class EntityState(SQLModel, table=True):
    __tablename__ = "entity_state"
    # The echo guard's lookup, run for every event (Ledger.written_by_us, revision 0008).
    __table_args__ = (Index("ix_entity_state_written", "to_system", "from_system", "to_record_type", "to_id"),)

    from_system: str = Field(primary_key=True, max_length=40)
    entity_type: str = Field(primary_key=True, max_length=40)
    entity_id: str = Field(primary_key=True, max_length=100)
    to_system: str = Field(primary_key=True, max_length=40)
    to_record_type: str = Field(max_length=60)
    external_id: str = Field(max_length=200, index=True)
    # The target's id: up to 200 like external ids (a Shopify inventory level's id is about 80, revision 0007).
    to_id: str = Field(max_length=200)
    # The other side's version of the record (its last-modified stamp), for the way back: a change read from
    # the target that is no newer than this is our own write coming back.
    to_version: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_version: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_payload_sha256: str = Field(max_length=64)
    mapping_version: str = Field(max_length=40)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class EntityClaim(SQLModel, table=True):
    __tablename__ = "entity_claim"

    from_system: str = Field(primary_key=True, max_length=40)
    entity_type: str = Field(primary_key=True, max_length=40)
    entity_id: str = Field(primary_key=True, max_length=100)
    to_system: str = Field(primary_key=True, max_length=40)
    event_id: int
    claimed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # The flow run working under the claim: once Prefect says that run is over (crashed, failed), recovery
    # frees the claim at once instead of after the stale-claim timeout.
    flow_run_id: str | None = Field(default=None, max_length=64)


class Outcome(SQLModel, table=True):
    __tablename__ = "outcome"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(index=True)
    source: str = Field(max_length=40)
    entity_type: str | None = Field(default=None, max_length=40)
    entity_id: str | None = Field(default=None, max_length=100)
    external_id: str | None = Field(default=None, max_length=200)
    to_system: str | None = Field(default=None, max_length=40)
    to_id: str | None = Field(default=None, max_length=200)
    outcome: str = Field(max_length=20, index=True)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    mapping_version: str | None = Field(default=None, max_length=40)
    payload_sha256: str | None = Field(default=None, max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ChangeCursor(SQLModel, table=True):
    """Where the change reader of one ERP record type goes on from (erpsync/change_intake.py).

    ``cursor`` is where the next pass starts: the newest change read that is older than the overlap window, so a
    change committed late with an earlier modification time is still read (the ERP's own cursor text, opaque
    here). ``newest_cursor`` and ``newest_modified`` are the furthest change read, for status and logs.
    """

    __tablename__ = "change_cursor"

    system: str = Field(primary_key=True, max_length=40)
    record_type: str = Field(primary_key=True, max_length=60)
    cursor: str = Field(max_length=200)
    newest_cursor: str | None = Field(default=None, max_length=200)
    newest_modified: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class FieldConflict(SQLModel, table=True):
    """A field both sides changed since the last sync, and how its owner settled it (erpsync/field_ownership.py):
    the value erpsync set last, the target's value it found, the value written, who owns the field. Values are
    prices and quantities, never customer data. Append-only; ``erpsync conflicts`` lists them."""

    __tablename__ = "field_conflict"
    __table_args__ = (Index("ix_field_conflict_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    event_id: int = Field(index=True)
    from_system: str = Field(max_length=40)
    entity_type: str = Field(max_length=40)
    entity_id: str = Field(max_length=100)
    to_system: str = Field(max_length=40)
    record_type: str = Field(max_length=60)
    record_id: str = Field(max_length=200)
    field_name: str = Field(max_length=100)
    owner: str = Field(max_length=40)
    last_value: str = Field(max_length=200)
    target_value: str = Field(max_length=200)
    written_value: str = Field(max_length=200)
    resolution: str = Field(max_length=300)


@dataclass(frozen=True)
class EntityKey:
    """An entity in one direction: the record ``entity_id`` of ``from_system``, as written to ``to_system``."""

    from_system: str
    entity_type: str
    entity_id: str
    to_system: str

    def __str__(self) -> str:
        return f"{self.from_system}/{self.entity_type}/{self.entity_id}"


@dataclass(frozen=True)
class EventLabel:
    """Who an inbox event is about, as an operator finds it: ``order/820982911946154508``, ``#1042``."""

    event_id: int
    entity: str | None
    label: str | None = None


@dataclass(frozen=True)
class InboxDelivery:
    """One authenticated webhook delivery, as the inbox stores it."""

    source: str
    delivery_id: str
    topic: str
    shop: str | None
    triggered_at: str | None
    body: bytes
    payload_sha256: str
    source_event_id: str | None = None
    api_version: str | None = None


@dataclass(frozen=True)
class Intake:
    """What the receiver learns from storing one delivery. ``duplicate_of``: a new delivery id whose body (or
    source event id) an earlier event holds; it is stored as a ``duplicate`` and creates no work."""

    event_id: int
    is_new: bool
    duplicate_of: int | None = None


class Ledger:
    """All reads and writes of the inbox and the ledger. One instance per process; thread-safe."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def connect(cls, database_url: str, *, create: bool = True) -> Ledger:
        """The ledger at ``database_url``, whose schema must be the newest revision (ConfigError otherwise, saying
        what to run); an empty database is created at it unless ``create`` is False."""
        engine = make_engine(database_url)
        try:
            prepare_schema(engine, create=create)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose database outages (locked, connection lost) surface as TransientError: retried."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except IntegrityError:
            raise  # a constraint doing its job (a duplicate delivery id, a held claim): the caller decides
        except (OperationalError, InterfaceError) as exc:
            raise TransientError(f"ledger database unavailable: {type(exc.orig).__name__ if exc.orig else exc}")\
                from exc

    # -- inbox ---------------------------------------------------------------------------------------------

    def record_delivery(
        self,
        *,
        source: str,
        delivery_id: str,
        topic: str,
        shop: str | None,
        triggered_at: str | None,
        body: bytes,
        payload_sha256: str,
    ) -> Intake:
        """Store a delivery durably; a delivery id seen before only bumps its redelivery count."""
        return self.record_deliveries([InboxDelivery(source, delivery_id, topic, shop, triggered_at, body,
                                                     payload_sha256)])[0]

    def record_deliveries(self, deliveries: Sequence[InboxDelivery], *,
                          replays: Collection[str] = (), notices: Collection[str] | None = None,
                          reread_margin: timedelta | None = None) -> list[Intake]:
        """Store many deliveries in one transaction (the receiver's group commit); one Intake each, in order.

        One commit for a batch is what lets the intake take a burst: a commit per delivery serialises every
        request on SQLite's write lock (and on PostgreSQL's WAL flush). All or nothing: if the transaction
        fails, none is stored. A delivery id stored before (by an earlier batch or, concurrently, by another
        process) counts as a redelivery, never as a second event.

        ``replays`` (the receiver): the sources whose signature covers the body only (Shopify, WooCommerce), so
        that a captured body can be sent again under any delivery id and topic. A new delivery id of one of them
        whose body an earlier event of the source holds, or any new delivery id whose source event id (Shopify's
        X-Shopify-Event-Id) an earlier event holds, is a replay or a second subscription's copy. It is stored
        (its delivery id must be known next time) already ``duplicate``, with a ``duplicate`` outcome naming the
        earlier event, and never dispatched. Topics the receiver acts on itself (receiver_topics) are exempt: a
        compliance request is carried out whenever it comes. Without ``replays`` (files, repairs, tests) only
        the delivery id counts.

        ``notices``: the sources whose deliveries are change notices that name a record rather than carry it (by
        default every ERP of the registry). A known delivery id of one of them arriving after its last event
        finished having maybe read the record before the change's second was over (two changes in one second
        share a delivery id; erpsync/change_intake.py, ``reread_due``) stores a re-read event,
        ``<delivery id>#reread-<n>``, returned as new; while its event still waits it is a plain redelivery.
        ``reread_margin``: how long after the change's second a read may still have missed a change of it (default:
        a notice's, ``REREAD_CLOCK_MARGIN``; the change reader passes its own).
        """
        return self._record_deliveries(deliveries, replays=replays, notices=notices, reread_margin=reread_margin)

    def _record_deliveries(self, deliveries: Sequence[InboxDelivery], *,
                           replays: Collection[str] = (), notices: Collection[str] | None = None,
                           reread_margin: timedelta | None = None) -> list[Intake]:
        """One INSERT .. ON CONFLICT DO NOTHING RETURNING for the batch; known ids cost two more statements.

        The receiver's writer waits on every round trip (and, under load, on the GIL after it), so the usual
        batch of new deliveries is a single statement: no SELECT of known ids first. An id the INSERT skips is
        stored already: its redelivery count is raised and its event id read back. On PostgreSQL a conflicting
        insert still in flight in another process is waited for, so no IntegrityError needs a retry.
        """
        if not deliveries:
            return []
        table = InboxEvent.__table__
        now = utcnow()
        rows: dict[tuple[str, str], dict] = {}  # the first delivery of each id in the batch
        for d in deliveries:
            rows.setdefault((d.source, d.delivery_id), dict(
                source=d.source, delivery_id=d.delivery_id, topic=d.topic, shop=d.shop,
                triggered_at=d.triggered_at, received_at=now, payload_sha256=d.payload_sha256, body=d.body,
                redeliveries=0, state="received", source_event_id=d.source_event_id, api_version=d.api_version,
                duplicate_of=None, flow_run_id=None, dispatched_at=None))
        try:
            with self.engine.begin() as connection:
                insert_new = dialect_insert(connection)
                originals, copies = (_split_replays(connection, rows, set(replays)) if replays
                                     else (sorted(rows), []))
                statement = (insert_new(table).on_conflict_do_nothing(index_elements=["source", "delivery_id"])
                             .returning(table.c.id, table.c.source, table.c.delivery_id))
                # In key order: two processes inserting overlapping ids then wait on each other in the same
                # order instead of deadlocking (PostgreSQL detected one when they arrived in another order).
                created = list(connection.execute(statement, [rows[key] for key in originals])) if originals else []
                ids = {(source, delivery_id): event_id for event_id, source, delivery_id in created}
                replayed: dict[tuple[str, str], int] = {}
                if copies:
                    for key, (earlier, why) in copies:
                        earlier_id = earlier if isinstance(earlier, int) else ids.get(earlier)
                        if earlier_id is None:  # the batch's earlier one was a known id: compare with its event
                            earlier_id = connection.execute(select(table.c.id).where(
                                table.c.source == earlier[0], table.c.delivery_id == earlier[1])).scalar()
                        rows[key].update(state="duplicate", duplicate_of=earlier_id, dispatched_at=now,
                                         flow_run_id=HANDLED_IN_RECEIVER, _why=why)
                    stored = [key for key, _ in copies if rows[key]["duplicate_of"] is not None]
                    kept = [{k: v for k, v in rows[key].items() if k != "_why"} for key in stored]
                    if kept:
                        for event_id, source, delivery_id in connection.execute(statement, kept):
                            ids[(source, delivery_id)] = event_id
                            replayed[(source, delivery_id)] = rows[(source, delivery_id)]["duplicate_of"]
                        connection.execute(Outcome.__table__.insert(), [dict(
                            event_id=ids[key], source=key[0], outcome="duplicate", at=now,
                            payload_sha256=rows[key]["payload_sha256"],
                            reason=f"replay: {rows[key]['_why']} as inbox event {replayed[key]}; no new work")
                            for key in stored if key in replayed])
                fresh, is_new, redelivered, reread = set(ids), [], Counter(), set()
                for d in deliveries:
                    key = (d.source, d.delivery_id)
                    is_new.append(key in fresh)
                    if key in fresh:
                        fresh.discard(key)  # the same id again in this batch is a redelivery
                    else:
                        redelivered[key] += 1
                if redelivered:
                    connection.execute(
                        update(table)
                        .where(table.c.source == bindparam("b_source"), table.c.delivery_id == bindparam("b_id"))
                        .values(redeliveries=table.c.redeliveries + bindparam("b_times")),
                        [{"b_source": source, "b_id": delivery_id, "b_times": redelivered[(source, delivery_id)]}
                         for source, delivery_id in sorted(redelivered)])
                    for source in {source for source, _ in redelivered}:
                        wanted = [delivery_id for s, delivery_id in redelivered if s == source]
                        known = connection.execute(select(table.c.id, table.c.delivery_id)
                                                   .where(table.c.source == source, table.c.delivery_id.in_(wanted)))
                        ids.update(((source, delivery_id), event_id) for event_id, delivery_id in known)
                    rereads = _rereads(connection, statement, deliveries, redelivered,
                                       notice_sources() if notices is None else frozenset(notices), reread_margin)
                    for key, event_id in rereads.items():
                        ids[key] = event_id
                        reread.add(key)
        except (OperationalError, InterfaceError) as exc:
            raise TransientError(f"ledger database unavailable: {type(exc.orig).__name__ if exc.orig else exc}")\
                from exc
        # A notice's redelivery that made a re-read event answers with that event, new, so the caller starts its run.
        first_reread: set[tuple[str, str]] = set()
        intakes = []
        for d, new in zip(deliveries, is_new, strict=True):
            key = (d.source, d.delivery_id)
            if not new and key in reread and key not in first_reread:
                first_reread.add(key)
                intakes.append(Intake(event_id=ids[key], is_new=True))
                continue
            intakes.append(Intake(event_id=ids[key], is_new=new and key not in replayed,
                                  duplicate_of=replayed.get(key) if new else None))
        return intakes

    def inbox_ping(self) -> None:
        with self.session() as session:
            session.exec(select(func.count()).select_from(InboxEvent).limit(1)).one()

    def get_event(self, event_id: int) -> InboxEvent | None:
        with self.session() as session:
            return session.get(InboxEvent, event_id)

    def mark_dispatched(self, event_id: int, flow_run_id: str) -> None:
        with self.session() as session:
            session.exec(
                update(InboxEvent)
                .where(InboxEvent.id == event_id)
                .values(flow_run_id=flow_run_id, dispatched_at=utcnow())
            )
            session.commit()

    def note_run(self, event_id: int, flow_run_id: str) -> None:
        """Record the run that is handling the event, if none is recorded (a run started by a trigger or by hand),
        so the sweep does not dispatch it again."""
        with self.session() as session:
            session.exec(
                update(InboxEvent)
                .where(InboxEvent.id == event_id, InboxEvent.flow_run_id.is_(None))
                .values(flow_run_id=flow_run_id, dispatched_at=utcnow())
            )
            session.commit()

    def note_read(self, event_id: int) -> None:
        """Note that the event's run reads its notice's record now (before reading it)."""
        with self.session() as session:
            session.exec(_bulk(update(InboxEvent).where(InboxEvent.id == event_id).values(read_at=utcnow())))
            session.commit()

    def note_entities(self, labels: Sequence[EventLabel]) -> None:
        """Record who each event is about (entity, order code), one statement for a chunk of events."""
        if not labels:
            return
        with self.session() as session:
            session.connection().execute(
                update(InboxEvent.__table__).where(InboxEvent.__table__.c.id == bindparam("event_id"))
                .values(entity=bindparam("entity"), entity_label=bindparam("label")),
                [{"event_id": x.event_id, "entity": x.entity, "label": x.label} for x in labels])
            session.commit()

    def events_about(self, *, entity: str | None = None, label: str | None = None, source: str | None = None,
                     limit: int = 50) -> list[InboxEvent]:
        """Events of an entity ("order/820982911946154508") or with an order code ("#1042"), oldest first."""
        query = select(InboxEvent).order_by(InboxEvent.id).limit(limit)
        if entity is not None:
            query = query.where(InboxEvent.entity == entity)
        if label is not None:
            query = query.where(InboxEvent.entity_label == label)
        if source is not None:
            query = query.where(InboxEvent.source == source)
        with self.session() as session:
            return list(session.exec(query))

    def events_of_run(self, flow_run_id: str) -> int:
        """How many events name this flow run: more than one means a sync-batch run took them."""
        with self.session() as session:
            return session.exec(select(func.count()).select_from(InboxEvent)
                                .where(InboxEvent.flow_run_id == flow_run_id)).one()

    def held_by_run(self, flow_run_id: str) -> list[int]:
        """Unfinished events assigned to this run, oldest first: what a rescheduled batch run must finish."""
        with self.session() as session:
            return list(session.exec(select(InboxEvent.id)
                                     .where(InboxEvent.flow_run_id == flow_run_id, InboxEvent.state == "received")
                                     .order_by(InboxEvent.id)))

    def take_for_batch(self, flow_run_id: str, *, limit: int) -> list[int]:
        """Assign up to ``limit`` events that have no run to the batch run ``flow_run_id``; their ids, oldest first.

        On PostgreSQL two batch runs skip each other's locked rows; SQLite has one writer at a time. (A rescheduled
        run first finishes what it already holds: ``held_by_run``.)
        """
        now = utcnow()
        with self.session() as session:
            free = (select(InboxEvent.id)
                    .where(InboxEvent.flow_run_id.is_(None), InboxEvent.state == "received", _for_flow_runs())
                    .order_by(InboxEvent.id).limit(limit)
                    .with_for_update(skip_locked=True))
            taken = session.exec(_bulk(update(InboxEvent)
                                       .where(InboxEvent.id.in_(free.scalar_subquery()))
                                       .values(flow_run_id=flow_run_id, dispatched_at=now)
                                       .returning(InboxEvent.id))).scalars().all()
            session.commit()
        return sorted(taken)

    def release_from_batch(self, event_id: int) -> None:
        """Take the event back from a batch run, to give it a run of its own (or leave it to the sweep)."""
        with self.session() as session:
            session.exec(_bulk(update(InboxEvent).where(InboxEvent.id == event_id)
                               .values(flow_run_id=None, dispatched_at=None)))
            session.commit()

    def release_batch(self, flow_run_id: str) -> int:
        """Give back every unfinished event the batch run ``flow_run_id`` still holds (it is stopping on an error):
        the sweep dispatches them. Returns how many."""
        with self.session() as session:
            result = session.exec(_bulk(update(InboxEvent)
                                        .where(InboxEvent.flow_run_id == flow_run_id, InboxEvent.state == "received")
                                        .values(flow_run_id=None, dispatched_at=None)))
            session.commit()
            return result.rowcount

    def undispatched(self, *, older_than: timedelta, limit: int = 500) -> list[int]:
        """Events that have waited longer than ``older_than`` without a flow run (Prefect was away)."""
        cutoff = utcnow() - older_than
        with self.session() as session:
            rows = session.exec(
                select(InboxEvent.id)
                .where(InboxEvent.flow_run_id.is_(None), InboxEvent.received_at < cutoff, _for_flow_runs())
                .order_by(InboxEvent.id)
                .limit(limit)
            )
            return list(rows)

    def purge_payloads(self, *, older_than: timedelta, include_failed: bool = False, dry_run: bool = False) -> int:
        """Empty the raw bodies (customer data) of handled events received before ``older_than`` ago.

        The audit trail stays: inbox metadata (delivery id, topic, hash, state) and every outcome. Failed
        events keep their payload unless asked, because a replay needs it. Returns how many were (or would be)
        purged.
        """
        states = DONE_STATES + (("failed", "mismatched") if include_failed else ())
        where = (InboxEvent.received_at < utcnow() - older_than, InboxEvent.state.in_(states),
                 func.length(InboxEvent.body) > 0)
        with self.session() as session:
            if dry_run:
                return session.exec(select(func.count()).select_from(InboxEvent).where(*where)).one()
            result = session.exec(_bulk(update(InboxEvent).where(*where).values(body=b"")))
            session.commit()
            return result.rowcount

    # -- privacy: compliance requests, redaction and export ----------------------------------------------------

    def stored_bodies(self, source: str, *, after_id: int = 0, limit: int = 500,
                      shops: Sequence[str | None] | None = None) -> list[tuple[int, str, str | None, bytes]]:
        """(event id, topic, shop, body) of events of ``source`` that still hold a body, in id order after
        ``after_id``; ``shops`` limits them to those shop domains (None: events that named no shop)."""
        where = [InboxEvent.source == source, InboxEvent.id > after_id, func.length(InboxEvent.body) > 0]
        if shops is not None:
            named = [shop for shop in shops if shop is not None]
            either = [InboxEvent.shop.in_(named)] if named else []
            if None in shops:
                either.append(InboxEvent.shop.is_(None))
            where.append(or_(*either) if either else false())
        with self.session() as session:
            rows = session.exec(select(InboxEvent.id, InboxEvent.topic, InboxEvent.shop, InboxEvent.body)
                                .where(*where).order_by(InboxEvent.id).limit(limit))
            return [(event_id, topic, shop, bytes(body)) for event_id, topic, shop, body in rows]

    def redact_events(self, event_ids: Sequence[int], personal: Sequence[str] = ()) -> int:
        """Empty the bodies of these events and blank every ``personal`` text (an email, a name) out of their
        outcome reasons, in one transaction; the audit trail (ids, states, hashes, outcomes) stays. Returns how
        many bodies were emptied.

        On SQLite ``secure_delete`` is on for the transaction, so the old bytes are overwritten in the file rather
        than left in its free pages; PostgreSQL's old row versions are unreachable by any query and go at the next
        VACUUM (docs/SECURITY.md).
        """
        if not event_ids:
            return 0
        texts = sorted({t for t in personal if t and len(t) >= 3}, key=len, reverse=True)
        emptied = 0
        with self.session() as session:
            if session.get_bind().dialect.name == "sqlite":
                session.exec(text("PRAGMA secure_delete = ON"))
            for start in range(0, len(event_ids), 500):
                chunk = list(event_ids[start:start + 500])
                emptied += session.exec(_bulk(update(InboxEvent).where(InboxEvent.id.in_(chunk),
                                                                       func.length(InboxEvent.body) > 0)
                                              .values(body=b""))).rowcount
                if not texts:
                    continue
                for outcome in session.exec(select(Outcome).where(Outcome.event_id.in_(chunk),
                                                                  Outcome.reason.is_not(None))):
                    scrubbed = _scrub(outcome.reason, texts)
                    if scrubbed != outcome.reason:
                        outcome.reason = scrubbed
                        session.add(outcome)
            session.commit()
        return emptied

    def close_handled_event(self, event_id: int, *, source: str, outcome: str, key: EntityKey | None,
                            reason: str, body: bytes | None = None, external_id: str | None = None,
                            to_id: str | None = None) -> None:
        """Record the outcome of an event the receiver handled itself (a compliance request, an order deletion),
        in one transaction; ``body``, when given, replaces what the event carried (a request keeps its ids only).
        The inbox marks the event HANDLED_IN_RECEIVER, so the sweep never dispatches it to a flow run."""
        with self.session() as session:
            if body is not None and session.get_bind().dialect.name == "sqlite":
                session.exec(text("PRAGMA secure_delete = ON"))
            session.add(Outcome(event_id=event_id, source=source, outcome=outcome, reason=reason,
                                entity_type=key.entity_type if key else None,
                                entity_id=key.entity_id if key else None, external_id=external_id,
                                to_system=key.to_system if key else None, to_id=to_id, at=utcnow()))
            values: dict = {"state": outcome, "flow_run_id": HANDLED_IN_RECEIVER, "dispatched_at": utcnow()}
            if body is not None:
                values["body"] = body
            session.exec(_bulk(update(InboxEvent).where(InboxEvent.id == event_id).values(**values)))
            session.commit()

    def handled_outcome(self, event_id: int, outcomes: Sequence[str]) -> Outcome | None:
        """The latest of ``outcomes`` recorded for the event, if any: whether a compliance request was acted on."""
        with self.session() as session:
            return session.exec(select(Outcome).where(Outcome.event_id == event_id, Outcome.outcome.in_(outcomes))
                                .order_by(Outcome.id.desc()).limit(1)).first()

    def events_by_id(self, event_ids: Sequence[int]) -> list[InboxEvent]:
        with self.session() as session:
            found: list[InboxEvent] = []
            for start in range(0, len(event_ids), 500):
                found += session.exec(select(InboxEvent).where(InboxEvent.id.in_(list(event_ids[start:start + 500])))
                                      .order_by(InboxEvent.id))
            return sorted(found, key=lambda event: event.id)

    def outcomes_of(self, event_ids: Sequence[int]) -> list[Outcome]:
        with self.session() as session:
            found: list[Outcome] = []
            for start in range(0, len(event_ids), 500):
                found += session.exec(select(Outcome).where(Outcome.event_id.in_(list(event_ids[start:start + 500]))))
            return sorted(found, key=lambda outcome: outcome.id)

    def entity_states_of(self, from_system: str, entity_type: str, entity_ids: Sequence[str],
                         to_system: str) -> list[EntityState]:
        if not entity_ids:
            return []
        with self.session() as session:
            return list(session.exec(select(EntityState).where(
                EntityState.from_system == from_system, EntityState.to_system == to_system,
                EntityState.entity_type == entity_type,
                EntityState.entity_id.in_(list(entity_ids))).order_by(EntityState.entity_id)))

    # -- per-entity claims -----------------------------------------------------------------------------------

    def claim(self, key: EntityKey, event_id: int, *, stale_after: timedelta, flow_run_id: str | None = None) -> bool:
        """Take the entity for this event; False while another live event holds it.

        A re-run of the same event (a retry, or a run rescheduled after its process died) takes the claim back
        and refreshes it. A claim older than ``stale_after`` belongs to a crashed run and is taken over.
        """
        with self.session() as session:
            try:
                # A Core insert, not the ORM's unit of work: once per event (bench/batch_steps.py).
                session.connection().execute(insert(EntityClaim.__table__).values(
                    **_key(key), event_id=event_id, claimed_at=utcnow(), flow_run_id=flow_run_id))
                session.commit()
                return True
            except IntegrityError:
                session.rollback()
            held = session.get(EntityClaim, _key_tuple(key))
            if held is None:  # released between our insert and our read: try once more
                return self.claim(key, event_id, stale_after=stale_after, flow_run_id=flow_run_id)
            if held.event_id != event_id and held.claimed_at > utcnow() - stale_after:
                return False
            taken = session.exec(
                update(EntityClaim)
                .where(*_key_where(EntityClaim, key), EntityClaim.event_id == held.event_id,
                       EntityClaim.claimed_at == held.claimed_at)
                .values(event_id=event_id, claimed_at=utcnow(), flow_run_id=flow_run_id)
            )
            session.commit()
            if taken.rowcount == 1:
                return True
            # Changed under us: released, or taken by someone else. Our own event may still hold it.
            return self.claim(key, event_id, stale_after=stale_after, flow_run_id=flow_run_id) \
                if held.event_id == event_id else False

    def release(self, key: EntityKey, event_id: int) -> None:
        with self.session() as session:
            session.exec(_bulk(delete(EntityClaim).where(*_key_where(EntityClaim, key),
                                                         EntityClaim.event_id == event_id)))
            session.commit()

    def free_stale_claims(self, *, older_than: timedelta) -> int:
        with self.session() as session:
            result = session.exec(_bulk(delete(EntityClaim).where(EntityClaim.claimed_at < utcnow() - older_than)))
            session.commit()
            return result.rowcount

    def claims_with_runs(self, *, limit: int = 1000) -> list[EntityClaim]:
        """Claims that name their flow run, oldest first: recovery asks Prefect whether those runs still live."""
        with self.session() as session:
            return list(session.exec(select(EntityClaim).where(EntityClaim.flow_run_id.is_not(None))
                                     .order_by(EntityClaim.claimed_at).limit(limit)))

    def free_claim(self, claim: EntityClaim) -> bool:
        """Delete this claim if nobody took or refreshed it since it was read (a re-run refreshes its claim)."""
        key = EntityKey(claim.from_system, claim.entity_type, claim.entity_id, claim.to_system)
        with self.session() as session:
            result = session.exec(_bulk(delete(EntityClaim).where(
                *_key_where(EntityClaim, key), EntityClaim.event_id == claim.event_id,
                EntityClaim.claimed_at == claim.claimed_at)))
            session.commit()
            return result.rowcount == 1

    # -- entity state and outcomes -----------------------------------------------------------------------------

    def entity_state(self, key: EntityKey) -> EntityState | None:
        with self.session() as session:
            return session.get(EntityState, _key_tuple(key))

    def written_by_us(self, key: EntityKey) -> EntityState | None:
        """The entity of the opposite direction whose written record ``key`` is, if erpsync wrote it: a record
        erpsync made in ``key.from_system`` (e.g. a shop fulfillment made from an ERP shipment) coming back as an
        event of that system. Matched by the record type written and its id, either as the event names it or as the
        last segment of the id erpsync was given (``gid://…/Fulfillment/42`` for ``42``)."""
        escaped = key.entity_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.session() as session:
            return session.exec(select(EntityState).where(
                EntityState.from_system == key.to_system, EntityState.to_system == key.from_system,
                EntityState.to_record_type == key.entity_type,
                (EntityState.to_id == key.entity_id) | EntityState.to_id.like(f"%/{escaped}", escape="\\"),
            ).limit(1)).first()

    def forget_applied_content(self, key: EntityKey) -> bool:
        """Clear the entity's last applied payload hash: reconciliation found the ERP no longer holds it.

        The cross-reference, the applied version and the outcome history stay; only dedupe's "same content,
        already applied" shortcut (layer 2) is off for the entity until its next sync records a hash, so a
        repair that re-sends the same content is applied. The version guard (layer 3) still holds.
        """
        with self.session() as session:
            result = session.exec(_bulk(update(EntityState).where(*_key_where(EntityState, key),
                                                                  EntityState.last_payload_sha256 != "")
                                        .values(last_payload_sha256="")))
            session.commit()
            return result.rowcount == 1

    def record_element(self, key: EntityKey, *, record_type: str, external_id: str, to_id: str, version: datetime,
                       payload_sha256: str, mapping_version: str) -> None:
        """The ledger row of one element of an ``each:`` mapping (a product's variant), written as soon as the
        target took it: its id stays findable (`erpsync status`, the cross-reference) even when a later element
        is refused. Like an entity's own row, it never moves back to an older version."""
        now = utcnow()
        with self.session() as session:
            state = session.get(EntityState, _key_tuple(key), with_for_update=True)
            if state is None:
                state = EntityState(**_key(key), to_record_type=record_type, external_id=external_id, to_id=to_id,
                                    last_version=version, last_payload_sha256=payload_sha256,
                                    mapping_version=mapping_version, updated_at=now)
            elif version >= state.last_version:
                state.to_id, state.last_version, state.updated_at = to_id, version, now
                state.last_payload_sha256, state.mapping_version = payload_sha256, mapping_version
            session.add(state)
            session.commit()

    def event_applied(self, event_id: int) -> bool:
        """True when this very event already ended synced (a re-run after a crash past the ERP write)."""
        with self.session() as session:
            row = session.exec(
                select(Outcome.id).where(Outcome.event_id == event_id, Outcome.outcome == "synced").limit(1)
            ).first()
            return row is not None

    def record_outcome(
        self,
        *,
        event_id: int,
        source: str,
        outcome: str,
        key: EntityKey | None = None,
        reason: str | None = None,
        external_id: str | None = None,
        to_id: str | None = None,
        mapping_version: str | None = None,
        payload_sha256: str | None = None,
        applied: tuple[str, datetime] | None = None,
        release: bool = False,
    ) -> None:
        """Append an outcome and move the inbox event to that state, in one transaction.

        ``applied`` = (target record type, version) for a synced event: the entity's cross-reference, version
        and hash are updated in the same transaction, so the ledger never says synced without them.
        ``release``: the event's claim on ``key`` goes in the same transaction — the event is finished, and a
        write per event is saved (a burst makes thousands).
        """
        now = utcnow()
        # Core statements on the session's connection, not the ORM's unit of work: this runs once per event, and
        # the ORM's bookkeeping cost more than the statements (bench/batch_steps.py).
        with self.session() as session:
            connection = session.connection()
            connection.execute(insert(Outcome.__table__).values(
                event_id=event_id, source=source, entity_type=key.entity_type if key else None,
                entity_id=key.entity_id if key else None, external_id=external_id,
                to_system=key.to_system if key else None, to_id=to_id, outcome=outcome, reason=reason,
                mapping_version=mapping_version, payload_sha256=payload_sha256, at=now))
            # An event once synced stays synced: a later re-run of it (sweep, trigger, a retry of a Completed
            # run) is logged as a duplicate outcome but does not rewrite the event's state.
            inbox = InboxEvent.__table__
            connection.execute(update(inbox).where(inbox.c.id == event_id, inbox.c.state != "synced")
                               .values(state=outcome))
            if applied is not None and key is not None:
                record_type, version = applied
                entity = EntityState.__table__
                where = _key_where(entity.c, key)
                stored = connection.execute(select(entity.c.last_version).where(*where).with_for_update()).first()
                values = dict(to_record_type=record_type, external_id=external_id, to_id=to_id, last_version=version,
                              last_payload_sha256=payload_sha256, mapping_version=mapping_version, updated_at=now)
                if stored is None:
                    connection.execute(insert(entity).values(**_key(key), **values))
                # A version older than the stored one can only arrive if a stale claim was taken over while
                # its holder still ran: the cross-reference never moves back.
                elif version >= stored.last_version:
                    connection.execute(update(entity).where(*where).values(**values))
            if release and key is not None:
                claims = EntityClaim.__table__
                connection.execute(delete(claims).where(*_key_where(claims.c, key), claims.c.event_id == event_id))
            session.commit()

    def record_conflicts(self, conflicts: Sequence[FieldConflict]) -> None:
        """Report fields both sides changed, as their owner settled them (one transaction)."""
        if not conflicts:
            return
        with self.session() as session:
            for conflict in conflicts:
                session.add(conflict)
            session.commit()

    def conflicts(self, *, since: datetime | None = None, limit: int = 100) -> list[FieldConflict]:
        """The newest reported conflicts first."""
        with self.session() as session:
            query = select(FieldConflict).order_by(FieldConflict.id.desc()).limit(limit)
            if since is not None:
                query = query.where(FieldConflict.at >= since)
            return list(session.exec(query))

    # -- reading for people ----------------------------------------------------------------------------------

    def outcomes(self, event_id: int | None = None) -> list[Outcome]:
        with self.session() as session:
            query = select(Outcome).order_by(Outcome.id)
            if event_id is not None:
                query = query.where(Outcome.event_id == event_id)
            return list(session.exec(query))

    def inbox_counts(self) -> dict[str, int]:
        """Events per state, plus ``received`` (all events) and ``redeliveries`` (repeated delivery ids)."""
        with self.session() as session:
            by_state = dict(session.exec(select(InboxEvent.state, func.count()).group_by(InboxEvent.state)).all())
            total = session.exec(select(func.count()).select_from(InboxEvent)).one()
            redeliveries = session.exec(select(func.coalesce(func.sum(InboxEvent.redeliveries), 0))).one()
        return {**by_state, "events": total, "redeliveries": int(redeliveries)}

    def entities(self) -> list[EntityState]:
        with self.session() as session:
            return list(session.exec(select(EntityState).order_by(EntityState.external_id)))

    # -- the change reader's cursors ------------------------------------------------------------------------

    def change_cursor(self, system: str, record_type: str) -> ChangeCursor | None:
        """Where the change reader of ``system``'s ``record_type`` goes on from; None before its first pass."""
        with self.session() as session:
            return session.get(ChangeCursor, (system, record_type))

    def change_cursors(self) -> list[ChangeCursor]:
        with self.session() as session:
            return list(session.exec(select(ChangeCursor).order_by(ChangeCursor.system, ChangeCursor.record_type)))

    def save_change_cursor(self, system: str, record_type: str, *, cursor: str, newest_cursor: str | None,
                           newest_modified: datetime | None) -> None:
        """Store the reader's position; written after the page's deliveries are committed, so a crash between the
        two reads the page again (same delivery ids: redeliveries), never skips it."""
        with self.session() as session:
            row = session.get(ChangeCursor, (system, record_type)) or ChangeCursor(
                system=system, record_type=record_type, cursor=cursor, updated_at=utcnow())
            row.cursor, row.newest_cursor, row.updated_at = cursor, newest_cursor, utcnow()
            if newest_modified is not None:
                row.newest_modified = newest_modified
            session.add(row)
            session.commit()


def notice_sources() -> frozenset[str]:
    """The sources whose deliveries are change notices: every ERP the registry lists (they send no webhooks of
    their own, only notices of a change, read back before mapping)."""
    from erpsync.systems import SYSTEMS  # the registry's packages import the ledger

    return frozenset(name for name, system in SYSTEMS.items() if system.kind == "erp")


def _rereads(connection, statement, deliveries: Sequence[InboxDelivery], redelivered: Counter,
             notices: frozenset[str], margin: timedelta | None) -> dict[tuple[str, str], int]:
    """The re-read events stored for redelivered notices (key → the new event's id), in this transaction."""
    from erpsync.change_intake import (  # it imports the ledger
        REREAD_CLOCK_MARGIN,
        REREAD_MARK,
        reread_delivery,
        reread_due,
    )

    table = InboxEvent.__table__
    made: dict[tuple[str, str], int] = {}
    first = {(d.source, d.delivery_id): d for d in reversed(deliveries)}
    for key in sorted(k for k in redelivered if k[0] in notices):
        source, delivery_id = key
        like = delivery_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + REREAD_MARK + "%"
        last = connection.execute(
            select(table.c.id, table.c.delivery_id, table.c.state, table.c.received_at, table.c.read_at)
            .where(table.c.source == source,
                   (table.c.delivery_id == delivery_id) | table.c.delivery_id.like(like, escape="\\"))
            .order_by(table.c.id.desc()).limit(1)).first()
        if last is None:
            continue
        # Its arrival stands in for the read of an event that noted none (no read: in its mapping, or older).
        read_at = _aware(last.read_at or last.received_at)
        if not reread_due(first[key].body, last.state, read_at, margin or REREAD_CLOCK_MARGIN):
            continue
        number = int(last.delivery_id.rsplit(REREAD_MARK, 1)[1]) + 1 if REREAD_MARK in last.delivery_id else 1
        again = reread_delivery(first[key], number)
        row = dict(source=source, delivery_id=again.delivery_id, topic=again.topic, shop=again.shop,
                   triggered_at=again.triggered_at, received_at=utcnow(), payload_sha256=again.payload_sha256,
                   body=again.body, redeliveries=0, state="received", source_event_id=None, api_version=None,
                   duplicate_of=None, flow_run_id=None, dispatched_at=None)
        created = connection.execute(statement, [row]).first()
        if created is not None:  # another process made this re-read at the same moment: theirs runs
            made[key] = created[0]
    return made


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _split_replays(connection, rows: dict[tuple[str, str], dict], body_only: set[str]):
    """The batch's delivery keys in two: originals to insert as they are, and replays of an earlier event with
    (the earlier event's id, or the key of an original in this batch; and what they share), both in key order.

    A delivery id stored already is left among the originals: the insert skips it and it counts as a
    redelivery. One SELECT per batch, on the (source, payload_sha256) and (source, source_event_id) indexes.
    """
    table = InboxEvent.__table__
    handled_here = receiver_topics()
    candidates = sorted(key for key, row in rows.items()
                        if row["topic"] not in handled_here.get(row["source"], ())
                        and (row["source"] in body_only or row["source_event_id"]))
    if not candidates:
        return sorted(rows), []
    hashes = {rows[key]["payload_sha256"] for key in candidates if key[0] in body_only}
    event_ids = {rows[key]["source_event_id"] for key in candidates if rows[key]["source_event_id"]}
    sources = {key[0] for key in candidates}
    match = table.c.payload_sha256.in_(hashes)
    if event_ids:
        match = or_(match, table.c.source_event_id.in_(event_ids))
    by_hash: dict[tuple[str, str], tuple[int, str]] = {}
    by_event: dict[tuple[str, str], tuple[int, str]] = {}
    for event_id, source, delivery_id, sha, source_event in connection.execute(
            select(table.c.id, table.c.source, table.c.delivery_id, table.c.payload_sha256, table.c.source_event_id)
            .where(table.c.source.in_(sources), match).order_by(table.c.id)):
        by_hash.setdefault((source, sha), (event_id, delivery_id))
        if source_event:
            by_event.setdefault((source, source_event), (event_id, delivery_id))
    originals, copies = [], []
    first_in_batch: dict[tuple[str, str], tuple[str, str]] = {}
    for key in sorted(rows):
        row = rows[key]
        if key not in candidates:
            originals.append(key)
            continue
        source, delivery_id = key
        found = None
        if row["source_event_id"]:
            stored = by_event.get((source, row["source_event_id"]))
            if stored and stored[1] != delivery_id:
                found = (stored[0], "same source event id")
            elif ("event", source, row["source_event_id"]) in first_in_batch:
                found = (first_in_batch[("event", source, row["source_event_id"])], "same source event id")
        if found is None and source in body_only:
            stored = by_hash.get((source, row["payload_sha256"]))
            if stored and stored[1] != delivery_id:
                found = (stored[0], "same body")
            elif ("body", source, row["payload_sha256"]) in first_in_batch:
                found = (first_in_batch[("body", source, row["payload_sha256"])], "same body")
        if found is None:
            originals.append(key)
            first_in_batch.setdefault(("body", source, row["payload_sha256"]), key)
            if row["source_event_id"]:
                first_in_batch.setdefault(("event", source, row["source_event_id"]), key)
        else:
            copies.append((key, found))
    return originals, copies


def _for_flow_runs():
    """Events a flow run may take: all but the topics the receiver acts on itself."""
    return not_(or_(*(and_(InboxEvent.source == source, InboxEvent.topic.in_(topics))
                      for source, topics in receiver_topics().items())))


def _scrub(reason: str, texts: Sequence[str]) -> str:
    lowered = reason.lower()
    for personal in texts:
        start = lowered.find(personal.lower())
        while start >= 0:
            reason = reason[:start] + "<redacted>" + reason[start + len(personal):]
            lowered = reason.lower()
            start = lowered.find(personal.lower(), start + len("<redacted>"))
    return reason


def _key(key: EntityKey) -> dict[str, str]:
    return {"from_system": key.from_system, "entity_type": key.entity_type, "entity_id": key.entity_id,
            "to_system": key.to_system}


def _key_tuple(key: EntityKey) -> tuple[str, str, str, str]:
    """The primary key of entity_state and entity_claim, in their column order (for ``session.get``)."""
    return (key.from_system, key.entity_type, key.entity_id, key.to_system)


def _bulk(statement):
    """An UPDATE or DELETE run as one statement, without SQLAlchemy matching its rows against the objects the session
    holds (``synchronize_session``): no ledger session holds the rows it changes this way, and that matching, built
    anew for every statement, was two fifths of an event's outcome commit (bench/batch_steps.py under py-spy)."""
    return statement.execution_options(synchronize_session=False)


def _key_where(table, key: EntityKey):
    return (table.from_system == key.from_system, table.entity_type == key.entity_type,
            table.entity_id == key.entity_id, table.to_system == key.to_system)
