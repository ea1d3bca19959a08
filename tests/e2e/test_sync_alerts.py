"""Alerting end to end: `erpsync alerts apply` creates the automations of alerts.yaml in a real Prefect server, and
the demo's local webhook sink receives their notifications: a failed sync-event run, a backlog of failures, a stale
inbox (emitted by the sweep-inbox flow) and reconciliation drift. Notifications carry no customer data."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import update

from erpsync.ledger import InboxEvent
from erpsync_dev.processes import free_port
from tests.conftest import REPO, shopify_order_sample
from tests.e2e.conftest import send_event, wait_for_state
from tests.e2e.test_live_sync import _deployment_id

pytestmark = pytest.mark.e2e

CUSTOMER_EMAIL = "alert-test-customer@example.com"
BACKLOG_THRESHOLD = 2


class Sink:
    """The demo's webhook sink (erpsync_dev/webhook_sink.py), started by the stack as a process of its own."""

    def __init__(self, stack_):
        self.stack = stack_
        self.url = stack_.start_alert_sink(free_port())

    @property
    def received(self) -> list[dict]:
        return self.stack.notifications()


@pytest.fixture(scope="module")
def webhook(stack):
    return Sink(stack[0])


def wait_for_message(webhook, predicate, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in list(webhook.received):
            if predicate(json.loads(message["body"])["text"]):
                return message
        time.sleep(0.5)
    texts = [m["body"][:200] for m in webhook.received]
    raise AssertionError(f"no matching notification after {timeout}s; received: {texts}")


def erpsync(stack_, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "erpsync", *args], cwd=REPO, env=stack_.env, capture_output=True,
                          text=True, timeout=300)


def automations_named(http, config, names) -> list[dict]:
    found = http.post(f"{config.prefect_api}/automations/filter", json={}).raise_for_status().json()
    return [a for a in found if a["name"] in names]


@pytest.fixture(scope="module")
def applied(stack, http, webhook, tmp_path_factory):
    """The repo's alerts.yaml, with a backlog threshold a test can reach, applied twice; removed afterwards."""
    stack_, _ = stack
    declared = yaml.safe_load((REPO / "alerts.yaml").read_text())
    [backlog] = [a for a in declared["alerts"] if a["name"] == "erpsync-dead-letter-backlog"]
    backlog["trigger"] |= {"threshold": BACKLOG_THRESHOLD, "within": 600}
    path = tmp_path_factory.mktemp("alerts") / "alerts.yaml"
    path.write_text(yaml.safe_dump(declared))
    url = webhook.url
    first = erpsync(stack_, "alerts", "apply", "--file", str(path), "--webhook-url", url)
    assert first.returncode == 0, first.stdout + first.stderr
    yield declared, path, first
    names = [a["name"] for a in declared["alerts"]]
    for automation in automations_named(http, stack_.config, names):
        http.delete(f"{stack_.config.prefect_api}/automations/{automation['id']}")


def test_apply_creates_each_declared_automation_once_and_again_only_updates(stack, http, webhook, applied):
    stack_, _ = stack
    declared, path, first = applied
    names = [a["name"] for a in declared["alerts"]]
    assert all(f"created automation {name}" in first.stdout for name in names), first.stdout
    url = webhook.url
    assert url not in first.stdout + first.stderr, "the webhook URL is a credential: never printed"

    plan = erpsync(stack_, "alerts", "apply", "--file", str(path), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert all(f"would update automation {name}" in plan.stdout for name in names), plan.stdout

    again = erpsync(stack_, "alerts", "apply", "--file", str(path), "--webhook-url", url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(f"updated automation {name}" in again.stdout for name in names), again.stdout
    found = automations_named(http, stack_.config, names)
    assert sorted(a["name"] for a in found) == sorted(names), "one automation per declared alert"
    # The crash detection comes with the alerts: once, however often they are applied.
    assert "automation erpsync-crash-zombie-runs" in again.stdout
    assert len(automations_named(http, stack_.config, ["erpsync-crash-zombie-runs"])) == 1
    block = http.get(f"{stack_.config.prefect_api}/block_types/slug/custom-webhook/block_documents/name/"
                     f"{declared['notification']['block']}").raise_for_status().json()
    assert url not in json.dumps(block), "the URL is stored as a secret, masked by the API"


def failing_order(sku: str) -> dict:
    order = shopify_order_sample()
    order |= {"id": int(uuid.uuid4().int % 10**12) + 10**12, "cancelled_at": None, "email": CUSTOMER_EMAIL}
    order["line_items"] = order["line_items"][:1]
    order["line_items"][0]["sku"] = sku
    return order


def test_failed_runs_notify_each_time_and_a_backlog_notifies_once_past_the_threshold(stack, http, webhook, applied):
    stack_, ledger = stack
    sku = f"ALERT-{uuid.uuid4().hex[:8].upper()}"
    event_ids = [send_event(http, stack_.config, failing_order(sku)) for _ in range(BACKLOG_THRESHOLD)]
    for event_id in event_ids:
        assert wait_for_state(ledger, event_id).state == "failed"
    for event_id in event_ids:
        # The run's name may go on after the event id (its entity and order code): up to "failed" on the line.
        message = wait_for_message(webhook, lambda text, e=event_id: re.search(rf"run event-{e}\b[^\n]* failed", text))
        text = json.loads(message["body"])["text"]
        assert "MappingError: unknown key in lookup table sku_to_item" in text
        assert "/runs/flow-run/" in text, "links to the run in the UI"
    backlog = wait_for_message(webhook, lambda text: f"{BACKLOG_THRESHOLD} sync-event runs failed within" in text)
    assert "erpsync dlq list" in json.loads(backlog["body"])["text"]
    for message in webhook.received:
        assert CUSTOMER_EMAIL not in message["body"] and sku not in message["body"], "no payload value in alerts"


def test_the_sweep_reports_a_stale_inbox_and_the_alert_says_how_many_and_how_old(stack, http, webhook, applied):
    stack_, ledger = stack
    body = json.dumps(failing_order("IPOD2008PINK")).encode()
    intake = ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/create", shop=None,
                                    triggered_at=None, body=body, payload_sha256=hashlib.sha256(body).hexdigest())
    # As if Prefect had been away for two hours: the event waited that long without a run.
    with ledger.session() as session:
        session.exec(update(InboxEvent).where(InboxEvent.id == intake.event_id)
                     .values(received_at=datetime.now(UTC) - timedelta(hours=2)))
        session.commit()
    deployment_id = _deployment_id(http, stack_.config, "sweep-inbox")
    http.post(f"{stack_.config.prefect_api}/deployments/{deployment_id}/create_flow_run",
              json={"parameters": {"stale_after_seconds": 3600}}).raise_for_status()
    message = wait_for_message(webhook, lambda text: "inbox events have no flow run" in text)
    text = json.loads(message["body"])["text"]
    assert "the oldest arrived 7" in text, text  # 2 h = 7200 s and a little
    assert wait_for_state(ledger, intake.event_id).state in ("synced", "failed"), "and the sweep dispatched it"


def test_reconciliation_drift_above_the_threshold_notifies(stack, http, webhook, applied):
    stack_, _ = stack
    event = {"id": str(uuid.uuid4()), "occurred": datetime.now(UTC).isoformat(),
             "event": "erpsync.reconcile.drift-exceeded",
             "resource": {"prefect.resource.id": "erpsync.reconcile.2026-11-27"},
             "payload": {"drift": 12, "threshold": 5}}
    assert http.post(f"{stack_.config.prefect_api}/events", json=[event]).status_code == 204
    message = wait_for_message(webhook, lambda text: "erpsync.reconcile.2026-11-27" in text)
    assert "reconciliation drift above its threshold" in json.loads(message["body"])["text"]
