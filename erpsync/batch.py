"""Many inbox events through the same steps in one process: what a `sync-batch` run does under backlog.

A flow run costs seconds of process start and orchestration (docs/BENCHMARKS.md); the ERP call it wraps costs
about 100 ms. Under a burst, one run per event leaves the ERP idle while Prefect starts processes. A batch run
instead takes the waiting events from the inbox in chunks and runs each through validate → dedupe → transform
→ push → confirm — the very `SyncPipeline` steps `sync-event` runs — on as many threads as the ERP takes calls
at once (the shared ERP limit in the connector still caps all processes together).

The dead-letter view stays one failed `sync-event` run per event: an event that does not end synced or
skipped here is released and handed to a `sync-event` run of its own, which retries it slowly and, if it
still fails, records the reason and ends Failed. Nothing is recorded as failed by a batch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from erpsync.errors import ErpsyncError
from erpsync.event_refs import order_code_text
from erpsync.ledger import EntityKey, Ledger
from erpsync.pipeline import SyncPipeline, ValidEvent
from erpsync.run_control import RunControl, start_batch_runs
from erpsync.settings import DEFAULT_BATCH_RUNS
from erpsync.steps import run_steps

log = logging.getLogger(__name__)


HANDED_OFF = "handed off"


@dataclass(frozen=True)
class BatchEvent:
    """One event a batch handled, as its run's table shows it: ids, the order code and what became of it."""

    event_id: int
    entity: str | None  # order/820982911946154508; None when the event could not be read or mapped
    label: str | None  # the order code, #1042
    outcome: str  # synced, duplicate, superseded, skipped, or HANDED_OFF
    erp_id: str | None = None
    why: str | None = None  # the error class that sent a handed-off event to its own sync-event run

    def row(self) -> dict[str, str]:
        outcome = f"{self.outcome} ({self.why}): its own sync-event run" if self.why else self.outcome
        return {"event": str(self.event_id), "entity": self.entity or "-", "order code": order_code_text(self.label),
                "outcome": outcome, "ERP id": self.erp_id or "-"}


@dataclass
class ChunkResult:
    """Outcome counts of one chunk, each event it handled, and the events to hand to `sync-event` runs with the
    reason class."""

    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    handed_off: dict[int, str] = field(default_factory=dict)
    events: list[BatchEvent] = field(default_factory=list)

    def add(self, other: ChunkResult) -> None:
        for outcome, count in other.outcomes.items():
            self.outcomes[outcome] += count
        self.handed_off.update(other.handed_off)
        self.events.extend(other.events)

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values()) + len(self.handed_off)


def sync_one(pipeline: SyncPipeline, event: ValidEvent) -> str:
    """One validated event through dedupe → transform → push → confirm; returns its outcome.

    The sequence flows/sync_event.py runs (erpsync/steps.py), without Prefect's per-step retries: anything that
    fails is raised for the caller to hand off.
    """
    return run_steps(pipeline, event).outcome


def run_chunk(pipeline: SyncPipeline, event_ids: Iterable[int], *, run_id: str, threads: int) -> ChunkResult:
    """Run a chunk of events concurrently, events of one entity one after the other in inbox order.

    Grouping by entity first keeps two versions of one order in the same chunk from racing for its claim.
    """
    result = ChunkResult()

    def validate(event_id: int) -> ValidEvent | Exception:
        try:
            return pipeline.validate(event_id, flow_run_id=run_id, assigned=True)
        except Exception as exc:  # its own run will fail the same way and record why
            return exc

    def run_entity(events: list[ValidEvent]) -> ChunkResult:
        part = ChunkResult()
        for event in events:
            about = event.about
            try:
                steps = run_steps(pipeline, event)
            except Exception as exc:
                pipeline.ledger.release(event.key, event.event_id)
                part.handed_off[event.event_id] = type(exc).__name__
                part.events.append(BatchEvent(event.event_id, about.entity, about.label, HANDED_OFF,
                                              why=type(exc).__name__))
                continue
            part.outcomes[steps.outcome] += 1
            part.events.append(BatchEvent(event.event_id, about.entity, about.label, steps.outcome, steps.erp_id))
        return part

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="batch") as pool:
        # Reading and checking is I/O and parsing: on the pool too, so the ERP calls of a chunk start sooner.
        ids = sorted(event_ids)
        by_entity: dict[EntityKey, list[ValidEvent]] = defaultdict(list)
        for event_id, event in zip(ids, pool.map(validate, ids), strict=True):
            if isinstance(event, Exception):
                result.handed_off[event_id] = type(event).__name__
                result.events.append(BatchEvent(event_id, None, None, HANDED_OFF, why=type(event).__name__))
            else:
                by_entity[event.key].append(event)
        # Who each event is about, for an operator to find it: one write for the chunk, not one per event.
        pipeline.ledger.note_entities([e.about for events in by_entity.values() for e in events])
        for part in pool.map(run_entity, by_entity.values()):
            result.add(part)
    result.events.sort(key=lambda e: e.event_id)
    return result


# A table artifact is stored whole in Prefect's database and drawn whole by its UI: a run of 20,000 events lists
# the first rows; the rest are found in the ledger (erpsync status ORDER names the batch run of each event).
MAX_TABLE_ROWS = 5000


def table_rows(result: ChunkResult, *, limit: int = MAX_TABLE_ROWS) -> tuple[list[dict[str, str]], str]:
    """The batch run's table, one row per event, and a note saying if it was cut."""
    rows = [e.row() for e in result.events[:limit]]
    cut = len(result.events) - len(rows)
    note = (f"The first {len(rows)} of {len(result.events)} events; `erpsync status EVENT_OR_ORDER` finds any of "
            f"them." if cut else "")
    return rows, note


_OUTCOME_WORDS = {"synced": "synced to the ERP", "duplicate": "duplicates (content already applied)",
                  "superseded": "superseded (older than the version applied)",
                  "skipped": "skipped by the mapping's skip: rule"}


def batch_summary(result: ChunkResult, *, taken: int, deferred: int, erp_calls: int, slot_wait_seconds: float,
                  slot_held_ms_per_call: float) -> str:
    """What a batch run did, in sentences an operator reads in its log and artifact (not a dict)."""
    ids = [e.event_id for e in result.events]
    span = f" (events {min(ids)}..{max(ids)})" if ids else ""
    lines = [f"This batch run took {taken} events from the inbox{span}."]
    for outcome, count in sorted(result.outcomes.items(), key=lambda item: -item[1]):
        lines.append(f"- {count} {_OUTCOME_WORDS.get(outcome, outcome)}")
    if result.handed_off:
        why = Counter(result.handed_off.values())
        reasons = ", ".join(f"{n} {name}" for name, n in why.most_common())
        lines.append(f"- {len(result.handed_off)} handed to a sync-event run of their own ({reasons}): a failure "
                     f"is retried and, if it stays, dead-lettered there (erpsync dlq list)")
        if deferred:
            lines.append(f"  of which {deferred} could not be started now: the sweep-inbox flow starts them")
    lines.append(f"ERP: {erp_calls} calls; they waited {slot_wait_seconds:.1f} s in all for one of the ERP's "
                 f"slots and held one {slot_held_ms_per_call:.1f} ms per call.")
    lines.append("Each event, with its entity, order code, outcome and ERP id: the sync-batch-events artifact.")
    return "\n".join(lines)


def hand_off(ledger: Ledger, handed_off: dict[int, str], dispatch: Callable[[int], str]) -> int:
    """Give each event its own `sync-event` run; returns how many could not be dispatched now.

    Those stay in the inbox without a run, so the sweep dispatches them when Prefect answers again.
    """
    deferred = 0
    for event_id, reason in sorted(handed_off.items()):
        try:
            run_id = dispatch(event_id)
        except ErpsyncError as exc:
            ledger.release_from_batch(event_id)
            deferred += 1
            log.warning("event %s: its sync-event run could not be started (%s); the sweep will", event_id, exc)
            continue
        # Straight from the batch to its own run: never free in between, so no other batch takes it again.
        ledger.mark_dispatched(event_id, run_id)
        log.info("event %s handed to its own sync-event run (%s in the batch)", event_id, reason)
    return deferred


def dispatch_waiting(ledger: Ledger, dispatcher: RunControl, *, older_than: timedelta, limit: int,
                     batch_threshold: int, batch_runs: int = DEFAULT_BATCH_RUNS) -> dict[str, int]:
    """The sweep's dispatch: events that waited ``older_than`` without a run get one.

    With batching on (``batch_threshold`` > 0): nothing while a batch run is active (it takes them),
    ``batch_runs`` batch runs when more than ``batch_threshold`` wait, else one run per event as always.
    """
    waiting = ledger.undispatched(older_than=older_than, limit=limit)
    if batch_threshold and waiting:
        try:
            if dispatcher.active_batches():
                return {"dispatched": 0, "failed": 0, "left_to_batch": len(waiting)}
            if len(waiting) > batch_threshold:
                start_batch_runs(dispatcher, f"sweep-{time.time_ns()}", batch_runs)
                return {"dispatched": 0, "failed": 0, "left_to_batch": len(waiting)}
        except ErpsyncError as exc:  # Prefect away: the next sweep tries again
            log.warning("%d waiting events: no batch run could be started: %s", len(waiting), exc)
            return {"dispatched": 0, "failed": len(waiting), "left_to_batch": 0}
    dispatched = failed = 0
    for event_id in waiting:
        try:
            ledger.mark_dispatched(event_id, dispatcher.dispatch(event_id))
            dispatched += 1
        except ErpsyncError as exc:
            failed += 1
            log.warning("event %s not dispatched: %s", event_id, exc)
    return {"dispatched": dispatched, "failed": failed, "left_to_batch": 0}
