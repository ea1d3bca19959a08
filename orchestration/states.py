"""Prefect's state types, in one place, and how each maps onto the core's ``RunState``."""

from __future__ import annotations

from erpsync.run_control import RunState

# Prefect's StateType values, as its REST API writes them (``state_type`` of a flow run).
SCHEDULED = "SCHEDULED"
PENDING = "PENDING"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
CANCELLING = "CANCELLING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CRASHED = "CRASHED"
CANCELLED = "CANCELLED"

_TO_CORE = {SCHEDULED: RunState.SCHEDULED, PENDING: RunState.PENDING, RUNNING: RunState.RUNNING,
            PAUSED: RunState.PAUSED, CANCELLING: RunState.CANCELLING, COMPLETED: RunState.COMPLETED,
            FAILED: RunState.FAILED, CRASHED: RunState.CRASHED, CANCELLED: RunState.CANCELLED}

# Runs of a batch deployment that will still take waiting events.
ACTIVE = (SCHEDULED, PENDING, RUNNING)

# The state a re-run is put in: what the UI's "Retry" sets (a Scheduled state named AwaitingRetry).
AWAITING_RETRY = {"type": SCHEDULED, "name": "AwaitingRetry"}


def to_core(state_type: str | None) -> RunState:
    return _TO_CORE.get(state_type or "", RunState.UNKNOWN)
