"""The Tryton side of reconciliation: sales by external id prefix over a window, in keyset pages, as ERP columns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ConfigError
from erpsync.ports import BodySummary
from erpsync.systems.tryton.client import SALE, TrytonClient

MAX_PAGE = 1000
CLOSED_STATES = frozenset({"cancelled"})
IN_BATCH = 200
_FIELDS = ["id", "reference", "number", "state", "party", "total_amount", "lines", "create_date", "write_date"]


class TrytonSales:
    """Sales whose reference (erpsync's external id) starts with ``external_id_prefix``, modified in a window.

    Keyset pages on the id (``id > last``, ordered by id): a sale edited while the job runs cannot shift a page
    boundary. The window is on ``write_date``, or ``create_date`` for a sale never written since its creation.
    """

    def __init__(self, client: TrytonClient, *, external_id_prefix: str = "", record_type: str = SALE,
                 page_size: int = MAX_PAGE, tz: str = "UTC") -> None:
        # ``tz`` is the ERP's time zone as reconciliation passes it to every window reader (NetSuite's SuiteQL
        # answers in the role's zone). Tryton keeps create_date and write_date in UTC whatever the user's zone,
        # so the window is compared in UTC and ``tz`` changes nothing here.
        if not 1 <= page_size <= MAX_PAGE:
            raise ConfigError(f"page_size: must be between 1 and {MAX_PAGE}")
        if record_type != SALE:
            raise ConfigError(f"record_type: reconciliation reads {SALE} from Tryton, not {record_type!r}")
        self.client = client
        self.prefix = external_id_prefix
        self.page_size = page_size

    def pages(self, *, modified_min: datetime, modified_max: datetime) -> Iterator[list[dict[str, Any]]]:
        low, high = _naive_utc(modified_min), _naive_utc(modified_max)
        window = ["OR", [["write_date", "=", None], ["create_date", ">=", low], ["create_date", "<", high]],
                  [["write_date", ">=", low], ["write_date", "<", high]]]
        after = 0
        while True:
            rows = self.client.rpc.model(SALE, "search_read", [
                ["reference", "like", _like_prefix(self.prefix)], window, ["id", ">", after]],
                0, self.page_size, [["id", "ASC"]], _FIELDS)
            if not rows:
                return
            yield [self.normalise(row) for row in rows if str(row["reference"]).startswith(self.prefix)]
            if len(rows) < self.page_size:
                return
            after = rows[-1]["id"]

    def by_external_ids(self, external_ids: list[str]) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(external_ids), IN_BATCH):
            batch = [str(e) for e in external_ids[start:start + IN_BATCH]]
            rows = self.client.rpc.model(SALE, "search_read", [["reference", "in", batch]], 0, None, [["id", "ASC"]],
                                         _FIELDS)
            yield [self.normalise(row) for row in rows]

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        modified = row.get("write_date") or row.get("create_date")
        total = row.get("total_amount")
        return {
            "external_id": row.get("reference"),
            "erp_id": str(row["id"]),
            "erp_tranid": row.get("number"),
            "erp_status": "closed" if row.get("state") in CLOSED_STATES else "open",
            "erp_customer": str(row["party"]) if row.get("party") is not None else None,
            "erp_modified": modified.replace(tzinfo=UTC) if modified else None,
            "erp_total": round(float(total), 2) if total is not None else None,
            "erp_lines": len(row.get("lines") or []),
        }


def summarize_body(body: dict[str, Any]) -> BodySummary:
    """A sale body (mapped, or read back) as reconciliation compares it: lines, Σ quantity × unit price, status,
    customer (the party's id once read back; a mapped body names its party by email, so that is None)."""
    lines = body.get("lines") or []
    total: Decimal | None = Decimal(0)
    tax = Decimal(0)
    for line in lines:
        try:
            total += (Decimal(str(line.get("quantity"))) * Decimal(str(line.get("unit_price")))).quantize(
                Decimal("0.01"))
            tax += Decimal(str(line.get("tax_amount") or 0))
        except (InvalidOperation, AttributeError, TypeError):
            total = None
            break
    count = len(lines)
    if total is not None and tax:
        # A mapped body's tax becomes one more line in Tryton (client.py), as the record read back shows.
        total, count = total + tax, count + 1
    party = body.get("party")
    customer = str(party) if isinstance(party, (int, str)) else None
    status = "closed" if body.get("state") in CLOSED_STATES else "open"
    return BodySummary(count, float(total) if total is not None else None, status, customer)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
