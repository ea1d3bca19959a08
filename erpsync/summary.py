"""What the ledger says happened: counts per outcome, the dead-lettered events and the ERP cross-reference."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import select

from erpsync.ledger import PRIVACY_STATES, InboxEvent, Ledger, Outcome


@dataclass
class DeadLetter:
    event_id: int
    topic: str
    entity: str | None
    reason: str


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
        failed = session.exec(select(InboxEvent.id, InboxEvent.topic).where(InboxEvent.state == "failed")).all()
        dead = []
        for event_id, topic in failed:
            last = session.exec(select(Outcome).where(Outcome.event_id == event_id, Outcome.outcome == "failed")
                                .order_by(Outcome.id.desc()).limit(1)).first()
            entity = f"{last.entity_type}/{last.entity_id}" if last and last.entity_id else None
            dead.append(DeadLetter(event_id, topic, entity, last.reason if last else "no reason recorded"))
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


def format_summary(s: Summary, *, max_records: int = 100) -> str:
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
        lines.append(f"  event {d.event_id} {d.topic} {d.entity or ''}: {d.reason}")
    if s.records:
        lines.append(f"ERP records ({len(s.records)}): external id → ERP internal id")
        for _, external_id, erp_id in s.records[:max_records]:
            lines.append(f"  {external_id} → {erp_id}")
        if len(s.records) > max_records:
            lines.append(f"  … and {len(s.records) - max_records} more (erpsync status)")
    return "\n".join(lines)


def empty_ledger_note(database_url: str) -> str:
    """What a reader of an empty ledger is told: where it looked (no password), and how events get there."""
    from sqlalchemy.engine import make_url

    where = make_url(database_url).render_as_string(hide_password=True)
    return (f"the ledger {where} holds no events yet: the receiver (erpsync serve) stores them as webhooks arrive; "
            f"for the demo's ledger set ERPSYNC_HOME=.erpsync/demo")
