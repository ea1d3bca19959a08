"""Flow `reconcile`: Shopify orders vs NetSuite sales orders over a window; repairs go through the normal
pipeline (inbox → sync-event), the rest is reported as artifacts and an HTML file beside the ledger, and
drift a person must look at beyond a threshold is announced as an `erpsync.reconcile.drift-exceeded` event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from erpsync.ledger import Ledger
from erpsync.reconcile.alert import DEFAULT_THRESHOLD, drift_alert
from erpsync.reconcile.job import reconcile_order_window, reconcile_target
from erpsync.reconcile.report import first_rows, markdown_summary, report_dir, save_html
from erpsync.reconcile.way_back import way_back_rows
from erpsync.reconcile.windows import Window, nightly_window, parse_moment
from erpsync.settings import Settings
from orchestration import events
from orchestration.runs import PrefectRunControl
from tasks.sync import writer


def window_of(since: str | None, until: str | None, days: int, timezone: str) -> Window:
    """The window a run reconciles: [since, until) when given, else the ``days`` whole days before today."""
    if since:
        return Window(parse_moment(since, tz=timezone), parse_moment(until, tz=timezone) if until
                      else datetime.now(UTC))
    return nightly_window(datetime.now(UTC), days=days, tz=timezone)


def run_name() -> str:
    """``reconcile-2026-12-02`` (or ``reconcile-2026-11-27..2026-11-28``): the days reconciled, in the run's time
    zone, so the nightly runs read as a calendar in the run list and a given day's run can be searched for."""
    p = flow_run.parameters
    timezone = p.get("timezone") or "UTC"
    try:
        window = window_of(p.get("since"), p.get("until"), p.get("days") or 1, timezone)
        zone = ZoneInfo(timezone)
    except Exception:  # a bad parameter fails the run itself, with its message; the name stays plain
        return "reconcile"
    first = window.start.astimezone(zone).date()
    last = (window.end - timedelta(microseconds=1)).astimezone(zone).date()
    return f"reconcile-{first}" if first >= last else f"reconcile-{first}..{last}"


@flow(name="reconcile", flow_run_name=run_name, log_prints=False)
def reconcile(since: str | None = None, until: str | None = None, days: int = 1, timezone: str = "UTC",
              dry_run: bool = False, authoritative_fields: list[str] | None = None,
              drift_alert_threshold: int | None = DEFAULT_THRESHOLD, erp_timezone: str = "UTC") -> dict:
    """Compare and repair orders updated in [since, until) — by default the ``days`` whole days before today in
    ``timezone`` — with an overlap at both ends. ``dry_run`` queues nothing.

    When the drift left for a person (ERP-only records, ERP-newer edits, dead letters) exceeds
    ``drift_alert_threshold`` an `erpsync.reconcile.drift-exceeded` event is emitted (counts only); the
    default 0 alerts on any such row, ``None`` turns the alert off. ``erp_timezone`` is the NetSuite
    integration role's time zone preference, in which SuiteQL reads and returns timestamps.
    """
    logger = get_run_logger()
    window = window_of(since, until, days, timezone)
    settings = Settings.from_env()
    ledger = Ledger.connect(settings.database_url)
    dispatcher = None if dry_run else PrefectRunControl.from_prefect_settings()
    try:
        with writer(reconcile_target(settings.mappings_dir)) as erp:
            # The flow run id names the repairs: a retry of this run re-finds them in the inbox, a later run
            # may queue the same repair again.
            result = reconcile_order_window(window, ledger=ledger, erp_client=erp,
                                            mappings_dir=settings.mappings_dir, dispatcher=dispatcher,
                                            dry_run=dry_run, authoritative_fields=authoritative_fields or (),
                                            run_id=flow_run.get_id(), erp_timezone=erp_timezone)
        # Ids, kinds, field names and versions only: no customer data in artifacts.
        create_table_artifact(key="reconcile-drift", table=first_rows(result.drift, steps=result.next_steps),
                              description=f"Drift found in {window.describe()} (first rows of each kind)")
        create_markdown_artifact(key="reconcile-summary",
                                 markdown=markdown_summary(result.summary, result.drift, steps=result.next_steps))
        if result.way_back is not None and result.way_back.rows:
            # The way back's drift, apart: ERP record ids, kinds and quantities per location, no customer data.
            create_table_artifact(key="reconcile-way-back", table=way_back_rows(result.way_back),
                                  description=f"The way back's drift in {window.describe()} (first rows), each "
                                              "repaired as the ERP's change notice")
        path = save_html(result.summary, result.drift, report_dir(settings.database_url, settings.home / "reports"),
                         steps=result.next_steps)
        logger.info("reconcile %s: %s drift, %s repairs queued, %s left for a person; report %s",
                    window.describe(), result.summary.total_drift, result.summary.repairs_enqueued,
                    result.summary.needs_attention, path)
        if result.summary.way_back:
            logger.info("reconcile %s, the way back: %s; %s change notices queued", window.describe(),
                        ", ".join(f"{kind} {count}" for kind, count in result.summary.way_back.items()),
                        result.summary.way_back_repairs_enqueued)
        alert = drift_alert(result.summary, window, drift_alert_threshold)
        if alert is not None:
            resource = events.emit_drift_exceeded(alert)
            logger.warning("%s: %s drift rows need a person (threshold %s); event %s emitted", resource,
                           alert.payload["needs_attention"], drift_alert_threshold, events.DRIFT_EXCEEDED)
        return result.summary.as_dict()
    finally:
        if dispatcher is not None:
            dispatcher.close()
        ledger.close()
