"""ERP internal ids by a source key (SKU → item id, email → customer id): cached in the ledger, asked of the ERP on a miss.

``LedgerXref`` is the ``XrefResolver`` the pipeline hands to ``mapping.apply``. A hit younger than ``ttl``
comes from the ``xref`` table; otherwise the ERP's ``find_id`` (the ``IdResolver`` port, erpsync/ports.py)
answers and the answer is stored. "Not found" is not cached: the ERP may learn the item later, and a
retry of the failed event must see it. ``find_or_create`` goes one step further on a miss: it upserts the
record the mapping built (``PUT customer/eid:shopify-customer-…``) and caches the id the ERP gave it.

Record types and fields must be natural keys the target system lists (``check_xref_field``), and the value one
any system could be asked for (``check_lookup_value``); keys the system compares case-insensitively (an email)
are cached in lower case. Personal values (emails, names) are cached by their SHA-256 only and never appear in
an error message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Column, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from erpsync.db import dialect_insert
from erpsync.errors import ConfigError, ErpRejected, MappingError
from erpsync.ledger import UTCDateTime, utcnow
from erpsync.mapping.xref_resolvers import check_xref_field
from erpsync.natural_keys import PERSONAL_FIELDS, check_lookup_value
from erpsync.ports import IdResolver
from erpsync.systems import DEFAULT_TARGET

if TYPE_CHECKING:
    from erpsync.mapping.engine import MappedRecord

DEFAULT_TTL = timedelta(hours=12)


class XrefEntry(SQLModel, table=True):
    """One cached cross-reference: the record of ``system`` of ``record_type`` whose ``field`` is ``value`` has id
    ``record_id``."""

    __tablename__ = "xref"

    system: str = Field(primary_key=True, max_length=40)
    record_type: str = Field(primary_key=True, max_length=40)
    field: str = Field(primary_key=True, max_length=40)
    # For personal fields (an email, a name) the SHA-256 of the value, so the cache holds no customer data.
    value: str = Field(primary_key=True, max_length=300)
    record_id: str = Field(max_length=40)
    fetched_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ErpWriter(IdResolver, Protocol):
    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> str: ...


class LedgerXref:
    """The ledger-backed ``CreatingXrefResolver``; thread-safe (each call opens its own session).

    ``find_or_create`` needs an ERP client that can also ``upsert`` (a ``RecordWriter`` does).
    """

    def __init__(self, engine: Engine, erp_client: IdResolver | ErpWriter, ttl: timedelta = DEFAULT_TTL,
                 system: str = DEFAULT_TARGET):
        self.engine = engine
        self.system = system  # the system whose ids are cached: the key's first part
        self.erp = erp_client
        self.ttl = ttl
        self.case_insensitive = _case_insensitive_keys(system)

    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        check_xref_field(record_type, field)  # the only gate before the names reach a query text
        # The value is checked before the cache is asked too: a NUL byte is no text PostgreSQL can compare.
        check_lookup_value(value, field)
        # Core statements, not the ORM: this runs for every key of every event, and the ORM's identity map and
        # unit of work cost more than the query (bench/batch_steps.py).
        table = XrefEntry.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table.c.record_id, table.c.fetched_at).where(
                table.c.system == self.system, table.c.record_type == record_type, table.c.field == field,
                table.c.value == _cache_key(field, value, self.case_insensitive))).first()
        if row is not None and utcnow() - row.fetched_at < self.ttl:
            return row.record_id
        erp_id = self._ask_erp(record_type, field, value)
        if erp_id is not None:
            self._store(record_type, field, value, erp_id)
        return erp_id

    def find_or_create(
        self, record_type: str, field: str, value: str, create: Callable[[], MappedRecord]
    ) -> str:
        """The cached or queried id; on a miss, the id of ``create()`` upserted by its external id, then cached.

        Idempotent under concurrency: two events of one new customer that both miss write the same external
        id, and the ERP's upsert keeps one record for it.
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
        # Two or more matches are the resolver's MappingError: a key that is not unique resolves nothing.
        return self.erp.find_id(record_type, field, value)

    def _store(self, record_type: str, field: str, value: str, erp_id: str) -> None:
        # One upsert: another worker caching the same key at the same moment is no error, the last answer stays.
        table = XrefEntry.__table__
        now = utcnow()
        with self.engine.begin() as connection:
            insert = dialect_insert(connection)
            connection.execute(insert(table).values(
                system=self.system, record_type=record_type, field=field,
                value=_cache_key(field, value, self.case_insensitive), record_id=erp_id, fetched_at=now,
            ).on_conflict_do_update(index_elements=[c.name for c in table.primary_key],
                                    set_={"record_id": erp_id, "fetched_at": now}))


class CachedXref:
    """The ledger's cached ids however old, and nothing else: no ERP call, no write (an offline resolver).

    Reconciliation maps thousands of orders at once: an order's customer is then the id its sync cached, and
    one never cached is left out of the comparison rather than asked of the ERP.
    """

    offline = True

    def __init__(self, engine: Engine, system: str = DEFAULT_TARGET):
        self.engine = engine
        self.system = system
        self.case_insensitive = _case_insensitive_keys(system)

    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        check_xref_field(record_type, field)
        try:
            check_lookup_value(value, field)
        except MappingError:
            return None  # never cached: no lookup could have stored it
        with Session(self.engine) as session:
            key = (self.system, record_type, field, _cache_key(field, value, self.case_insensitive))
            row = session.get(XrefEntry, key)
        return row.record_id if row is not None else None

    def find_or_create(
        self, record_type: str, field: str, value: str, create: Callable[[], MappedRecord]
    ) -> str | None:
        return self.resolve(record_type, field, value)


def _case_insensitive_keys(name: str) -> frozenset[str]:
    from erpsync.systems import system

    return system(name).case_insensitive_keys


def _cache_key(field: str, value: str, case_insensitive: frozenset[str] = frozenset()) -> str:
    if field in case_insensitive:
        value = value.lower()
    if field in PERSONAL_FIELDS:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value
