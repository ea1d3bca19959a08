"""How long events have waited in the inbox without a flow run: what the stale-inbox alert reports.

The sweep emits it as an event (its name and resource live in orchestration/events.py) that alerts.yaml's
stale-inbox automation matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import select

from erpsync.ledger import InboxEvent, Ledger, utcnow


@dataclass(frozen=True)
class StaleInbox:
    count: int
    oldest_age_seconds: int

    def payload(self) -> dict[str, int]:
        """The event's payload: counts only, no event id or content."""
        return {"count": self.count, "oldest_age_seconds": self.oldest_age_seconds}


def stale_inbox(ledger: Ledger, *, older_than: timedelta, now: datetime | None = None) -> StaleInbox | None:
    """Events received more than ``older_than`` ago that no flow run has picked up; None when there are none.

    The receiver starts a run within a second of storing an event, and the sweep catches what it missed within a
    minute, so such events mean Prefect, the dispatch or the sweep has been away for that long.
    """
    now = now or utcnow()
    with ledger.session() as session:
        count, oldest = session.exec(
            select(func.count(), func.min(InboxEvent.received_at))
            .where(InboxEvent.flow_run_id.is_(None), InboxEvent.received_at < now - older_than)
        ).one()
    if not count:
        return None
    if oldest.tzinfo is None:  # SQLite's aggregate bypasses the column type's conversion
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return StaleInbox(count=int(count), oldest_age_seconds=int((now - oldest).total_seconds()))
