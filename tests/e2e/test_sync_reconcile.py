"""End to end, the issue's "done means" for reconciliation: with drift injected on the live stack (an order deleted
in the ERP, one edited there by hand, one whose webhook never arrived), the `reconcile-nightly` deployment run by
the Prefect worker finds every injected difference, repairs the missing ones through inbox → sync-event runs,
reports the hand edit without overwriting it, announces the drift left for a person as an event on the Prefect
server, and a second run finds nothing left to repair."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from erpsync.ledger import InboxEvent
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync_dev.stack import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.e2e.conftest import wait_for_state

pytestmark = pytest.mark.e2e

DRIFT_EVENT = "erpsync.reconcile.drift-exceeded"


def run_reconcile(http, api: str, **parameters) -> dict:
    deployment = http.get(f"{api}/deployments/name/reconcile/reconcile-nightly").raise_for_status().json()
    run = http.post(f"{api}/deployments/{deployment['id']}/create_flow_run",
                    json={"parameters": parameters}).raise_for_status().json()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = http.get(f"{api}/flow_runs/{run['id']}").raise_for_status().json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    assert run["state_type"] == "COMPLETED", run["state"]
    return run


def artifacts(http, api: str, run_id: str) -> dict[str, dict]:
    found = http.post(f"{api}/artifacts/filter",
                      json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}).raise_for_status().json()
    return {artifact["key"]: artifact for artifact in found}


def drift_by_kind(table: list[dict]) -> dict[str, dict[str, dict]]:
    by_kind: dict[str, dict[str, dict]] = {}
    for row in json.loads(table) if isinstance(table, str) else table:
        by_kind.setdefault(row["kind"], {})[str(row["entity_id"])] = row
    return by_kind


def repair_events(ledger) -> list[InboxEvent]:
    with ledger.session() as session:
        return list(session.exec(select(InboxEvent).where(InboxEvent.delivery_id.like("reconcile:%"))))


def drift_events(http, api: str, since: datetime) -> list[dict]:
    body = {"filter": {"event": {"name": [DRIFT_EVENT]}, "occurred": {"since": since.isoformat()}}, "limit": 50}
    return http.post(f"{api}/events/filter", json=body).raise_for_status().json()["events"]


@pytest.fixture
def erp(stack):
    config = stack[0].config
    settings = NetSuiteSettings(base_url=config.erp_url, client_id=SANDBOX_CLIENT_ID,
                                client_secret=SecretStr(SANDBOX_CLIENT_SECRET))
    with NetSuiteClient(settings) as client:
        yield client


def delete_in_erp(config, external_id: str) -> None:
    token = httpx.post(f"{config.erp_url}/services/rest/auth/oauth2/v1/token", data={
        "grant_type": "client_credentials", "client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET,
    }, timeout=30).raise_for_status().json()["access_token"]
    response = httpx.delete(f"{config.erp_url}/services/rest/record/v1/salesOrder/eid:{external_id}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 204, response.text


def test_injected_drift_is_found_repaired_through_the_pipeline_or_reported_and_a_second_run_has_nothing_left(
    stack, http, erp
):
    stack_, ledger = stack
    config = stack_.config
    api = config.prefect_api
    scenario = http.get(f"{config.shop_url}/_sandbox/scenario").raise_for_status().json()
    synced = sorted(order["order_id"] for order in scenario["orders"] if order["outcome"] == "synced")
    [dead] = [order["order_id"] for order in scenario["orders"] if order["outcome"] == "dead_lettered"]
    deleted, hand_edited = synced[0], synced[1]

    # 1. never delivered: the shop shows an order whose webhook never reached the receiver.
    template = http.get(f"{config.shop_url}/admin/api/2026-10/orders/{synced[2]}.json",
                        headers={"X-Shopify-Access-Token": "shpat_sandbox"}).raise_for_status().json()["order"]
    lost = copy.deepcopy(template)
    lost["id"] = 880000000001
    lost["name"] = "#880001"
    lost["updated_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    http.post(f"{config.shop_url}/_sandbox/orders", json=lost).raise_for_status()
    never_delivered = str(lost["id"])
    # 2. deleted in the ERP by someone.
    delete_in_erp(config, f"shopify-order-{deleted}")
    # 3. edited by hand in the ERP (in a later second than its sync: SuiteQL stamps to the second).
    time.sleep(1.0)
    record = erp.get("salesOrder", f"eid:shopify-order-{hand_edited}", expand_sub_resources=True)
    body = {key: record[key] for key in ("entity", "item")}
    for line in body["item"]["items"]:
        line["isClosed"] = True
    erp.upsert("salesOrder", f"shopify-order-{hand_edited}", body)

    since = datetime.now(UTC) - timedelta(minutes=1)
    first = run_reconcile(http, api, since="2000-01-01", drift_alert_threshold=0)
    found = artifacts(http, api, first["id"])
    by_kind = drift_by_kind(found["reconcile-drift"]["data"])
    assert set(by_kind["missing_in_erp"]) == {deleted, never_delivered}, found["reconcile-drift"]["data"]
    assert by_kind["mismatch"][hand_edited]["newer"] == "erp"
    assert by_kind["mismatch"][hand_edited]["fields"] == "status"
    assert dead in by_kind["dead_lettered"]
    summary = found["reconcile-summary"]["data"]
    assert "| missing_in_erp | 2 |" in summary and "2 queued for re-sync" in summary

    # The repairs went through the inbox and were synced by sync-event runs on the worker.
    repairs = repair_events(ledger)
    assert sorted(event.delivery_id.split(":")[2] for event in repairs) == sorted(
        [f"order/{deleted}", f"order/{never_delivered}"])
    assert all(event.delivery_id.split(":")[1] == first["id"] for event in repairs)
    for event in repairs:
        assert wait_for_state(ledger, event.id).state == "synced"
        assert event.flow_run_id, "dispatched to a sync-event run"
    for entity in (deleted, never_delivered):
        assert erp.get("salesOrder", f"eid:shopify-order-{entity}") is not None
    # The hand edit is reported, not overwritten.
    edited = erp.get("salesOrder", f"eid:shopify-order-{hand_edited}", expand_sub_resources=True)
    assert all(line["isClosed"] is True for line in edited["item"]["items"])

    # Drift a person must look at (the hand edit, the dead letter, ERP-only orders) was announced on the server.
    deadline, events = time.monotonic() + 60, []
    while time.monotonic() < deadline and not events:
        events = [e for e in drift_events(http, api, since)
                  if any(r.get("prefect.resource.id") == first["id"] or r.get("prefect.resource.id") ==
                         f"prefect.flow-run.{first['id']}" for r in e.get("related", []))]
        time.sleep(1)
    assert events, "the drift-exceeded event reached the Prefect server"
    [event] = events
    assert event["resource"]["prefect.resource.id"] == "erpsync.reconcile.2000-01-01"
    assert event["resource"]["prefect.resource.name"] == "reconcile"
    assert event["payload"]["needs_attention"] >= 2 and event["payload"]["mismatch"] >= 1
    assert event["payload"]["missing_in_erp"] == 2
    assert all(isinstance(value, (int, bool)) for value in event["payload"].values()), "counts only"

    second = run_reconcile(http, api, since="2000-01-01", drift_alert_threshold=None)
    again = artifacts(http, api, second["id"])
    summary = again["reconcile-summary"]["data"]
    assert "| missing_in_erp | 0 |" in summary and "Repairs: 0 planned" in summary
    assert hand_edited in drift_by_kind(again["reconcile-drift"]["data"])["mismatch"], "still reported"
    assert len(repair_events(ledger)) == 2, "nothing new queued"
    assert not [e for e in drift_events(http, api, since)
                if any(second["id"] in r.get("prefect.resource.id", "") for r in e.get("related", []))]
