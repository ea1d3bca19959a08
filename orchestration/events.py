"""The Prefect events erpsync emits and matches: their names and resources, in one place, and emitting them.

alerts.yaml's automations match these names, and prefect.yaml's sync-event trigger matches EVENT_RECEIVED; the
core computes what an event reports (``erpsync.stale_inbox``, ``erpsync.reconcile.alert``) and names none of them.
Payloads hold counts only, never an id or a value from a record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from erpsync.reconcile.alert import DriftAlert
    from erpsync.stale_inbox import StaleInbox

# Emitted by the sweep when events wait without a run: alerts.yaml's erpsync-inbox-stale matches it.
INBOX_STALE = "erpsync.inbox.stale"
INBOX_RESOURCE = {"prefect.resource.id": "erpsync.inbox"}

# Emitted by the reconcile flow when drift a person must look at exceeds its threshold (erpsync-reconcile-drift).
DRIFT_EXCEEDED = "erpsync.reconcile.drift-exceeded"
RECONCILE_RESOURCE_PREFIX = "erpsync.reconcile."

# What prefect.yaml's sync-event trigger expects, on the resource ``erpsync.event.<inbox event id>``: anything
# that can POST /api/events (a Prefect Cloud webhook) starts an event's run the way the receiver does.
EVENT_RECEIVED = "erpsync.event.received"

# Prefect's own flow-run events, which the crash-detection automation follows.
FLOW_RUN_RESOURCE = "prefect.flow-run.*"
FLOW_RUN_HEARTBEAT = "prefect.flow-run.heartbeat"
FLOW_RUN_RUNNING = "prefect.flow-run.Running"
FLOW_RUN_FINAL = ("prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                  "prefect.flow-run.Crashed")


def drift_resource(alert: DriftAlert) -> dict[str, str]:
    """``erpsync.reconcile.<window start date>``, named reconcile: one resource per window reconciled."""
    return {"prefect.resource.id": f"{RECONCILE_RESOURCE_PREFIX}{alert.window_start.isoformat()}",
            "prefect.resource.name": "reconcile"}


def emit_inbox_stale(stale: StaleInbox) -> None:
    """From a flow run: the stale-inbox event with its counts."""
    from prefect.events import emit_event

    emit_event(INBOX_STALE, resource=INBOX_RESOURCE, payload=stale.payload())


def emit_drift_exceeded(alert: DriftAlert) -> str:
    """From a flow run: the drift event with its counts; returns the resource id it was emitted on."""
    from prefect.events import emit_event

    resource = drift_resource(alert)
    emit_event(event=DRIFT_EXCEEDED, resource=resource, payload=alert.payload)
    return resource["prefect.resource.id"]
