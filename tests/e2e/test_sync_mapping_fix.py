"""A field renamed at the source: the events it breaks are dead-lettered naming the mapping, its version and the
field; one edited YAML line fixes it, and a retry of the failed run (as from the Prefect UI) then succeeds."""

from __future__ import annotations

import random
import subprocess
import time

import pytest

from erpsync_dev.processes import venv_script
from tests.conftest import REPO, shopify_order_sample
from tests.e2e.conftest import event_runs, send_event, wait_for_state

pytestmark = pytest.mark.e2e

ORDER_MAPPING = "shopify_order_to_netsuite_sales_order.yaml"


def test_a_renamed_source_field_is_fixed_in_yaml_and_the_failed_run_succeeds_on_retry(stack, http):
    stack_, ledger = stack
    config = stack_.config
    order = shopify_order_sample()
    order |= {"id": random.randint(10**12, 10**13), "cancelled_at": None}
    order["created_on"] = order.pop("created_at")  # the platform renamed a field

    event_id = send_event(http, config, order)
    assert wait_for_state(ledger, event_id).state == "failed"
    [failed] = [o for o in ledger.outcomes(event_id) if o.outcome == "failed"]
    assert "shopify_order_to_netsuite_sales_order@" in failed.reason and "created_at" in failed.reason

    mapping = config.mappings_dir / ORDER_MAPPING
    original = mapping.read_text()
    assert original.count("source_field: created_at\n") == 1
    mapping.write_text(original.replace("source_field: created_at\n", "source_field: created_on\n"))
    try:
        run = event_runs(http, config, event_id)[0]
        retry = subprocess.run([venv_script("prefect"), "flow-run", "retry", run["id"]], cwd=REPO, env=stack_.env,
                               capture_output=True, text=True, timeout=120)
        assert retry.returncode == 0, retry.stdout + retry.stderr
        deadline = time.monotonic() + 240
        while ledger.get_event(event_id).state != "synced" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ledger.get_event(event_id).state == "synced"
    finally:
        mapping.write_text(original)
    synced = [o for o in ledger.outcomes(event_id) if o.outcome == "synced"]
    assert synced, "the retry synced the event"
    assert f"@{synced[0].mapping_version}" not in failed.reason, "the retry used the mapping as it is now"
    # (The ledger says synced before the run reports its final state: wait for that report.)
    deadline = time.monotonic() + 60
    while (rerun := http.get(f"{config.prefect_api}/flow_runs/{run['id']}").json())["state_type"] not in (
            "COMPLETED", "FAILED", "CRASHED") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rerun["state_type"] == "COMPLETED" and rerun["run_count"] >= 2
