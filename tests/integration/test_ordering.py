"""Ordering across processes: 2–5 versions of each order delivered shuffled to three pipeline processes; the ERP
ends with each order's newest version, and no older version is applied after a newer one."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from erpsync_dev.processes import ProcessGroup, python_module, tail
from tests.conftest import REPO, shopify_order_sample, with_quantity
from tests.sandbox_procs import start_erp_sandbox

ORDERS, PROCESSES = 8, 3
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def versions_of(order_id: int, count: int) -> list[dict]:
    """Version n (1-based) has updated_at T0 + n minutes and n as the quantity of its first line."""
    base = shopify_order_sample()
    versions = []
    for n in range(1, count + 1):
        order = copy.deepcopy(base)
        order["id"] = order_id
        order["updated_at"] = (T0 + timedelta(minutes=n)).isoformat()
        with_quantity(order, 0, n)
        versions.append(order)
    return versions


def deliver(ledger, order: dict) -> int:
    body = json.dumps(order).encode()
    return ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/updated",
                                  shop=None, triggered_at=None, body=body,
                                  payload_sha256=hashlib.sha256(body).hexdigest()).event_id


def run_processes(database_url: str, erp_url: str, event_ids: list[int], log_dir: Path) -> None:
    queues = [event_ids[n::PROCESSES] for n in range(PROCESSES)]
    group = ProcessGroup(log_dir=log_dir, env=dict(os.environ), cwd=REPO)
    try:
        workers = [group.start(f"pipeline-{n}", python_module("tests.pipeline_proc", database_url, erp_url,
                                                               *map(str, queue)))
                   for n, queue in enumerate(queues) if queue]
        for worker in workers:
            assert group.wait(worker.name, timeout=600) == 0, tail(worker.log_path, 40)
    finally:
        group.stop()


def test_shuffled_versions_end_with_the_newest_in_the_erp(ledger, database_url, tmp_path):
    rng = random.Random(20261102)
    orders = {}  # order id → [event id of version 1, 2, …]
    deliveries = []
    for n in range(ORDERS):
        order_id = 970000000000 + n
        for number, version in enumerate(versions_of(order_id, rng.randint(2, 5)), start=1):
            deliveries.append((order_id, number, version))
    rng.shuffle(deliveries)
    for order_id, number, version in deliveries:
        orders.setdefault(order_id, {})[number] = deliver(ledger, version)

    with start_erp_sandbox(tmp_path) as erp_url:
        run_processes(database_url, erp_url, sorted(e for events in orders.values() for e in events.values()),
                      tmp_path / "first")
        records = {r["external_id"]: r for r in
                   httpx.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]}
        assert len(records) == ORDERS, "one sales order per order, whatever the arrival order"
        for order_id, events in orders.items():
            newest = max(events)
            record = records[f"shopify-order-{order_id}"]
            assert record["body"]["item"]["items"][0]["quantity"] == newest, f"order {order_id}: newest in the ERP"
            outcomes = {number: ledger.outcomes(event_id) for number, event_id in events.items()}
            assert [o.outcome for o in outcomes[newest]] == ["synced"]
            newest_at = outcomes[newest][0].id
            for number in range(1, newest):
                [outcome] = outcomes[number]
                assert outcome.outcome in ("synced", "superseded")
                if outcome.id > newest_at:
                    assert outcome.outcome == "superseded", f"order {order_id} v{number} applied over v{newest}"

        # The same older versions delivered again (new delivery ids), shuffled: every one is superseded.
        late = [(order_id, number) for order_id, events in orders.items() for number in range(1, max(events))]
        rng.shuffle(late)
        late_ids = [deliver(ledger, versions_of(order_id, number)[-1]) for order_id, number in late]
        run_processes(database_url, erp_url, late_ids, tmp_path / "late")
        assert {ledger.get_event(event_id).state for event_id in late_ids} == {"superseded"}
        after = {r["external_id"]: r for r in
                 httpx.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]}
        assert {eid: r["versions"] for eid, r in after.items()} == {eid: r["versions"] for eid, r in records.items()}
