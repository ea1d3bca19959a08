"""Recovery decisions (erpsync/recovery.py) on a real ledger: which dead runs are re-run, re-dispatched or
dead-lettered, and which entity claims are freed. The orchestrator is played by a small in-test run table here,
through the RunControl calls recovery makes; tests/e2e/test_sync_crash.py runs the same code against Prefect."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from erpsync.ledger import EntityKey
from erpsync.recovery import RECOVERED, STUCK_PENDING_SECONDS, recover
from erpsync.run_control import FINISHED, RunState

KEY = EntityKey("shopify", "order", "4242", "netsuite")


class RunTable:
    """Runs by id with their state, and what recovery asked of them."""

    def __init__(self):
        self.states: dict[str, RunState] = {}
        self.ages: dict[str, float] = {}
        self.rescheduled: list[str] = []
        self.dispatched: list[int] = []
        self.batches: set[str] = set()

    def run(self, state: RunState) -> str:
        run_id = str(uuid.uuid4())
        self.states[run_id] = state
        return run_id

    def run_states(self, flow_run_ids):
        return {run_id: self.states[run_id] for run_id in flow_run_ids if run_id in self.states}

    def state_ages(self, flow_run_ids):
        return {run_id: self.ages.get(run_id, 0.0) for run_id in flow_run_ids if run_id in self.states}

    def reschedule(self, flow_run_id, *, message):
        assert "recovery" in message
        self.states[flow_run_id] = RunState.SCHEDULED
        self.rescheduled.append(flow_run_id)

    def active_batches(self):
        return [run_id for run_id in self.batches if self.states[run_id] not in FINISHED]

    def dispatch(self, event_id):
        self.dispatched.append(event_id)
        return self.run(RunState.SCHEDULED)


def event_with_run(ledger, runs: RunTable, state: RunState) -> tuple[int, str]:
    event_id = ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/create",
                                      shop=None, triggered_at=None, body=b"{}", payload_sha256="h").event_id
    run_id = runs.run(state)
    ledger.mark_dispatched(event_id, run_id)
    return event_id, run_id


def test_crashed_runs_are_rescheduled_and_live_ones_left_alone(ledger):
    runs = RunTable()
    crashed, crashed_run = event_with_run(ledger, runs, RunState.CRASHED)
    failed_without_outcome, failed_run = event_with_run(ledger, runs, RunState.FAILED)
    running, _ = event_with_run(ledger, runs, RunState.RUNNING)
    cancelled, _ = event_with_run(ledger, runs, RunState.CANCELLED)
    report = recover(ledger, runs)
    assert sorted(report.rescheduled) == sorted([crashed, failed_without_outcome])
    assert sorted(runs.rescheduled) == sorted([crashed_run, failed_run])
    assert report.redispatched == report.dead_lettered == []
    [note] = [o for o in ledger.outcomes(crashed)]
    assert note.outcome == RECOVERED and crashed_run in note.reason
    assert ledger.get_event(crashed).state == "received", "the re-run records the real outcome"
    assert ledger.outcomes(running) == ledger.outcomes(cancelled) == []
    assert recover(ledger, runs).rescheduled == [], "a rescheduled run is not rescheduled again"


def test_a_dead_letter_and_a_synced_event_are_not_rerun(ledger):
    runs = RunTable()
    dead, _ = event_with_run(ledger, runs, RunState.FAILED)
    ledger.record_outcome(event_id=dead, source="shopify", outcome="failed", reason="ErpRejected: …")
    synced, _ = event_with_run(ledger, runs, RunState.CRASHED)  # killed after the ledger said synced
    ledger.record_outcome(event_id=synced, source="shopify", outcome="synced")
    assert recover(ledger, runs).rescheduled == []


def test_a_run_prefect_no_longer_knows_is_dispatched_afresh(ledger):
    runs = RunTable()
    event_id, run_id = event_with_run(ledger, runs, RunState.CRASHED)
    del runs.states[run_id]
    report = recover(ledger, runs)
    assert report.redispatched == [event_id] == runs.dispatched
    assert ledger.get_event(event_id).flow_run_id not in (None, run_id)


def test_an_event_that_keeps_crashing_is_dead_lettered(ledger):
    runs = RunTable()
    event_id, run_id = event_with_run(ledger, runs, RunState.CRASHED)
    for _ in range(3):
        assert recover(ledger, runs, max_recoveries=3).rescheduled == [event_id]
        runs.states[run_id] = RunState.CRASHED  # and it dies again
    report = recover(ledger, runs, max_recoveries=3)
    assert report.dead_lettered == [event_id] and report.rescheduled == []
    assert ledger.get_event(event_id).state == "failed"
    assert "RunCrashed" in ledger.outcomes(event_id)[-1].reason


def test_the_claim_of_a_crashed_run_is_freed_at_once(ledger):
    runs = RunTable()
    event_id, run_id = event_with_run(ledger, runs, RunState.RUNNING)
    assert ledger.claim(KEY, event_id, stale_after=timedelta(minutes=15), flow_run_id=run_id)
    assert recover(ledger, runs).claims_freed == 0, "a running run keeps its claim"
    assert not ledger.claim(KEY, 999, stale_after=timedelta(minutes=15))
    runs.states[run_id] = RunState.CRASHED
    assert recover(ledger, runs).claims_freed == 1
    assert ledger.claim(KEY, 999, stale_after=timedelta(minutes=15)), "another event of the entity goes on"


def test_a_claim_refreshed_by_the_rerun_is_not_freed(ledger):
    runs = RunTable()
    event_id, run_id = event_with_run(ledger, runs, RunState.CRASHED)
    assert ledger.claim(KEY, event_id, stale_after=timedelta(minutes=15), flow_run_id=run_id)
    [seen] = ledger.claims_with_runs()
    # the rescheduled run starts and takes its claim back before recovery gets to free the old one
    assert ledger.claim(KEY, event_id, stale_after=timedelta(minutes=15), flow_run_id=run_id)
    assert not ledger.free_claim(seen)
    assert not ledger.claim(KEY, 999, stale_after=timedelta(minutes=15))


def test_a_prefect_outage_ends_the_pass_without_raising(ledger):
    from erpsync.errors import TransientError

    class Away(RunTable):
        def run_states(self, flow_run_ids):
            raise TransientError("Prefect API unreachable: ConnectError")

    runs = Away()
    event_with_run(ledger, runs, RunState.CRASHED)
    report = recover(ledger, runs)
    assert report.rescheduled == [] and "unreachable" in report.error


@pytest.mark.parametrize("state", [RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED])
def test_claims_of_every_finished_run_are_freed(ledger, state):
    runs = RunTable()
    event_id, run_id = event_with_run(ledger, runs, state)
    assert ledger.claim(KEY, event_id, stale_after=timedelta(minutes=15), flow_run_id=run_id)
    assert recover(ledger, runs).claims_freed == 1


def test_a_crashed_batch_run_is_rescheduled_once_for_all_its_events(ledger):
    runs = RunTable()
    batch_run = runs.run(RunState.CRASHED)
    events = []
    for _ in range(3):
        event_id, _ = event_with_run(ledger, runs, RunState.SCHEDULED)
        ledger.mark_dispatched(event_id, batch_run)
        events.append(event_id)
    report = recover(ledger, runs)
    assert sorted(report.rescheduled) == events
    assert runs.rescheduled == [batch_run]


def test_a_run_left_pending_by_a_dead_worker_is_rescheduled_a_fresh_one_is_not(ledger):
    runs = RunTable()
    stuck, stuck_run = event_with_run(ledger, runs, RunState.PENDING)
    fresh, _ = event_with_run(ledger, runs, RunState.PENDING)
    runs.ages[stuck_run] = STUCK_PENDING_SECONDS + 1
    report = recover(ledger, runs)
    assert report.rescheduled == [stuck] and runs.rescheduled == [stuck_run]
    assert ledger.outcomes(fresh) == []


def test_a_batch_run_left_pending_before_it_took_any_event_is_rescheduled(ledger):
    # The receiver and the sweep leave a backlog to an active batch run; one its worker died with before starting
    # it names no event, and would hold the whole backlog back for good.
    runs = RunTable()
    stuck, fresh, running = runs.run(RunState.PENDING), runs.run(RunState.PENDING), runs.run(RunState.RUNNING)
    runs.batches.update({stuck, fresh, running})
    runs.ages.update({stuck: STUCK_PENDING_SECONDS + 1, running: STUCK_PENDING_SECONDS + 1})
    waiting = ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/create",
                                     shop=None, triggered_at=None, body=b"{}", payload_sha256="h").event_id
    report = recover(ledger, runs)
    assert runs.rescheduled == [stuck] and report.batches_restarted == [stuck]
    assert report.as_dict()["stuck_batch_runs_rescheduled"] == 1
    assert ledger.outcomes(waiting) == []  # left for the batch run, now queued again
    assert recover(ledger, runs).batches_restarted == []  # queued now, not pending: left alone
