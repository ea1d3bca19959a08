"""Crash safety end to end: the process of a `sync-event` run SIGKILLed at a failpoint by the real process worker,
Prefect marking the run Crashed, and the sweep's recovery re-running it: one ERP record, the event synced.

A whole worker killed with its runs (a lost host) leaves them Running: no process is left to report the crash.
Prefect's heartbeat automation (orchestration.automations.CRASH_DETECTION_AUTOMATION) marks them Crashed, and recovery takes it from there.

This module runs a stack of its own, started with ERPSYNC_FAILPOINTS naming three kill-once points, all disarmed
(their markers exist); each test arms one by deleting its marker (see erpsync/failpoints.py).
"""

from __future__ import annotations

import copy
import os
import shutil
import time

import pytest

from erpsync import failpoints
from erpsync.ledger import EntityKey, Ledger
from erpsync.recovery import RECOVERED
from erpsync_dev.processes import free_port
from erpsync_dev.stack import LocalStack, StackConfig
from orchestration.automations import ensure_crash_detection
from tests.conftest import POSTGRES_URL, REPO, _postgres_database, shopify_order_sample, with_quantity
from tests.e2e.conftest import event_runs, send_event, wait_for_state

pytestmark = pytest.mark.e2e

POINTS = ("push.before", "push.after", "confirm.after")


@pytest.fixture(scope="module")
def crash_stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("crash-stack")
    databases = _postgres_database() if POSTGRES_URL else None
    database_url = next(databases) if databases else None
    mappings_dir = home / "mappings"
    shutil.copytree(REPO / "mappings", mappings_dir)
    for point in POINTS:
        armed(home, point, False)
    config = StackConfig(home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
                         shop_port=free_port(), orders=3, seed=3, database_url=database_url,
                         mappings_dir=mappings_dir,
                         extra_env={"ERPSYNC_FAILPOINTS": ",".join(f"{p}=kill-once" for p in POINTS),
                                    # flow runs say they are alive every 30 s (Prefect's minimum; default 180)
                                    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"})
    stack = LocalStack(config, dict(os.environ), progress=lambda m: None)
    try:
        stack.start()
        ledger = Ledger.connect(config.ledger_url)
        yield stack, ledger
        ledger.close()
    finally:
        stack.stop()
        if databases:
            next(databases, None)


def armed(home, point: str, on: bool) -> None:
    path = failpoints.marker(point, home=home)
    path.parent.mkdir(parents=True, exist_ok=True)
    if on:
        path.unlink(missing_ok=True)
    else:
        path.touch()


def run_of(http, config, event_id: int, states: tuple[str, ...], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = event_runs(http, config, event_id)
        if runs and runs[0]["state_type"] in states:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"the run of event {event_id} did not reach {states} in {timeout}s")


def sweep(http, config) -> None:
    deployment = http.get(f"{config.prefect_api}/deployments/name/sweep-inbox/sweep-inbox").raise_for_status().json()
    http.post(f"{config.prefect_api}/deployments/{deployment['id']}/create_flow_run",
              json={"parameters": {"grace_seconds": 0}}).raise_for_status()


def an_order(order_id: int) -> dict:
    order = shopify_order_sample()
    order["id"] = order_id
    return order


def erp_records(http, config, order_id: int) -> list[dict]:
    records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).raise_for_status()
    return [r for r in records.json()["records"] if r["external_id"] == f"shopify-order-{order_id}"]


@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_at_a_failpoint_is_recovered_with_one_erp_record(crash_stack, http, point):
    stack, ledger = crash_stack
    config = stack.config
    order_id = 950000000000 + POINTS.index(point)
    armed(config.home, point, True)
    event_id = send_event(http, config, an_order(order_id))

    crashed = run_of(http, config, event_id, ("CRASHED", "FAILED", "COMPLETED"))
    assert crashed["state_type"] == "CRASHED", "the process worker reports a killed run as Crashed"
    assert failpoints.marker(point, home=config.home).exists(), "it was this failpoint that killed it"

    sweep(http, config)
    event = wait_for_state(ledger, event_id, states=("synced", "failed"))
    assert event.state == "synced"
    assert len(erp_records(http, config, order_id)) == 1, "no duplicate in the ERP"
    key = EntityKey("shopify", "order", str(order_id), "netsuite")
    [record] = erp_records(http, config, order_id)
    assert ledger.entity_state(key).to_id == record["internal_id"]
    if point == "confirm.after":
        # The ledger already said synced: nothing to re-run, only the dead run's claim to free.
        assert [o.outcome for o in ledger.outcomes(event_id)] == ["synced"]
    else:
        assert [o.outcome for o in ledger.outcomes(event_id)] == [RECOVERED, "synced"]
        assert run_of(http, config, event_id, ("COMPLETED",))["id"] == crashed["id"], "the same run, re-run"

    # Another event of the same order goes through: no claim of the dead run is left blocking it.
    newer = with_quantity(copy.deepcopy(an_order(order_id)) | {"updated_at": "2031-01-01T00:00:00Z"}, 0, 7)
    update = send_event(http, config, newer, topic="orders/updated")
    if point == "confirm.after":
        sweep(http, config)  # frees the claim at once, instead of after the 15-minute stale-claim timeout
    assert wait_for_state(ledger, update, states=("synced", "failed")).state == "synced"
    [record] = erp_records(http, config, order_id)
    assert record["body"]["item"]["items"][0]["quantity"] == 7


def test_events_arriving_while_prefect_is_down_are_acknowledged_and_synced_once_it_is_back(crash_stack, http):
    stack, ledger = crash_stack
    config = stack.config
    stack.group.kill("prefect-server")
    try:
        events = [send_event(http, config, an_order(940000000000 + n)) for n in range(3)]  # 202: durable
    finally:
        stack.group.restart("prefect-server")
        stack.group.wait_http("Prefect server", f"{config.prefect_api}/health", timeout=180)
    assert all(ledger.get_event(event_id).flow_run_id is None for event_id in events), "no run was created"
    sweep(http, config)
    for n, event_id in enumerate(events):
        assert wait_for_state(ledger, event_id).state == "synced"
        assert len(erp_records(http, config, 940000000000 + n)) == 1


def test_a_worker_killed_with_its_runs_is_recovered_through_the_heartbeat_automation(crash_stack, http):
    stack, ledger = crash_stack
    config = stack.config
    assert ensure_crash_detection(config.prefect_api) in ("created", "updated")
    order_id = 930000000000
    # The next write of an order is held for 40 s: the run is mid-push when its worker dies.
    faults_before = http.get(f"{config.erp_url}/_sandbox/stats").json()["faults_injected"]
    http.post(f"{config.erp_url}/_sandbox/faults",
              json={"delay_ms": 40000, "count": 1, "path": "/record/v1/salesOrder"}).raise_for_status()
    event_id = send_event(http, config, an_order(order_id))
    run_of(http, config, event_id, ("RUNNING",))
    deadline = time.monotonic() + 240
    while http.get(f"{config.erp_url}/_sandbox/stats").json()["faults_injected"] == faults_before:
        assert time.monotonic() < deadline, "the run never reached the ERP"
        time.sleep(0.2)
    stack.group.kill("worker")  # the worker and every flow-run process it started
    stack.group.restart("worker")

    crashed = run_of(http, config, event_id, ("CRASHED",), timeout=400)
    assert "heartbeat" in (crashed["state"]["message"] or "")
    sweep(http, config)
    assert wait_for_state(ledger, event_id).state == "synced"
    assert len(erp_records(http, config, order_id)) == 1, "the held write and the re-run's: one record"
