"""The one interface through which the core starts, reads and re-runs the orchestrator's runs, and how it finds one.

The core decides *what* to run (an inbox event, a batch), *which* runs are dead and *which* claims to free; the
orchestrator (``orchestration/``, on Prefect) knows *how*: deployments, idempotency keys, its REST API and its
state names. It implements ``RunControl`` and registers a factory in the entry point group ``erpsync.run_control``,
so the command line finds it without importing it, and a core without it installed still loads.

A run keeps one id for life: a re-run (``reschedule``) runs the same run again, as "Retry" in Prefect's UI does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from erpsync.errors import ConfigError
from erpsync.settings import DEFAULT_BATCH_RUNS

if TYPE_CHECKING:
    from erpsync.settings import Settings

ENTRY_POINT_GROUP = "erpsync.run_control"


class RunState(StrEnum):
    """Where a run is, in the core's words; the orchestrator maps its own states onto these."""

    SCHEDULED = "scheduled"  # waiting for a worker (or for its retry time)
    PENDING = "pending"  # taken by a worker, its process not started yet
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CRASHED = "crashed"  # its process died without reporting a final state
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # a state the orchestrator has and the core does not name


# A run that is queued or running: running it again would start it twice.
IN_FLIGHT = frozenset({RunState.SCHEDULED, RunState.PENDING, RunState.RUNNING, RunState.CANCELLING,
                       RunState.PAUSED})
# A run that will not move on by itself: whatever it held (an entity claim) it no longer needs.
FINISHED = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CRASHED, RunState.CANCELLED})


class Dispatcher(Protocol):
    """The part of ``RunControl`` that code which only starts runs needs (reconciliation's repairs)."""

    def dispatch(self, event_id: int) -> str:
        """Start (or find) the one run of this inbox event; returns its run id. Calling it again is harmless."""


class RunControl(Dispatcher, Protocol):
    """What the receiver, the sweep (dispatch and recovery), replay and batching need of the orchestrator.

    Errors: TransientError when the orchestrator cannot be reached or is busy (try again later), ConfigError when
    it refuses our credentials or a run does not exist.
    """

    def start_batch(self, key: str) -> str:
        """Start a run that takes waiting events from the inbox itself; ``key`` makes it once-only."""

    def active_batches(self) -> list[str]:
        """Ids of batch runs that will still take waiting events (queued or running)."""

    def reschedule(self, run_id: str, *, message: str) -> None:
        """Run an existing run again under the same id and parameters; ``message`` says why, for the UI."""

    def run_states(self, run_ids: list[str]) -> dict[str, RunState]:
        """{run id: state} for the runs the orchestrator knows; a run it does not know is left out."""

    def state_ages(self, run_ids: list[str]) -> dict[str, float]:
        """{run id: seconds since it entered its current state} for the runs the orchestrator knows."""

    def close(self) -> None:
        """Release connections."""


def start_batch_runs(dispatcher: RunControl, key: str, runs: int = DEFAULT_BATCH_RUNS) -> list[str]:
    """Start ``runs`` `sync-batch` runs for one backlog (ERPSYNC_BATCH_RUNS); ``key`` makes each once-only.

    They share the backlog: each takes chunks from the inbox (PostgreSQL's ``SKIP LOCKED``, SQLite's one writer),
    the per-entity claim keeps one entity's events in order across them, and the ERP's shared slots keep their
    calls together within its concurrency. Two are two processes, so two cores, where one run's Python holds one.
    """
    return [dispatcher.start_batch(f"{key}-{n}" if runs > 1 else key) for n in range(runs)]


def load_run_control(settings: Settings) -> RunControl:
    """The installed orchestrator's run control, made from ``settings``; ConfigError when none is installed or it
    cannot be configured (its message names the setting)."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    if not found:
        raise ConfigError(f"no orchestrator installed: nothing registers the entry point group {ENTRY_POINT_GROUP} "
                          f"(install erpsync with its orchestration package)")
    if len(found) > 1:
        names = ", ".join(entry.name for entry in found)
        raise ConfigError(f"several orchestrators installed ({names}) in {ENTRY_POINT_GROUP}: keep one")
    return found[0].load()(settings)
