"""Stock in the ERP sandbox: moved only by transactions, and read on the item as NetSuite computes it.

Oracle, "Inventory Adjustment" (https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_N3676432.html)
and the SOAP Schema Browser's InventoryAdjustment: the transaction that changes the quantity of an item at a
location. Its REST record ``inventoryAdjustment`` takes ``account`` (the adjustment account), ``subsidiary``,
``adjLocation``, ``tranDate`` and the ``inventory`` sublist, whose lines name an ``item``, a ``location`` and
``adjustQtyBy`` (signed). With Multi-Location Inventory, a line's location is mandatory. An adjustment may leave a
location's on hand below zero: NetSuite processes it even where nothing is in stock ("Caution: NetSuite will allow an
adjustment to be processed even if inventory does not exist within a location", the DSI NetSuite integration guide,
"Inventory adjustments"); negative stock is a period-close review, not a refusal.

An item's ``locations`` sublist carries computed quantities (on hand, committed, available, …): NetSuite keeps
them from the transactions and refuses a write to them with the message it gives for a field a request may not
set ("You do not have permissions to set a value for element quantityonhand due to one of the following reasons:
1) The field is read-only; …"). A new item may name its locations; its quantities start at 0. Saving a transaction
does not save the item, so the item's ``lastModifiedDate`` stays where it was: a stock move is only seen on the
transaction (SuiteQL ``transaction``/``transactionline``, types InvAdjst, ItemShip, ItemRcpt, InvTrnfr).

Computed here, per (item, location):
    on hand    the sum of the inventory-affecting transaction lines there: adjustments (``adjustQtyBy``) and item
               fulfillments (their quantity, negative: shipped stock leaves the location)
    committed  the open quantity (ordered − fulfilled) of sales order lines that are not closed and name the
               location (the line's or the order's), at most the location's on hand: NetSuite's default commitment,
               "Available Qty", commits only what is there
    available  on hand − committed
A fulfillment line without a location moves no stock here (NetSuite, with Multi-Location Inventory, asks for one);
item receipts and inventory transfers are not modelled by the sandbox.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync_dev.sandboxes.netsuite.records import Records, Rejection, field, reference
from erpsync_dev.sandboxes.netsuite.totals import decimal, json_number

# SuiteQL ``transaction.type`` codes of the transactions that move an item's on hand (Records Catalog, "Transaction":
# type). The sandbox makes the first two; the others are listed for the reader's query, which reads them all.
INVENTORY_TYPE_CODES = ("InvAdjst", "ItemShip", "ItemRcpt", "InvTrnfr")
MOVED_BY = ("InvAdjst", "ItemShip")
MOVED_RECORD_TYPES = frozenset({"inventoryAdjustment", "itemFulfillment"})
# The computed fields of an inventory item's ``locations`` sublist (REST API Browser, inventoryItem-locationsElement).
COMPUTED_LOCATION_FIELDS = ("quantityOnHand", "quantityCommitted", "quantityAvailable", "quantityOnOrder",
                            "quantityBackOrdered", "quantityInTransit", "onHandValueMli", "averageCostMli",
                            "lastPurchasePriceMli")
_COMPUTED = frozenset(name.lower() for name in COMPUTED_LOCATION_FIELDS)
READ_ONLY = ("Error while accessing a resource. You do not have permissions to set a value for element {} due to one "
             "of the following reasons: 1) The field is read-only; 2) An associated feature is disabled; 3) The field "
             "is available either when a record is created or updated, but not in both cases.")
_MISSING = "Error while accessing a resource. Please enter value(s) for: {}."
_INVALID = "Error while accessing resource: You have entered an Invalid Field Value {} for the following field: {}"
NO_LINES = "Error while accessing a resource. You must enter at least one line item for this transaction."


def check(record_type: str, body: dict[str, Any], records: Records) -> Rejection | None:
    """What NetSuite refuses of a stock-related record: a written computed quantity, or a bad adjustment."""
    if record_type == "inventoryItem":
        return check_item_locations(body)
    if record_type == "inventoryAdjustment":
        return check_adjustment(body, records)
    return None


def check_item_locations(body: dict[str, Any]) -> Rejection | None:
    lines = field(field(body, "locations"), "items")
    if not isinstance(lines, list):
        return None
    for index, line in enumerate(lines):
        for key in line if isinstance(line, dict) else ():
            # Field names are case-insensitive in NetSuite's REST API: quantityonhand is quantityOnHand.
            if key.lower() in _COMPUTED:
                return Rejection("USER_ERROR", READ_ONLY.format(key.lower()), f"locations.items[{index}].{key}")
    return None


def check_adjustment(body: dict[str, Any], records: Records) -> Rejection | None:
    """NetSuite names every missing mandatory header field at once, then checks the lines one by one."""
    missing = [label for label, name in (("Adjustment Account", "account"), ("Subsidiary", "subsidiary"))
               if reference(field(body, name)) is None]
    lines = field(field(body, "inventory"), "items")
    if missing:
        return Rejection("USER_ERROR", _MISSING.format(", ".join(missing)), "account" if "Adjustment Account" in
                         missing else "subsidiary")
    account = field(field(body, "account"), "id")
    if _number(account) is None:
        # The sandbox keeps no chart of accounts: an account is checked for its shape, not looked up.
        return Rejection("INVALID_CONTENT", _INVALID.format(_shown(account), "account"), "account")
    for name, kind in (("subsidiary", "subsidiary"), ("adjLocation", "location")):
        if (rejection := _known(body, name, kind, records, name)) is not None:
            return rejection
    if not isinstance(lines, list) or not lines:
        return Rejection("USER_ERROR", NO_LINES, "inventory.items")
    for index, line in enumerate(lines):
        path = f"inventory.items[{index}]"
        if not isinstance(line, dict):
            return Rejection("INVALID_CONTENT", "Invalid content in the request body: each line of the inventory "
                             "sublist must be an object.", path)
        labels = [label for label, name in (("Item", "item"), ("Location", "location"))
                  if field(field(line, name), "id") in (None, "")]
        if field(line, "adjustQtyBy") is None:
            labels.append("Adjust Qty. By")
        if labels:
            return Rejection("USER_ERROR", _MISSING.format(", ".join(labels)), path)
        item = _number(field(field(line, "item"), "id"))
        if item is None or not records.item_exists(item):
            return Rejection("INVALID_CONTENT", _INVALID.format(_shown(field(field(line, "item"), "id")), "item"),
                             f"{path}.item")
        if (rejection := _known(line, "location", "location", records, f"{path}.location")) is not None:
            return rejection
        quantity = field(line, "adjustQtyBy")
        if isinstance(quantity, bool) or decimal(quantity) is None:
            return Rejection("INVALID_CONTENT", _INVALID.format(_shown(quantity), "adjustqtyby"),
                             f"{path}.adjustQtyBy")
    return None


def _known(document: Any, name: str, kind: str, records: Records, path: str) -> Rejection | None:
    value = field(document, name)
    if value is None:
        return None
    number = _number(field(value, "id")) if isinstance(value, dict) else None
    if number is None or not records.known(kind, number):
        shown = _shown(field(value, "id") if isinstance(value, dict) else value)
        return Rejection("INVALID_CONTENT", _INVALID.format(shown, name.lower()), path)
    return None


def _number(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def _shown(value: Any) -> str:
    # Only ids and numbers are quoted back: any other text could be a person's.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.lstrip("-").replace(".", "", 1).isdigit():
        return value
    return f"({type(value).__name__})"


def location_lines(stored: Any, on_hand: dict[int, Decimal], open_orders: dict[int, Decimal]) -> list[dict[str, Any]]:
    """The item's ``locations`` sublist as NetSuite answers it: the locations it names and those stock moved at."""
    named = [line for line in (field(stored, "items") or []) if isinstance(line, dict)]
    by_location: dict[int, dict[str, Any]] = {}
    for line in named:
        number = _number(field(field(line, "location"), "id"))
        if number is not None:
            by_location.setdefault(number, {key: value for key, value in line.items()
                                            if key.lower() not in _COMPUTED})
    for number in sorted({*on_hand, *open_orders} - set(by_location)):
        by_location[number] = {"location": {"id": str(number)}}
    lines = []
    for number, line in sorted(by_location.items()):
        held = on_hand.get(number, Decimal(0))
        committed = min(open_orders.get(number, Decimal(0)), max(held, Decimal(0)))
        lines.append({**line, "quantityOnHand": json_number(held), "quantityCommitted": json_number(committed),
                      "quantityAvailable": json_number(held - committed)})
    return lines
