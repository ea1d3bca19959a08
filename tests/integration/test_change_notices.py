"""Both ways out of NetSuite into the inbox (issue 14, item 1), with the ERP sandbox and the receiver as processes:
a fulfillment written in the sandbox reaches the inbox once through its signed notice and once through
`erpsync poll`, and is one delivery; and `erpsync poll`'s usage errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from erpsync.ledger import Ledger
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync_dev.processes import ProcessGroup, free_port
from tests.integration.conftest import FAST
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

REPO = Path(__file__).resolve().parents[2]
KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Only the declaration counts here: the receiver and the reader take a <type>.changed some mapping handles.
MAPPING = """\
from: netsuite
to: netsuite
topic: itemFulfillment.changed
entity: {type: itemFulfillment, id: "{data.id}", version: data.lastModified}
record_type: itemFulfillment
external_id: "test-{data.id}"
fields:
  - source_field: data.id
    target_field: memo
"""


STOCK_MAPPING = MAPPING.replace("itemFulfillment", "inventoryItem")


@pytest.fixture
def stack(tmp_path: Path, database_url: str):
    with running(tmp_path, database_url, {"itemFulfillment": MAPPING}) as parts:
        yield parts


@pytest.fixture
def stock_stack(tmp_path: Path, database_url: str):
    with running(tmp_path, database_url, {"inventoryItem": STOCK_MAPPING}) as parts:
        yield parts


@contextlib.contextmanager
def running(tmp_path: Path, database_url: str, probes: dict[str, str]):
    """The receiver and the ERP sandbox posting notices to it, with a probe mapping for each record type given."""
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    for record_type, text in probes.items():
        (mappings / f"netsuite_{record_type}_to_netsuite_probe.yaml").write_text(text)
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_MAPPINGS_DIR": str(mappings), "ERPSYNC_NETSUITE_WEBHOOK_SECRET": KEY}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        with start_erp_sandbox(tmp_path, "--notify-url", f"http://127.0.0.1:{port}/webhooks/netsuite",
                               "--notify-secret", KEY) as erp:
            env.update(ERPSYNC_NETSUITE_BASE_URL=erp, ERPSYNC_NETSUITE_CLIENT_ID=ERP_CLIENT_ID,
                       ERPSYNC_NETSUITE_CLIENT_SECRET=ERP_CLIENT_SECRET, ERPSYNC_NETSUITE_CHANGE_SETTLE_SECONDS="0")
            settings = NetSuiteSettings(base_url=erp, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
            ledger = Ledger.connect(database_url)
            with NetSuiteClient(settings, retry=FAST) as netsuite:
                yield netsuite, ledger, erp, env
            ledger.close()
    finally:
        group.stop()


def poll(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "erpsync", "poll", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def netsuite_events(ledger: Ledger) -> list:
    return [e for e in ledger.events_by_id(list(range(1, 1000))) if e.source == "netsuite"]


def test_a_fulfillment_reaches_the_inbox_by_notice_and_by_the_reader_as_one_delivery(stack):
    netsuite, ledger, erp, env = stack
    started = datetime.now(UTC) - timedelta(minutes=1)
    netsuite.upsert("salesOrder", "shopify-order-77", {
        "entity": {"id": "110"}, "item": {"items": [{"item": {"id": "98"}, "quantity": 2, "rate": 10}]}})
    order = netsuite.get("salesOrder", "eid:shopify-order-77")
    fulfillment = netsuite.transform("salesOrder", order["id"], "itemFulfillment", {}, external_id="ship-77")
    record = netsuite.get("itemFulfillment", fulfillment)
    stamp = datetime.fromisoformat(record["lastModifiedDate"].replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%SZ")
    delivery_id = f"netsuite:itemFulfillment:{fulfillment}:{stamp}"

    deadline = time.monotonic() + 15
    while not netsuite_events(ledger) and time.monotonic() < deadline:
        time.sleep(0.1)
    [notified] = netsuite_events(ledger)  # the sales order is not watched: no notice of it
    assert (notified.delivery_id, notified.topic, notified.redeliveries) == (delivery_id, "itemFulfillment.changed", 0)
    assert httpx.get(f"{erp}/_sandbox/notices").json()["sent"] == 1

    time.sleep(1.1)  # the reader never reads the second still under way
    done = poll(env, "--no-dispatch", "--from", started.isoformat(), "--type", "itemFulfillment")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "itemFulfillment: 1 changes read in 1 page, 0 new, 1 already in the inbox" in done.stdout
    [event] = netsuite_events(ledger)
    assert (event.id, event.redeliveries) == (notified.id, 1)
    assert ledger.change_cursor("netsuite", "itemFulfillment").newest_cursor is not None

    again = poll(env, "--no-dispatch")  # defaults: the types no mapping handles are not read
    assert again.returncode == 0, again.stderr
    assert "inventoryItem: not read (no mapping handles netsuite inventoryItem.changed)" in again.stdout


def test_a_stock_move_reaches_the_inbox_by_notice_and_by_the_reader_as_one_delivery_per_item(stock_stack):
    netsuite, ledger, erp, env = stock_stack
    started = datetime.now(UTC) - timedelta(minutes=1)
    item = netsuite.upsert("inventoryItem", "sm-item-1", {"itemId": "SM-1"})
    deadline = time.monotonic() + 15
    while not netsuite_events(ledger) and time.monotonic() < deadline:
        time.sleep(0.1)
    [saved] = netsuite_events(ledger)  # the item's own save: its notice (its price notice has no mapping here)
    adjustment = netsuite.upsert("inventoryAdjustment", "count-1", {
        "account": {"id": "130"}, "subsidiary": {"id": "1"}, "inventory": {"items": [
            {"item": {"id": item}, "location": {"id": "1"}, "adjustQtyBy": 5},
            {"item": {"id": "98"}, "location": {"id": "2"}, "adjustQtyBy": 2}]}})
    record = netsuite.get("inventoryAdjustment", adjustment)
    stamp = datetime.fromisoformat(record["lastModifiedDate"].replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%SZ")
    wanted = {f"netsuite:inventoryItem:{i}:{stamp}:by-{adjustment}" for i in (item, "98")}

    deadline = time.monotonic() + 15
    while len(netsuite_events(ledger)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    moved = [e for e in netsuite_events(ledger) if e.id != saved.id]
    assert {e.delivery_id for e in moved} == wanted
    assert {e.topic for e in moved} == {"inventoryItem.changed"}

    time.sleep(1.1)  # the reader never reads the second still under way
    done = poll(env, "--no-dispatch", "--from", started.isoformat(), "--type", "stockMove")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stockMove: 2 changes read in 1 page, 0 new, 2 already in the inbox" in done.stdout
    assert {(e.delivery_id, e.redeliveries) for e in netsuite_events(ledger) if e.id != saved.id} == {
        (delivery_id, 1) for delivery_id in wanted}


@pytest.mark.parametrize("args, message", [
    (["--overlap", "soon"], "--overlap: expected a whole number of seconds"),
    (["--page-size", "5000"], "--page-size: expected a whole number from 1 to 1000"),
    (["--erp", "shopify", "--no-dispatch"], "--erp: 'shopify' is a shop; changes are read of an ERP"),
    (["--erp", "sap", "--no-dispatch"], "unknown system 'sap'"),
    (["--from", "yesterday", "--no-dispatch"], "--from: 'yesterday' is not an ISO 8601 time"),
])
def test_poll_refuses_bad_input_naming_it(tmp_path, args, message):
    done = poll({**os.environ, "ERPSYNC_HOME": str(tmp_path)}, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
