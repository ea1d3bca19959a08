"""An ERP record whose source entity is gone: closed through the RecordWriter port (``close_record``).

A deleted order (a shop's ``orders/delete``, erpsync/systems/<shop>/) carries no version and no lines, so no
mapping can turn it into a record. Its package either leaves the ERP record to a person (a dead letter that
says what to do) or closes it: an ERP rarely offers a delete a consultant would use for a booked order, and
each ERP's writer closes a record its own way (NetSuite: every line closed, erpsync/systems/netsuite/client.py).
"""

from __future__ import annotations

from typing import Any

from erpsync.errors import PermanentError

# Outcome recorded when the record was closed (the event is done) or left for a person (a dead letter).
CLOSED, REPORTED = "synced", "failed"

class OrderDeleted(PermanentError):
    """The order was deleted in the shop; its ERP record waits for a person (the dead letter's reason)."""


def close_lines(writer: Any, record_type: str, external_id: str) -> str | None:
    """Close the ``record_type`` with this external id through ``writer`` (a RecordWriter); its internal id, or
    None when there is none."""
    return writer.close_record(record_type, external_id)
