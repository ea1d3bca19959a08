"""Recovery of events whose run died: re-run them, and free the entity claims their dead runs still hold.

An event keeps one flow run for life (the idempotency key is the event id), so the sweep, which dispatches only
events without a run, never looks at it again. When a worker process is killed (SIGKILL, OOM, a lost machine)
the orchestrator marks its run crashed and the event stays ``received`` in the inbox. Each sweep calls
``recover`` with the orchestrator's ``RunControl`` (erpsync/run_control.py):

    event not final in the inbox, and its run is …
      crashed                 rescheduled, as "Retry" in the UI does (same run id, same parameters)
      pending for 150 s       rescheduled too: its worker died between taking it and starting its process
      failed                  rescheduled too: a run that failed without recording a ledger outcome died
                              before ``fail()`` could record it (the ledger was down); a failed run with an
                              outcome is a dead letter, and its event is final ("failed"), so it is not here
      unknown                 dispatched afresh (the run was deleted, or the orchestrator's database was reset)
      completed               rescheduled: it ended without finishing the event (a batch run cut short)
      anything else           left alone: running, scheduled, or cancelled by someone on purpose

A `sync-batch` run that crashed is rescheduled the same way, once; it resumes the events it had taken. A batch
run left pending by a dead worker before it took any event is rescheduled too: no event names it, yet the receiver
and the sweep leave the whole backlog to it while it counts as active (``RunControl.active_batches``).

Re-running is safe at any point of a crash: the pipeline's steps are idempotent (dedupe, upsert by external id).
An event whose run crashed ``max_recoveries`` times is dead-lettered rather than re-run forever: an event that
kills its process every time (memory) must not take a worker down every minute.

An entity claim records the run that took it. When the orchestrator says that run is over (crashed, failed,
completed, cancelled, or gone) the claim is freed at once, so other events of the entity do not wait for the
15-minute stale-claim timeout; a re-run of the same event refreshes its claim, and a refreshed claim is never freed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlmodel import func, select

from erpsync.errors import ErpsyncError
from erpsync.ledger import DONE_STATES, InboxEvent, Ledger, Outcome, utcnow
from erpsync.run_control import FINISHED, RunControl, RunState

log = logging.getLogger(__name__)

MAX_RECOVERIES = 5
# A process worker moves a run from PENDING to RUNNING within seconds; one PENDING this long lost its worker
# while submitting it (killed between taking the run and starting its process), and nothing else will start it.
STUCK_PENDING_SECONDS = 150
# Not a state of the orchestrator's: what recovery calls a run pending for STUCK_PENDING_SECONDS.
PENDING_STUCK = "pending_stuck"
# Completed too: a run that ended well while its event is not final (a batch run that stopped before finishing
# what it held) would otherwise keep the event forever; a re-run is safe, the steps are idempotent.
RERUN_STATES = frozenset({RunState.CRASHED, RunState.FAILED, PENDING_STUCK, RunState.COMPLETED})
# Appended to the outcome log (without changing the event's state) each time a run is re-run after it died.
RECOVERED = "recovered"


@dataclass
class RecoveryReport:
    rescheduled: list[int] = field(default_factory=list)
    batches_restarted: list[str] = field(default_factory=list)
    redispatched: list[int] = field(default_factory=list)
    dead_lettered: list[int] = field(default_factory=list)
    claims_freed: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"crashed_rescheduled": len(self.rescheduled), "vanished_redispatched": len(self.redispatched),
                "crash_dead_lettered": len(self.dead_lettered), "dead_run_claims_freed": self.claims_freed,
                "stuck_batch_runs_rescheduled": len(self.batches_restarted),
                **({"recovery_error": self.error} if self.error else {})}


def recover(ledger: Ledger, runs: RunControl, *, limit: int = 500,
            max_recoveries: int = MAX_RECOVERIES) -> RecoveryReport:
    """One recovery pass; an orchestrator or ledger outage ends it early (the next sweep tries again)."""
    report = RecoveryReport()
    try:
        report.claims_freed = free_claims_of_finished_runs(ledger, runs)
        _rerun_dead_runs(ledger, runs, report, limit=limit, max_recoveries=max_recoveries)
        _restart_stuck_batches(runs, report)
    except ErpsyncError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        log.warning("recovery stopped early, the next sweep goes on: %s", report.error)
    return report


def free_claims_of_finished_runs(ledger: Ledger, runs: RunControl) -> int:
    claims = ledger.claims_with_runs()
    if not claims:
        return 0
    states = runs.run_states(sorted({claim.flow_run_id for claim in claims}))
    freed = 0
    for claim in claims:
        state = states.get(claim.flow_run_id)
        if (state is None or state in FINISHED) and ledger.free_claim(claim):
            freed += 1
            log.info("freed the claim on %s/%s/%s of event %s: its run %s is %s", claim.from_system, claim.entity_type,
                     claim.entity_id, claim.event_id, claim.flow_run_id, state or "unknown to the orchestrator")
    return freed


def _rerun_dead_runs(ledger: Ledger, runs: RunControl, report: RecoveryReport, *, limit: int,
                     max_recoveries: int) -> None:
    pending = unfinished_with_runs(ledger, limit=limit)
    if not pending:
        return
    run_ids = sorted({run_id for _, run_id, _ in pending})
    states: dict[str, str] = dict(runs.run_states(run_ids))
    states.update({run_id: PENDING_STUCK for run_id in _pending_too_long(runs, states)})
    rescheduled_runs: set[str] = set()  # a sync-batch run holds many events; it is rescheduled once
    for event_id, run_id, source in pending:
        state = states.get(run_id)
        if state is None:
            ledger.mark_dispatched(event_id, runs.dispatch(event_id))
            report.redispatched.append(event_id)
            log.warning("event %s: its run %s is unknown to the orchestrator; dispatched afresh", event_id, run_id)
            continue
        if state not in RERUN_STATES:
            continue
        done = recoveries(ledger, event_id)
        if done >= max_recoveries:
            reason = (f"RunCrashed: the run of this event ended {state.lower()} {done + 1} times without an outcome "
                      f"(worker killed, or the process died on this event); retry it once the cause is fixed")
            ledger.record_outcome(event_id=event_id, source=source, outcome="failed", reason=reason)
            report.dead_lettered.append(event_id)
            log.error("event %s dead-lettered: %s", event_id, reason)
            continue
        note = f"run {run_id} ended {state.lower()} without an outcome; rescheduled ({done + 1} of {max_recoveries})"
        _note_recovery(ledger, event_id, source, note)
        if run_id not in rescheduled_runs:
            runs.reschedule(run_id, message=f"erpsync recovery: {note}")
            rescheduled_runs.add(run_id)
        report.rescheduled.append(event_id)
        log.warning("event %s: %s", event_id, note)


def _restart_stuck_batches(runs: RunControl, report: RecoveryReport) -> None:
    """Reschedule batch runs pending for STUCK_PENDING_SECONDS, whatever events they hold (none, often)."""
    active = runs.active_batches()
    if not active:
        return
    for run_id in sorted(_pending_too_long(runs, runs.run_states(active))):
        runs.reschedule(run_id, message=f"erpsync recovery: batch run pending for over {STUCK_PENDING_SECONDS} s "
                                        f"(its worker died before starting it); rescheduled")
        report.batches_restarted.append(run_id)
        log.warning("sync-batch run %s was pending for over %d s: rescheduled", run_id, STUCK_PENDING_SECONDS)


def _pending_too_long(runs: RunControl, states: dict[str, str]) -> set[str]:
    """The runs of ``states`` Pending for STUCK_PENDING_SECONDS: their worker died between taking and starting
    them, and nothing else will start them."""
    pending = [run_id for run_id, state in states.items() if state == RunState.PENDING]
    if not pending:
        return set()
    return {run_id for run_id, age in runs.state_ages(pending).items() if age >= STUCK_PENDING_SECONDS}


def unfinished_with_runs(ledger: Ledger, *, limit: int) -> list[tuple[int, str, str]]:
    """(event id, flow run id, source) of events with a run but no final outcome, longest dispatched first.

    ``failed`` is final here: such an event has its reason in the ledger and waits for a replay.
    """
    with ledger.session() as session:
        rows = session.exec(
            select(InboxEvent.id, InboxEvent.flow_run_id, InboxEvent.source)
            .where(InboxEvent.flow_run_id.is_not(None), InboxEvent.state.not_in((*DONE_STATES, "failed")))
            .order_by(InboxEvent.dispatched_at, InboxEvent.id)
            .limit(limit)
        )
        return [tuple(row) for row in rows]


def recoveries(ledger: Ledger, event_id: int) -> int:
    with ledger.session() as session:
        return session.exec(select(func.count()).select_from(Outcome)
                            .where(Outcome.event_id == event_id, Outcome.outcome == RECOVERED)).one()


def _note_recovery(ledger: Ledger, event_id: int, source: str, reason: str) -> None:
    # Appended to the audit trail without touching the event's state, which stays "received" until the re-run
    # records its own outcome.
    with ledger.session() as session:
        session.add(Outcome(event_id=event_id, source=source, outcome=RECOVERED, reason=reason, at=utcnow()))
        session.commit()
