"""The SuiteQL text erpsync sends NetSuite: an id by natural key, records changed since a cursor, timestamp bounds.

Values are inlined as checked SQL-92 string literals (quotes doubled, control characters refused), not bound
parameters: Oracle's page "Executing SuiteQL Queries Through REST Web Services" documents only the body
parameter ``q``; bound ``params`` are documented for SuiteScript's N/query, not for the REST ``suiteql``
resource. Table and column names come only from ``NATURAL_KEYS`` and ``CHANGE_TABLES``, never from a caller's text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from erpsync.errors import ConfigError
from erpsync.natural_keys import check_lookup_value, check_natural_key

# SuiteQL table → the columns a mapping may look an internal id up by (each unique enough to be a key): the
# NetSuite System's ``natural_keys`` (erpsync/systems/netsuite/__init__.py).
NATURAL_KEYS: dict[str, frozenset[str]] = {
    "item": frozenset({"itemid", "externalid", "upccode", "displayname", "vendorname"}),
    "customer": frozenset({"email", "entityid", "externalid", "companyname"}),
    "vendor": frozenset({"email", "entityid", "externalid"}),
    "employee": frozenset({"email", "entityid", "externalid"}),
    "contact": frozenset({"email", "entityid", "externalid"}),
    "location": frozenset({"name", "externalid"}),
    "subsidiary": frozenset({"name", "externalid"}),
    "department": frozenset({"name", "externalid"}),
    "classification": frozenset({"name", "externalid"}),
    "currency": frozenset({"symbol", "name"}),
    "account": frozenset({"acctnumber", "externalid"}),
    "term": frozenset({"name", "externalid"}),
    "shipitem": frozenset({"itemid", "externalid"}),
    "transaction": frozenset({"tranid", "externalid", "otherrefnum"}),
}
# Compared in lower case on both sides (LOWER is in "SuiteQL Supported and Unsupported Functions"): a customer
# typed in NetSuite as Jane@Example.com is the same person as jane@example.com.
CASE_INSENSITIVE_FIELDS = frozenset({"email"})

# SuiteQL's ``transaction.type`` of each REST transaction record type.
TRANSACTION_TYPE_CODES = {
    "salesOrder": "SalesOrd", "invoice": "CustInvc", "cashSale": "CashSale", "cashRefund": "CashRfnd",
    "creditMemo": "CustCred", "returnAuthorization": "RtnAuth", "itemFulfillment": "ItemShip",
}
# REST record type → its SuiteQL table, for the entity records whose changes can be read (transactions: above).
# "price" is the way back's notice of an item's prices (issue 14): they live on the item's pricing sublist, which
# has no record or modification time of its own, so a price change is read as a change of the item (its id).
CHANGE_TABLES = {"customer": "customer", "inventoryItem": "item", "nonInventorySaleItem": "item", "price": "item"}

# A format mask both NetSuite (Oracle) and the ERP sandbox read; lastmodifieddate is compared and returned
# through it, because SuiteQL neither takes a bare string as a timestamp nor returns one in a fixed format
# (it answers in the account's date preference, e.g. 28/11/2026, without the time).
TIMESTAMP_MASK = "YYYY-MM-DD HH24:MI:SS"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def suiteql_lookup(record_type: str, field: str, value: str) -> str:
    """``SELECT id FROM record WHERE field = '…'`` with the value as a checked literal; the names must be allowed."""
    check_natural_key(NATURAL_KEYS, record_type, field)
    if field in CASE_INSENSITIVE_FIELDS:
        return f"SELECT id FROM {record_type} WHERE LOWER({field}) = {suiteql_literal(value.lower(), field)}"
    return f"SELECT id FROM {record_type} WHERE {field} = {suiteql_literal(value, field)}"


def suiteql_literal(value: str, field: str) -> str:
    """A SQL-92 string literal (SuiteQL accepts SQL-92): quotes doubled; what no lookup may hold is refused first.

    Inside a SQL-92 literal only the quote is special, so doubling it keeps any other text a plain value.
    """
    check_lookup_value(value, field)
    return "'" + value.replace("'", "''") + "'"


# --- changes since a cursor -----------------------------------------------------------------------------------


def changes_query(record_type: str, cursor: str | None, limit: int, *, before: datetime | None = None) -> str:
    """Records of ``record_type`` changed after ``cursor``, oldest first: ordered by the second then the id.

    A cursor is ``"<lastmodifieddate to the second>|<id>"``. The order is the key (second, id), because
    SuiteQL hands the time out to the second: ordering by the raw time could put a later id of one second
    before an earlier one, and the next page would then skip it. A page starts after the cursor's (second, id):
    in a later second, or in the cursor's second with a larger id — ``[second, second + 1)`` stands for "the
    cursor's second" so each bound is a plain timestamp comparison.

    ``before`` (tz-aware) leaves out the records of its second and later: a second still under way may get more
    records, some with a smaller id than the last one read, which a cursor past it would never see.
    """
    table, condition = _change_source(record_type)
    where = [condition] if condition else []
    if cursor is not None:
        moment, last_id = parse_cursor(cursor)
        where += _page_bounds(before, moment, f"t.id <= {last_id}")
    else:
        where += _page_bounds(before, None, "")
    second = f"TO_CHAR(t.lastmodifieddate, '{TIMESTAMP_MASK}')"
    return (
        f"SELECT TOP {int(limit)} t.id, t.externalid, {second} AS lastmodified FROM {table} t"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {second}, t.id"
    )


# --- stock moves: the transactions that move an item's on hand ------------------------------------------------

# The reader's own record type for them; its changes are notices of the items moved (change_intake.py).
STOCK_MOVE = "stockMove"
NOTIFIED_AS = {STOCK_MOVE: "inventoryItem"}
# SuiteQL ``transaction.type`` of inventory adjustments, item fulfillments, item receipts and inventory transfers:
# the transactions that change an item's quantity on hand (Oracle, "Records Catalog": Transaction, type).
STOCK_MOVE_TYPES = ("InvAdjst", "ItemShip", "ItemRcpt", "InvTrnfr")


def stock_moves_query(cursor: str | None, limit: int, *, before: datetime | None = None) -> str:
    """One row per (transaction, item) of the stock-moving transactions changed after ``cursor``, oldest first.

    Ordered by the key (the transaction's second, its id, the item's id), for the reason ``changes_query`` gives;
    a cursor is ``"<second>|<transaction id>|<item id>"`` (``"<second>|<id>"`` reads as item 0: the whole
    transaction). A transaction's lines of one item (an inventory transfer's two sides, a fulfillment's split
    lines) are one row. Saving the transaction does not modify the item in NetSuite, so this, not
    ``item.lastmodifieddate``, is where a stock move shows.
    """
    types = ", ".join(f"'{code}'" for code in STOCK_MOVE_TYPES)
    where = [f"t.type IN ({types})", "tl.mainline = 'F'", "tl.item IS NOT NULL"]
    if cursor is not None:
        moment, last_transaction, last_item = parse_move_cursor(cursor)
        read = f"(t.id < {last_transaction} OR (t.id = {last_transaction} AND tl.item <= {last_item}))"
        where += _page_bounds(before, moment, read)
    else:
        where += _page_bounds(before, None, "")
    second = f"TO_CHAR(t.lastmodifieddate, '{TIMESTAMP_MASK}')"
    return (
        f"SELECT TOP {int(limit)} t.id AS transactionid, t.recordtype, tl.item, i.externalid, {second} AS lastmodified"
        f" FROM transaction t JOIN transactionline tl ON tl.transaction = t.id JOIN item i ON i.id = tl.item"
        f" WHERE {' AND '.join(where)}"
        f" GROUP BY t.id, t.recordtype, tl.item, i.externalid, t.lastmodifieddate"
        f" ORDER BY {second}, t.id, tl.item"
    )


def make_move_cursor(lastmodified: str, transaction_id: str, item_id: str) -> str:
    return f"{lastmodified}|{int(transaction_id)}|{int(item_id)}"


def parse_move_cursor(cursor: str) -> tuple[datetime, int, int]:
    """(second, transaction id, item id) of a stock-move cursor; a plain change cursor is (second, id, 0)."""
    head, _, last = cursor.rpartition("|")
    if head.count("|") == 1:
        moment, last_transaction = parse_cursor(head)
        try:
            return moment, last_transaction, int(last)
        except ValueError:
            pass
    elif "|" not in head:
        moment, last_transaction = parse_cursor(cursor)
        return moment, last_transaction, 0
    raise ConfigError(f"cursor {cursor[:60]!r}: not a NetSuite stock-move cursor "
                      "('<YYYY-MM-DD HH:MM:SS>|<transaction id>|<item id>')")


def _page_bounds(before: datetime | None, moment: datetime | None, read: str) -> list[str]:
    """A page's conditions: before ``before``'s second, and after the cursor: in a later second than ``moment``, or
    in its second and not ``read`` (the rows of that second at or before the cursor's key)."""
    where = [] if before is None else [f"t.lastmodifieddate < {erp_timestamp(before)}"]
    if moment is not None:
        following = moment + timedelta(seconds=1)
        where.append(f"t.lastmodifieddate >= {_masked(moment)} AND NOT (t.lastmodifieddate < {_masked(following)} "
                     f"AND {read})")
    return where


def make_cursor(lastmodified: str, internal_id: str) -> str:
    return f"{lastmodified}|{int(internal_id)}"


def cursor_at(moment: datetime) -> str:
    """The cursor just before ``moment``'s second (tz-aware, read as the role's UTC): its changes and later ones."""
    if moment.tzinfo is None:
        raise ConfigError("change cursor: the moment needs a time zone")
    return f"{moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)}|0"


def parse_cursor(cursor: str) -> tuple[datetime, int]:
    """(second, id) of a cursor made by ``make_cursor``; a ConfigError for anything else."""
    moment, _, last_id = cursor.rpartition("|")
    try:
        return datetime.strptime(moment, TIMESTAMP_FORMAT), int(last_id)
    except ValueError:
        raise ConfigError(f"cursor {cursor[:60]!r}: not a NetSuite change cursor ('<YYYY-MM-DD HH:MM:SS>|<id>')"
                          ) from None


def _change_source(record_type: str) -> tuple[str, str]:
    if record_type in TRANSACTION_TYPE_CODES:
        return "transaction", f"t.type = '{TRANSACTION_TYPE_CODES[record_type]}'"
    if record_type in CHANGE_TABLES:
        return CHANGE_TABLES[record_type], ""
    known = ", ".join(sorted({*TRANSACTION_TYPE_CODES, *CHANGE_TABLES}))
    raise ConfigError(f"record type {record_type!r}: changes cannot be read of it (known: {known})")


def _masked(moment: datetime) -> str:
    return f"TO_TIMESTAMP('{moment.strftime(TIMESTAMP_FORMAT)}', '{TIMESTAMP_MASK}')"


# --- timestamps -----------------------------------------------------------------------------------------------


def erp_timestamp(moment: datetime, *, tz: str = "UTC", round_up: bool = False) -> str:
    """``TO_TIMESTAMP('2026-11-28 03:01:20', 'YYYY-MM-DD HH24:MI:SS')`` for a bound on ``lastmodifieddate``.

    SuiteQL reads the string in the integration role's time zone (``tz``) and to the second: a lower bound is
    rounded down and an upper bound (``round_up``) up, so the window only ever widens.
    """
    if moment.tzinfo is None:
        raise ConfigError("lastmodifieddate bound: needs a time zone")
    local = moment.astimezone(ZoneInfo(tz))
    if round_up and local.microsecond:
        local = local.replace(microsecond=0) + timedelta(seconds=1)
    return _masked(local)


def parse_erp_timestamp(value: str | None, *, tz: str = "UTC") -> datetime | None:
    """``lastmodified`` as SuiteQL returns it through the mask, read in ``tz``, as tz-aware UTC (None if unreadable)."""
    if not value:
        return None
    try:
        moment = datetime.strptime(value, TIMESTAMP_FORMAT)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)
