"""What the ledger says happened: counts per outcome, the dead-lettered events and the ERP cross-reference; and
everything about one entity an operator names (`erpsync status order/…` or `'#1042'`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import select

from erpsync.errors import ConfigError
from erpsync.event_refs import EventRef, describe, find_events, not_found, trace_of
from erpsync.ledger import PRIVACY_STATES, EntityState, InboxEvent, Ledger, Outcome


@dataclass
class DeadLetter:
    event_id: int
    topic: str
    entity: str | None
    reason: str
    label: str | None = None  # the order code, #1042


@dataclass
class Summary:
    deliveries: int  # every POST accepted, redeliveries included
    events: int  # unique delivery ids stored in the inbox
    redeliveries: int
    synced: int
    duplicates: int  # content already applied (ledger layer 2), not counting redeliveries
    superseded: int
    dead_lettered: list[DeadLetter] = field(default_factory=list)
    pending: int = 0
    skipped: int = 0  # a mapping's skip: rule held (a test order, an order edit)
    compliance: int = 0  # Shopify compliance requests the receiver acted on (redacted, request recorded)
    records: list[tuple[str, str, str]] = field(default_factory=list)  # (entity, external id, ERP id)

    @property
    def handled(self) -> int:
        return self.synced + self.duplicates + self.superseded + len(self.dead_lettered) + self.skipped \
            + self.compliance


def summarize(ledger: Ledger) -> Summary:
    counts = ledger.inbox_counts()
    with ledger.session() as session:
        failed = session.exec(select(InboxEvent.id, InboxEvent.topic, InboxEvent.entity, InboxEvent.entity_label)
                              .where(InboxEvent.state == "failed")).all()
        dead = []
        for event_id, topic, entity, label in failed:
            last = session.exec(select(Outcome).where(Outcome.event_id == event_id, Outcome.outcome == "failed")
                                .order_by(Outcome.id.desc()).limit(1)).first()
            if entity is None and last and last.entity_id:
                entity = f"{last.entity_type}/{last.entity_id}"
            dead.append(DeadLetter(event_id, topic, entity, last.reason if last else "no reason recorded", label))
    summary = Summary(
        deliveries=counts["events"] + counts["redeliveries"],
        events=counts["events"],
        redeliveries=counts["redeliveries"],
        synced=counts.get("synced", 0),
        duplicates=counts.get("duplicate", 0),
        superseded=counts.get("superseded", 0),
        skipped=counts.get("skipped", 0),
        compliance=sum(counts.get(state, 0) for state in PRIVACY_STATES),
        dead_lettered=dead,
        records=[(f"{s.from_system}/{s.entity_type}/{s.entity_id}", s.external_id, s.to_id) for s in ledger.entities()],
    )
    summary.pending = summary.events - summary.handled
    return summary


RECORDS_SHOWN = 5  # the ERP records listed by default: production holds thousands


def format_summary(s: Summary, *, max_records: int | None = RECORDS_SHOWN, explain: bool = True) -> str:
    """The counts, each with what it counts; the dead letters; the ERP records written, the first ``max_records``
    of them (None: all)."""
    lines = [
        f"received      {s.deliveries} deliveries ({s.events} unique, {s.redeliveries} redelivered)",
        f"synced        {s.synced}",
        f"duplicates    {s.redeliveries + s.duplicates} skipped "
        f"({s.redeliveries} repeated delivery ids, {s.duplicates} content already applied)",
        f"superseded    {s.superseded} (older than the version already applied)",
        f"dead-lettered {len(s.dead_lettered)}",
    ]
    if s.skipped:
        lines.append(f"skipped       {s.skipped} (a mapping's skip rule: test orders, order edits)")
    if s.compliance:
        lines.append(f"compliance    {s.compliance} requests acted on (erpsync privacy requests)")
    if s.pending:
        lines.append(f"pending       {s.pending}")
    for d in s.dead_lettered:
        lines.append(f"  {describe(d.event_id, d.entity, d.label)} ({d.topic}): {d.reason}")
    if s.dead_lettered:
        lines.append("  one of them in full, with its run: erpsync dlq show EVENT (an id, entity or order code)")
    if s.records:
        shown = s.records if max_records is None else s.records[:max_records]
        first = "" if len(shown) == len(s.records) else f", the first {len(shown)}"
        lines.append(f"ERP records ({len(s.records)}{first}): external id → ERP internal id")
        for _, external_id, erp_id in shown:
            lines.append(f"  {external_id} → {erp_id}")
        if len(shown) < len(s.records):
            lines.append(f"  … and {len(s.records) - len(shown)} more: erpsync status --all lists every one")
    if explain:
        lines += ["", *COUNTS_EXPLAINED]
    return "\n".join(lines)


# One line per count of format_summary: what it counts, for a reader who has not read the ledger's code.
COUNTS_EXPLAINED = (
    "what the counts mean:",
    "  received       webhook POSTs the receiver accepted; unique = distinct delivery ids (the inbox's events),"
    " redelivered = the same delivery id sent again",
    "  synced         events whose record the ERP now holds (written, or already as wanted)",
    "  duplicates     events not applied again: a repeated delivery id, or a body already applied",
    "  superseded     events older than the version of the entity already applied (not written back)",
    "  dead-lettered  events that failed for good: each waits for a person (erpsync dlq list)",
    "  skipped        events a mapping's skip: rule left out on purpose; pending = not handled yet",
)


def empty_ledger_note(database_url: str) -> str:
    """What a reader of an empty ledger is told: where it looked (no password), and how events get there."""
    from sqlalchemy.engine import make_url

    where = make_url(database_url).render_as_string(hide_password=True)
    return (f"the ledger {where} holds no events yet: the receiver (erpsync serve) stores them as webhooks arrive; "
            f"for the demo's ledger set ERPSYNC_HOME=.erpsync/demo")


def entity_report(ledger: Ledger, text: str) -> str:
    """Every event of the entity ``text`` names (an event id, ``order/820982911946154508``, ``#1042``): its state
    and where its trace is, and the records the entity was written to. ConfigError when nothing matches, or when an
    order code names events of several entities (two shops with the same code): the message lists them."""
    ref = EventRef.parse(text)
    events = find_events(ledger, ref)
    if not events:
        raise not_found(ref)
    entities = sorted({(e.source, e.entity) for e in events if e.entity})
    if len(entities) > 1:
        codes = {(e.source, e.entity): e.entity_label for e in events if e.entity_label}
        listed = "; ".join(" ".join(filter(None, [f"{source}/{entity}", codes.get((source, entity))]))
                           for source, entity in entities[:10])
        raise ConfigError(f"{ref.kind} {ref.text} names events of {len(entities)} entities: {listed}; name one as "
                          f"SOURCE/TYPE/ID, e.g. erpsync status {entities[0][0]}/{entities[0][1]}")
    if entities:
        source, entity = entities[0]
        events = ledger.events_about(entity=entity, source=source, limit=500)
        entity_type, _, entity_id = entity.partition("/")
        with ledger.session() as session:
            records = list(session.exec(select(EntityState).where(
                EntityState.from_system == source, EntityState.entity_type == entity_type,
                EntityState.entity_id == entity_id)))
    else:
        source, entity, records = events[0].source, None, []
    label = next((e.entity_label for e in reversed(events) if e.entity_label), None)
    title = " ".join(filter(None, [entity or f"event {events[0].id} (entity not read yet)", label]))
    lines = [f"{title}  ({source})"]
    for r in records:
        lines.append(f"ERP record   {r.to_system} {r.to_record_type} {r.to_id} (external id {r.external_id}), "
                     f"version {_when(r.last_version)} applied {_when(r.updated_at)} UTC")
    if entity and not records:
        lines.append("ERP record   none yet")
    lines += ["", f"events ({len(events)}, oldest first; times in UTC)"]
    for e in events:
        lines.append(f"  event {e.id:<8} {e.topic:<22} received {_when(e.received_at)}  {e.state}")
        lines.append(f"      trace: {trace_of(ledger, e)}")
        if e.state == "failed":
            lines.append(f"      dead letter: erpsync dlq show {e.id}")
    return "\n".join(lines)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
