"""The Prefect task of `sync-batch`: one chunk of inbox events through the core's batch runner.

One task run per chunk, not per event or per step: a task run costs milliseconds of orchestration, and under a
burst that cost is paid thousands of times (docs/BENCHMARKS.md). Each event's outcome is in the ledger, and an
event that fails gets its own `sync-event` run, where its steps are visible one by one.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.batch import ChunkResult, run_chunk
from tasks.sync import pipeline


@task(name="sync-chunk", cache_policy=NO_CACHE, persist_result=False)
def sync_chunk(event_ids: list[int], run_id: str, threads: int) -> ChunkResult:
    return run_chunk(pipeline(), event_ids, run_id=run_id, threads=threads)
