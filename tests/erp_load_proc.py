"""A process that calls the ERP from many threads through slots shared in the ledger database (for the slot tests).

    python -m tests.erp_load_proc BASE_URL DATABASE_URL LIMIT THREADS CALLS PREFIX
    python -m tests.erp_load_proc --hold DATABASE_URL LIMIT     (take one slot, say so, and keep it)

Prints one JSON line: how many records it wrote and its slot counters.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from erpsync.erp_slots import ErpSlots
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET

SLOT_NAME = "erp-slots-test"


def load(base_url: str, database_url: str, limit: int, threads: int, calls: int, prefix: str) -> None:
    settings = NetSuiteSettings(base_url=base_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET,
                                concurrency_limit=limit)
    slots = ErpSlots.for_database(database_url, limit, name=SLOT_NAME)
    body = {"entity": {"id": "110"}, "item": {"items": [{"item": {"id": 98}, "quantity": 1}]}}
    # Few quick retries: with the shared limit working the sandbox never answers 429, and the test counts them.
    with NetSuiteClient(settings, retry=RetryPolicy(max_attempts=3, base=0.05), slots=slots) as client:
        client.suiteql("SELECT id FROM item WHERE id = ?", [98])  # token fetched before the clock starts
        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            ids = list(pool.map(lambda n: client.upsert("salesOrder", f"{prefix}-{n}", body), range(threads * calls)))
        elapsed = time.monotonic() - started
        print(json.dumps({"written": len(set(ids)), "elapsed": elapsed, **slots.stats.as_dict()}), flush=True)


def hold(database_url: str, limit: int) -> None:
    slots = ErpSlots.for_database(database_url, limit, name=SLOT_NAME)
    slot = slots.acquire()
    print(json.dumps({"holding": slot}), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    if sys.argv[1] == "--hold":
        hold(sys.argv[2], int(sys.argv[3]))
    else:
        base, db, limit, threads, calls, prefix = sys.argv[1:7]
        load(base, db, int(limit), int(threads), int(calls), prefix)
