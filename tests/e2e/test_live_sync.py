"""End to end: shop sandbox → receiver → inbox → Prefect server + process worker → ERP sandbox, each a separate
process, as `make demo` runs them (with fewer orders). The tests run in order on one stack; the first sends
the shop's whole scenario and checks the ERP holds exactly the right records."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func
from sqlmodel import select

from erpsync.ledger import InboxEvent
from erpsync.summary import summarize
from erpsync.systems.netsuite.client import NetSuiteClient
from erpsync_dev.demo import check_erp, wait_until_handled
from orchestration.runs import idempotency_key
from tests.e2e.conftest import RETIRED_SKU, event_runs, send_event, wait_for_state

pytestmark = pytest.mark.e2e


def prefect_runs(http, config, **flow_run_filter) -> list[dict]:
    response = http.post(f"{config.prefect_api}/flow_runs/filter",
                         json={"flow_runs": flow_run_filter, "limit": 200})
    return response.raise_for_status().json()


def a_template_order(ledger) -> dict:
    """A real-shaped order body from the inbox (one the shop sandbox sent), for the tests' own deliveries."""
    for event in ledger.outcomes():
        if event.outcome == "synced":
            return json.loads(ledger.get_event(event.event_id).body)
    raise AssertionError("no synced event yet")


def test_scenario_phases_end_with_exactly_the_right_erp_records(stack, http):
    stack_, ledger = stack
    config = stack_.config
    scenario = http.get(f"{config.shop_url}/_sandbox/scenario").raise_for_status().json()
    expected_events = 0
    for phase in scenario["phases"]:
        sent = http.post(f"{config.shop_url}/_sandbox/phases/{phase['phase']}/send").raise_for_status().json()
        assert all(200 <= d["status"] < 300 for d in sent["deliveries"])
        expected_events += phase["unique_deliveries"]
        assert wait_until_handled(ledger, stack_, expected_events, timeout=600)
    summary = summarize(ledger)
    records = http.get(f"{config.erp_url}/_sandbox/records").raise_for_status()
    with NetSuiteClient(config.erp_settings()) as erp:
        # Money to the cent, the order's own customer (or the guest customer), every line.
        assert check_erp(scenario, records.json(), summary, erp) == []
    counts = scenario["counts"]
    assert summary.events == counts["unique_deliveries"]
    assert summary.redeliveries == counts["redeliveries"]
    assert len(summary.dead_lettered) == counts["dead_lettered"]
    # the late, older version (phase 2) arrives after the newer one was applied: superseded, not applied
    assert summary.superseded >= scenario["phases"][1]["superseded"] >= 1
    assert summary.synced + summary.duplicates + summary.superseded + len(summary.dead_lettered) == summary.events


def test_redeliveries_create_no_runs_and_runs_carry_only_the_event_id(stack, http):
    stack_, ledger = stack
    config = stack_.config
    runs = prefect_runs(http, config, deployment_id={"any_": [_deployment_id(http, config, "sync-event")]})
    # A body stored before under another delivery id (the scenario's orders/paid repeats its create's bytes) is
    # recorded as a duplicate at intake and gets no run (docs/SECURITY.md, replays).
    with ledger.session() as session:
        replayed = session.exec(select(func.count()).select_from(InboxEvent)
                                .where(InboxEvent.duplicate_of.is_not(None))).one()
    assert replayed >= 1
    assert len(runs) == summarize(ledger).events - replayed, "one run per inbox event, none per redelivery"
    names = {run["state_name"] for run in runs}
    assert {"Superseded", "Failed", "Completed"} <= names, names
    for run in runs:
        assert set(run["parameters"]) == {"event_id"}
        assert run["idempotency_key"] == idempotency_key("sync-event/sync-event", run["parameters"]["event_id"])


def test_the_unknown_sku_order_is_dead_lettered_as_a_failed_run(stack, http):
    stack_, ledger = stack
    [dead] = summarize(ledger).dead_lettered
    assert "sku_to_item" in dead.reason and "line_items[" in dead.reason
    run = _run_of(http, stack_.config, dead.event_id)
    assert run["state_type"] == "FAILED"


def test_an_erp_rejection_fails_at_once_with_netsuites_code_in_the_ledger(stack, http):
    stack_, ledger = stack
    order = copy.deepcopy(a_template_order(ledger))
    order["id"] = 990000000001
    # In the lookup table, but no longer an item in the ERP. Same lines otherwise, so the money still adds up.
    order["line_items"][0]["sku"] = RETIRED_SKU
    event_id = send_event(http, stack_.config, order)
    event = wait_for_state(ledger, event_id)
    assert event.state == "failed"
    [outcome] = [o for o in ledger.outcomes(event_id) if o.outcome == "failed"]
    assert "INVALID_CONTENT" in outcome.reason and "item.items[0].item" in outcome.reason
    run = _run_of(http, stack_.config, event_id)
    assert run["state_type"] == "FAILED"
    assert run["run_count"] == 1


def test_transient_erp_errors_are_retried_to_success(stack, http):
    stack_, ledger = stack
    http.post(f"{stack_.config.erp_url}/_sandbox/faults", json={"status": 503, "count": 2, "retry_after": 1,
                                                                "path": "/record/v1/salesOrder"})
    order = copy.deepcopy(a_template_order(ledger))
    order["id"] = 990000000002
    event_id = send_event(http, stack_.config, order)
    assert wait_for_state(ledger, event_id).state == "synced"
    stats = http.get(f"{stack_.config.erp_url}/_sandbox/stats").json()
    assert stats["by_status"].get("503", 0) >= 2


def store_without_dispatch(ledger, order_id: int):
    """An order event in the inbox that no run was started for (as if the receiver crashed after its commit)."""
    order = copy.deepcopy(a_template_order(ledger))
    order["id"] = order_id
    body = json.dumps(order).encode()
    return ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/create",
                                  shop=None, triggered_at=None, body=body,
                                  payload_sha256=hashlib.sha256(body).hexdigest())


def test_the_sweep_dispatches_events_prefect_never_heard_of(stack, http):
    stack_, ledger = stack
    intake = store_without_dispatch(ledger, 990000000003)
    deployment_id = _deployment_id(http, stack_.config, "sweep-inbox")
    http.post(f"{stack_.config.prefect_api}/deployments/{deployment_id}/create_flow_run",
              json={"parameters": {"grace_seconds": 0}}).raise_for_status()
    assert wait_for_state(ledger, intake.event_id).state == "synced"
    assert ledger.get_event(intake.event_id).flow_run_id


def _deployment_id(http, config, name: str) -> str:
    return http.get(f"{config.prefect_api}/deployments/name/{name}/{name}").raise_for_status().json()["id"]


def _run_of(http, config, event_id: int) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = event_runs(http, config, event_id)
        if runs and runs[0]["state_type"] in ("FAILED", "COMPLETED", "CRASHED"):
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"no finished run for event {event_id}")


def test_an_erpsync_event_starts_a_run_through_the_deployment_trigger(stack, http):
    """The path a Prefect Cloud webhook would take: an `erpsync.event.received` event, no receiver dispatch."""
    stack_, ledger = stack
    intake = store_without_dispatch(ledger, 990000000004)
    event = {"id": str(uuid.uuid4()), "occurred": datetime.now(UTC).isoformat(), "event": "erpsync.event.received",
             "resource": {"prefect.resource.id": f"erpsync.event.{intake.event_id}"}}
    assert http.post(f"{stack_.config.prefect_api}/events", json=[event]).status_code == 204
    assert wait_for_state(ledger, intake.event_id).state == "synced"
    triggered = [r for r in prefect_runs(http, stack_.config) if r["parameters"].get("event_id") in
                 (intake.event_id, str(intake.event_id))]
    assert triggered, "the trigger started a sync-event run for the event"
