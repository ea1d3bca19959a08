"""ERP internal ids by a source key (SKU → item id, email → customer id): cached in the ledger, asked of the ERP on a miss.

``LedgerXref`` is the ``XrefResolver`` the pipeline hands to ``mapping.apply``. A hit younger than ``ttl``
comes from the ``erp_xref`` table; otherwise one SuiteQL query (``SELECT id FROM item WHERE itemid = ?``)
asks the ERP and stores the answer. "Not found" is not cached: the ERP may learn the item later, and a
retry of the failed event must see it. The table and column names come from the allow-list in
erpsync/mapping/xref.py, and the value is a bound parameter, so nothing from a payload enters the query text.
"""

from __future__ import annotations

import hashlib

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from erpsync.errors import MappingError
from erpsync.ledger import UTCDateTime, utcnow
from erpsync.mapping.xref import PERSONAL_FIELDS, check_xref_field

DEFAULT_TTL = timedelta(hours=12)


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


class LedgerXref:
    """The ledger-backed ``XrefResolver``; thread-safe (each call opens its own session)."""

    def __init__(self, engine: Engine, erp_client: SuiteQLClient, ttl: timedelta = DEFAULT_TTL):
        self.engine = engine
        self.erp = erp_client
        self.ttl = ttl

    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        check_xref_field(record_type, field)  # the only gate before the names reach a query text
        with Session(self.engine) as session:
            row = session.get(ErpXref, (record_type, field, _cache_key(field, value)))
            if row is not None and utcnow() - row.fetched_at < self.ttl:
                return row.erp_id
        erp_id = self._ask_erp(record_type, field, value)
        if erp_id is not None:
            self._store(record_type, field, value, erp_id)
        return erp_id

    def _ask_erp(self, record_type: str, field: str, value: str) -> str | None:
        rows = self.erp.suiteql(f"SELECT id FROM {record_type} WHERE {field} = ?", [value])
        ids = sorted({str(row["id"]) for row in rows if row.get("id") is not None})
        if len(ids) > 1:
            shown = "this" if field in PERSONAL_FIELDS else repr(value)
            raise MappingError(
                f"{len(ids)} ERP {record_type} records have {shown} {field} (ids {', '.join(ids[:5])});"
                " make it unique in the ERP, then retry the event",
                field=f"{record_type}.{field}",
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


def _cache_key(field: str, value: str) -> str:
    if field in PERSONAL_FIELDS:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value
