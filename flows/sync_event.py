"""Flow `sync-event`: one inbox event through validate → dedupe → transform → push → confirm.

A run that ends Failed is the event's dead-letter entry: the ledger holds the reason, and a retry from the
Prefect UI re-runs the event with the mapping as it is now.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed

from tasks.sync import confirm, dedupe, pipeline, push, transform, validate


@flow(name="sync-event", log_prints=False, validate_parameters=True)
def sync_event(event_id: int):
    """Sync inbox event ``event_id`` to the ERP. The parameter is an id: the payload never reaches Prefect."""
    logger = get_run_logger()
    event = transformed = None
    try:
        event = validate(event_id)
        skip = dedupe(event)
        if skip is not None:
            outcome = pipeline().skip(event, skip)
            return Completed(name=outcome.capitalize(), message=str(skip))
        transformed = transform(event)
        erp_id = push(transformed)
        confirm(event, transformed, erp_id)
        logger.info("%s → %s %s (external id %s)", event.key, transformed.record.record_type, erp_id,
                    transformed.record.external_id)
        return erp_id
    except Exception as exc:
        reason = pipeline().fail(event_id, exc, event=event, transformed=transformed)
        logger.error("dead-lettered: %s", reason)
        raise
