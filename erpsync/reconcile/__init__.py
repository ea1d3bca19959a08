"""Nightly reconciliation: read both sides over a UTC window, find the drift, repair it through the pipeline, report it.

Core code: no Prefect here. ``flows/`` wraps ``run_reconciliation`` and publishes the report as artifacts.
"""

from __future__ import annotations

from erpsync.reconcile.alert import DriftAlert, drift_alert
from erpsync.reconcile.compare import DRIFT_KINDS, CompareStats, Comparison, DriftSet, classify, source_row
from erpsync.reconcile.job import ReconcileResult, run_reconciliation
from erpsync.reconcile.repair import Repair, RepairResult, delivery_id, enqueue_repairs, plan_repairs, run_stamp
from erpsync.reconcile.report import (
    ReconcileSummary,
    first_rows,
    markdown_summary,
    render_html,
    report_dir,
    save_html,
    summarize,
)
from erpsync.reconcile.windows import Window, nightly_window, parse_moment, split_window

__all__ = [
    "DRIFT_KINDS",
    "CompareStats",
    "DriftAlert",
    "Comparison",
    "DriftSet",
    "ReconcileResult",
    "ReconcileSummary",
    "Repair",
    "RepairResult",
    "Window",
    "classify",
    "delivery_id",
    "drift_alert",
    "enqueue_repairs",
    "first_rows",
    "markdown_summary",
    "nightly_window",
    "parse_moment",
    "plan_repairs",
    "render_html",
    "run_stamp",
    "report_dir",
    "run_reconciliation",
    "save_html",
    "source_row",
    "split_window",
    "summarize",
]
