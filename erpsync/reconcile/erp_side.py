"""The ERP side of reconciliation: sales orders read through SuiteQL in keyset pages (ORDER BY id), bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.connectors.netsuite import SUITEQL_MAX_PAGE, NetSuiteClient
from erpsync.errors import ConfigError

# SuiteQL's one-letter sales order statuses that mean no line is open any more (H = Closed, C = Cancelled).
CLOSED_STATUSES = frozenset({"H", "C"})
# Bound values per IN (...) list: NetSuite caps a query's length, and a page of keys fits well below it.
IN_BATCH = 200

_COLUMNS = "id, externalid, tranid, status, entity, lastmodifieddate"


def erp_timestamp(moment: datetime) -> str:
    """A bound for ``lastmodifieddate`` in the form SuiteQL hands it back (``2026-11-28T03:01:20.123Z``)."""
    if moment.tzinfo is None:
        raise ConfigError("lastmodifieddate bound: needs a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_erp_timestamp(value: str | None) -> datetime | None:
    """``lastmodifieddate`` as a tz-aware UTC datetime (None when empty or unreadable)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ErpSalesOrders:
    """Reads the ERP's sales orders whose external id starts with ``external_id_prefix``.

    Pages are keyset pages: ``SELECT TOP n … WHERE id > :last ORDER BY id``. The internal id is unique and
    never changes, so a record edited while the job runs cannot shift a page boundary (offset paging would
    skip or repeat rows), and each call holds one page only. With ``with_lines`` each record is also read
    through the record API (one GET per order) for its line count and total, which SuiteQL's ``transaction``
    table alone does not give; without it those two fields are not compared.
    """

    def __init__(
        self,
        client: NetSuiteClient,
        *,
        external_id_prefix: str = "",
        record_type: str = "salesOrder",
        page_size: int = SUITEQL_MAX_PAGE,
        with_lines: bool = False,
    ) -> None:
        if not 1 <= page_size <= SUITEQL_MAX_PAGE:
            raise ConfigError(f"page_size: must be between 1 and {SUITEQL_MAX_PAGE}")
        self.client = client
        self.external_id_prefix = external_id_prefix
        self.record_type = record_type
        self.page_size = page_size
        self.with_lines = with_lines
        self.queries = 0

    def pages(self, *, modified_min: datetime, modified_max: datetime) -> Iterator[list[dict[str, Any]]]:
        """Records last modified in ``[modified_min, modified_max)``, one page of normalised rows at a time."""
        last_id = 0
        while True:
            query = (
                f"SELECT TOP {self.page_size} {_COLUMNS} FROM transaction "
                "WHERE recordtype = ? AND externalid LIKE ? AND lastmodifieddate >= ? AND lastmodifieddate < ? "
                "AND id > ? ORDER BY id"
            )
            params = [self.record_type.lower(), _like_prefix(self.external_id_prefix),
                      erp_timestamp(modified_min), erp_timestamp(modified_max), last_id]
            rows = self._query(query, params)
            if not rows:
                return
            prefix = self.external_id_prefix
            yield [self.normalise(row) for row in rows if str(row.get("externalid", "")).startswith(prefix)]
            last_id = int(rows[-1]["id"])
            if len(rows) < self.page_size:
                return

    def by_external_ids(self, external_ids: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """The records with these external ids, whenever they were modified, in pages of normalised rows."""
        batch: list[str] = []
        for external_id in external_ids:
            batch.append(external_id)
            if len(batch) == IN_BATCH:
                yield self._by_ids(batch)
                batch = []
        if batch:
            yield self._by_ids(batch)

    def _by_ids(self, external_ids: list[str]) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in external_ids)
        query = (f"SELECT {_COLUMNS} FROM transaction WHERE recordtype = ? AND externalid IN ({marks}) "
                 "ORDER BY id")
        rows = self._query(query, [self.record_type.lower(), *external_ids])
        return [self.normalise(row) for row in rows]

    def _query(self, query: str, params: list[Any]) -> list[dict[str, Any]]:
        self.queries += 1
        return self.client.suiteql(query, params, page_size=SUITEQL_MAX_PAGE)

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        """One SuiteQL row as the comparison's ERP columns (``erp_*``), plus lines and total when asked."""
        normal: dict[str, Any] = {
            "external_id": row.get("externalid"),
            "erp_id": row.get("id"),
            "erp_tranid": row.get("tranid"),
            "erp_status": "closed" if row.get("status") in CLOSED_STATUSES else "open",
            "erp_customer": row.get("entity"),
            "erp_modified": parse_erp_timestamp(row.get("lastmodifieddate")),
            "erp_total": None,
            "erp_lines": None,
        }
        if self.with_lines and row.get("id"):
            record = self.client.get(self.record_type, str(row["id"]), expand_sub_resources=True)
            if record is not None:
                lines, total = line_summary(record)
                normal["erp_lines"], normal["erp_total"] = lines, total
        return normal


def line_summary(body: dict[str, Any]) -> tuple[int, float | None]:
    """(line count, total = Σ quantity × rate rounded to cents) of a record body's ``item.items``.

    The total is None when a line's quantity or rate is not a number, so it is then not compared.
    """
    lines = ((body.get("item") or {}).get("items")) or []
    total = Decimal(0)
    for line in lines:
        try:
            total += Decimal(str(line.get("quantity"))) * Decimal(str(line.get("rate")))
        except (InvalidOperation, AttributeError):
            return len(lines), None
    return len(lines), float(total.quantize(Decimal("0.01")))


def _like_prefix(prefix: str) -> str:
    # _ and % are LIKE wildcards and external ids may contain _, so pages() re-checks the prefix exactly.
    return prefix + "%"
