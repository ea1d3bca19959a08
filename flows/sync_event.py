"""Flow `sync-event`: one inbox event through validate → dedupe → transform → push → confirm.

A run that ends Failed is the event's dead-letter entry: the ledger holds the reason, the run carries a
`dead-letter` artifact with the reason's parts (never the ERP's free text or a payload value), and a retry from
the Prefect UI (or `erpsync dlq replay`) re-runs the event with the mapping as it is now.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed

from erpsync.deadletters import ARTIFACT_KEY, artifact_markdown, latest_failure, state_message
from erpsync.errors import ErpsyncError, SkipEvent
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
        result = transform(event)
        if isinstance(result, SkipEvent):  # the mapping skips it (`skip:`): recorded with its reason
            outcome = pipeline().skip(event, result)
            return Completed(name=outcome.capitalize(), message=str(result))
        transformed = result
        erp_id = push(transformed)
        confirm(event, transformed, erp_id)
        logger.info("%s → %s %s (external id %s)", event.key, transformed.record.record_type, erp_id,
                    transformed.record.external_id)
        return erp_id
    except Exception as exc:
        reason = pipeline().fail(event_id, exc, event=event, transformed=transformed)
        # An error of our own has a message fit for logs; anything else gets its traceback for whoever fixes it.
        logger.error("dead-lettered: %s", reason, exc_info=None if isinstance(exc, ErpsyncError) else exc)
        failed = None
        try:
            failed = latest_failure(pipeline().ledger, event_id)
            if failed is not None:
                create_markdown_artifact(artifact_markdown(failed), key=ARTIFACT_KEY,
                                         description=f"Why event {event_id} is dead-lettered, and how to replay it")
        except Exception as artifact_exc:  # the ledger already holds the reason; the run must still end Failed
            logger.warning("dead-letter artifact not created: %s", type(artifact_exc).__name__)
        # The state's message is what the run list and the failure notification show: the cause's class only.
        return Failed(message=state_message(failed, event_id))
