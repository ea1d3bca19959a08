"""A local stand-in for NetSuite's REST record, SuiteQL and token APIs, run as its own process for demos and tests."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import re
import secrets
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from erpsync_dev.sandboxes import erp_fulfillments, erp_sublists
from erpsync_dev.sandboxes.erp_records import (
    ITEM_RECORD_TYPES,
    SUITEQL_SCHEMA,
    SUITEQL_TABLES,
    TRANSACTION_TYPES,
    Rejection,
    check_record,
    currency_rows,
    suiteql_rows,
)
from erpsync_dev.sandboxes.erp_records import field as _field
from erpsync_dev.sandboxes.erp_records import text as _text
from erpsync_dev.sandboxes.erp_totals import CURRENCIES, json_number, totals
from erpsync_dev.sandboxes.suiteql_functions import register as register_suiteql_functions

DEFAULT_PORT = 8700
DEFAULT_DB = Path(".erpsync") / "erp-sandbox.db"
RECORD_ROOT = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ERROR_MEDIA_TYPE = "application/vnd.oracle.resource+json; type=error"
RFC2616 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"

_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]+")
_RECORD_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class SandboxOptions:
    """Everything the command line can set; ``create_app`` needs nothing else."""

    db_path: Path = DEFAULT_DB
    client_id: str = "sandbox"
    client_secret: str = "sandbox-secret"
    token_lifetime: float = 3600.0
    latency_ms: float = 0.0
    concurrency: int = 5
    fault_rate: float = 0.0
    fault_statuses: tuple[int, ...] = (500, 503)
    # Injected 429s, counted apart from the ones the concurrency limit gives, so a test can tell them apart.
    throttle_rate: float = 0.0
    # Timeouts: the request is carried out, then its answer held back longer than the client waits.
    timeout_rate: float = 0.0
    timeout_hold_seconds: float = 35.0
    # Writes to these external ids are refused for good (400 USER_ERROR): the injected permanent failures.
    reject_external_ids: frozenset[str] = frozenset()
    seed: int | None = None
    retry_after: float = 1.0
    items: dict[int, str] = field(default_factory=lambda: parse_items("1-999"))
    # Customers that exist before any is written: the default (guest) customer of the shops.
    customers: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_CUSTOMERS))
    # The internal ids of each list a transaction's select fields point into (see DEFAULT_LISTS).
    lists: dict[str, frozenset[int]] = field(default_factory=lambda: dict(DEFAULT_LISTS))


DEFAULT_CUSTOMERS = {110: "Web Store"}
# Permissive enough for every shipped configuration; a reference outside these is refused as NetSuite refuses
# an unknown internal id. Currencies are fixed (erp_totals.CURRENCIES): their ids are part of the contract.
DEFAULT_LISTS: dict[str, frozenset[int]] = {
    "subsidiary": frozenset(range(1, 6)),
    "location": frozenset(range(1, 10)),
    "department": frozenset(range(1, 10)),
    "class": frozenset(range(1, 10)),
    # Shipping items and tax codes are item-like records in NetSuite, with ids from the same sequence; the shipped
    # lookup tables (mappings/lookups/shipping_method_to_id.csv, tax_code_to_id.csv) use 9xx and 3xx.
    "shipMethod": frozenset(range(1, 21)) | frozenset(range(900, 1000)),
    "taxCode": frozenset(range(1, 51)) | frozenset(range(300, 400)),
}


def parse_list(spec: str) -> tuple[str, frozenset[int]]:
    """``"location=1-9,12"`` → ("location", {1…9, 12}): the ids one list of the account holds."""
    kind, separator, ids = spec.partition("=")
    if not separator or kind.strip() not in DEFAULT_LISTS:
        raise argparse.ArgumentTypeError(f"give KIND=IDS with KIND one of {', '.join(DEFAULT_LISTS)} (got {spec!r})")
    try:
        return kind.strip(), frozenset(parse_items(ids))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: ids are numbers or ranges, e.g. location=1-9,12") from None


def parse_items(spec: str) -> dict[int, str]:
    """``"1-999"``, ``"98,110"``, ``"98=WIDGET"`` (id=itemid) or a mix, comma separated → {id: itemid}."""
    items: dict[int, str] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        if "=" in part:
            number, itemid = part.split("=", 1)
            items[int(number)] = itemid.strip()
        elif re.fullmatch(r"\d+\s*-\s*\d+", part):
            low, high = (int(bound) for bound in part.split("-", 1))
            items.update({n: f"item-{n}" for n in range(low, high + 1)})
        else:
            items[int(part)] = f"item-{int(part)}"
    return items


def error_body(status: int, code: str, detail: str, path: str | None = None) -> dict[str, Any]:
    """NetSuite's error document: RFC 7807-like envelope with ``o:errorDetails``."""
    entry: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        entry["o:errorPath"] = path
    return {
        "type": f"{RFC2616}#sec10.4.1" if status == 400 else RFC2616,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [entry],
    }


def netsuite_error(
    status: int, code: str, detail: str, path: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, code, detail, path), status, headers=headers, media_type=ERROR_MEDIA_TYPE)


def concurrency_error(retry_after: float | None) -> JSONResponse:
    # Modelled on NetSuite's published 429 (title "Bad Request" and the outer USER_ERROR included),
    # with the comma its documentation lost, so this body is valid JSON.
    body = {
        "type": RFC2616,
        "title": "Bad Request",
        "status": 429,
        "o:errorCode": "USER_ERROR",
        "o:errorDetails": [
            {
                "detail": "Concurrent request limit exceeded. Request blocked.",
                "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED",
            }
        ],
    }
    return JSONResponse(body, 429, headers=_retry_after_header(retry_after), media_type=ERROR_MEDIA_TYPE)


def _retry_after_header(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"}


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
            # The next sublist line number of each record: NetSuite never re-uses one (erp_sublists).
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
        return erp_fulfillments.fulfilled_by([json.loads(row["body"]) for row in rows])

    def check(self, record_type: str, body: dict[str, Any], external_id: str | None = None) -> Rejection | None:
        """What NetSuite would refuse in this body, given the records there are now."""
        return check_record(record_type, body, self, external_id)

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
                    return Rejection("USER_ERROR", erp_fulfillments.DIRECT_CREATE)
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
                return Rejection("USER_ERROR", erp_fulfillments.DIRECT_CREATE)
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
            body = erp_fulfillments.transform(order_id, self.body(order), request, self.fulfilled(order_id))
            if isinstance(body, Rejection):
                return body
            next_line = 1 + max((line["line"] for name in erp_sublists.sublists(body)
                                 for line in body[name]["items"]), default=0)
            internal_id = self._insert("itemFulfillment", external_id, body, now, next_line)
            self._index("itemFulfillment", internal_id, external_id, body, now)
        return internal_id, order_id

    def _checked_create(
        self, record_type: str, external_id: str | None, body: dict[str, Any]
    ) -> erp_sublists.Merged | Rejection:
        created = erp_sublists.create(body)
        if isinstance(created, erp_sublists.LineRefusal):
            return Rejection(created.code, created.detail, created.path)
        rejection = self.check(record_type, created.body, external_id)
        if rejection is not None:
            return Rejection(rejection.code, rejection.detail, created.request_path(rejection.path),
                             rejection.status)
        return created

    def _checked_update(
        self, record_type: str, row: sqlite3.Row, body: dict[str, Any], replace: frozenset[str]
    ) -> erp_sublists.Merged | Rejection:
        stored, next_line = _numbered(self.body(row), row["next_line"])
        fulfilled = self.fulfilled(row["internal_id"]) if record_type == "salesOrder" else {}
        merged = erp_sublists.update(stored, body, replace=replace, next_line=next_line, fulfilled=fulfilled)
        if isinstance(merged, erp_sublists.LineRefusal):
            return Rejection(merged.code, merged.detail, merged.path)
        rejection = self.check(record_type, merged.body, row["external_id"])
        if rejection is not None:
            return Rejection(rejection.code, rejection.detail, merged.request_path(rejection.path),
                             rejection.status)
        return merged

    def _write(self, internal_id: int, merged: erp_sublists.Merged, now: str) -> None:
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
    highest = max((line["line"] for name in erp_sublists.sublists(body) for line in body[name]["items"]
                   if isinstance(line, dict) and isinstance(line.get("line"), int)), default=0)
    next_line = max(next_line, highest + 1)
    numbered = dict(body)
    for name in erp_sublists.sublists(body):
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


@dataclass
class Fault:
    status: int | None
    retry_after: float | None
    delay_ms: float
    # Seconds the answer is held after the request was carried out: the client times out, the write stands.
    hold_seconds: float = 0.0


class ErpSandbox:
    """The state behind the app: records, issued tokens, counters, queued faults, the in-flight gauge."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.store = RecordStore(options.db_path, options.items, options.customers, options.lists)
        self.tokens: dict[str, float] = {}
        self.faults: list[Fault] = []
        self.random = random.Random(options.seed)
        self.in_flight = 0
        self.reset_stats()

    def reset_stats(self) -> None:
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.peak_in_flight = 0
        self.peak_offered = 0
        self.api_requests = 0
        self.tokens_issued = 0
        self.faults_injected = 0
        self.throttled_by_limit = 0
        self.throttled_injected = 0
        self.timeouts_injected = 0
        self.rejections_injected = 0
        self.busy_seconds = 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(status): count for status, count in sorted(self.by_status.items())},
            "too_many_requests": self.by_status[429],
            "unauthorized": self.by_status[401],
            # 429s split by cause: the account's concurrency limit (the callers' doing) or injected at random.
            "api_requests": self.api_requests,  # record and query calls, authorised: where faults are drawn
            "throttled_by_limit": self.throttled_by_limit,
            "throttled_injected": self.throttled_injected,
            "timeouts_injected": self.timeouts_injected,
            "rejections_injected": self.rejections_injected,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            # Requests at the door at once, the refused ones included: what the callers asked of the limit.
            "peak_offered": self.peak_offered,
            # Seconds requests spent counted against the limit, summed: over concurrency × time, how busy the
            # callers kept the account; over api_requests, the time one request holds a slot here.
            "busy_seconds": round(self.busy_seconds, 3),
            "tokens_issued": self.tokens_issued,
            "faults_injected": self.faults_injected,
        }

    # -- request plumbing --

    def counted(self, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def count(request: Request) -> Response:
            self.requests += 1
            response = await endpoint(request)
            self.by_status[response.status_code] += 1
            return response

        return count

    def governed(self, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Bearer check, then the account-wide concurrency limit, latency and faults, like NetSuite's front door."""

        async def govern(request: Request) -> Response:
            if not self._authorized(request):
                return _invalid_login()
            limit = self.options.concurrency
            self.api_requests += 1
            self.peak_offered = max(self.peak_offered, self.in_flight + 1)
            if limit and self.in_flight >= limit:
                self.throttled_by_limit += 1
                return concurrency_error(self.options.retry_after)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            entered = time.monotonic()
            hold = 0.0
            try:
                # Read the whole request first: like NetSuite, a request that arrived is carried out
                # even if the caller stops waiting for the answer.
                await request.body()
                if self.options.latency_ms:
                    await asyncio.sleep(self.options.latency_ms / 1000)
                if (rejected := self._injected_rejection(request)) is not None:
                    return rejected
                fault = self._next_fault()
                if fault is not None:
                    self.faults_injected += 1
                    if fault.delay_ms:
                        await asyncio.sleep(fault.delay_ms / 1000)
                    if fault.status is not None:
                        if fault.status == 429:
                            self.throttled_injected += 1
                        return self._fault_response(fault)
                    if fault.hold_seconds:
                        self.timeouts_injected += 1
                        hold = fault.hold_seconds
                response = await endpoint(request)
            finally:
                self.in_flight -= 1
                self.busy_seconds += time.monotonic() - entered
            if hold:
                # The work is done and no longer counts against the limit; only the answer is late.
                await asyncio.sleep(hold)
            return response

        return self.counted(govern)

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expires = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expires is not None and time.monotonic() < expires

    def _next_fault(self) -> Fault | None:
        if self.faults:
            return self.faults.pop(0)
        o = self.options
        if not (o.fault_rate or o.throttle_rate or o.timeout_rate):
            return None
        # One draw decides between the kinds, so their rates add up and never overlap.
        draw = self.random.random()
        if draw < o.fault_rate:
            status = self.random.choice(o.fault_statuses)
            return Fault(status, o.retry_after if status in (429, 503) else None, 0)
        if draw < o.fault_rate + o.throttle_rate:
            return Fault(429, o.retry_after, 0)
        if draw < o.fault_rate + o.throttle_rate + o.timeout_rate:
            return Fault(None, None, 0, hold_seconds=o.timeout_hold_seconds)
        return None

    def _injected_rejection(self, request: Request) -> Response | None:
        """A write to an external id marked as rejected: refused for good, as NetSuite refuses a bad record."""
        if request.method not in ("PUT", "POST") or not self.options.reject_external_ids:
            return None
        ref = request.path_params.get("ref", "")
        external_id = ref[4:] if ref.startswith("eid:") else None
        if external_id not in self.options.reject_external_ids:
            return None
        self.rejections_injected += 1
        detail = f"The sandbox refuses record {external_id} (an injected permanent rejection)."
        return netsuite_error(400, "USER_ERROR", detail, "externalId")

    def _fault_response(self, fault: Fault) -> Response:
        assert fault.status is not None
        if fault.status == 429:
            return concurrency_error(fault.retry_after)
        headers = _retry_after_header(fault.retry_after)
        if fault.status == 401:
            return _invalid_login()
        if fault.status == 404:
            return _not_found()
        if fault.status == 500:
            detail = f"An unexpected error occurred. Error ID: {secrets.token_hex(10)}"
            return netsuite_error(500, "UNEXPECTED_ERROR", detail, headers=headers)
        code = "USER_ERROR" if fault.status < 500 else "SERVICE_UNAVAILABLE"
        return netsuite_error(fault.status, code, "The sandbox injected this fault.", headers=headers)

    # -- OAuth 2.0 token endpoint --

    async def token(self, request: Request) -> Response:
        if self.options.latency_ms:
            await asyncio.sleep(self.options.latency_ms / 1000)
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if not (self._client_by_secret(request, form) or self._client_by_assertion(request, form)):
            return JSONResponse({"error": "invalid_client"}, 401, headers={"WWW-Authenticate": "Basic"})
        token = "sandbox-" + secrets.token_urlsafe(24)
        now = time.monotonic()
        self.tokens = {known: expiry for known, expiry in self.tokens.items() if expiry > now}
        self.tokens[token] = now + self.options.token_lifetime
        self.tokens_issued += 1
        lifetime = self.options.token_lifetime
        expires_in: float = int(lifetime) if float(lifetime).is_integer() else lifetime
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})

    def _client_by_secret(self, request: Request, form: dict[str, str]) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return False
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return secrets.compare_digest(client_id, self.options.client_id) and secrets.compare_digest(
            secret, self.options.client_secret
        )

    def _client_by_assertion(self, request: Request, form: dict[str, str]) -> bool:
        # The sandbox holds no certificates: it checks the JWT's shape and claims, not its signature.
        if form.get("client_assertion_type") != JWT_BEARER_ASSERTION or "client_assertion" not in form:
            return False
        try:
            header_part, claims_part, signature = form["client_assertion"].split(".")
            header = json.loads(_b64url_decode(header_part))
            claims = json.loads(_b64url_decode(claims_part))
        except ValueError:
            return False
        now = time.time()
        return (
            header.get("alg") == "PS256"
            and bool(header.get("kid"))
            and bool(signature)
            and claims.get("iss") == self.options.client_id
            and str(claims.get("aud", "")).endswith(TOKEN_PATH)
            and isinstance(claims.get("iat"), int)
            and isinstance(claims.get("exp"), int)
            and 0 < claims["exp"] - claims["iat"] <= 3600
            and claims["exp"] > now
            and set(claims.get("scope") or []) <= {"restlets", "rest_webservices", "suite_analytics"}
        )

    # -- record API --

    def _record_url(self, request: Request, record_type: str, internal_id: int | str) -> str:
        return f"{str(request.base_url).rstrip('/')}{RECORD_ROOT}/{record_type}/{internal_id}"

    async def upsert(self, request: Request) -> Response:
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        if not ref.startswith("eid:"):
            return netsuite_error(
                400, "USER_ERROR", "The upsert operation needs an external ID in the request URL (eid:...)."
            )
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _malformed()
        written = self.store.upsert(record_type, ref[4:], body, _replace(request))
        if isinstance(written, Rejection):
            return _rejected(written)
        internal_id, _ = written
        return Response(status_code=204, headers={"Location": self._record_url(request, record_type, internal_id)})

    async def patch(self, request: Request) -> Response:
        """Update an existing record: Oracle, "Updating a Record Instance" (PATCH, sublists per erp_sublists)."""
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _malformed()
        written = self.store.patch(record_type, ref, body, _replace(request))
        if written is None:
            return _not_found()
        if isinstance(written, Rejection):
            return _rejected(written)
        return Response(status_code=204, headers={"Location": self._record_url(request, record_type, written)})

    async def create(self, request: Request) -> Response:
        record_type = request.path_params["type"]
        if not _RECORD_TYPE.fullmatch(record_type):
            return _not_found()
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _malformed()
        external_id = _field(body, "externalId")
        if external_id is not None and not (isinstance(external_id, str) and _EXTERNAL_ID.fullmatch(external_id)):
            return netsuite_error(400, "INVALID_CONTENT", "Invalid external ID.", "externalId")
        created = self.store.create(record_type, external_id, body)
        if created is None:
            return netsuite_error(400, "USER_ERROR", "A record with the same external ID already exists.", "externalId")
        if isinstance(created, Rejection):
            return _rejected(created)
        return Response(status_code=204, headers={"Location": self._record_url(request, record_type, created)})

    async def transform(self, request: Request) -> Response:
        """``POST salesOrder/{ref}/!transform/itemFulfillment`` (erp_fulfillments): 204, the new record's Location."""
        record_type, ref, target = (request.path_params[name] for name in ("type", "ref", "target"))
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        if (record_type, target) != ("salesOrder", "itemFulfillment"):
            # The one transformation this sandbox models; NetSuite supports more (record.transform's list).
            detail = f"The transformation from {record_type} to {target} is not supported by this sandbox."
            return netsuite_error(400, "INVALID_PARAMETER", detail)
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _malformed()
        external_id = _field(body, "externalId")
        if external_id is not None and not (isinstance(external_id, str) and _EXTERNAL_ID.fullmatch(external_id)):
            return netsuite_error(400, "INVALID_CONTENT", "Invalid external ID.", "externalId")
        created = self.store.transform(ref, external_id, body)
        if created is None:
            return _not_found()
        if isinstance(created, Rejection):
            return _rejected(created)
        internal_id, _ = created
        return Response(status_code=204,
                        headers={"Location": self._record_url(request, "itemFulfillment", internal_id)})

    async def get(self, request: Request) -> Response:
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        row = self.store.find(record_type, ref)
        if row is None:
            return self._seeded_customer(request, record_type, ref)
        self_url = self._record_url(request, record_type, row["internal_id"])
        expand = request.query_params.get("expandSubResources", "").lower() == "true"
        stored = json.loads(row["body"])
        if record_type in TRANSACTION_TYPES:
            stored = self._with_totals(record_type, row["internal_id"], stored)
        body: dict[str, Any] = {"links": [{"rel": "self", "href": self_url}]}
        for key, value in stored.items():
            if not expand and isinstance(value, dict) and isinstance(value.get("items"), list):
                # NetSuite answers sublists as links unless asked to expand them.
                value = {"links": [{"rel": "self", "href": f"{self_url}/{key}"}]}
            body[key] = value
        body["id"] = str(row["internal_id"])
        if row["external_id"] is not None:
            body["externalId"] = row["external_id"]
        body["lastModifiedDate"] = row["last_modified"]
        return JSONResponse(body)

    def _with_totals(self, record_type: str, internal_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """The body as NetSuite answers it: each line's amount, what was shipped of it, and the header totals."""
        money = totals(body)
        shipped = self.store.fulfilled(internal_id) if record_type == "salesOrder" else {}
        lines = _field(_field(body, "item"), "items")
        answered = {**body, **money.as_fields()}
        if isinstance(lines, list):
            items = []
            for line, amount in zip(lines, money.line_amounts):
                line = dict(line) if isinstance(line, dict) else line
                if isinstance(line, dict):
                    if amount is not None:
                        line["amount"] = json_number(amount)
                    if record_type == "salesOrder":
                        line["quantityFulfilled"] = json_number(shipped.get(line.get("line"), Decimal(0)))
                items.append(line)
            answered["item"] = {**body["item"], "items": items}
        return answered

    def _seeded_customer(self, request: Request, record_type: str, ref: str) -> Response:
        # Customers that exist before any write (--customers) are readable like the others.
        if record_type != "customer" or not ref.isdigit() or int(ref) not in self.store.seed_customers:
            return _not_found()
        name = self.store.seed_customers[int(ref)]
        return JSONResponse({"links": [{"rel": "self", "href": self._record_url(request, record_type, ref)}],
                             "id": ref, "companyName": name, "entityId": name, "isPerson": False})

    async def delete(self, request: Request) -> Response:
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        return Response(status_code=204) if self.store.delete(record_type, ref) else _not_found()

    async def collection(self, request: Request) -> Response:
        record_type = request.path_params["type"]
        if not _RECORD_TYPE.fullmatch(record_type):
            return _not_found()
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        ids, total = self.store.page(record_type, limit, offset)
        base = f"{str(request.base_url).rstrip('/')}{RECORD_ROOT}/{record_type}"
        document = _collection(base, limit, offset, total, [
            {"links": [{"rel": "self", "href": f"{base}/{internal_id}"}], "id": str(internal_id)} for internal_id in ids
        ])
        return JSONResponse(document)

    # -- SuiteQL --

    async def suiteql(self, request: Request) -> Response:
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        body = await _json_body(request)
        query = _field(body, "q")
        params = _field(body, "params") or []
        if not isinstance(query, str) or not query.strip() or not isinstance(params, list):
            detail = 'Invalid search query: give the query as "q" and bound values as "params".'
            return netsuite_error(400, "INVALID_PARAMETER", detail)
        if not re.match(r"(?is)\s*(select|with)\b", query):
            return _search_error("only SELECT queries can be run.")
        try:
            rows, total = self.store.query(to_sqlite(query), params, limit, offset)
        except (sqlite3.Error, sqlite3.Warning) as error:
            return _search_error(str(error))
        url = f"{str(request.base_url).rstrip('/')}{SUITEQL_PATH}"
        return JSONResponse(_collection(url, limit, offset, total, [{"links": [], **row} for row in rows]))

    # -- test and operations endpoints --

    async def sandbox_records(self, request: Request) -> Response:
        return JSONResponse({"records": self.store.dump(request.query_params.get("type"))})

    async def sandbox_bulk(self, request: Request) -> Response:
        """``{"records": [{"externalId", "body", "lastModified"?}, …]}`` seeded at once (RecordStore.bulk_upsert)."""
        record_type = request.path_params["type"]
        document = await _json_body(request)
        records = document.get("records") if isinstance(document, dict) else None
        if not _RECORD_TYPE.fullmatch(record_type) or not isinstance(records, list):
            return JSONResponse({"error": 'expected {"records": [...]} for a record type'}, 400)
        seeded = []
        for index, record in enumerate(records):
            external_id = record.get("externalId") if isinstance(record, dict) else None
            body, modified = ((record.get("body"), record.get("lastModified")) if isinstance(record, dict)
                              else (None, None))
            if not (isinstance(external_id, str) and _EXTERNAL_ID.fullmatch(external_id)):
                return JSONResponse({"error": f"records[{index}].externalId: letters, digits, _ and - only"}, 400)
            if not isinstance(body, dict):
                return JSONResponse({"error": f"records[{index}].body: must be an object"}, 400)
            if modified is not None and not _is_stamp(modified):
                return JSONResponse({"error": f"records[{index}].lastModified: ISO 8601 UTC, e.g. "
                                              "2026-11-27T10:00:00.000Z"}, 400)
            seeded.append((external_id, body, modified))
        return JSONResponse({"seeded": self.store.bulk_upsert(record_type, seeded)})

    async def sandbox_stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def sandbox_faults(self, request: Request) -> Response:
        spec = await _json_body(request)
        if not isinstance(spec, dict):
            return JSONResponse({"error": "expected a JSON object"}, 400)
        status, count = spec.get("status"), spec.get("count", 1)
        retry_after, delay_ms = spec.get("retry_after"), spec.get("delay_ms", 0)
        hold_seconds = spec.get("hold_seconds", 0)
        problems = []
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            problems.append("status must be an HTTP error status (400-599)")
        if status is None and not delay_ms and not hold_seconds:
            problems.append("give status, delay_ms, hold_seconds or status with delay_ms")
        if status is not None and hold_seconds:
            problems.append("hold_seconds holds the answer of a request that is carried out: give it without status")
        if not isinstance(hold_seconds, (int, float)) or hold_seconds < 0:
            problems.append("hold_seconds must be a non-negative number")
        if not isinstance(count, int) or count < 1:
            problems.append("count must be a positive integer")
        if retry_after is not None and not (isinstance(retry_after, (int, float)) and retry_after >= 0):
            problems.append("retry_after must be a non-negative number")
        if not isinstance(delay_ms, (int, float)) or delay_ms < 0:
            problems.append("delay_ms must be a non-negative number")
        if problems:
            return JSONResponse({"error": "; ".join(problems)}, 400)
        if retry_after is None and status in (429, 503):
            retry_after = self.options.retry_after
        self.faults.extend(Fault(status, retry_after, delay_ms, hold_seconds) for _ in range(count))
        return JSONResponse({"queued": len(self.faults)})

    async def sandbox_reset(self, request: Request) -> Response:
        self.store.reset()
        self.faults.clear()
        self.reset_stats()
        return JSONResponse({"reset": True})

    async def sandbox_revoke_tokens(self, request: Request) -> Response:
        revoked = len(self.tokens)
        self.tokens.clear()
        return JSONResponse({"revoked": revoked})


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _is_stamp(value: Any) -> bool:
    # The stored form sorts in time order as text, so nothing else may be stored.
    return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", value) is not None


def _bad_reference(record_type: str, ref: str) -> Response | None:
    if not _RECORD_TYPE.fullmatch(record_type):
        return _not_found()
    if ref.startswith("eid:"):
        if not _EXTERNAL_ID.fullmatch(ref[4:]):
            return netsuite_error(400, "INVALID_PARAMETER", "Invalid external ID: use letters, digits, _ and - only.")
        return None
    if not re.fullmatch(r"-?\d+", ref):
        return netsuite_error(400, "INVALID_PARAMETER", "Invalid record ID.")
    return None


def _replace(request: Request) -> frozenset[str]:
    """``?replace=item,package``: the sublists whose lines the request replaces (Oracle, "Replacing a Sublist")."""
    return frozenset(name.strip() for name in request.query_params.get("replace", "").split(",") if name.strip())


def _rejected(rejection: Rejection) -> JSONResponse:
    return netsuite_error(rejection.status, rejection.code, rejection.detail, rejection.path)


def _invalid_login() -> JSONResponse:
    return netsuite_error(
        401,
        "INVALID_LOGIN",
        "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at"
        " Setup > Users/Roles > User Management > View Login Audit Trail.",
    )


def _not_found() -> JSONResponse:
    return netsuite_error(404, "NONEXISTENT_ID", "Record does not exist.")


def _malformed() -> JSONResponse:
    detail = "The request could not be understood by the server due to malformed syntax."
    return netsuite_error(400, "INVALID_REQUEST", detail)


def _search_error(reason: str) -> JSONResponse:
    detail = f"Invalid search query. Detailed unprocessed description follows. Search error occurred: {reason}"
    return netsuite_error(400, "INVALID_PARAMETER", detail)


def _paging(request: Request) -> tuple[int, int] | Response:
    try:
        limit = int(request.query_params.get("limit", "1000"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        limit, offset = -1, -1
    if not 1 <= limit <= 1000 or offset < 0:
        detail = "Invalid value for limit or offset: limit 1-1000, offset 0 or more."
        return netsuite_error(400, "INVALID_PARAMETER", detail)
    return limit, offset


def _collection(base: str, limit: int, offset: int, total: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    links = []
    if offset > 0:
        links.append({"rel": "prev", "href": f"{base}?limit={limit}&offset={max(0, offset - limit)}"})
        links.append({"rel": "first", "href": f"{base}?limit={limit}&offset=0"})
    if offset + len(items) < total:
        links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
        links.append({"rel": "last", "href": f"{base}?limit={limit}&offset={((total - 1) // limit) * limit}"})
    links.append({"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"})
    return {
        "links": links,
        "count": len(items),
        "hasMore": offset + len(items) < total,
        "items": items,
        "offset": offset,
        "totalResults": total,
    }


def create_app(options: SandboxOptions | None = None) -> Starlette:
    """The sandbox as an ASGI app; its SQLite file closes when the app's lifespan ends."""
    sandbox = ErpSandbox(options or SandboxOptions())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            sandbox.store.close()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    record = f"{RECORD_ROOT}/{{type}}"
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(TOKEN_PATH, sandbox.counted(sandbox.token), methods=["POST"]),
            Route(record, sandbox.governed(sandbox.collection), methods=["GET"]),
            Route(record, sandbox.governed(sandbox.create), methods=["POST"]),
            Route(f"{record}/{{ref}}", sandbox.governed(sandbox.get), methods=["GET"]),
            Route(f"{record}/{{ref}}", sandbox.governed(sandbox.upsert), methods=["PUT"]),
            Route(f"{record}/{{ref}}", sandbox.governed(sandbox.patch), methods=["PATCH"]),
            Route(f"{record}/{{ref}}/!transform/{{target}}", sandbox.governed(sandbox.transform), methods=["POST"]),
            Route(f"{record}/{{ref}}", sandbox.governed(sandbox.delete), methods=["DELETE"]),
            Route(SUITEQL_PATH, sandbox.governed(sandbox.suiteql), methods=["POST"]),
            Route("/_sandbox/records", sandbox.sandbox_records, methods=["GET"]),
            Route("/_sandbox/stats", sandbox.sandbox_stats, methods=["GET"]),
            Route("/_sandbox/bulk/{type}", sandbox.sandbox_bulk, methods=["POST"]),
            Route("/_sandbox/faults", sandbox.sandbox_faults, methods=["POST"]),
            Route("/_sandbox/reset", sandbox.sandbox_reset, methods=["POST"]),
            Route("/_sandbox/revoke-tokens", sandbox.sandbox_revoke_tokens, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"SQLite file of the records (default {DEFAULT_DB})"
    )
    parser.add_argument("--client-id", default="sandbox", help="client id the token endpoint accepts")
    parser.add_argument("--client-secret", default="sandbox-secret", help="client secret the token endpoint accepts")
    parser.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds an access token is valid")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency of every API request")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=5,
        help="account-wide limit of requests in flight; beyond it 429 (0: no limit)",
    )
    parser.add_argument("--fault-rate", type=_rate, default=0.0, help="share of record/query calls that fail at random")
    parser.add_argument(
        "--fault-statuses", type=_statuses, default=(500, 503), help="statuses of random faults, e.g. 500,503"
    )
    parser.add_argument("--throttle-rate", type=_rate, default=0.0,
                        help="share of record/query calls answered 429 at random (counted apart from the limit's)")
    parser.add_argument("--timeout-rate", type=_rate, default=0.0,
                        help="share of record/query calls carried out but answered only after --timeout-hold-seconds")
    parser.add_argument("--timeout-hold-seconds", type=float, default=35.0,
                        help="how long a timed-out answer is held: longer than the client's timeout (default 35)")
    parser.add_argument("--reject-external-ids", type=_external_ids, default=frozenset(),
                        help="comma-separated external ids whose writes are refused for good (400 USER_ERROR)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random faults")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429 and 503")
    parser.add_argument(
        "--items",
        type=parse_items,
        default="1-999",
        help="known item ids: ranges, ids or id=itemid, e.g. 1-999,5000=GIFT",
    )
    parser.add_argument(
        "--customers",
        type=parse_items,
        default="110=Web Store",
        help="customers that exist from the start: id=name, comma separated (default 110=Web Store)",
    )
    parser.add_argument(
        "--list",
        dest="lists",
        type=parse_list,
        action="append",
        default=[],
        help="ids of a list select fields point into, e.g. location=1-9 (repeatable; kinds: "
             + ", ".join(DEFAULT_LISTS) + "; defaults: " + ", ".join(
                 f"{kind} {_ranges(ids)}" for kind, ids in DEFAULT_LISTS.items()) + ")",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")


def _ranges(ids: frozenset[int]) -> str:
    spans: list[list[int]] = []
    for number in sorted(ids):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(f"{low}-{high}" if low != high else str(low) for low, high in spans)


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"give a share between 0 and 1, e.g. 0.05 (got {text!r})")
    return rate


def _external_ids(text: str) -> frozenset[str]:
    ids = frozenset(part.strip() for part in text.split(",") if part.strip())
    if bad := sorted(i for i in ids if not _EXTERNAL_ID.fullmatch(i)):
        raise argparse.ArgumentTypeError(f"not external ids (letters, digits, _ and - only): {', '.join(bad)}")
    return ids


def _statuses(text: str) -> tuple[int, ...]:
    statuses = tuple(int(part) for part in text.split(",") if part.strip())
    if not statuses or any(not 400 <= status <= 599 for status in statuses):
        raise argparse.ArgumentTypeError("give HTTP error statuses, e.g. 500,503")
    return statuses


def options_from_args(args: argparse.Namespace) -> SandboxOptions:
    return SandboxOptions(
        db_path=args.db,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        latency_ms=args.latency_ms,
        concurrency=args.concurrency,
        fault_rate=args.fault_rate,
        fault_statuses=tuple(args.fault_statuses),
        throttle_rate=args.throttle_rate,
        timeout_rate=args.timeout_rate,
        timeout_hold_seconds=args.timeout_hold_seconds,
        reject_external_ids=frozenset(args.reject_external_ids),
        seed=args.seed,
        retry_after=args.retry_after,
        items=args.items,
        customers=args.customers,
        lists={**DEFAULT_LISTS, **dict(args.lists)},
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; print ``ready on http://HOST:PORT`` once listening."""
    app = create_app(options_from_args(args))
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: Any) -> None:
        # Before uvicorn installs its handlers this stops the start-up; after it has re-raised the
        # signal on its way out this keeps the exit status 0 for a requested shutdown.
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(_serve(server, args.host))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


async def _serve(server: uvicorn.Server, host: str) -> None:
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"ready on http://{host}:{port}", flush=True)
    await serving


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m erpsync_dev.sandboxes.erp", description=__doc__)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
