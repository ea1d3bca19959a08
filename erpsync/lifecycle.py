"""An ERP record whose source entity is gone: every line of it closed through the RecordWriter port.

A deleted order (a shop's ``orders/delete``, erpsync/systems/<shop>/) carries no version and no lines, so no
mapping can turn it into a record. Its package either leaves the ERP record to a person (a dead letter that
says what to do) or closes it here: every line sent back as the ERP holds it with ``isClosed: true`` and its
``line``. An ERP rarely offers a delete a consultant would use for a booked order, and an order whose lines
are all closed is closed (NetSuite: Oracle, "Closing a Sales Order").
"""

from __future__ import annotations

from typing import Any

from erpsync.errors import PermanentError

# Outcome recorded when the record was closed (the event is done) or left for a person (a dead letter).
CLOSED, REPORTED = "synced", "failed"

# What a line is made of, sent back unchanged when it is closed (links and computed fields left out).
_LINE_FIELDS = frozenset({"line", "item", "quantity", "rate", "amount", "description", "taxCode", "tax1Amt",
                          "custcol_erpsync_line_key", "price", "location", "department", "class"})


class OrderDeleted(PermanentError):
    """The order was deleted in the shop; its ERP record waits for a person (the dead letter's reason)."""


def close_lines(writer: Any, record_type: str, external_id: str) -> str | None:
    """Close every line of the ``record_type`` with this external id; its internal id, or None if there is none.

    ``writer`` is a RecordWriter. The body sends back each existing line as the ERP holds it, with
    ``isClosed: true`` and its ``line``: an upsert replaces the item sublist, so a line left out would be
    removed rather than closed.
    """
    record = writer.get_by_external_id(record_type, external_id)
    if record is None:
        return None
    lines = ((record.get("item") or {}).get("items")) or []
    closed = [{**{k: v for k, v in line.items() if k in _LINE_FIELDS}, "isClosed": True} for line in lines]
    return writer.upsert(record_type, external_id, {"item": {"items": closed}}, previous_id=str(record["id"]))
