"""What the ERP sandbox knows of each record type: the checks NetSuite would make, and the SuiteQL rows a record adds.

    salesOrder        entity an existing customer and item lines required; each line's item known; ``isClosed``
                      a boolean; references (currency, subsidiary, location, department, class, shipMethod,
                      discountItem, a line's taxCode) known; addresses as subrecords; money as JSON numbers;
                      a line's description at most 4,000 characters
    customer          companyName, or firstName + lastName for a person (isPerson); email well formed; a known
                      subsidiary
    cashRefund        entity (an existing customer) or createdFrom (an existing cash sale or return); item lines
                      and header checked as a sales order's
    creditMemo        entity or createdFrom (an existing invoice or return); the rest as a cash refund
    itemFulfillment   only through ``!transform`` from its sales order (fulfillments.py); a direct create is
                      refused
    inventoryItem     itemId required and not taken by another item; the record then is a known item; the
                      quantities of its ``locations`` sublist are computed and cannot be written (stock.py)
    inventoryAdjustment  account, subsidiary and adjustment lines required; each line an existing item, a known
                      location and a number to adjust by (stock.py)

Sources of each rule: Oracle's REST record pages ("Sales Order", "Item Fulfillment", "Customer") and the
field types of the REST API Browser; the select fields take ``{"id": …}`` objects, as the REST API Browser
shows them. Other record types are stored unchecked. Rejections carry NetSuite's codes (USER_ERROR for a missing value,
INVALID_CONTENT for a wrong one, with ``o:errorPath``); a detail never quotes customer data (names, emails).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from erpsync_dev.sandboxes.netsuite.totals import (
    CURRENCIES,
    HEADER_MONEY,
    LINE_NUMBERS,
    decimal,
    field,
    percentage,
    totals,
)

# SuiteQL's type code and the tranId prefix of each transaction record type, by REST record type.
TRANSACTION_TYPES = {
    "salesOrder": ("SalesOrd", "SO"),
    "invoice": ("CustInvc", "INV"),
    "cashSale": ("CashSale", "CS"),
    "cashRefund": ("CashRfnd", "CR"),
    "creditMemo": ("CustCred", "CM"),
    "returnAuthorization": ("RtnAuth", "RMA"),
    "itemFulfillment": ("ItemShip", "IF"),
    "customerPayment": ("CustPymt", "PYMT"),
    "inventoryAdjustment": ("InvAdjst", "ADJ"),
}
ITEM_RECORD_TYPES = frozenset({"inventoryItem"})

# The derived tables SuiteQL can read. They are rebuilt from the records whenever the sandbox starts,
# so a column added here needs no migration of an existing file. Like NetSuite's, a transaction's
# ``foreigntotal`` is in the transaction's currency, and ``transactionline`` holds its main line (``mainline``
# 'T', line id 0, the total) and one row per item line, whose ``quantity`` and ``foreignamount`` carry the
# posting sign: negative on a sales order's item lines (revenue is a credit).
SUITEQL_SCHEMA = """
    CREATE TABLE "transaction" (
        id INTEGER PRIMARY KEY, externalid TEXT, type TEXT, recordtype TEXT, trandate TEXT, tranid TEXT,
        otherrefnum TEXT, memo TEXT, entity TEXT, status TEXT, currency INTEGER, foreigntotal REAL,
        lastmodifieddate TEXT
    );
    CREATE TABLE transactionline (
        uniquekey INTEGER PRIMARY KEY, "transaction" INTEGER NOT NULL, id INTEGER NOT NULL, linesequencenumber INTEGER,
        mainline TEXT NOT NULL, taxline TEXT NOT NULL, item INTEGER, location INTEGER, quantity REAL, rate REAL,
        foreignamount REAL, tax1amt REAL, isclosed TEXT
    );
    CREATE INDEX transactionline_transaction ON transactionline ("transaction", id);
    CREATE INDEX transactionline_item ON transactionline (item, location);
    CREATE INDEX transaction_externalid ON "transaction" (externalid);
    CREATE TABLE item (id INTEGER PRIMARY KEY, itemid TEXT NOT NULL, externalid TEXT, itemtype TEXT,
                       displayname TEXT, lastmodifieddate TEXT);
    CREATE TABLE customer (
        id INTEGER PRIMARY KEY, entityid TEXT, externalid TEXT, email TEXT, companyname TEXT, firstname TEXT,
        lastname TEXT, isperson TEXT, lastmodifieddate TEXT
    );
    CREATE INDEX customer_email ON customer (email);
    CREATE TABLE currency (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, symbol TEXT NOT NULL, currencyprecision INTEGER NOT NULL,
        isbasecurrency TEXT NOT NULL, isinactive TEXT NOT NULL
    );
"""
SUITEQL_TABLES = frozenset({"transaction", "transactionline", "item", "customer", "currency"})
# Transaction types whose item lines NetSuite books as credits (negative quantity and amount in SuiteQL).
_CREDIT_LINE_TYPES = frozenset({"salesOrder", "invoice", "cashSale", "itemFulfillment"})

_MISSING = "Error while accessing a resource. Please enter value(s) for: {}."
_INVALID = "Error while accessing resource: You have entered an Invalid Field Value {} for the following field: {}"
# A line's description is a Text Area column, whose length NetSuite caps at 4,000 characters (Oracle, "Field
# Service Mobile Element Type Reference": Text Area, "maxlength": 4000).
DESCRIPTION_MAX = 4000
# Select fields of the header (REST name → the list the sandbox seeds, see cli.py's --list) and of an item line.
HEADER_REFERENCES = {"currency": "currency", "subsidiary": "subsidiary", "location": "location",
                     "department": "department", "class": "class", "shipMethod": "shipMethod"}
LINE_REFERENCES = {"taxCode": "taxCode", "location": "location", "department": "department", "class": "class"}
# An address is a subrecord of the transaction (Oracle, "Sales Order": billingAddress and shippingAddress are
# subrecords; "NetSuite Record Structure": a subrecord is only set within its parent record). Its fields:
ADDRESS_FIELDS = frozenset({"addressee", "attention", "addr1", "addr2", "addr3", "city", "state", "zip", "country",
                            "addrPhone", "override", "addrText"})
_COUNTRY = re.compile(r"[A-Z]{2}")
# Enough to catch a name or a phone number in the email field; NetSuite's own check is stricter.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Rejection:
    """The 400 NetSuite would answer: its error code, detail and ``o:errorPath``."""

    code: str
    detail: str
    path: str | None = None
    status: int = 400


class Records(Protocol):
    """What the checks read of the sandbox's current state."""

    def find(self, record_type: str, ref: str) -> Any | None:
        """The stored record (with ``body`` as JSON text) by internal id or ``eid:external id``."""

    def item_exists(self, item_id: int) -> bool: ...

    def item_named(self, itemid: str) -> tuple[int, str | None] | None:
        """(internal id, external id) of the item whose itemId is ``itemid`` (case-insensitive)."""

    def body(self, row: Any) -> dict[str, Any]: ...

    def customer_exists(self, customer_id: int) -> bool: ...

    def known(self, kind: str, internal_id: int) -> bool:
        """Whether the list ``kind`` (currency, subsidiary, location, …) has this internal id."""


def text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def reference(value: Any) -> str | None:
    """``{"id": "12"}`` → ``"12"``, ``{"externalId": "x"}`` → ``"eid:x"``: how a body points at another record."""
    internal_id, external_id = field(value, "id"), field(value, "externalId")
    if not _blank(internal_id):
        return str(internal_id)
    if isinstance(external_id, str) and external_id.strip():
        return f"eid:{external_id}"
    return None


def _find(records: Records, record_types: tuple[str, ...], ref: str | None) -> tuple[str, Any] | None:
    if ref is None or (not ref.startswith("eid:") and not re.fullmatch(r"-?\d+", ref)):
        return None
    for record_type in record_types:
        if (row := records.find(record_type, ref)) is not None:
            return record_type, row
    return None


def _item_lines(
    body: dict[str, Any], records: Records, *, allowed: set[int] | None = None
) -> tuple[list[dict[str, Any]] | None, Rejection | None]:
    """The ``item.items`` sublist, checked line by line; ``allowed`` limits the items (those of the source order)."""
    lines = field(field(body, "item"), "items")
    if not isinstance(lines, list) or not lines:
        return None, None
    for index, line in enumerate(lines):
        path = f"item.items[{index}].item"
        item_id = field(field(line, "item"), "id")
        if _blank(item_id):
            return lines, Rejection("USER_ERROR", _MISSING.format("Item"), path)
        number = _integer(item_id)
        if number is None or not records.item_exists(number) or (allowed is not None and number not in allowed):
            return lines, Rejection("INVALID_CONTENT", _INVALID.format(item_id, "item"), path)
        for flag in ("isClosed", "itemReceive"):
            value = field(line, flag)
            if value is not None and not isinstance(value, bool):
                # The value is the caller's own field, not customer data; NetSuite names it the same way.
                return lines, Rejection(
                    "INVALID_CONTENT", _INVALID.format(value, flag.lower()), f"item.items[{index}].{flag}"
                )
        for name in LINE_NUMBERS:
            value = field(line, name)
            if value is not None and decimal(value) is None:
                return lines, _not_a_number(value, name, f"item.items[{index}].{name}")
        description = field(line, "description")
        if description is not None and not isinstance(description, str):
            return lines, Rejection("INVALID_CONTENT", _INVALID.format("", "description"),
                                    f"item.items[{index}].description")
        if isinstance(description, str) and len(description) > DESCRIPTION_MAX:
            # Like NetSuite, the text itself is not quoted back: it is the shop's product text.
            detail = (f"Error while accessing a resource. The field description contained more than the maximum "
                      f"number ( {DESCRIPTION_MAX} ) of characters allowed.")
            return lines, Rejection("INVALID_CONTENT", detail, f"item.items[{index}].description")
        for name, kind in LINE_REFERENCES.items():
            if (rejection := _reference(line, name, kind, records, f"item.items[{index}].{name}")) is not None:
                return lines, rejection
    return lines, None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def _not_a_number(value: Any, name: str, path: str) -> Rejection:
    shown = value if isinstance(value, (int, float, bool)) or value is None else type(value).__name__
    return Rejection("INVALID_CONTENT", _INVALID.format(shown, name.lower()), path)


def _reference(document: Any, name: str, kind: str, records: Records, path: str) -> Rejection | None:
    """A select field: ``{"id": …}`` naming a known entry of its list, when the field is given."""
    value = field(document, name)
    if value is None:
        return None
    if not isinstance(value, dict):
        # REST takes a select field as an object ({"id": "1"}); a bare value is refused.
        return Rejection("INVALID_CONTENT", _INVALID.format(_shown(value), name.lower()), path)
    internal_id = field(value, "id")
    number = _integer(internal_id)
    if _blank(internal_id) or number is None:
        return Rejection("INVALID_CONTENT", _INVALID.format(_shown(internal_id), name.lower()), path)
    known = records.item_exists(number) if kind == "item" else records.known(kind, number)
    if not known:
        return Rejection("INVALID_CONTENT", _INVALID.format(number, name.lower()), path)
    return None


def _shown(value: Any) -> str:
    # Only ids and numbers are quoted back; other text could be customer data.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return value
    return f"({type(value).__name__})"


def _address(body: dict[str, Any], name: str) -> Rejection | None:
    value = field(body, name)
    if value is None:
        return None
    if not isinstance(value, dict):
        detail = (f"Invalid content in the request body: {name} is a subrecord; give it as an object of address "
                  f"fields ({', '.join(sorted(ADDRESS_FIELDS))}).")
        return Rejection("INVALID_CONTENT", detail, name)
    for key, part in value.items():
        if key == "links":
            continue
        if key.lower() not in {known.lower() for known in ADDRESS_FIELDS}:
            detail = f"Invalid content in the request body: the address subrecord has no field {key}."
            return Rejection("INVALID_CONTENT", detail, f"{name}.{key}")
        if key.lower() == "country":
            code = field(part, "id") if isinstance(part, dict) else part
            if not (isinstance(code, str) and _COUNTRY.fullmatch(code)):
                detail = _INVALID.format(_shown(code), "country") + " (a two-letter country code, e.g. US)"
                return Rejection("INVALID_CONTENT", detail, f"{name}.country")
        elif key.lower() == "override":
            if not isinstance(part, bool):
                return Rejection("INVALID_CONTENT", _INVALID.format(_shown(part), "override"), f"{name}.override")
        elif part is not None and not isinstance(part, str):
            return Rejection("INVALID_CONTENT", _INVALID.format(_shown(part), key.lower()), f"{name}.{key}")
    return None


def _missing(*labels: str, path: str | None = None) -> Rejection:
    return Rejection("USER_ERROR", _MISSING.format(", ".join(labels)), path)


def check_sales_order(body: dict[str, Any], records: Records, external_id: str | None) -> Rejection | None:
    return _customer_and_items(body, records, customer_required=True)


def _customer_and_items(body: dict[str, Any], records: Records, *, customer_required: bool) -> Rejection | None:
    """NetSuite names every missing mandatory field at once (Customer, Items), then checks the values."""
    missing = []
    entity = field(field(body, "entity"), "id")
    if customer_required and _blank(entity):
        missing.append("Customer")
    lines, rejection = _item_lines(body, records)
    if lines is None:
        missing.append("Items")
    if missing:
        return _missing(*missing)
    if not _blank(entity):
        number = _integer(entity)
        if number is None or not records.customer_exists(number):
            return Rejection("INVALID_CONTENT", _INVALID.format(_shown(entity), "entity"), "entity")
    return rejection or _header(body, records)


def _header(body: dict[str, Any], records: Records) -> Rejection | None:
    """The header's select fields, addresses and money of a transaction."""
    for name, kind in HEADER_REFERENCES.items():
        if (rejection := _reference(body, name, kind, records, name)) is not None:
            return rejection
    if (rejection := _reference(body, "discountItem", "item", records, "discountItem")) is not None:
        return rejection
    for name in ("billingAddress", "shippingAddress"):
        if (rejection := _address(body, name)) is not None:
            return rejection
    for name in HEADER_MONEY:
        value = field(body, name)
        if value is not None and decimal(value) is None:
            return _not_a_number(value, name, name)
    rate = field(body, "discountRate")
    if rate is not None:
        if decimal(rate) is None and percentage(rate) is None:
            return Rejection("INVALID_CONTENT", _INVALID.format(_shown(rate), "discountrate"), "discountRate")
        if field(body, "discountItem") is None:
            # The rate belongs to the discount item: the form leaves it disabled until one is chosen.
            return _missing("Discount Item", path="discountItem")
    return None


def check_customer(body: dict[str, Any], records: Records, external_id: str | None) -> Rejection | None:
    is_person = field(body, "isPerson")
    if is_person is not None and not isinstance(is_person, bool):
        return Rejection("INVALID_CONTENT", _INVALID.format(is_person, "isperson"), "isPerson")
    first, last, company = (field(body, name) for name in ("firstName", "lastName", "companyName"))
    # Without isPerson, NetSuite's form decides; here names make it a person, else it is a company.
    person = is_person if is_person is not None else not (_blank(first) and _blank(last))
    if person:
        missing = [label for label, value in (("First Name", first), ("Last Name", last)) if _blank(value)]
        if missing:
            return _missing(*missing)
    elif _blank(company):
        return _missing("Company Name")
    email = field(body, "email")
    if not _blank(email) and not (isinstance(email, str) and _EMAIL.fullmatch(email.strip())):
        # Unlike NetSuite, the value is not quoted: it is customer data and this detail reaches logs.
        return Rejection("INVALID_CONTENT", "Error while accessing a resource. Please enter a valid email address.",
                         "email")
    subsidiary = field(body, "subsidiary")
    if subsidiary is not None and _blank(field(subsidiary, "id")):
        return _missing("Subsidiary", path="subsidiary")
    return _reference(body, "subsidiary", "subsidiary", records, "subsidiary")


def _refund_check(sources: tuple[str, ...]) -> Callable[[dict[str, Any], Records, str | None], Rejection | None]:
    """Cash refunds and credit memos: a customer, or the transaction they are created from."""

    def check(body: dict[str, Any], records: Records, external_id: str | None) -> Rejection | None:
        created_from = field(body, "createdFrom")
        if created_from is not None:
            ref = reference(created_from)
            if ref is None:
                return _missing("Created From", path="createdFrom")
            if _find(records, sources, ref) is None:
                return Rejection("INVALID_CONTENT", _INVALID.format(ref, "createdfrom"), "createdFrom")
        return _customer_and_items(body, records, customer_required=created_from is None)

    return check


def check_inventory_item(body: dict[str, Any], records: Records, external_id: str | None) -> Rejection | None:
    itemid = field(body, "itemId")
    if _blank(itemid):
        return _missing("Item Name/Number", path="itemId")
    if not isinstance(itemid, str):
        return Rejection("INVALID_CONTENT", _INVALID.format(itemid, "itemid"), "itemId")
    taken = records.item_named(itemid.strip())
    if taken is not None and (external_id is None or taken[1] != external_id):
        # Item names are unique in NetSuite; the SKU is no customer data, so it may be quoted.
        detail = f"Error while accessing a resource. The item name {itemid.strip()} is already used by another item."
        return Rejection("USER_ERROR", detail, "itemId")
    return None


CHECKS: dict[str, Callable[[dict[str, Any], Records, str | None], Rejection | None]] = {
    "salesOrder": check_sales_order,
    "customer": check_customer,
    "cashRefund": _refund_check(("cashSale", "returnAuthorization")),
    "creditMemo": _refund_check(("invoice", "returnAuthorization")),
    "inventoryItem": check_inventory_item,
}


def check_record(
    record_type: str, body: dict[str, Any], records: Records, external_id: str | None = None
) -> Rejection | None:
    """The rejection NetSuite would answer for this body (upserted under ``external_id``), or ``None``."""
    check = CHECKS.get(record_type)
    return check(body, records, external_id) if check is not None else None


def suiteql_rows(
    record_type: str, internal_id: int, external_id: str | None, body: dict[str, Any], modified: str
) -> list[tuple[str, dict[str, Any]]]:
    """The (table, row) pairs a record adds to the SuiteQL tables; each row replaces the one with its id."""
    if record_type in TRANSACTION_TYPES:
        type_code, prefix = TRANSACTION_TYPES[record_type]
        money = totals(body)
        lines = _line_rows(record_type, internal_id, body, money.line_amounts)
        # The main line and foreigntotal carry the transaction's total in its own currency, positive whatever
        # the lines' posting sign: shipping, handling, discount and tax included, as NetSuite books them.
        total = float(money.total)
        main = {"transaction": internal_id, "id": 0, "linesequencenumber": 0, "mainline": "T", "taxline": "F",
                "item": None, "quantity": None, "rate": None, "foreignamount": total,
                "tax1amt": float(money.tax_total), "isclosed": "F"}
        return [("transaction", {
            "id": internal_id,
            "externalid": external_id,
            "type": type_code,
            "recordtype": record_type.lower(),
            "trandate": text(field(body, "tranDate")) or modified[:10],
            "tranid": text(field(body, "tranId")) or f"{prefix}{internal_id}",
            "otherrefnum": text(field(body, "otherRefNum")),
            "memo": text(field(body, "memo")),
            "entity": text(field(field(body, "entity"), "id")),
            "status": _status(record_type, body),
            "currency": money.currency,
            "foreigntotal": total,
            "lastmodifieddate": modified,
        }), ("transactionline", main), *(("transactionline", line) for line in lines)]
    if record_type in ITEM_RECORD_TYPES:
        return [("item", {
            "id": internal_id,
            "itemid": text(field(body, "itemId")),
            "externalid": external_id,
            "itemtype": "InvtPart",
            "displayname": text(field(body, "displayName")),
            "lastmodifieddate": modified,
        })]
    if record_type == "customer":
        first, last, company = (text(field(body, name)) for name in ("firstName", "lastName", "companyName"))
        person = field(body, "isPerson")
        person = person if isinstance(person, bool) else bool(first or last)
        name = " ".join(part for part in (first, last) if part) if person else company
        return [("customer", {
            "id": internal_id,
            "entityid": text(field(body, "entityId")) or name or f"CUST{internal_id}",
            "externalid": external_id,
            "email": text(field(body, "email")),
            "companyname": company,
            "firstname": first,
            "lastname": last,
            "isperson": "T" if person else "F",
            "lastmodifieddate": modified,
        })]
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def _line_rows(
    record_type: str, internal_id: int, body: dict[str, Any], amounts: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """``transactionline`` rows of a transaction's ``item.items``, ids from each line's ``line``.

    ``foreignamount`` is the line's amount as NetSuite computed it (totals), with the posting sign;
    ``tax1amt`` the line's tax, signed the same way.
    """
    sign = -1.0 if record_type in _CREDIT_LINE_TYPES else 1.0
    # An inventory adjustment's lines are its ``inventory`` sublist, each moving ``adjustQtyBy`` at its location.
    adjustment = record_type == "inventoryAdjustment"
    sublist, quantity_field = ("inventory", "adjustQtyBy") if adjustment else ("item", "quantity")
    # A line without a location of its own takes the header's, as NetSuite's form defaults it.
    header_location = _integer(field(field(body, "location"), "id"))
    rows = []
    for position, line in enumerate(field(field(body, sublist), "items") or [], start=1):
        number = line.get("line") if isinstance(line, dict) and isinstance(line.get("line"), int) else position
        quantity, rate = _number(field(line, quantity_field)), _number(field(line, "rate"))
        location = _integer(field(field(line, "location"), "id"))
        amount = amounts[position - 1] if position - 1 < len(amounts) else None
        tax = _number(field(line, "tax1Amt"))
        rows.append({
            "transaction": internal_id, "id": number, "linesequencenumber": position, "mainline": "F",
            "taxline": "F", "item": text(field(field(line, "item"), "id")),
            "location": location if location is not None else header_location,
            "quantity": None if quantity is None else sign * quantity, "rate": rate,
            "foreignamount": None if amount is None else sign * float(amount),
            "tax1amt": None if tax is None else sign * tax,
            "isclosed": "T" if field(line, "isClosed") is True else "F",
        })
    return rows


def currency_rows() -> list[dict[str, Any]]:
    """The ``currency`` table: the sandbox's currencies, USD the base."""
    return [{"id": number, "name": name, "symbol": code, "currencyprecision": units,
             "isbasecurrency": "T" if number == 1 else "F", "isinactive": "F"}
            for number, (code, name, units) in sorted(CURRENCIES.items())]


def _status(record_type: str, body: dict[str, Any]) -> str | None:
    """SuiteQL's one-letter status, for sales orders only: H (Closed) once every line is closed, else B."""
    if record_type != "salesOrder":
        return None
    lines = field(field(body, "item"), "items") or []
    closed = bool(lines) and all(field(line, "isClosed") is True for line in lines)
    return "H" if closed else "B"
