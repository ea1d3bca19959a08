"""End to end: a burst through a receiver with batching on becomes `sync-batch` runs on the real worker; the event
that fails in a batch gets a failed `sync-event` run of its own (the dead-letter view is unchanged)."""

from __future__ import annotations

import copy
import json
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from tests.conftest import REPO
from tests.e2e.conftest import RETIRED_SKU, event_runs, wait_for_state
from tests.e2e.test_live_sync import _deployment_id, a_template_order, prefect_runs

pytestmark = pytest.mark.e2e

BURST = 30


@pytest.fixture
def batching_receiver(stack, tmp_path):
    """A second receiver on the stack's ledger and Prefect, starting two batch runs when more than 5 events wait."""
    stack_, _ = stack
    port = free_port()
    group = ProcessGroup(log_dir=tmp_path / "logs", env={**stack_.env, "ERPSYNC_BATCH_THRESHOLD": "5",
                                                              "ERPSYNC_BATCH_RUNS": "2"}, cwd=REPO)
    group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port)])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        group.stop()


def test_a_burst_is_synced_by_batch_runs_and_a_failure_gets_its_own_run(stack, http, batching_receiver):
    stack_, ledger = stack
    config = stack_.config
    template = a_template_order(ledger)
    orders = []
    for n in range(BURST):
        order = copy.deepcopy(template)
        order["id"] = 991000000000 + n
        orders.append(order)
    retired = copy.deepcopy(template)
    retired["id"] = 991000009999
    retired["line_items"] = retired["line_items"][:1]
    retired["line_items"][0]["sku"] = RETIRED_SKU
    orders.insert(BURST // 2, retired)

    def deliver(order: dict) -> int:
        body = json.dumps(order).encode()
        response = httpx.post(f"{batching_receiver}/webhooks/shopify", content=body, timeout=30, headers={
            "Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": shopify_signature(config.webhook_secret, body),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Shop-Domain": "erpsync-test.myshopify.com"})
        assert response.status_code == 202, response.text
        return response.json()["event_id"]

    with ThreadPoolExecutor(10) as pool:
        event_ids = list(pool.map(deliver, orders))
    retired_event = event_ids[BURST // 2]
    finished = {event_id: wait_for_state(ledger, event_id, timeout=420) for event_id in event_ids}

    assert finished.pop(retired_event).state == "failed"
    assert {event.state for event in finished.values()} == {"synced"}
    batch_runs = prefect_runs(http, config, deployment_id={"any_": [_deployment_id(http, config, "sync-batch")]})
    batch_ids = {run["id"] for run in batch_runs}
    assert len(batch_ids) >= 2, f"the burst started {len(batch_ids)} sync-batch run(s), not ERPSYNC_BATCH_RUNS = 2"
    in_batches = [e for e in finished.values() if e.flow_run_id in batch_ids]
    assert len(in_batches) >= BURST // 2, f"only {len(in_batches)} of {BURST} events were synced by a batch"
    # The failure is in the dead-letter view as always: its own failed sync-event run, with the reason.
    # (The ledger records the failure before the run reports its final state: wait for that report.)
    deadline = time.monotonic() + 60
    while (own_run := event_runs(http, config, retired_event)[0])["state_type"] \
            not in ("FAILED", "COMPLETED", "CRASHED") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert own_run["state_type"] == "FAILED"
    assert ledger.get_event(retired_event).flow_run_id == own_run["id"]
    # Found by its order: the run is renamed with the entity and order code once it has read the event.
    assert own_run["name"] == f"event-{retired_event} order/{retired['id']} {retired['name']}"
    # A batch run says what it took, and lists each event with its entity, order code, outcome and ERP id. A
    # backlog starts two here (ERPSYNC_BATCH_RUNS); one that found the other had taken everything says so.
    assert all(re.fullmatch(r"batch-\d+ events-\d+\.\.\d+|batch-0 events", run["name"]) for run in batch_runs
               if run["state_type"] == "COMPLETED"), [run["name"] for run in batch_runs]
    assert any(run["name"] != "batch-0 events" for run in batch_runs), [run["name"] for run in batch_runs]
    tables = http.post(f"{config.prefect_api}/artifacts/filter", json={
        "artifacts": {"key": {"any_": ["sync-batch-events"]}, "flow_run_id": {"any_": sorted(batch_ids)}}})
    listed = {int(row["event"]): row for artifact in tables.raise_for_status().json()
              for row in json.loads(artifact["data"])}
    for event in in_batches:
        row = listed[event.id]
        assert row["outcome"] == "synced" and row["ERP id"] != "-" and row["entity"] == event.entity
    assert ledger.outcomes(retired_event)[-1].outcome == "failed"
    records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    external_ids = {r["external_id"] for r in records}
    assert {f"shopify-order-{o['id']}" for o in orders if o is not retired} <= external_ids
