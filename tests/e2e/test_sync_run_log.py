"""What an operator reads in the Prefect UI, read back from the Prefect API: a dead-lettered run's log ends with
its reason (no Prefect traceback), each erpsync line is there once, and the scheduled runs have names that say
what they are (`sweep-<time>`, `reconcile-<date>`)."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from tests.e2e.conftest import RETIRED_SKU, send_event, wait_for_state
from tests.e2e.test_live_sync import _deployment_id, prefect_runs
from tests.e2e.test_sync_deadletters import finished_run, order_with_sku
from tests.e2e.test_sync_reconcile import run_reconcile

pytestmark = pytest.mark.e2e


def run_logs(http, config, flow_run_id: str, *, until_line: str, timeout: float = 60) -> list[dict]:
    """The run's log lines as the UI shows them, once the flow run's line starting ``until_line`` (Prefect's last)
    has arrived: the API log handler ships lines in batches, after the run's state. A task run's line says
    "Finished in state Failed" too, and may arrive in an earlier batch than the flow run's."""
    deadline = time.monotonic() + timeout
    while True:
        logs = http.post(f"{config.prefect_api}/logs/filter",
                         json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC",
                               "limit": 200}).raise_for_status().json()
        if any(log["name"] == "prefect.flow_runs" and log["message"].startswith(until_line) for log in logs) \
                or time.monotonic() > deadline:
            return logs
        time.sleep(0.5)


@pytest.fixture(scope="module")
def dead_lettered_run(stack, http):
    stack_, ledger = stack
    config = stack_.config
    event_id = send_event(http, config, order_with_sku(ledger, RETIRED_SKU))
    assert wait_for_state(ledger, event_id).state == "failed"
    run = finished_run(http, config, event_id)
    assert run["state_type"] == "FAILED"
    return event_id, run, run_logs(http, config, run["id"], until_line="Finished in state Failed")


def test_a_dead_lettered_run_ends_failed_with_its_reason_and_no_traceback(dead_lettered_run):
    event_id, run, logs = dead_lettered_run
    messages = [log["message"] for log in logs]
    shown = "\n".join(f"{log['level']} {log['name']}: {log['message'][:160]}" for log in logs)
    assert any(m.startswith("dead-lettered: ") for m in messages), shown
    assert any(f"event {event_id} dead-lettered" in m for m in messages), shown
    noise = [m for m in messages if "Traceback" in m or "unexpected exception" in m]
    assert not noise, f"a dead letter is an expected outcome, not a crash: {noise[0][:300]}"
    # Prefect's own closing line stays: the state and its message are what the operator needs.
    assert any(m.startswith("Finished in state Failed") and "dead-lettered" in m for m in messages), shown


def test_each_erpsync_log_line_reaches_the_run_log_once(dead_lettered_run):
    _, _, logs = dead_lettered_run
    erpsync_lines = [log for log in logs if log["name"].startswith("erpsync")]
    assert erpsync_lines, [log["name"] for log in logs]
    repeated = {key: n for key, n in Counter((log["name"], log["timestamp"], log["message"])
                                             for log in logs).items() if n > 1}
    assert not repeated, f"lines logged twice: {list(repeated)[:3]}"


def test_sweep_runs_are_named_by_their_scheduled_time(stack, http):
    stack_, _ = stack
    config = stack_.config
    sweep = _deployment_id(http, config, "sweep-inbox")
    deadline = time.monotonic() + 150
    while True:
        runs = prefect_runs(http, config, state={"type": {"any_": ["COMPLETED"]}},
                            deployment_id={"any_": [sweep]})
        if runs or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert runs, "no sweep-inbox run completed"
    for run in runs:
        assert re.fullmatch(r"sweep-\d{4}-\d\d-\d\dT\d\d:\d\dZ", run["name"]), run["name"]


def test_a_reconcile_run_is_named_by_the_days_it_reconciles(stack, http):
    stack_, _ = stack
    config = stack_.config
    run = run_reconcile(http, config.prefect_api, since="2026-11-27", until="2026-11-29", dry_run=True,
                        drift_alert_threshold=None)
    assert run["name"] == "reconcile-2026-11-27..2026-11-28", run["name"]
