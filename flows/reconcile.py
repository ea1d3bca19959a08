"""Flow `reconcile`: Shopify orders vs NetSuite sales orders over a window; repairs go through the normal
pipeline (inbox → sync-event), the rest is reported as artifacts and an HTML file beside the ledger."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL

from erpsync.dispatch import PrefectDispatcher
from erpsync.ledger import Ledger
from erpsync.reconcile.job import reconcile_order_window
from erpsync.reconcile.report import first_rows, markdown_summary, report_dir, save_html
from erpsync.reconcile.windows import Window, nightly_window, parse_moment
from erpsync.settings import Settings
from tasks.sync import erp_client


@flow(name="reconcile", log_prints=False)
def reconcile(since: str | None = None, until: str | None = None, days: int = 1, timezone: str = "UTC",
              dry_run: bool = False, authoritative_fields: list[str] | None = None) -> dict:
    """Compare and repair orders updated in [since, until) — by default the ``days`` whole days before today in
    ``timezone`` — with an overlap at both ends. ``dry_run`` queues nothing."""
    logger = get_run_logger()
    if since:
        window = Window(parse_moment(since, tz=timezone), parse_moment(until, tz=timezone) if until
                        else datetime.now(UTC))
    else:
        window = nightly_window(datetime.now(UTC), days=days, tz=timezone)
    settings = Settings.from_env()
    ledger = Ledger.connect(settings.database_url)
    dispatcher = None if dry_run else PrefectDispatcher(PREFECT_API_URL.value(),
                                                        api_key=PREFECT_API_KEY.value() or None)
    try:
        with erp_client() as erp:
            result = reconcile_order_window(window, ledger=ledger, erp_client=erp,
                                            mappings_dir=settings.mappings_dir, dispatcher=dispatcher,
                                            dry_run=dry_run, authoritative_fields=authoritative_fields or ())
        # Ids, kinds, field names and versions only: no customer data in artifacts.
        create_table_artifact(key="reconcile-drift", table=first_rows(result.drift),
                              description=f"Drift found in {window.describe()} (first rows of each kind)")
        create_markdown_artifact(key="reconcile-summary", markdown=markdown_summary(result.summary, result.drift))
        path = save_html(result.summary, result.drift, report_dir(settings.database_url, settings.home / "reports"))
        logger.info("reconcile %s: %s drift, %s repairs queued; report %s", window.describe(),
                    result.summary.total_drift, result.summary.repairs_enqueued, path)
        return result.summary.as_dict()
    finally:
        if dispatcher is not None:
            dispatcher.close()
        ledger.close()
