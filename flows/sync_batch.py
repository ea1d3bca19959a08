"""Flow `sync-batch`: drains the inbox in chunks under backlog, with the same steps as `sync-event`.

Started by the receiver (and the sweep) when events arrive faster than one run per event can start. It takes
events that have no run, a chunk at a time, keeps three chunks in flight so the ERP never waits on a chunk's
slowest event, and stops when the inbox has nothing left for it. Events that fail in a chunk get their own
`sync-event` run, so the dead-letter view is unchanged.

What an operator finds of it: a name that says which events it took (``batch-54 events-1001..1054``), a summary
in words (log line and `sync-batch` artifact), and the `sync-batch-events` table artifact, one row per event
(event, entity, order code, outcome, ERP id): the trace of an event that went through the batch.
"""

from __future__ import annotations

import os
from collections import deque

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from erpsync.batch import ChunkResult, batch_summary, hand_off, table_rows
from erpsync.errors import ErpsyncError
from erpsync.event_refs import BATCH_ARTIFACT_KEY, batch_run_name
from orchestration.runs import PrefectRunControl
from tasks.batch import sync_chunk
from tasks.sync import pipeline

# Chunks running at once. A chunk starts slowly (its task run, reading 50 events) and ends on its slowest event;
# three in flight, each replaced as soon as it finishes, keep those edges from lining up into moments when no
# chunk has an ERP call to make (with two, replaced oldest first, the ERP idled ~0.4 s every 100 events).
CHUNKS_IN_FLIGHT = 3
# Events per thread in a full chunk, at least. A chunk ends on its slowest event: with one event per thread (50 on
# 50 threads at a 50-call ERP), each thread idles from its own event's end to the slowest's, and at a long-tailed
# ERP that is most of the chunk. With four, a thread that finishes early takes the chunk's next event.
EVENTS_PER_THREAD = 4


@flow(name="sync-batch", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=CHUNKS_IN_FLIGHT))
def sync_batch(chunk_size: int = 50, max_events: int = 20000, threads: int | None = None) -> dict:
    """Sync up to ``max_events`` waiting inbox events, ``chunk_size`` at a time (raised to EVENTS_PER_THREAD ×
    ``threads`` if smaller), on ``threads`` threads per chunk (default: the ERP's concurrency limit,
    ERPSYNC_NETSUITE_CONCURRENCY, else 5)."""
    logger = get_run_logger()
    run_id = str(flow_run.id)
    threads = threads or int(os.environ.get("ERPSYNC_NETSUITE_CONCURRENCY") or 5) or 5
    chunk_size = max(chunk_size, EVENTS_PER_THREAD * threads)
    ledger = pipeline().ledger
    dispatcher = PrefectRunControl.from_prefect_settings()
    total, in_flight, taken, deferred = ChunkResult(), [], 0, 0
    taken_ids: list[int] = []

    def name_run(finished: bool) -> None:
        try:
            dispatcher.rename(run_id, batch_run_name(taken_ids, finished=finished))
        except ErpsyncError as exc:  # a name is for finding the run; the events are synced all the same
            logger.warning("run not renamed: %s", exc)

    try:
        # A rescheduled run (it crashed) first finishes every event it held before, then takes new ones.
        held = deque(ledger.held_by_run(run_id))
        # The first chunks are small and grow to chunk_size: a chunk's ERP calls start once its events are read,
        # so a small first chunk puts the ERP to work sooner after the run starts.
        size = min(chunk_size, threads)
        while True:
            if held:
                ids = [held.popleft() for _ in range(min(size, len(held)))]
            elif taken < max_events:
                ids = ledger.take_for_batch(run_id, limit=min(size, max_events - taken))
            else:
                ids = []
            size = min(chunk_size, size * 2)
            if ids:
                first_chunk = not taken_ids
                taken_ids.extend(ids)
                if first_chunk:  # renamed from `batch events` as soon as it knows where it starts
                    name_run(finished=False)
                taken += len(ids)
                in_flight.append(sync_chunk.submit(ids, run_id, threads))
            if in_flight and (len(in_flight) >= CHUNKS_IN_FLIGHT or not ids):
                done = next(as_completed(in_flight))
                in_flight.remove(done)
                result = done.result()
                total.add(result)
                deferred += hand_off(ledger, result.handed_off, dispatcher.dispatch)
            elif not ids:
                break
        slots = pipeline().erp.slots.stats  # this run's process only: a flow run is a process of its own
        summary = {"events": taken, **dict(total.outcomes), "handed_off": len(total.handed_off),
                   "left_to_the_sweep": deferred, "erp_calls": slots.acquired,
                   # How long calls waited for one of the ERP's slots, and held one: against the ERP's latency,
                   # what our side adds to each call.
                   "erp_slot_wait_seconds": round(slots.waited_seconds, 1),
                   "erp_slot_held_ms_per_call": round(1000 * slots.held_seconds / max(1, slots.acquired), 1),
                   "erp_slots_handed_over": slots.handed_over}
        name_run(finished=True)
        text = batch_summary(total, taken=taken, deferred=deferred, erp_calls=slots.acquired,
                             slot_wait_seconds=slots.waited_seconds,
                             slot_held_ms_per_call=summary["erp_slot_held_ms_per_call"])
        for line in text.splitlines():
            logger.info("%s", line)
        create_markdown_artifact(
            key="sync-batch", markdown=text.replace("\n", "\n\n"),
            description="What this batch run did, in words; each event is in its sync-batch-events table",
        )
        rows, note = table_rows(total)
        if rows:
            create_table_artifact(
                key=BATCH_ARTIFACT_KEY, table=rows,
                description="Each event this batch run handled: event, entity, order code, outcome, ERP id. An "
                            "event handed off got its own sync-event run (its failure is there). " + note,
            )
        return summary
    except BaseException:
        # Stopping on an error: what this run still holds goes back to the inbox for the sweep. (A killed run
        # never gets here; the sweep reschedules it, and it takes its own events back first.)
        released = ledger.release_batch(run_id)
        logger.error("sync-batch stopped on an error; %d unfinished events returned to the inbox", released)
        raise
    finally:
        dispatcher.close()
