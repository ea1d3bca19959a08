"""The NetSuite sandbox's records and the SuiteQL tables derived from them, kept in one SQLite file."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from erpsync_dev.sandboxes.netsuite import fulfillments, stock, sublists
from erpsync_dev.sandboxes.netsuite.options import DEFAULT_CUSTOMERS, DEFAULT_LISTS
from erpsync_dev.sandboxes.netsuite.records import (
    ITEM_RECORD_TYPES,
    SUITEQL_SCHEMA,
    SUITEQL_TABLES,
    Rejection,
    check_record,
    currency_rows,
    suiteql_rows,
)
from erpsync_dev.sandboxes.netsuite.records import text as _text
from erpsync_dev.sandboxes.netsuite.suiteql_functions import register as register_suiteql_functions
from erpsync_dev.sandboxes.netsuite.totals import CURRENCIES


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RecordStore:
    """Records and the SuiteQL tables derived from them, in one SQLite file."""

    def __init__(self, path: Path, items: dict[int, str], customers: dict[int, str] | None = None,
                 lists: dict[str, frozenset[int]] | None = None) -> None:
        self.path = path
        self.seed_items = dict(items)
        self.seed_customers = dict(DEFAULT_CUSTOMERS if customers is None else customers)
        self.lists = {"currency": frozenset(CURRENCIES), **(DEFAULT_LISTS if lists is None else lists)}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS record (
                internal_id INTEGER PRIMARY KEY AUTOINCREMENT,
                record_type TEXT NOT NULL,
                external_id TEXT,
                body TEXT NOT NULL,
                versions INTEGER NOT NULL DEFAULT 1,
                created TEXT NOT NULL,
                last_modified TEXT NOT NULL,
                UNIQUE (record_type, external_id)
            );
            """
        )
        if "next_line" not in {row["name"] for row in self._db.execute("PRAGMA table_info(record)")}:
            # The next sublist line number of each record: NetSuite never re-uses one (sublists).
            self._db.execute("ALTER TABLE record ADD COLUMN next_line INTEGER NOT NULL DEFAULT 0")
        with self._transaction():
            self._rebuild_suiteql_tables()

    def _rebuild_suiteql_tables(self) -> None:
        # Derived from the records, so they are recreated rather than migrated: a file from an older
        # sandbox gets today's columns, and the --items of this run.
        for table in SUITEQL_TABLES:
            self._db.execute(f'DROP TABLE IF EXISTS "{table}"')
        for statement in filter(str.strip, SUITEQL_SCHEMA.split(";")):
            self._db.execute(statement)
        self._seed_items()
        for row in self._db.execute("SELECT * FROM record ORDER BY internal_id").fetchall():
            self._index(row["record_type"], row["internal_id"], row["external_id"], json.loads(row["body"]),
                        row["last_modified"])

    def _seed_items(self) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO item (id, itemid, itemtype) VALUES (?, ?, 'InvtPart')",
            sorted(self.seed_items.items()),
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO customer (id, entityid, companyname, isperson) VALUES (?, ?, ?, 'F')",
            [(number, name, name) for number, name in sorted(self.seed_customers.items())],
        )
        for row in currency_rows():
            columns = ", ".join(row)
            self._db.execute(f"INSERT INTO currency ({columns}) VALUES ({', '.join('?' for _ in row)})",
                             list(row.values()))

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def find(self, record_type: str, ref: str) -> sqlite3.Row | None:
        if ref.startswith("eid:"):
            sql, key = "SELECT * FROM record WHERE record_type = ? AND external_id = ?", ref[4:]
        else:
            sql, key = "SELECT * FROM record WHERE record_type = ? AND internal_id = ?", ref
        return self._db.execute(sql, (record_type, key)).fetchone()

    def body(self, row: sqlite3.Row) -> dict[str, Any]:
        return json.loads(row["body"])  # type: ignore[no-any-return]

    def item_exists(self, item_id: int) -> bool:
        return self._db.execute("SELECT 1 FROM item WHERE id = ?", (item_id,)).fetchone() is not None

    def item_named(self, itemid: str) -> tuple[int, str | None] | None:
        row = self._db.execute("SELECT id, externalid FROM item WHERE lower(itemid) = lower(?)", (itemid,)).fetchone()
        return None if row is None else (row["id"], row["externalid"])

    def customer_exists(self, customer_id: int) -> bool:
        return self._db.execute("SELECT 1 FROM customer WHERE id = ?", (customer_id,)).fetchone() is not None

    def known(self, kind: str, internal_id: int) -> bool:
        return internal_id in self.lists.get(kind, frozenset())

    def fulfilled(self, order_id: int) -> dict[int, Any]:
        """Quantity shipped per line of this sales order, over its item fulfillments."""
        rows = self._db.execute(
            "SELECT body FROM record WHERE record_type = 'itemFulfillment'"
            " AND json_extract(body, '$.createdFrom.id') = ?", (str(order_id),)
        ).fetchall()
        return fulfillments.fulfilled_by([json.loads(row["body"]) for row in rows])

    def check(self, record_type: str, body: dict[str, Any], external_id: str | None = None) -> Rejection | None:
        """What NetSuite would refuse in this body, given the records there are now."""
        return check_record(record_type, body, self, external_id) or stock.check(record_type, body, self)

    def moved_items(self, transaction_id: int) -> list[tuple[str, str | None]]:
        """(item id, item external id) of each item the transaction's lines name, by id."""
        rows = self._db.execute(
            'SELECT DISTINCT tl.item, i.externalid FROM transactionline tl LEFT JOIN item i ON i.id = tl.item'
            ' WHERE tl."transaction" = ? AND tl.mainline = \'F\' AND tl.item IS NOT NULL ORDER BY tl.item',
            (transaction_id,)).fetchall()
        return [(str(row[0]), row[1]) for row in rows]

    def stock(self, item_id: int) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
        """(on hand, open sales order quantity) by location of this item, from its transactions (stock.py)."""
        moves = ", ".join(f"'{code}'" for code in stock.MOVED_BY)
        on_hand = {row[0]: Decimal(str(row[1])) for row in self._db.execute(
            'SELECT tl.location, SUM(tl.quantity) FROM transactionline tl JOIN "transaction" t'
            ' ON t.id = tl."transaction" WHERE tl.item = ? AND tl.location IS NOT NULL AND tl.mainline = \'F\''
            f' AND t.type IN ({moves}) GROUP BY tl.location', (item_id,))}
        open_orders: dict[int, Decimal] = {}
        order_lines = self._db.execute(
            'SELECT tl."transaction", tl.id, tl.location, tl.quantity FROM transactionline tl JOIN "transaction" t'
            ' ON t.id = tl."transaction" WHERE tl.item = ? AND tl.location IS NOT NULL AND tl.mainline = \'F\''
            " AND tl.isclosed = 'F' AND t.type = 'SalesOrd'", (item_id,)).fetchall()
        shipped: dict[int, dict[int, Decimal]] = {}
        for order, line, location, quantity in order_lines:
            if order not in shipped:
                shipped[order] = self.fulfilled(order)
            # A sales order's item lines carry the posting sign (negative): the ordered quantity is its opposite.
            left = -Decimal(str(quantity or 0)) - shipped[order].get(line, Decimal(0))
            if left > 0:
                open_orders[location] = open_orders.get(location, Decimal(0)) + left
        return on_hand, open_orders

    def upsert(
        self, record_type: str, external_id: str, body: dict[str, Any], replace: frozenset[str] = frozenset()
    ) -> tuple[int, bool] | Rejection:
        """Create the record with this external id, or update the one there is (sublists as NetSuite updates them).

        The internal id never changes. Checked as a whole, after the update, against the records there are now.
        """
        now = _now()
        with self._transaction():
            row = self.find(record_type, f"eid:{external_id}")
            if row is None:
                if record_type == "itemFulfillment":
                    return Rejection("USER_ERROR", fulfillments.DIRECT_CREATE)
                written = self._checked_create(record_type, external_id, body)
                if isinstance(written, Rejection):
                    return written
                internal_id = self._insert(record_type, external_id, written.body, now, written.next_line)
                created = True
            else:
                internal_id = row["internal_id"]
                updated = self._checked_update(record_type, row, body, replace)
                if isinstance(updated, Rejection):
                    return updated
                self._write(internal_id, updated, now)
                created = False
                written = updated
            self._index(record_type, internal_id, external_id, written.body, now)
        return internal_id, created

    def patch(
        self, record_type: str, ref: str, body: dict[str, Any], replace: frozenset[str] = frozenset()
    ) -> int | Rejection | None:
        """Update an existing record (``PATCH``); ``None`` when there is none."""
        now = _now()
        with self._transaction():
            row = self.find(record_type, ref)
            if row is None:
                return None
            updated = self._checked_update(record_type, row, body, replace)
            if isinstance(updated, Rejection):
                return updated
            self._write(row["internal_id"], updated, now)
            self._index(record_type, row["internal_id"], row["external_id"], updated.body, now)
        return int(row["internal_id"])

    def create(self, record_type: str, external_id: str | None, body: dict[str, Any]) -> int | Rejection | None:
        """Insert a new record; ``None`` when the external id is taken."""
        now = _now()
        with self._transaction():
            if external_id is not None and self.find(record_type, f"eid:{external_id}") is not None:
                return None
            if record_type == "itemFulfillment":
                return Rejection("USER_ERROR", fulfillments.DIRECT_CREATE)
            written = self._checked_create(record_type, external_id, body)
            if isinstance(written, Rejection):
                return written
            internal_id = self._insert(record_type, external_id, written.body, now, written.next_line)
            self._index(record_type, internal_id, external_id, written.body, now)
        return internal_id

    def transform(
        self, ref: str, external_id: str | None, request: dict[str, Any]
    ) -> tuple[int, int] | Rejection | None:
        """``salesOrder/{ref}/!transform/itemFulfillment``: (fulfillment id, order id); ``None`` if no such order."""
        now = _now()
        with self._transaction():
            order = self.find("salesOrder", ref)
            if order is None:
                return None
            if external_id is not None and self.find("itemFulfillment", f"eid:{external_id}") is not None:
                return Rejection("USER_ERROR", "A record with the same external ID already exists.", "externalId")
            order_id = int(order["internal_id"])
            body = fulfillments.transform(order_id, self.body(order), request, self.fulfilled(order_id))
            if isinstance(body, Rejection):
                return body
            next_line = 1 + max((line["line"] for name in sublists.sublists(body)
                                 for line in body[name]["items"]), default=0)
            internal_id = self._insert("itemFulfillment", external_id, body, now, next_line)
            self._index("itemFulfillment", internal_id, external_id, body, now)
        return internal_id, order_id

    def _checked_create(
        self, record_type: str, external_id: str | None, body: dict[str, Any]
    ) -> sublists.Merged | Rejection:
        created = sublists.create(body)
        if isinstance(created, sublists.LineRefusal):
            return Rejection(created.code, created.detail, created.path)
        rejection = self.check(record_type, created.body, external_id)
        if rejection is not None:
            return Rejection(rejection.code, rejection.detail, created.request_path(rejection.path),
                             rejection.status)
        return created

    def _checked_update(
        self, record_type: str, row: sqlite3.Row, body: dict[str, Any], replace: frozenset[str]
    ) -> sublists.Merged | Rejection:
        stored, next_line = _numbered(self.body(row), row["next_line"])
        fulfilled = self.fulfilled(row["internal_id"]) if record_type == "salesOrder" else {}
        merged = sublists.update(stored, body, replace=replace, next_line=next_line, fulfilled=fulfilled)
        if isinstance(merged, sublists.LineRefusal):
            return Rejection(merged.code, merged.detail, merged.path)
        rejection = self.check(record_type, merged.body, row["external_id"])
        if rejection is not None:
            return Rejection(rejection.code, rejection.detail, merged.request_path(rejection.path),
                             rejection.status)
        return merged

    def _write(self, internal_id: int, merged: sublists.Merged, now: str) -> None:
        self._db.execute(
            "UPDATE record SET body = ?, versions = versions + 1, last_modified = ?, next_line = ?"
            " WHERE internal_id = ?",
            (json.dumps(merged.body), now, merged.next_line, internal_id),
        )

    def _insert(
        self, record_type: str, external_id: str | None, body: dict[str, Any], now: str, next_line: int = 0
    ) -> int:
        internal_id = None
        seeded = "item" if record_type in ITEM_RECORD_TYPES else "customer" if record_type == "customer" else None
        if seeded is not None:
            # Seeded items and customers hold their ids outside the record table: a new one takes the next id
            # after both, so it never lands on a seeded one.
            internal_id = self._db.execute(
                f"SELECT max(coalesce((SELECT max(id) FROM {seeded}), 0),"
                " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'record'), 0)) + 1"
            ).fetchone()[0]
        cursor = self._db.execute(
            "INSERT INTO record (internal_id, record_type, external_id, body, created, last_modified, next_line)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (internal_id, record_type, external_id, json.dumps(body), now, now, next_line),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _index(
        self, record_type: str, internal_id: int, external_id: str | None, body: dict[str, Any], now: str
    ) -> None:
        rows = suiteql_rows(record_type, internal_id, external_id, body, now)
        if any(table == "transactionline" for table, _ in rows):
            # A transaction's lines are replaced as a whole: an edit may drop some.
            self._db.execute('DELETE FROM transactionline WHERE "transaction" = ?', (internal_id,))
        for table, row in rows:
            columns = ", ".join(f'"{column}"' for column in row)
            marks = ", ".join("?" for _ in row)
            self._db.execute(f'INSERT OR REPLACE INTO "{table}" ({columns}) VALUES ({marks})', list(row.values()))

    def delete(self, record_type: str, ref: str) -> bool:
        """Delete a record and its SuiteQL rows; False when there is none."""
        with self._transaction():
            row = self.find(record_type, ref)
            if row is None:
                return False
            internal_id = row["internal_id"]
            self._db.execute("DELETE FROM record WHERE internal_id = ?", (internal_id,))
            for table, key in (("transaction", "id"), ("transactionline", '"transaction"'), ("item", "id"),
                               ("customer", "id")):
                if table == "customer" and internal_id in self.seed_customers:
                    continue
                self._db.execute(f'DELETE FROM "{table}" WHERE {key} = ?', (internal_id,))
        return True

    def bulk_upsert(self, record_type: str, records: list[tuple[str, dict[str, Any], str | None]]) -> int:
        """Seed many records in one transaction, unchecked: (external id, body, last modified or None for now).

        The sandbox-only seeding path for benchmarks and tests: what the sync would have written, loaded
        without one HTTP upsert per record.
        """
        now = _now()
        with self._transaction():
            for external_id, body, modified in records:
                stamp = modified or now
                row = self.find(record_type, f"eid:{external_id}")
                if row is None:
                    internal_id = self._db.execute(
                        "INSERT INTO record (record_type, external_id, body, created, last_modified)"
                        " VALUES (?, ?, ?, ?, ?)", (record_type, external_id, json.dumps(body), stamp, stamp),
                    ).lastrowid
                else:
                    internal_id = row["internal_id"]
                    self._db.execute(
                        "UPDATE record SET body = ?, versions = versions + 1, last_modified = ? WHERE internal_id = ?",
                        (json.dumps(body), stamp, internal_id),
                    )
                assert internal_id is not None
                self._index(record_type, internal_id, external_id, body, stamp)
        return len(records)

    def page(self, record_type: str, limit: int, offset: int) -> tuple[list[int], int]:
        total = self._db.execute("SELECT COUNT(*) FROM record WHERE record_type = ?", (record_type,)).fetchone()[0]
        rows = self._db.execute(
            "SELECT internal_id FROM record WHERE record_type = ? ORDER BY internal_id LIMIT ? OFFSET ?",
            (record_type, limit, offset),
        ).fetchall()
        return [row[0] for row in rows], total

    def dump(self, record_type: str | None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM record ORDER BY internal_id", ()
        if record_type:
            sql, args = "SELECT * FROM record WHERE record_type = ? ORDER BY internal_id", (record_type,)
        return [
            {
                "record_type": row["record_type"],
                "internal_id": str(row["internal_id"]),
                "external_id": row["external_id"],
                "body": json.loads(row["body"]),
                "versions": row["versions"],
                "created": row["created"],
                "last_modified": row["last_modified"],
            }
            for row in self._db.execute(sql, args)
        ]

    def reset(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM record")
            self._rebuild_suiteql_tables()

    def query(self, sql: str, params: list[Any], limit: int, offset: int) -> tuple[list[dict[str, str]], int]:
        """Run one SuiteQL SELECT on a read-only connection that sees only NetSuite-named tables."""
        reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            reader.execute("PRAGMA query_only = ON")
            # SuiteQL runs on Oracle, where = and LIKE compare text case-sensitively (an email is matched
            # case-insensitively only through LOWER/UPPER); SQLite's LIKE would ignore case for ASCII.
            reader.execute("PRAGMA case_sensitive_like = ON")
            register_suiteql_functions(reader)
            reader.set_authorizer(_suiteql_authorizer)
            total = reader.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0]
            cursor = reader.execute(f"SELECT * FROM ({sql}) LIMIT ? OFFSET ?", [*params, limit, offset])
            names = [column[0].lower() for column in cursor.description]
            # SuiteQL answers every value as a string and leaves out the columns that are null.
            rows = [{name: _text(value) for name, value in zip(names, row) if value is not None} for row in cursor]
            return rows, total
        finally:
            reader.close()


def _numbered(body: dict[str, Any], next_line: int) -> tuple[dict[str, Any], int]:
    """A stored body whose sublist lines all carry ``line`` (records seeded in bulk may not), and the next number."""
    highest = max((line["line"] for name in sublists.sublists(body) for line in body[name]["items"]
                   if isinstance(line, dict) and isinstance(line.get("line"), int)), default=0)
    next_line = max(next_line, highest + 1)
    numbered = dict(body)
    for name in sublists.sublists(body):
        lines = []
        for line in body[name]["items"]:
            if isinstance(line, dict) and not isinstance(line.get("line"), int):
                line = {**line, "line": next_line}
                next_line += 1
            lines.append(line)
        numbered[name] = {**body[name], "items": lines}
    return numbered, next_line


def _suiteql_authorizer(action: int, table: str | None, *_: Any) -> int:
    if action == sqlite3.SQLITE_READ and table is not None and table.lower() not in SUITEQL_TABLES:
        return sqlite3.SQLITE_DENY
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def to_sqlite(suiteql: str) -> str:
    """Just enough SuiteQL → SQLite: ``TOP n``, the reserved word ``transaction`` as a table name, no trailing ``;``."""
    sql = suiteql.strip().rstrip(";").strip()
    top = re.match(r"(?is)select\s+top\s+(\d+)\s+(.*)", sql)
    if top:
        sql = f"SELECT * FROM (SELECT {top.group(2)}) LIMIT {int(top.group(1))}"
    # Only outside string literals, and not where it is already quoted.
    pieces = re.split(r"('(?:[^']|'')*')", sql)
    for index in range(0, len(pieces), 2):
        pieces[index] = re.sub(r'(?i)(?<!["\w])transaction(?!["\w])', '"transaction"', pieces[index])
    return "".join(pieces)
