"""Prefect tasks of the sync: thin wrappers over `erpsync.pipeline`, adding retries and names for the UI.

No task persists its result or caches: the steps are idempotent by design (dedupe + upsert by external id), and
a persisted result could hold a record body. A retry from the UI therefore re-runs every step, safely.
"""

from __future__ import annotations

from functools import cache

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from blocks import configured_in_env, connection_block_writer
from erpsync.errors import SkipEvent, TransientError
from erpsync.ledger import Ledger
from erpsync.pipeline import SyncPipeline, Transformed, ValidEvent
from erpsync.ports import RecordWriter
from erpsync.settings import Settings
from erpsync.systems import DEFAULT_TARGET, open_writer


def only_transient(task, task_run, state) -> bool:
    """Retry a task only when it failed with a TransientError; permanent errors dead-letter at once."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


def writer(target: str) -> RecordWriter:
    """A client of ERP ``target``: from its environment settings (e.g. ERPSYNC_NETSUITE_*), else its connection
    block (blocks/__init__.py); the ERP's concurrency limit is shared with every worker through the ledger database
    (erpsync/erp_slots.py)."""
    database_url = Settings.from_env().database_url
    if configured_in_env(target):
        return open_writer(target, database_url)
    return connection_block_writer(target, database_url)


def erp_client() -> RecordWriter:
    """The default target's client (the nightly reconciliation reads it)."""
    return writer(DEFAULT_TARGET)


@cache
def pipeline() -> SyncPipeline:
    """One pipeline per process (a process worker starts one process per flow run)."""
    settings = Settings.from_env()
    return SyncPipeline(Ledger.connect(settings.database_url), settings.mappings_dir, writers=writer)


_no_results = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="validate", retries=3, retry_delay_seconds=2, retry_condition_fn=only_transient, **_no_results)
def validate(event_id: int) -> ValidEvent:
    # Runs started by the trigger or by hand record themselves, so the sweep does not start another.
    return pipeline().validate(event_id, flow_run_id=str(flow_run.id) if flow_run.id else None)


@task(
    name="dedupe",
    # Waiting for another event of the same entity to finish, jittered: up to ~15 minutes, longer than the
    # slowest push (connector retries and the push task's own) and as long as a claim stays live.
    retries=180,
    retry_delay_seconds=5,
    retry_jitter_factor=1.0,
    retry_condition_fn=only_transient,
    **_no_results,
)
def dedupe(event: ValidEvent):
    return pipeline().dedupe(event)


# Calls to the ERP: the connector already retried quickly (honouring Retry-After); these are the slow retries
# (10, 20 and 40 s, jittered) that ride out a short ERP outage before the event is dead-lettered.
_erp_retries = dict(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_jitter_factor=0.5,
                    retry_condition_fn=only_transient)


# erp_lookup rules may ask the ERP (SuiteQL) on a cache miss. A `skip:` rule of the mapping is an answer, not
# a failure: the task returns it (and ends Completed), and the flow records the event as skipped.
@task(name="transform", **_erp_retries, **_no_results)
def transform(event: ValidEvent) -> Transformed | SkipEvent:
    try:
        return pipeline().transform(event)
    except SkipEvent as skipped:
        return skipped


@task(name="push", **_erp_retries, **_no_results)
def push(transformed: Transformed) -> str:
    return pipeline().push(transformed)


@task(name="confirm", retries=3, retry_delay_seconds=2, retry_condition_fn=only_transient, **_no_results)
def confirm(event: ValidEvent, transformed: Transformed, erp_id: str) -> None:
    pipeline().confirm(event, transformed, erp_id)
