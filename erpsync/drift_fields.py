"""The source fields each mapping was found not reading, remembered in the ledger (table ``drift_field``).

Drift is signal only while it is new: a field a worker has met before says nothing the second time, in this
process or in another worker's. So a run logs a field the first time any worker meets it (``first_seen``), and
``erpsync mapping drift --new`` lists what it has not listed before (``report_new``). Keyed by the mapping's
name, not its version: an edit of the file does not make every field it still leaves alone new again.
Field paths only (``line_items[].tax_lines[].rate``), never a value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from erpsync.db import dialect_insert
from erpsync.ledger import UTCDateTime, utcnow


class DriftField(SQLModel, table=True):
    """A source field ``field`` that mapping ``mapping`` (the file's name) neither reads nor ignores."""

    __tablename__ = "drift_field"

    mapping: str = Field(primary_key=True, max_length=120)
    field: str = Field(primary_key=True, max_length=300)
    first_seen_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # When `erpsync mapping drift --new` first listed it; null: not listed yet.
    reported_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


def _insert_new(connection: Connection, mapping: str, fields: Iterable[str], now: datetime) -> list[str]:
    """Insert the fields not yet remembered; the ones this call inserted. Another worker inserting the same field
    at the same moment is no error: one of the two inserts it, and only that one calls it new."""
    insert = dialect_insert(connection)
    table = DriftField.__table__
    new = []
    for name in sorted(set(fields)):
        statement = (insert(table).values(mapping=mapping, field=name, first_seen_at=now, reported_at=None)
                     .on_conflict_do_nothing(index_elements=["mapping", "field"]).returning(table.c.field))
        # RETURNING, not rowcount: the PostgreSQL driver reports no row count for this statement.
        if connection.execute(statement).first() is not None:
            new.append(name)
    return new


class DriftMemory:
    """What the workers have seen, asked once per field and process: the same shapes come back with every event."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def first_seen(self, mapping: str, fields: Iterable[str]) -> list[str]:
        """The fields no worker had met unread before under ``mapping``, now remembered; sorted."""
        with self._lock:
            fresh = {f for f in fields if (mapping, f) not in self._known}
        if not fresh:
            return []
        with self.engine.begin() as connection:
            new = _insert_new(connection, mapping, fresh, utcnow())
        with self._lock:
            self._known.update((mapping, f) for f in fresh)
        return new


def report_new(engine: Engine, found: dict[str, set[str]]) -> dict[str, set[str]]:
    """Of the fields ``found`` per mapping, the ones ``drift --new`` has not listed before; marks them listed."""
    table = DriftField.__table__
    now = utcnow()
    new: dict[str, set[str]] = {}
    with engine.begin() as connection:
        for mapping, fields in sorted(found.items()):
            if not fields:
                continue
            _insert_new(connection, mapping, fields, now)
            # Chunks keep the IN list within SQLite's bound on parameters.
            names = sorted(fields)
            for start in range(0, len(names), 500):
                chunk = names[start:start + 500]
                rows = connection.execute(
                    select(table.c.field).where(table.c.mapping == mapping, table.c.field.in_(chunk),
                                                table.c.reported_at.is_(None))
                ).scalars().all()
                if rows:
                    new.setdefault(mapping, set()).update(rows)
                    connection.execute(update(table).where(table.c.mapping == mapping, table.c.field.in_(rows))
                                       .values(reported_at=now))
    return new
