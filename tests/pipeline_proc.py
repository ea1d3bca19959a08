"""A pipeline worker without Prefect, as its own process: syncs the given inbox events in order, waiting while
another process holds an entity (EntityBusy), as the dedupe task's retries do. For the ordering and crash tests.

    python -m tests.pipeline_proc DATABASE_URL ERP_URL EVENT_ID...

Prints one JSON line per event: {"event_id": N, "result": <ERP internal id or outcome name>}.
"""

from __future__ import annotations

import json
import sys
import time

from pydantic import SecretStr

from erpsync.erp_slots import ErpSlots
from erpsync.errors import TransientError
from erpsync.ledger import Ledger
from erpsync.pipeline import SyncPipeline
from erpsync.retry import RetryPolicy
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from tests.integration.test_pipeline import sync
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET


def main(database_url: str, erp_url: str, event_ids: list[int]) -> None:
    ledger = Ledger.connect(database_url)
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=SecretStr(ERP_CLIENT_SECRET))
    slots = ErpSlots.for_database(database_url, settings.concurrency_limit, name=erp_url)
    pipeline = SyncPipeline(ledger, PROJECT_DIR / "mappings",
                            lambda: NetSuiteClient(settings, RetryPolicy(base=0.05), slots=slots))
    try:
        for event_id in event_ids:
            for _ in range(2000):
                try:
                    result = sync(pipeline, event_id)
                    break
                except TransientError:
                    time.sleep(0.02)
            else:
                raise SystemExit(f"event {event_id}: the entity stayed busy")
            print(json.dumps({"event_id": event_id, "result": result}), flush=True)
    finally:
        pipeline.close()
        ledger.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(arg) for arg in sys.argv[3:]])
