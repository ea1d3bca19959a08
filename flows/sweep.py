"""Flow `sweep-inbox`: dispatches inbox events that have no run yet (Prefect was down) and frees stale claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from erpsync.batch import dispatch_waiting
from erpsync.ledger import Ledger
from erpsync.pipeline import CLAIM_STALE_AFTER
from erpsync.recovery import recover
from erpsync.settings import Settings
from erpsync.stale_inbox import stale_inbox
from orchestration import events
from orchestration.runs import PrefectRunControl


def run_name() -> str:
    """``sweep-2026-12-03T07:41Z``, the minute the run was scheduled for: one sweep a minute reads as a clock in
    the run list (and is easy to filter out with "sweep-"), where random names would bury the event runs."""
    when = flow_run.scheduled_start_time or datetime.now(UTC)
    return f"sweep-{when.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


@flow(name="sweep-inbox", flow_run_name=run_name, log_prints=False)
def sweep_inbox(grace_seconds: int = 30, limit: int = 500, stale_after_seconds: int = 600) -> dict:
    """Dispatch events older than ``grace_seconds`` that no run has picked up; at most ``limit`` per sweep.

    Events waiting longer than ``stale_after_seconds`` are also reported as the Prefect event erpsync.inbox.stale.
    """
    logger = get_run_logger()
    settings = Settings.from_env()
    ledger = Ledger.connect(settings.database_url)
    dispatcher = PrefectRunControl.from_prefect_settings()
    try:
        freed = ledger.free_stale_claims(older_than=CLAIM_STALE_AFTER)
        # Counted before dispatching: events that waited this long without a run mean Prefect or the dispatch was
        # away; the stale-inbox automation (alerts.yaml) turns the event into a notification.
        stale = stale_inbox(ledger, older_than=timedelta(seconds=stale_after_seconds))
        if stale is not None:
            logger.warning("inbox: %d events without a run, the oldest for %d s", stale.count,
                           stale.oldest_age_seconds)
            events.emit_inbox_stale(stale)
        # With batching on, a backlog goes to a sync-batch run rather than to hundreds of runs of one event.
        result = dispatch_waiting(ledger, dispatcher, older_than=timedelta(seconds=grace_seconds), limit=limit,
                                  batch_threshold=settings.batch_threshold, batch_runs=settings.batch_runs)
        logger.info("sweep: %d dispatched, %d could not be, %d left to a batch run, %d stale claims freed",
                    result["dispatched"], result["failed"], result["left_to_batch"], freed)
        # Events whose run died (a killed worker) keep their run id, so the loop above never sees them again.
        recovered = recover(ledger, dispatcher).as_dict()
        return {**result, "stale_claims_freed": freed, **recovered}
    finally:
        dispatcher.close()
        ledger.close()
