"""The ERP side of reconciliation: sales orders and their line sums, read by SuiteQL in keyset pages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from erpsync.errors import ConfigError
from erpsync.ports import BodySummary
from erpsync.systems.netsuite.client import SUITEQL_MAX_PAGE, NetSuiteClient
from erpsync.systems.netsuite.queries import (
    TIMESTAMP_MASK,
    TRANSACTION_TYPE_CODES,
    erp_timestamp,
    parse_erp_timestamp,
)

# SuiteQL's one-letter sales order statuses that mean no line is open any more (H = Closed, C = Cancelled).
CLOSED_STATUSES = frozenset({"H", "C"})
# Bound values per IN (...) list: Oracle allows 1,000 and NetSuite caps a query's length; 200 keys fit well.
IN_BATCH = 200
# Item lines NetSuite books as credits come back from SuiteQL with negative quantity and amount.
CREDIT_LINE_TYPES = frozenset({"salesOrder", "invoice", "cashSale", "itemFulfillment"})
# Safe inside a quoted SuiteQL literal: the external ids NetSuite accepts and our mappings produce.
_LITERAL = re.compile(r"[A-Za-z0-9_.:@/ -]*")

_SELECT = (
    "t.id, t.externalid, t.tranid, t.status, t.entity, t.foreigntotal, "
    f"TO_CHAR(t.lastmodifieddate, '{TIMESTAMP_MASK}') AS lastmodified"
)


def literal(value: str) -> str:
    """A quoted SuiteQL string literal; NetSuite's REST SuiteQL takes no bind parameters, so values are inlined.

    Only the characters external ids are made of are accepted (ConfigError otherwise), and quotes are doubled.
    """
    if not _LITERAL.fullmatch(value):
        raise ConfigError("SuiteQL literal: only letters, digits and _ . : @ / - are allowed in an external id")
    return "'" + value.replace("'", "''") + "'"


class ErpSalesOrders:
    """Reads the ERP's sales orders whose external id starts with ``external_id_prefix``, with their line sums.

    Each page is two SuiteQL queries: a keyset page of ``transaction`` rows
    (``SELECT TOP n … WHERE t.id > last ORDER BY t.id``), then the count and sum of those transactions' item
    lines in ``transactionline`` (``GROUP BY tl.transaction``), so status, customer, line count and the
    transaction's ``foreigntotal`` (what NetSuite computed: lines, discount, tax and shipping) are all compared.
    The internal id is unique and never changes, so a record edited while the job runs cannot shift a page
    boundary (offset paging would skip or repeat rows), and each call holds one page only. Joining and grouping
    in one query would make the database group every row of the window before it can return the first page.

    ``tz`` is the time zone of the integration role's user preferences, in which SuiteQL reads and writes
    timestamps (UTC for the sandbox; set the role's preference to UTC, or pass its zone).
    """

    def __init__(
        self,
        client: NetSuiteClient,
        *,
        external_id_prefix: str = "",
        record_type: str = "salesOrder",
        page_size: int = SUITEQL_MAX_PAGE,
        tz: str = "UTC",
    ) -> None:
        if not 1 <= page_size <= SUITEQL_MAX_PAGE:
            raise ConfigError(f"page_size: must be between 1 and {SUITEQL_MAX_PAGE}")
        if record_type not in TRANSACTION_TYPE_CODES:
            raise ConfigError(f"record_type: {record_type!r} is not a transaction type reconciliation can read "
                              f"({', '.join(sorted(TRANSACTION_TYPE_CODES))})")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"tz: unknown IANA time zone {tz!r}") from None
        literal(external_id_prefix)
        self.client = client
        self.external_id_prefix = external_id_prefix
        self.record_type = record_type
        self.type_code = TRANSACTION_TYPE_CODES[record_type]
        self.page_size = page_size
        self.tz = tz
        self.queries = 0

    def page_query(self, *, modified_min: datetime, modified_max: datetime, after_id: int) -> str:
        """One keyset page's SuiteQL: records modified in ``[modified_min, modified_max)``, id > ``after_id``."""
        return (
            f"SELECT TOP {self.page_size} {_SELECT} FROM transaction t "
            f"WHERE t.type = '{self.type_code}' AND t.externalid LIKE {_like_prefix(self.external_id_prefix)} "
            f"ESCAPE '\\' AND t.lastmodifieddate >= {erp_timestamp(modified_min, tz=self.tz)} "
            f"AND t.lastmodifieddate < {erp_timestamp(modified_max, tz=self.tz, round_up=True)} "
            f"AND t.id > {int(after_id)} ORDER BY t.id"
        )

    @staticmethod
    def lines_query(internal_ids: Iterable[int]) -> str:
        """The SuiteQL of item-line count and amount per transaction (main line and tax lines left out)."""
        keys = ", ".join(str(int(internal_id)) for internal_id in internal_ids)
        return ("SELECT tl.transaction, COUNT(tl.id) AS linecount, SUM(tl.foreignamount) AS lineamount "
                f"FROM transactionline tl WHERE tl.transaction IN ({keys}) AND tl.mainline = 'F' "
                "AND tl.taxline = 'F' GROUP BY tl.transaction")

    def pages(self, *, modified_min: datetime, modified_max: datetime) -> Iterator[list[dict[str, Any]]]:
        """Records last modified in ``[modified_min, modified_max)``, one page of normalised rows at a time."""
        last_id = 0
        while True:
            rows = self._query(self.page_query(modified_min=modified_min, modified_max=modified_max,
                                               after_id=last_id))
            if not rows:
                return
            prefix = self.external_id_prefix
            yield self._with_lines([row for row in rows if str(row.get("externalid", "")).startswith(prefix)])
            last_id = int(rows[-1]["id"])
            if len(rows) < self.page_size:
                return

    def by_external_ids(self, external_ids: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """The records with these external ids, whenever they were modified, in pages of normalised rows."""
        batch: list[str] = []
        for external_id in external_ids:
            if not _LITERAL.fullmatch(external_id):
                continue  # not an external id NetSuite could hold, so not in the ERP
            batch.append(external_id)
            if len(batch) == IN_BATCH:
                yield self._by_ids(batch)
                batch = []
        if batch:
            yield self._by_ids(batch)

    def _by_ids(self, external_ids: list[str]) -> list[dict[str, Any]]:
        keys = ", ".join(literal(external_id) for external_id in external_ids)
        query = (f"SELECT {_SELECT} FROM transaction t WHERE t.type = '{self.type_code}' "
                 f"AND t.externalid IN ({keys}) ORDER BY t.id")
        return self._with_lines(self._query(query))

    def _with_lines(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sums: dict[str, dict[str, Any]] = {}
        ids = [int(row["id"]) for row in rows if str(row.get("id", "")).isdigit()]
        # IN lists of at most 1,000 values (Oracle's limit), however large a page is.
        for start in range(0, len(ids), SUITEQL_MAX_PAGE):
            for line in self._query(self.lines_query(ids[start: start + SUITEQL_MAX_PAGE])):
                sums[str(line.get("transaction"))] = line
        return [self.normalise({**row, "linecount": "0", **sums.get(str(row.get("id")), {})}) for row in rows]

    def _query(self, query: str) -> list[dict[str, Any]]:
        self.queries += 1
        return self.client.suiteql(query, page_size=SUITEQL_MAX_PAGE)

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        """One SuiteQL row as the comparison's ERP columns (``erp_*``)."""
        lines = _number(row.get("linecount"))
        amount = _number(row.get("lineamount"))
        if amount is not None and self.record_type in CREDIT_LINE_TYPES:
            amount = -amount
        total = _number(row.get("foreigntotal"))
        return {
            "external_id": row.get("externalid"),
            "erp_id": row.get("id"),
            "erp_tranid": row.get("tranid"),
            "erp_status": "closed" if row.get("status") in CLOSED_STATUSES else "open",
            "erp_customer": row.get("entity"),
            "erp_modified": parse_erp_timestamp(row.get("lastmodified"), tz=self.tz),
            # The total NetSuite computed (lines, discount, tax, shipping), in the transaction's currency; the
            # item lines' sum only when a row lacks it.
            "erp_total": round(total, 2) if total is not None else (None if amount is None else round(amount, 2)),
            # SuiteQL leaves null columns out; COUNT is never null, so a missing count means it was not asked.
            "erp_lines": None if lines is None else int(lines),
        }


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def summarize_body(body: dict[str, Any]) -> BodySummary:
    """What reconciliation compares of a mapped sales-order body: its lines, their sum, open or closed, customer."""
    lines = ((body.get("item") or {}).get("items")) or []
    count, total = line_summary(body)
    # NetSuite closes a sales order once every line is closed; that is what the mapping's isClosed means.
    status = "closed" if lines and all(line.get("isClosed") is True for line in lines) else "open"
    customer = (body.get("entity") or {}).get("id")
    return BodySummary(count, total, status, str(customer) if customer is not None else None)


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
    # _ and % are LIKE wildcards and external ids may contain _: they are escaped (ESCAPE '\'), and pages()
    # re-checks the prefix exactly anyway.
    literal(prefix)
    escaped = prefix.replace("_", "\\_").replace("%", "\\%").replace("'", "''")
    return f"'{escaped}%'"
