"""Crash safety of the pipeline itself, without Prefect: a pipeline process SIGKILLed at each failpoint, then the
same event run again, ends with one ERP record and the event synced."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta

import httpx
import pytest

from erpsync import failpoints
from erpsync.errors import ConfigError
from erpsync.ledger import EntityKey
from tests.conftest import REPO, shopify_order_sample
from tests.sandbox_procs import start_erp_sandbox


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory):
    with start_erp_sandbox(tmp_path_factory.mktemp("erp")) as base_url:
        yield base_url


def store_order(ledger) -> tuple[int, int]:
    order = shopify_order_sample()
    order["id"] = 960000000000 + uuid.uuid4().int % 10**9
    body = json.dumps(order).encode()
    event_id = ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/create",
                                      shop=None, triggered_at=None, body=body,
                                      payload_sha256=hashlib.sha256(body).hexdigest()).event_id
    return event_id, order["id"]


def run_pipeline(database_url, erp_url, event_id, home, points: str = "") -> int:
    env = {**os.environ, "ERPSYNC_HOME": str(home), "ERPSYNC_FAILPOINTS": points}
    done = subprocess.run([sys.executable, "-m", "tests.pipeline_proc", database_url, erp_url, str(event_id)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done.returncode


def erp_records(erp_url, order_id):
    records = httpx.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    return [r for r in records if r["external_id"] == f"shopify-order-{order_id}"]


@pytest.mark.parametrize("point, written_before_the_crash", [
    ("dedupe.after", 0), ("push.before", 0), ("push.after", 1), ("confirm.after", 1)])
def test_killed_at_a_failpoint_then_rerun_gives_one_record(ledger, database_url, erp_url, tmp_path, point,
                                                           written_before_the_crash):
    event_id, order_id = store_order(ledger)
    assert run_pipeline(database_url, erp_url, event_id, tmp_path, f"{point}=kill") == -signal.SIGKILL
    assert len(erp_records(erp_url, order_id)) == written_before_the_crash
    crashed_state = ledger.get_event(event_id).state
    assert crashed_state == ("synced" if point == "confirm.after" else "received")

    key = EntityKey("shopify", "order", str(order_id), "netsuite")
    other_event = 10**9
    if point == "confirm.after":  # the outcome's transaction released the claim with it
        assert ledger.claim(key, other_event, stale_after=timedelta(minutes=15)), "a finished event holds no claim"
        ledger.release(key, other_event)
    else:
        assert not ledger.claim(key, other_event, stale_after=timedelta(minutes=15)), "the dead run's claim is held"

    assert run_pipeline(database_url, erp_url, event_id, tmp_path) == 0  # the re-run takes its claim back
    [record] = erp_records(erp_url, order_id)
    assert ledger.get_event(event_id).state == "synced"
    assert ledger.entity_state(key).to_id == record["internal_id"]
    assert ledger.claim(key, other_event, stale_after=timedelta(minutes=15)), "the re-run released the claim"


def test_kill_once_kills_the_first_run_only(ledger, database_url, erp_url, tmp_path):
    event_id, order_id = store_order(ledger)
    points = "push.after=kill-once"
    assert run_pipeline(database_url, erp_url, event_id, tmp_path, points) == -signal.SIGKILL
    assert (tmp_path / "failpoints" / "push.after.fired").exists()
    assert run_pipeline(database_url, erp_url, event_id, tmp_path, points) == 0
    [record] = erp_records(erp_url, order_id)
    assert record["versions"] == 2, "written before the crash and again by the re-run: one record"
    assert ledger.get_event(event_id).state == "synced"


def test_an_unknown_failpoint_is_refused_by_name():
    with pytest.raises(ConfigError, match="unknown failpoint 'push.aftr'"):
        failpoints.parse("push.aftr=kill")
