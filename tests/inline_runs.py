"""A sync-event run's steps in the test's own process, in place of a Prefect flow run: what flows/sync_event.py
orders, minus Prefect, with a failure recorded as the flow's failure hook records it (a dead letter)."""

from __future__ import annotations

from erpsync.pipeline import SyncPipeline
from erpsync.steps import run_steps


def sync_or_raise(pipeline: SyncPipeline, event_id: int) -> str:
    """The event's outcome (synced, skipped, duplicate …); a failure is recorded, then raised."""
    event = None
    try:
        event = pipeline.validate(event_id)
        return run_steps(pipeline, event).outcome
    except Exception as exc:
        pipeline.fail(event_id, exc, event=event)
        raise


def sync_outcome(pipeline: SyncPipeline, event_id: int) -> str:
    """The event's outcome, "failed" for a failure (recorded as a dead letter)."""
    try:
        return sync_or_raise(pipeline, event_id)
    except Exception:  # noqa: BLE001 - recorded in the ledger; the test reads the outcome
        return "failed"


class InlineDispatcher:
    """A reconciliation's dispatcher that runs each repair at once; ``outcomes`` by event id."""

    def __init__(self, pipeline: SyncPipeline):
        self.pipeline = pipeline
        self.outcomes: dict[int, str] = {}

    def dispatch(self, event_id: int) -> str:
        self.outcomes[event_id] = sync_outcome(self.pipeline, event_id)
        return f"inline-{event_id}"
