"""Flow `poll-tryton`: one pass of Tryton's change reader (erpsync/change_intake.py), every minute.

Tryton posts no change notices of its own (its ``ir.trigger`` calls a method of a model inside Tryton, it makes no
HTTP request: docs/tryton.md), so this reader is the only way in: customer shipments and products whose stock moved,
since the ledger's cursors. The pass itself is poll-netsuite's (flows/poll_netsuite.py, ``poll_pass``) with Tryton's
record types; the deployment sets ``ERPSYNC_MAPPINGS_DIR`` to the folder of Tryton's mappings (mappings/tryton).
"""

from __future__ import annotations

from prefect import flow

from erpsync.change_intake import DEFAULT_MAX_PAGES, default_record_types
from flows.poll_netsuite import poll_pass, run_name


@flow(name="poll-tryton", flow_run_name=run_name, log_prints=False)
def poll_tryton(record_types: list[str] | None = None, overlap_seconds: int = 120, page_size: int = 200,
                max_pages: int = DEFAULT_MAX_PAGES) -> dict:
    """Read the changes of ``record_types`` (default: stock.shipment.out, product.product) into the inbox.

    A record type no mapping handles is not read; one read for the first time starts ``overlap_seconds`` ago.
    """
    return poll_pass("tryton", list(record_types or default_record_types("tryton")), overlap_seconds=overlap_seconds,
                     page_size=page_size, max_pages=max_pages)
