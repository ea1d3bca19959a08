"""Prefect tasks of the sync: thin wrappers over `erpsync.pipeline`, adding retries and names for the UI.

No task persists its result or caches: the steps are idempotent by design (dedupe + upsert by external id), and
a persisted result could hold a record body. A retry from the UI therefore re-runs every step, safely.
"""

from __future__ import annotations

import os
from functools import cache

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from erpsync.erp_slots import ErpSlots
from erpsync.errors import ConfigError, SkipEvent, TransientError
from erpsync.ledger import Ledger
from erpsync.pipeline import SyncPipeline, Transformed, ValidEvent
from erpsync.settings import Settings
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings

NETSUITE_BLOCK_DEFAULT = "netsuite"


def only_transient(task, task_run, state) -> bool:
    """Retry a task only when it failed with a TransientError; permanent errors dead-letter at once."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


def erp_client() -> NetSuiteClient:
    """The ERP connection from the environment (ERPSYNC_NETSUITE_BASE_URL or _ACCOUNT_ID set), else a block.

    Its concurrency limit is shared with every worker through the ledger database (erpsync/erp_slots.py).
    """
    if os.environ.get("ERPSYNC_NETSUITE_BASE_URL") or os.environ.get("ERPSYNC_NETSUITE_ACCOUNT_ID"):
        settings = NetSuiteSettings.from_env()
    else:
        from blocks.netsuite import NetSuiteConnection

        name = os.environ.get("ERPSYNC_NETSUITE_BLOCK", NETSUITE_BLOCK_DEFAULT)
        try:
            block = NetSuiteConnection.load(name, _sync=True)
        except ValueError:  # Prefect's answer for a block that does not exist
            raise ConfigError(f"no NetSuite connection: set ERPSYNC_NETSUITE_ACCOUNT_ID (or _BASE_URL) and its "
                              f"credentials for the workers, or create the block '{name}' "
                              f"(erpsync-netsuite-connection)") from None
        settings = block.settings()
    slots = ErpSlots.for_database(Settings.from_env().database_url, settings.concurrency_limit,
                                  name=settings.base_url)
    return NetSuiteClient(settings, slots=slots)


@cache
def pipeline() -> SyncPipeline:
    """One pipeline per process (a process worker starts one process per flow run)."""
    settings = Settings.from_env()
    return SyncPipeline(Ledger.connect(settings.database_url), settings.mappings_dir, erp_client)


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
