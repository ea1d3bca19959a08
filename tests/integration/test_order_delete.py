"""orders/delete against the ERP sandbox over HTTP: ``close`` closes every line of the sales order through the
connector's get and upsert (no line added, none lost); ``report`` leaves it and says so."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from erpsync.errors import ConfigError
from erpsync.ledger import HANDLED_IN_RECEIVER, InboxDelivery, Ledger
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.systems.shopify import order_delete
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from tests.conftest import REPO
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

TARGET = order_delete.OrderTarget("netsuite", "NetSuite", "salesOrder")


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory) -> Iterator[str]:
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), "--customers", "110=Web Store") as base_url:
        yield base_url


@pytest.fixture
def erp(erp_url) -> Iterator[NetSuiteClient]:
    httpx.post(f"{erp_url}/_sandbox/reset").raise_for_status()
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    with NetSuiteClient(settings, retry=RetryPolicy(max_attempts=1)) as client:
        yield client


def sales_order(erp: NetSuiteClient, order_id: int) -> str:
    lines = [{"item": {"id": "98"}, "quantity": 2, "rate": 199.0, "amount": 398.0, "custcol_erpsync_line_key": "11"},
             {"item": {"id": "903"}, "quantity": 1, "rate": 10.0, "amount": 10.0,
              "custcol_erpsync_line_key": "shipping"}]
    return erp.upsert("salesOrder", f"shopify-order-{order_id}", {"entity": {"id": "110"}, "item": {"items": lines}})


def deleted(ledger: Ledger, order_id: int) -> int:
    body = json.dumps({"id": order_id}).encode()
    return ledger.record_deliveries([InboxDelivery("shopify", f"delete-{order_id}", "orders/delete", None, None,
                                                   body, hashlib.sha256(body).hexdigest())])[0].event_id


def lines_of(erp: NetSuiteClient, order_id: int) -> list[dict]:
    record = erp.get("salesOrder", f"eid:shopify-order-{order_id}", expand_sub_resources=True)
    return record["item"]["items"]


def test_close_closes_every_line_and_adds_none(ledger, erp):
    erp_id = sales_order(erp, 7001)
    event_id = deleted(ledger, 7001)

    assert order_delete.act(ledger, event_id, target=TARGET, mode="close", erp=lambda: erp) == "synced"

    lines = lines_of(erp, 7001)
    assert [(line["custcol_erpsync_line_key"], line["isClosed"]) for line in lines] == [("11", True),
                                                                                        ("shipping", True)]
    assert [line["quantity"] for line in lines] == [2, 1]
    (outcome,) = ledger.outcomes(event_id)
    assert (outcome.external_id, outcome.to_id) == ("shopify-order-7001", erp_id)
    assert ledger.get_event(event_id).flow_run_id == HANDLED_IN_RECEIVER
    # A redelivery does nothing more.
    assert order_delete.act(ledger, event_id, target=TARGET, mode="close", erp=lambda: erp) == "synced"
    assert len(ledger.outcomes(event_id)) == 1 and len(lines_of(erp, 7001)) == 2


def test_close_of_an_order_the_erp_never_had_is_done_and_says_so(ledger, erp):
    event_id = deleted(ledger, 7002)
    assert order_delete.act(ledger, event_id, target=TARGET, mode="close", erp=lambda: erp) == "synced"
    assert "does not exist in the ERP" in ledger.outcomes(event_id)[0].reason


def test_report_leaves_the_sales_order_open_and_the_dead_letter_says_what_to_do(ledger, erp):
    sales_order(erp, 7003)
    event_id = deleted(ledger, 7003)
    assert order_delete.act(ledger, event_id, target=TARGET, mode="report", erp=lambda: erp) == "failed"
    assert all(not line.get("isClosed") for line in lines_of(erp, 7003))
    reason = ledger.outcomes(event_id)[0].reason
    assert reason.startswith("OrderDeleted: Shopify order 7003 was deleted; NetSuite salesOrder shopify-order-7003")
    assert f"erpsync lifecycle close-order {event_id}" in reason
    # The person acts: the dead letter becomes a closed order.
    assert order_delete.close_reported(ledger, event_id, erp, TARGET) == "synced"
    assert all(line["isClosed"] for line in lines_of(erp, 7003))
    assert ledger.get_event(event_id).state == "synced"


def test_a_failed_close_is_a_dead_letter_with_the_erps_reason(ledger, erp, erp_url):
    sales_order(erp, 7004)
    event_id = deleted(ledger, 7004)

    class Refusing:
        """The sandbox refuses every write to this external id (its injected permanent failure)."""

        def get_by_external_id(self, *args, **kwargs):
            return erp.get_by_external_id(*args, **kwargs)

        def upsert(self, record_type, external_id, body, **kwargs):
            return erp.upsert(record_type, external_id, {**body, "entity": {"id": ""}}, **kwargs)

        close_record = NetSuiteClient.close_record  # NetSuite's close, through the refusing upsert above

    assert order_delete.act(ledger, event_id, target=TARGET, mode="close", erp=lambda: Refusing()) == "failed"
    reason = ledger.outcomes(event_id)[0].reason
    assert "closing NetSuite salesOrder shopify-order-7004" in reason and "USER_ERROR" in reason


def test_the_close_order_command_closes_a_reported_order_through_the_registry(ledger, erp, erp_url, database_url,
                                                                               tmp_path):
    sales_order(erp, 7006)
    event_id = deleted(ledger, 7006)
    assert order_delete.act(ledger, event_id, target=TARGET, mode="report") == "failed"
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_NETSUITE_BASE_URL": erp_url, "ERPSYNC_NETSUITE_CLIENT_ID": ERP_CLIENT_ID,
           "ERPSYNC_NETSUITE_CLIENT_SECRET": ERP_CLIENT_SECRET, "ERPSYNC_NETSUITE_CONCURRENCY": "0"}
    done = subprocess.run([sys.executable, "-m", "erpsync", "lifecycle", "close-order", str(event_id)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "every line of NetSuite salesOrder shopify-order-7006 closed by hand" in done.stdout
    assert all(line["isClosed"] for line in lines_of(erp, 7006))
    assert ledger.get_event(event_id).state == "synced"


def test_the_mode_is_checked_when_read():
    assert order_delete.mode_from_env({}) == "report"
    with pytest.raises(ConfigError, match="ERPSYNC_SHOPIFY_ORDER_DELETE: expected one of report, close"):
        order_delete.mode_from_env({"ERPSYNC_SHOPIFY_ORDER_DELETE": "delete"})


def test_the_receiver_in_close_mode_closes_the_sales_order_before_it_answers(ledger, erp, erp_url, database_url,
                                                                             tmp_path):
    sales_order(erp, 7005)
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "s3cret", "ERPSYNC_SHOPIFY_ORDER_DELETE": "close",
           "ERPSYNC_NETSUITE_BASE_URL": erp_url, "ERPSYNC_NETSUITE_CLIENT_ID": ERP_CLIENT_ID,
           "ERPSYNC_NETSUITE_CLIENT_SECRET": ERP_CLIENT_SECRET, "ERPSYNC_NETSUITE_CONCURRENCY": "0"}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        body = json.dumps({"id": 7005}).encode()
        response = httpx.post(f"http://127.0.0.1:{port}/webhooks/shopify", content=body, timeout=60, headers={
            "Content-Type": "application/json", "X-Shopify-Topic": "orders/delete",
            "X-Shopify-Hmac-Sha256": shopify_signature("s3cret", body), "X-Shopify-Webhook-Id": str(uuid.uuid4())})
    finally:
        group.stop()
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "synced"
    assert all(line["isClosed"] for line in lines_of(erp, 7005))


def test_the_receiver_refuses_to_start_in_close_mode_without_the_erp_settings(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ERPSYNC_")}
    env.update({"ERPSYNC_HOME": str(tmp_path), "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "s3cret",
                "ERPSYNC_SHOPIFY_ORDER_DELETE": "close"})
    done = subprocess.run([sys.executable, "-m", "erpsync", "serve", "--port", "0", "--no-dispatch"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "ERPSYNC_NETSUITE_BASE_URL" in done.stderr
