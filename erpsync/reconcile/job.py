"""One reconciliation run over a window, wired from its parts (the Prefect flow and the CLI call this)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from erpsync.errors import ConfigError
from erpsync.ledger import Ledger, Outcome
from erpsync.mapping import Mapping as ErpMapping
from erpsync.ports import ShopOrderReader, ShopStateReader, WindowReader
from erpsync.reconcile.compare import DEFAULT_CHUNK, ERP_EDIT_SLACK, Comparison, DriftSet, external_id_shape
from erpsync.reconcile.repair import Repair, RepairResult, enqueue_repairs, plan_repairs, run_stamp
from erpsync.reconcile.report import NextSteps, ReconcileSummary, summarize
from erpsync.reconcile.way_back import (
    WayBackMappings,
    WayBackResult,
    enqueue_way_back_repairs,
    find_way_back_drift,
)
from erpsync.reconcile.windows import Window
from erpsync.run_control import Dispatcher
from erpsync.systems import DEFAULT_TARGET, SYSTEMS, system


@dataclass
class ReconcileResult:
    """Everything one run produced: the drift (in its spool file), the repairs, the summary, and what a person does
    next about each row (``next_steps``, for the reports)."""

    drift: DriftSet
    repairs: list[Repair]
    repair_result: RepairResult
    summary: ReconcileSummary
    next_steps: NextSteps = NextSteps()
    way_back: WayBackResult | None = None

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 when nothing is left for a person, NEEDS_A_PERSON when something is."""
        return NEEDS_A_PERSON if self.summary.needs_attention else 0


# `erpsync reconcile` exits with this when drift is left for a person (ERP-only records, ERP-side edits, dead
# letters): distinct from 1 (the command failed) and 2 (a setting or argument is wrong), so a cron job can page.
NEEDS_A_PERSON = 3


def run_reconciliation(
    window: Window,
    *,
    shop: ShopOrderReader,
    erp: WindowReader,
    ledger: Ledger,
    mapping: ErpMapping,
    spool: Path | None = None,
    dispatcher: Dispatcher | None = None,
    dry_run: bool = False,
    authoritative_fields: Iterable[str] = (),
    retry_dead_letters: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    erp_edit_slack: timedelta = ERP_EDIT_SLACK,
    run_id: str | None = None,
    way_back: WayBackMappings | None = None,
    erp_changes=None,
) -> ReconcileResult:
    """Read both sides over the window (with overlap), compare, plan and enqueue repairs, and summarise.

    With ``way_back`` (the ERP → shop mappings) and ``erp_changes`` (the ERP's ChangeReader, whose ``get`` reads a
    record), and a shop that is a ShopStateReader, the way back's drift is found and repaired too (way_back.py),
    and counted apart in the summary.

    ``mapping`` is the one the sync uses for the repair topic (``find_mapping(dir, source, "orders/updated")``); ``spool`` is the on-disk working file (a temporary file when None). ``run_id`` names
    this run in its repairs' delivery ids (the flow passes its flow run id; by default the start time).
    """
    run_id = run_id or run_stamp(datetime.now(UTC))
    if spool is None:
        spool = Path(tempfile.mkdtemp(prefix="erpsync-reconcile-")) / "spool.sqlite"
    comparison = Comparison(mapping, ledger, spool, chunk_size=chunk_size, erp_edit_slack=erp_edit_slack)
    started = time.perf_counter()
    try:
        for page in shop.order_pages(updated_at_min=window.query_start, updated_at_max=window.query_end):
            comparison.add_source_page(page)
        for page in erp.pages(modified_min=window.query_start, modified_max=window.query_end):
            comparison.add_erp_page(page)
        comparison.fill_in(find_in_erp=erp.by_external_ids, find_in_source=shop.orders_by_ids)
        drift = comparison.run(dead_letter_since=window.query_start)
        comparison.stats.seconds = time.perf_counter() - started
    finally:
        comparison.close()
    repairs = plan_repairs(drift, authoritative_fields=authoritative_fields, retry_dead_letters=retry_dead_letters)
    repair_result = enqueue_repairs(
        ledger, repairs, mapping=mapping, fetch_orders=shop.orders_by_ids, run=run_id, dispatcher=dispatcher,
        dry_run=dry_run,
    )
    steps = NextSteps(dead_letter_events=dead_letter_events(ledger, mapping, drift),
                      repaired=frozenset((repair.kind, repair.entity_id) for repair in repairs), dry_run=dry_run)
    summary = summarize(window, comparison.stats, drift, repair_result)
    back = None
    if way_back is not None and erp_changes is not None and isinstance(shop, ShopStateReader):
        back = find_way_back_drift(window, erp=erp_changes, shop=shop, ledger=ledger, mappings=way_back)
        enqueue_way_back_repairs(ledger, back, mappings=way_back, run=run_id, dispatcher=dispatcher, dry_run=dry_run)
        summary = replace(summary, way_back=back.counts(), way_back_repairs_planned=back.planned,
                          way_back_repairs_enqueued=back.enqueued)
    return ReconcileResult(drift, repairs, repair_result, summary, steps, back)


def dead_letter_events(ledger: Ledger, mapping: ErpMapping, drift: DriftSet) -> dict[str, int]:
    """Each dead-lettered entity's latest failed inbox event: what `erpsync dlq show` takes."""
    entity_ids = [str(entity) for frame in drift.chunks(kinds=["dead_lettered"]) for entity in frame["entity_id"]
                  if entity is not None]
    found: dict[str, int] = {}
    with ledger.session() as session:
        for start in range(0, len(entity_ids), 500):
            rows = session.exec(select(Outcome.entity_id, Outcome.event_id).where(
                Outcome.source == mapping.source, Outcome.entity_type == mapping.entity_type,
                Outcome.entity_id.in_(entity_ids[start:start + 500]), Outcome.outcome == "failed",
            ).order_by(Outcome.id))
            found.update({entity_id: event_id for entity_id, event_id in rows})  # the latest wins
    return found


def reconcile_order_window(
    window: Window,
    *,
    ledger: Ledger,
    erp_client,
    mappings_dir: Path,
    dispatcher: Dispatcher | None = None,
    dry_run: bool = False,
    authoritative_fields: Iterable[str] = (),
    environ=None,
    run_id: str | None = None,
    erp_timezone: str = "UTC",
    source: str | None = None,
) -> ReconcileResult:
    """A shop's orders vs the ERP's records over ``window``: what the CLI and the nightly flow both run.

    ``source`` is the shop (default: the one registered shop that can read its orders back, today Shopify, from
    ERPSYNC_SHOPIFY_SHOP_URL / ERPSYNC_SHOPIFY_ACCESS_TOKEN); the mapping is the one the sync uses for
    orders/updated, so both sides are compared through the same rules that wrote the ERP.
    """
    import os

    from erpsync.mapping import find_mapping

    shop_system = system(source) if source else _only_readable_shop()
    if shop_system.order_reader is None:
        raise ConfigError(f"{shop_system.name} cannot be reconciled: erpsync reads no orders back from it")
    mapping = find_mapping(mappings_dir, shop_system.name, "orders/updated")
    erp_system = system(mapping.target or DEFAULT_TARGET)
    if erp_system.window_reader is None:
        raise ConfigError(f"{erp_system.name} cannot be reconciled: erpsync reads no records back from it")
    shape = external_id_shape(mapping)
    with shop_system.order_reader(os.environ if environ is None else environ) as shop:
        erp = erp_system.window_reader(erp_client, external_id_prefix=shape.prefix if shape else "",
                                       record_type=mapping.record_type, tz=erp_timezone)
        # The way back's drift, where the mappings take shipments and stock from this ERP to this shop.
        way_back = WayBackMappings.find(mappings_dir, erp_system.name, shop_system.name)
        return run_reconciliation(window, shop=shop, erp=erp, ledger=ledger, mapping=mapping, dispatcher=dispatcher,
                                  dry_run=dry_run, authoritative_fields=authoritative_fields, run_id=run_id,
                                  way_back=way_back, erp_changes=erp_client)


def reconcile_target(mappings_dir: Path, source: str | None = None) -> str:
    """The ERP the shop's order mapping writes to: the one whose client reconciliation must be given.

    A deployment whose order mapping says ``to: tryton`` reconciles against Tryton, not the default ERP."""
    from erpsync.mapping import find_mapping

    shop_system = system(source) if source else _only_readable_shop()
    return find_mapping(mappings_dir, shop_system.name, "orders/updated").target or DEFAULT_TARGET


def _only_readable_shop():
    readable = [s for s in SYSTEMS.values() if s.order_reader is not None]
    if len(readable) != 1:
        raise ConfigError(f"name the shop to reconcile (one of {', '.join(s.name for s in readable)})")
    return readable[0]
