"""The drift alert: when drift a person must look at exceeds a threshold, an event an automation can match.

The event is ``erpsync.reconcile.drift-exceeded`` on the resource ``erpsync.reconcile.<window start date>``
(named ``reconcile``); its payload holds counts only, never an id or a value from a record. The flow emits it
through Prefect's events; the automation that notifies someone matches the event name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from erpsync.errors import ConfigError
from erpsync.reconcile.report import ReconcileSummary
from erpsync.reconcile.windows import Window

DRIFT_EVENT = "erpsync.reconcile.drift-exceeded"
RESOURCE_PREFIX = "erpsync.reconcile."
# Anything left for a person after the repairs alerts: a repaired record needs nobody, but an ERP-only record,
# a hand edit that differs from the shop, or a dead letter stays wrong until someone acts, night after night.
DEFAULT_THRESHOLD = 0


@dataclass(frozen=True)
class DriftAlert:
    """One event to emit: its name, resource and counts-only payload."""

    event: str
    resource: dict[str, str]
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
    resource = {"prefect.resource.id": f"{RESOURCE_PREFIX}{window.start.date().isoformat()}",
                "prefect.resource.name": "reconcile"}
    return DriftAlert(DRIFT_EVENT, resource, payload)
