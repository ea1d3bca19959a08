"""Dead letters as a workflow, end to end: a failed run carries a safe `dead-letter` artifact, `erpsync dlq` lists
and shows it, and a replay after the fix (the command, or the replay-dead-letters deployment) reschedules the same
flow run, which the worker picks up and completes: the dead letter is closed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from erpsync.deadletters import ARTIFACT_KEY, parse_reason
from tests.conftest import REPO, shopify_order_sample
from tests.e2e.conftest import RETIRED_SKU, event_runs, send_event, wait_for_state
from tests.e2e.test_live_sync import _deployment_id

pytestmark = pytest.mark.e2e


def erpsync(stack_, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "erpsync", *args], cwd=REPO, env=stack_.env, capture_output=True,
                          text=True, timeout=300)


def order_with_sku(ledger, sku: str) -> dict:
    order = shopify_order_sample()
    order |= {"id": int(uuid.uuid4().int % 10**12) + 10**12, "cancelled_at": None}
    order["line_items"][0]["sku"] = sku  # the other line and the money as they are: only the item is wrong
    return order


def run_of(http, config, event_id: int) -> dict:
    [run] = event_runs(http, config, event_id)
    return run


def finished_run(http, config, event_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = run_of(http, config, event_id)
        if run["state_type"] in ("FAILED", "COMPLETED", "CRASHED") or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


def artifacts_of(http, config, flow_run_id: str) -> list[dict]:
    return http.post(f"{config.prefect_api}/artifacts/filter",
                     json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).raise_for_status().json()


def wait_synced(ledger, event_ids, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(ledger.get_event(i).state == "synced" for i in event_ids):
            return
        time.sleep(0.5)
    states = {i: ledger.get_event(i).state for i in event_ids}
    raise AssertionError(f"not all synced after {timeout}s: {states}")


class LookupRow:
    """Adds a row to the stack's copy of the SKU table (the fix a data engineer makes), removed afterwards."""

    def __init__(self, config, sku: str, item_id: int = 98):
        self.path = config.mappings_dir / "lookups" / "sku_to_item.csv"
        self.row = f"{sku},{item_id}\n"

    def __enter__(self):
        self.original = self.path.read_text()
        self.path.write_text(self.original.rstrip("\n") + "\n" + self.row)
        return self

    def __exit__(self, *exc):
        self.path.write_text(self.original)


def test_a_failed_run_carries_a_safe_dead_letter_artifact_and_dlq_show_has_the_erps_detail(stack, http):
    stack_, ledger = stack
    config = stack_.config
    event_id = send_event(http, config, order_with_sku(ledger, RETIRED_SKU))
    assert wait_for_state(ledger, event_id).state == "failed"
    run = finished_run(http, config, event_id)
    assert run["state_type"] == "FAILED"
    assert run["state"]["message"].startswith("dead-lettered: ErpRejected INVALID_CONTENT at item.items[].item")

    [artifact] = [a for a in artifacts_of(http, config, run["id"]) if a["key"] == ARTIFACT_KEY]
    assert artifact["type"] == "markdown"
    text = artifact["data"]
    assert f"event {event_id}" in text and "INVALID_CONTENT" in text and "item.items[0].item" in text
    assert "orders/create" in text and "erpsync dlq show" in text and "Retry" in text
    [failed] = [o for o in ledger.outcomes(event_id) if o.outcome == "failed"]
    detail = parse_reason(failed.reason).detail
    assert detail and detail not in text, "the ERP's free text stays out of Prefect"

    shown = erpsync(stack_, "dlq", "show", str(event_id))
    assert shown.returncode == 0, shown.stderr
    assert detail in shown.stdout and "INVALID_CONTENT" in shown.stdout and run["id"] in shown.stdout


def test_dlq_replay_after_the_fix_reschedules_the_same_run_which_completes_and_closes_the_dead_letter(stack, http):
    stack_, ledger = stack
    config = stack_.config
    sku = f"DLQ-CLI-{uuid.uuid4().hex[:8].upper()}"
    event_ids = [send_event(http, config, order_with_sku(ledger, sku)) for _ in range(2)]
    for event_id in event_ids:
        assert wait_for_state(ledger, event_id).state == "failed"
    runs = {event_id: finished_run(http, config, event_id) for event_id in event_ids}
    for event_id, run in runs.items():
        assert run["state_type"] == "FAILED"
        [artifact] = [a for a in artifacts_of(http, config, run["id"]) if a["key"] == ARTIFACT_KEY]
        assert sku in artifact["data"] and "sku_to_item" in artifact["data"]
        assert run["state"]["message"].startswith("dead-lettered: MappingError: unknown key in lookup table")
        assert sku not in run["state"]["message"], "the state message (and so the notification) has no value"

    listed = erpsync(stack_, "dlq", "list", "--reason", sku, "--json", "--events")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    [group] = document["groups"]
    assert group["count"] == 2 and sorted(group["example_event_ids"]) == sorted(event_ids)
    assert group["group"] == f"MappingError: '{sku}' not found in lookup table sku_to_item"
    assert {e["flow_run_id"] for e in document["events"]} == {r["id"] for r in runs.values()}

    dry = erpsync(stack_, "dlq", "replay", "--reason", sku, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would reschedule run") == 2
    assert all(run_of(http, config, e)["state_type"] == "FAILED" for e in event_ids), "a dry run changes nothing"

    with LookupRow(config, sku):
        replayed = erpsync(stack_, "dlq", "replay", "--reason", sku, "--rate", "4")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "[2/2]" in replayed.stdout and "2 runs rescheduled" in replayed.stdout
        wait_synced(ledger, event_ids)
    for event_id, before in runs.items():
        after = finished_run(http, config, event_id)
        assert after["id"] == before["id"], "one event keeps one run"
        assert after["state_type"] == "COMPLETED" and after["run_count"] >= 2
        assert ledger.get_event(event_id).flow_run_id == before["id"]
    left = json.loads(erpsync(stack_, "dlq", "list", "--reason", sku, "--json").stdout)
    assert left["dead_letters"] == 0, "a replayed success closes the dead letter"


def test_the_replay_deployment_replays_the_chosen_set(stack, http):
    stack_, ledger = stack
    config = stack_.config
    sku = f"DLQ-FLOW-{uuid.uuid4().hex[:8].upper()}"
    event_ids = [send_event(http, config, order_with_sku(ledger, sku)) for _ in range(2)]
    for event_id in event_ids:
        assert wait_for_state(ledger, event_id).state == "failed"
    with LookupRow(config, sku):
        deployment_id = _deployment_id(http, config, "replay-dead-letters")
        response = http.post(f"{config.prefect_api}/deployments/{deployment_id}/create_flow_run",
                             json={"parameters": {"reason": sku, "rate": 4, "since": "1h"}})
        replay_run = response.raise_for_status().json()
        wait_synced(ledger, event_ids)
    deadline = time.monotonic() + 120
    while (state := http.get(f"{config.prefect_api}/flow_runs/{replay_run['id']}").json())["state_type"] not in (
            "COMPLETED", "FAILED", "CRASHED") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state["state_type"] == "COMPLETED"
    for event_id in event_ids:
        assert finished_run(http, config, event_id)["run_count"] >= 2


def test_the_replay_deployment_refuses_a_bad_filter_naming_it(stack, http):
    stack_, _ = stack
    config = stack_.config
    deployment_id = _deployment_id(http, config, "replay-dead-letters")
    run = http.post(f"{config.prefect_api}/deployments/{deployment_id}/create_flow_run",
                    json={"parameters": {"source": "magento"}}).raise_for_status().json()
    deadline = time.monotonic() + 120
    while (state := http.get(f"{config.prefect_api}/flow_runs/{run['id']}").json())["state_type"] not in (
            "COMPLETED", "FAILED", "CRASHED") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state["state_type"] == "FAILED"
    assert "source: unknown source 'magento'" in state["state"]["message"]
