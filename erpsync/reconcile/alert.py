"""The drift alert: when drift a person must look at exceeds a threshold, an event an automation can match.

Its payload holds counts only, never an id or a value from a record; ``window_start`` says which window. The
reconcile flow emits it (the event's name and resource live in orchestration/events.py); the automation that
notifies someone matches the event name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from erpsync.errors import ConfigError
from erpsync.reconcile.report import ReconcileSummary
from erpsync.reconcile.windows import Window

# Anything left for a person after the repairs alerts: a repaired record needs nobody, but an ERP-only record,
# a hand edit that differs from the shop, or a dead letter stays wrong until someone acts, night after night.
DEFAULT_THRESHOLD = 0


@dataclass(frozen=True)
class DriftAlert:
    """One alert to emit: the start date of the window reconciled and the counts-only payload."""

    window_start: date
    payload: dict[str, Any]


def drift_alert(summary: ReconcileSummary, window: Window, threshold: int | None = DEFAULT_THRESHOLD
                ) -> DriftAlert | None:
    """The alert when ``summary.needs_attention`` exceeds ``threshold`` (None: alerts off), else None."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise ConfigError("drift_alert_threshold: a whole number of drift rows, 0 or more (or None for off)")
    if summary.needs_attention <= threshold:
        return None
    payload = {
        "needs_attention": summary.needs_attention,
        "threshold": threshold,
        "total_drift": summary.total_drift,
        **{kind: int(count) for kind, count in summary.drift.items()},
        "compared": summary.compared,
        "repairs_planned": summary.repairs_planned,
        "repairs_enqueued": summary.repairs_enqueued,
        "dry_run": summary.dry_run,
    }
    return DriftAlert(window.start.date(), payload)
