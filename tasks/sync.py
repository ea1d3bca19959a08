"""Prefect tasks of the sync: thin wrappers over `erpsync.pipeline`, adding retries and names for the UI.

No task persists its result or caches: the steps are idempotent by design (dedupe + upsert by external id), and
a persisted result could hold a record body. A retry from the UI therefore re-runs every step, safely.
"""

from __future__ import annotations

import os
from functools import cache

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from erpsync.connectors.netsuite import NetSuiteClient, NetSuiteSettings
from erpsync.errors import TransientError
from erpsync.ledger import Ledger
from erpsync.pipeline import SyncPipeline, Transformed, ValidEvent
from erpsync.settings import Settings

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
    """The ERP connection from the environment when ERPSYNC_NETSUITE_BASE_URL is set, else from a block."""
    if os.environ.get("ERPSYNC_NETSUITE_BASE_URL"):
        return NetSuiteClient(NetSuiteSettings.from_env())
    from blocks.netsuite import NetSuiteConnection

    name = os.environ.get("ERPSYNC_NETSUITE_BLOCK", NETSUITE_BLOCK_DEFAULT)
    return NetSuiteConnection.load(name, _sync=True).get_client()


@cache
def pipeline() -> SyncPipeline:
    """One pipeline per process (a process worker starts one process per flow run)."""
    settings = Settings.from_env()
    return SyncPipeline(Ledger.connect(settings.database_url), settings.mappings_dir, erp_client)


_no_results = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="validate", **_no_results)
def validate(event_id: int) -> ValidEvent:
    return pipeline().validate(event_id)


@task(
    name="dedupe",
    # Waiting for another event of the same entity to finish: short, jittered, many times.
    retries=60,
    retry_delay_seconds=1,
    retry_jitter_factor=1.0,
    retry_condition_fn=only_transient,
    **_no_results,
)
def dedupe(event: ValidEvent):
    return pipeline().dedupe(event)


@task(name="transform", **_no_results)
def transform(event: ValidEvent) -> Transformed:
    return pipeline().transform(event)


@task(
    name="push",
    # The connector already retried quickly (honouring Retry-After); these are the slow retries that ride
    # out an ERP outage of a few minutes before the event is dead-lettered.
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=only_transient,
    **_no_results,
)
def push(transformed: Transformed) -> str:
    return pipeline().push(transformed)


@task(name="confirm", retries=3, retry_delay_seconds=2, retry_condition_fn=only_transient, **_no_results)
def confirm(event: ValidEvent, transformed: Transformed, erp_id: str) -> None:
    pipeline().confirm(event, transformed, erp_id)
