"""Flow `poll-netsuite`: one pass of NetSuite's change reader (erpsync/change_intake.py), every minute.

Thin: the core reads the changes since the ledger's cursors into the inbox; this flow opens the ERP client as the
sync's tasks do (environment, else the connection block), logs the counts and starts the new events' runs the way
the receiver does. An event whose dispatch fails waits for sweep-inbox. The user-event script's notices are the fast
way in; this reader is the safety net that catches what a notice missed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from erpsync.change_intake import DEFAULT_MAX_PAGES, DEFAULT_RECORD_TYPES, ChangeIntake, dispatch_new
from erpsync.ledger import Ledger
from erpsync.mapping import handled_topics
from erpsync.settings import Settings
from orchestration.runs import PrefectRunControl
from tasks.sync import writer


def run_name() -> str:
    """``poll-2026-12-03T07:41Z``, the minute the run was scheduled for, as the sweep's runs read."""
    when = flow_run.scheduled_start_time or datetime.now(UTC)
    return f"poll-{when.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


@flow(name="poll-netsuite", flow_run_name=run_name, log_prints=False)
def poll_netsuite(record_types: list[str] | None = None, overlap_seconds: int = 120, page_size: int = 200,
                  max_pages: int = DEFAULT_MAX_PAGES, erp: str = "netsuite") -> dict:
    """Read the changes of ``record_types`` (default: itemFulfillment, inventoryItem, stockMove, price) into the inbox.

    A record type no mapping handles is not read; one read for the first time starts ``overlap_seconds`` ago.
    """
    return poll_pass(erp, list(record_types or DEFAULT_RECORD_TYPES), overlap_seconds=overlap_seconds,
                     page_size=page_size, max_pages=max_pages)


def poll_pass(erp: str, types: list[str], *, overlap_seconds: int, page_size: int, max_pages: int) -> dict:
    """One pass of ``erp``'s change reader inside a poll flow's run (poll-netsuite, poll-tryton)."""
    logger = get_run_logger()
    settings = Settings.from_env()
    handled = handled_topics(settings.mappings_dir)
    if not any((erp, f"{record_type}.changed") in handled for record_type in types):
        # Nothing to read yet: no ERP connection is opened (no mapping of the way back is installed).
        logger.info("poll: no mapping handles a change of %s (%s); nothing read", erp, ", ".join(types))
        return {"new": 0, "dispatched": 0}
    ledger = Ledger.connect(settings.database_url)
    runs = PrefectRunControl.from_prefect_settings()
    try:
        with writer(erp) as reader:
            result = ChangeIntake(ledger, reader, system=erp, record_types=types, handled=handled,
                                  overlap=timedelta(seconds=overlap_seconds), page_size=page_size,
                                  max_pages=max_pages).run()
        for line in result.lines():
            logger.info("poll: %s", line)
        sent = dispatch_new(ledger, runs, result.new_event_ids, batch_threshold=settings.batch_threshold,
                            batch_runs=settings.batch_runs)
        logger.info("poll: %d new events: %d runs started, %d left to a sync-batch run, %d left to the sweep",
                    len(result.new_event_ids), sent["dispatched"], sent["left_to_batch"], sent["failed"])
        return {**result.as_dict(), **sent}
    finally:
        runs.close()
        ledger.close()
