"""Flow `sync-event`: one inbox event through validate → dedupe → transform → push → confirm (erpsync/steps.py).

A run that ends Failed is the event's dead-letter entry: the ledger holds the reason, the run carries a
`dead-letter` artifact with the reason's parts (never the ERP's free text or a payload value), and a retry from
the Prefect UI (or `erpsync dlq replay`) re-runs the event with the mapping as it is now.
"""

from __future__ import annotations

import logging

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FailedRun
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from erpsync.deadletters import ARTIFACT_KEY, artifact_markdown, latest_failure, state_message
from erpsync.errors import ErpsyncError, PayloadMismatch, SkipEvent
from erpsync.event_refs import event_run_name
from erpsync.steps import run_steps
from orchestration.runs import PrefectRunControl
from tasks.sync import confirm, dedupe, pipeline, push, transform, validate

DEAD_LETTER_PREFIX = "dead-lettered: "


class DeadLetterIsNotACrash(logging.Filter):
    """Drops the line Prefect's `run_flow` logs, with a traceback of its own internals, when the flow returned the
    Failed state of a dead letter: it re-raises that state as `FailedRun` ("Engine execution exited with
    unexpected exception") whether the failure was expected or not. The run's log keeps the reason (logged by the
    flow) and Prefect's "Finished in state Failed(...)"; any other exception is still logged with its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, FailedRun) and str(exc).startswith(DEAD_LETTER_PREFIX)
                    and record.getMessage() == "Engine execution exited with unexpected exception")


# On the logger of flow-run lines (prefect.flow_runs), which the engine's error logger writes to: at import, so in
# a worker's fork server and in a plain `python -m prefect.engine` alike, before the run starts.
_run_logger = logging.getLogger("prefect.flow_runs")
if not any(isinstance(f, DeadLetterIsNotACrash) for f in _run_logger.filters):
    _run_logger.addFilter(DeadLetterIsNotACrash())


class _TaskSteps:
    """The steps of erpsync/steps.py as Prefect tasks; keeps the mapped record for a dead letter's reason."""

    transformed = None

    def dedupe(self, event):
        return dedupe(event)

    def transform(self, event):
        result = transform(event)
        if not isinstance(result, SkipEvent):
            self.transformed = result
        return result

    def push(self, transformed):
        return push(transformed)

    def confirm(self, event, transformed, erp_id):
        confirm(event, transformed, erp_id)

    def skip(self, event, reason):
        return pipeline().skip(event, reason)


def name_run(event_id: int, entity: str | None, label: str | None) -> None:
    """Rename the run ``event-42`` to ``event-42 order/820982911946154508 #1042``, so the UI's search finds it by
    the entity or the order code a customer quotes. Never fails the run: a name is for finding it."""
    if not (entity or label) or not flow_run.id:
        return
    logger = get_run_logger()
    try:
        runs = PrefectRunControl.from_prefect_settings()
        try:
            runs.rename(str(flow_run.id), event_run_name(event_id, entity, label))
        finally:
            runs.close()
    except ErpsyncError as exc:
        logger.warning("run not renamed: %s", exc)


@flow(name="sync-event", log_prints=False, validate_parameters=True)
def sync_event(event_id: int):
    """Sync inbox event ``event_id`` to the ERP. The parameter is an id: the payload never reaches Prefect."""
    logger = get_run_logger()
    event = None
    steps = _TaskSteps()
    try:
        event = validate(event_id)
        name_run(event_id, event.about.entity, event.about.label)
        result = run_steps(steps, event)
        if result.skipped is not None:  # a duplicate, superseded, or the mapping's `skip:`: recorded with its reason
            return Completed(name=result.outcome.capitalize(), message=str(result.skipped))
        logger.info("%s → %s %s (external id %s)", event.key, result.transformed.record.record_type, result.erp_id,
                    result.transformed.record.external_id)
        return result.erp_id
    except Exception as exc:
        reason = pipeline().fail(event_id, exc, event=event, transformed=steps.transformed)
        if event is None:  # it failed in validate, which recorded who it is about when the mapping could tell
            row = pipeline().ledger.get_event(event_id)
            if row is not None:
                name_run(event_id, row.entity, row.entity_label)
        if isinstance(exc, PayloadMismatch):
            # Recorded `mismatched` for `erpsync dlq`; a Completed run, so no failure alert pages anyone.
            logger.warning("not a payload of its topic: %s", reason)
            return Completed(name="Mismatched", message=reason)
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
