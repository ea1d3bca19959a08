"""ERP internal ids by a source key (SKU → item id, email → customer id): cached in the ledger, asked of the ERP on a miss.

``LedgerXref`` is the ``XrefResolver`` the pipeline hands to ``mapping.apply``. A hit younger than ``ttl``
comes from the ``erp_xref`` table; otherwise one SuiteQL query (``SELECT id FROM item WHERE itemid = '…'``)
asks the ERP and stores the answer. "Not found" is not cached: the ERP may learn the item later, and a
retry of the failed event must see it. ``find_or_create`` goes one step further on a miss: it upserts the
record the mapping built (``PUT customer/eid:shopify-customer-…``) and caches the id the ERP gave it.

The query's table and column names come from the allow-list in erpsync/mapping/xref.py. The value is a
checked SQL string literal (quotes doubled, control characters refused), not a bound parameter: Oracle's
page "Executing SuiteQL Queries Through REST Web Services" documents only the body parameter ``q``; bound
``params`` are documented for SuiteScript's N/query, not for the REST ``suiteql`` resource. Emails compare
case-insensitively (``LOWER(email)``; LOWER is in "SuiteQL Supported and Unsupported Functions"): a customer
typed in NetSuite as Jane@Example.com is the same person as jane@example.com.
Personal values (emails, names) are cached by their SHA-256 only and never appear in an error message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from erpsync.errors import ConfigError, ErpRejected, MappingError
from erpsync.ledger import UTCDateTime, utcnow
from erpsync.mapping.xref import PERSONAL_FIELDS, check_xref_field

if TYPE_CHECKING:
    from erpsync.mapping.engine import MappedRecord

DEFAULT_TTL = timedelta(hours=12)
# Compared in lower case on both sides: an address's case carries no meaning in practice.
CASE_INSENSITIVE_FIELDS = frozenset({"email"})
# Longer than any key erpsync looks up (an email is at most 254 characters, an item name 250 in NetSuite).
MAX_VALUE_LENGTH = 300


class ErpXref(SQLModel, table=True):
    """One cached cross-reference: the ERP record of ``record_type`` whose ``field`` is ``value`` has id ``erp_id``."""

    __tablename__ = "erp_xref"

    record_type: str = Field(primary_key=True, max_length=40)
    field: str = Field(primary_key=True, max_length=40)
    # For personal fields (an email, a name) the SHA-256 of the value, so the cache holds no customer data.
    value: str = Field(primary_key=True, max_length=300)
    erp_id: str = Field(max_length=40)
    fetched_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class SuiteQLClient(Protocol):
    def suiteql(self, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]: ...


class ErpWriter(SuiteQLClient, Protocol):
    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> str: ...


class LedgerXref:
    """The ledger-backed ``CreatingXrefResolver``; thread-safe (each call opens its own session).

    ``find_or_create`` needs an ERP client that can also ``upsert`` (the NetSuite connector does).
    """

    def __init__(self, engine: Engine, erp_client: SuiteQLClient | ErpWriter, ttl: timedelta = DEFAULT_TTL):
        self.engine = engine
        self.erp = erp_client
        self.ttl = ttl

    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        check_xref_field(record_type, field)  # the only gate before the names reach a query text
        # The value is checked before the cache is asked too: a NUL byte is no text PostgreSQL can compare.
        suiteql_literal(value, field)
        with Session(self.engine) as session:
            row = session.get(ErpXref, (record_type, field, _cache_key(field, value)))
            if row is not None and utcnow() - row.fetched_at < self.ttl:
                return row.erp_id
        erp_id = self._ask_erp(record_type, field, value)
        if erp_id is not None:
            self._store(record_type, field, value, erp_id)
        return erp_id

    def find_or_create(
        self, record_type: str, field: str, value: str, create: Callable[[], MappedRecord]
    ) -> str:
        """The cached or queried id; on a miss, the id of ``create()`` upserted by its external id, then cached.

        Idempotent under concurrency: two events of one new customer that both miss write the same external
        id, and NetSuite's upsert keeps one record for it.
        """
        found = self.resolve(record_type, field, value)
        if found is not None:
            return found
        record = create()
        upsert = getattr(self.erp, "upsert", None)
        if upsert is None:
            raise ConfigError(f"creating an ERP {record_type} needs an ERP client that can upsert records")
        try:
            erp_id = str(upsert(record.record_type, record.external_id, record.body))
        except ErpRejected:
            # External ids are unique per record type ("Using External IDs"): a real account may refuse one of
            # two upserts of a new external id that race, as a duplicate, while the other one's write lands.
            # The record is then there; a refusal for any other reason leaves none, and stands.
            erp_id = self._ask_erp(record_type, "externalid", record.external_id)
            if erp_id is None:
                raise
        self._store(record_type, field, value, erp_id)
        return erp_id

    def _ask_erp(self, record_type: str, field: str, value: str) -> str | None:
        rows = self.erp.suiteql(suiteql_lookup(record_type, field, value))
        ids = sorted({str(row["id"]) for row in rows if row.get("id") is not None})
        if len(ids) > 1:
            shown = "this" if field in PERSONAL_FIELDS else repr(value)
            raise MappingError(
                f"{len(ids)} ERP {record_type} records have {shown} {field} (ids {', '.join(ids[:5])});"
                " make it unique in the ERP, then retry the event"
            )
        return ids[0] if ids else None

    def _store(self, record_type: str, field: str, value: str, erp_id: str) -> None:
        with Session(self.engine) as session:
            session.merge(ErpXref(record_type=record_type, field=field, value=_cache_key(field, value),
                                  erp_id=erp_id, fetched_at=utcnow()))
            try:
                session.commit()
            except IntegrityError:
                # Another worker cached the same key between our read and write; its answer is as good.
                session.rollback()


class CachedXref:
    """The ledger's cached ids however old, and nothing else: no ERP call, no write (an offline resolver).

    Reconciliation maps thousands of orders at once: an order's customer is then the id its sync cached, and
    one never cached is left out of the comparison rather than asked of the ERP.
    """

    offline = True

    def __init__(self, engine: Engine):
        self.engine = engine

    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        check_xref_field(record_type, field)
        try:
            suiteql_literal(value, field)
        except MappingError:
            return None  # never cached: no lookup could have stored it
        with Session(self.engine) as session:
            row = session.get(ErpXref, (record_type, field, _cache_key(field, value)))
        return row.erp_id if row is not None else None

    def find_or_create(
        self, record_type: str, field: str, value: str, create: Callable[[], MappedRecord]
    ) -> str | None:
        return self.resolve(record_type, field, value)


def suiteql_lookup(record_type: str, field: str, value: str) -> str:
    """``SELECT id FROM record WHERE field = '…'`` with the value as a checked literal; the names must be allowed."""
    check_xref_field(record_type, field)
    if field in CASE_INSENSITIVE_FIELDS:
        return f"SELECT id FROM {record_type} WHERE LOWER({field}) = {suiteql_literal(value.lower(), field)}"
    return f"SELECT id FROM {record_type} WHERE {field} = {suiteql_literal(value, field)}"


def suiteql_literal(value: str, field: str) -> str:
    """A SQL-92 string literal (SuiteQL accepts SQL-92): quotes doubled; control characters and overlong text refused.

    Inside a SQL-92 literal only the quote is special, so doubling it keeps any other text a plain value.
    """
    shown = f"this {field}" if field in PERSONAL_FIELDS else f"{field} {value[:40]!r}"
    if not value:
        raise MappingError(f"an empty {field} cannot be looked up")
    if len(value) > MAX_VALUE_LENGTH:
        raise MappingError(f"{shown} is longer than {MAX_VALUE_LENGTH} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise MappingError(f"{shown} holds a control character")
    return "'" + value.replace("'", "''") + "'"


def _cache_key(field: str, value: str) -> str:
    if field in CASE_INSENSITIVE_FIELDS:
        value = value.lower()
    if field in PERSONAL_FIELDS:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value
