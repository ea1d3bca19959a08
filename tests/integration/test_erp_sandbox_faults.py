"""The ERP sandbox's injected faults, as `make chaos` uses them: timeouts whose write stands, 429s counted by
cause, permanent rejections by external id, and the peak of requests offered against the concurrency limit."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from erpsync.errors import ErpRejected, TransientError
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient
from erpsync_dev.sandboxes.netsuite.latency import parse_latency_profile
from tests.integration.test_netsuite_connector import records, sales_order, settings_for, stats
from tests.sandbox_procs import REPO, start_erp_sandbox

FAST = RetryPolicy(max_attempts=5, base=0.01, cap=0.05, max_retry_after=0.05)
ONCE = RetryPolicy(max_attempts=1)


# erp and ops: tests/integration/conftest.py.
ERP_SANDBOX_ARGS = ("--reject-external-ids", "shopify-order-666,shopify-order-667", "--retry-after", "0")


def test_a_timed_out_write_is_carried_out_and_its_retry_makes_no_second_record(erp: str, ops: httpx.Client) -> None:
    ops.post("/_sandbox/faults", json={"hold_seconds": 3, "count": 1}).raise_for_status()
    with NetSuiteClient(settings_for(erp, timeout_seconds=0.5), retry=ONCE) as netsuite:
        with pytest.raises(TransientError):
            netsuite.upsert("salesOrder", "shopify-order-5001", sales_order(memo="first try"))
    # The client gave up, but the ERP wrote the record: the nasty case the pipeline must survive.
    [written] = records(ops)
    assert (written["external_id"], written["body"]["memo"]) == ("shopify-order-5001", "first try")
    with NetSuiteClient(settings_for(erp, timeout_seconds=5), retry=FAST) as netsuite:
        internal_id = netsuite.upsert("salesOrder", "shopify-order-5001", sales_order(memo="retried"))
    [record] = records(ops)
    assert record["internal_id"] == internal_id == written["internal_id"]
    assert record["body"]["memo"] == "retried"
    assert stats(ops)["timeouts_injected"] == 1


def test_injected_429s_are_counted_apart_from_the_limit(erp: str, ops: httpx.Client) -> None:
    ops.post("/_sandbox/faults", json={"status": 429, "count": 2}).raise_for_status()
    with NetSuiteClient(settings_for(erp), retry=FAST) as netsuite:
        netsuite.upsert("salesOrder", "shopify-order-5002", sales_order())
    counters = stats(ops)
    assert (counters["throttled_injected"], counters["throttled_by_limit"], counters["too_many_requests"]) == (2, 0, 2)


def test_a_fault_with_a_path_waits_for_a_call_to_that_path(erp: str, ops: httpx.Client) -> None:
    ops.post("/_sandbox/faults", json={"status": 503, "count": 1, "path": "/record/v1/salesOrder"}).raise_for_status()
    with NetSuiteClient(settings_for(erp), retry=ONCE) as netsuite:
        netsuite.suiteql("SELECT id FROM transaction WHERE externalid = ?", ["none"])  # another path: not the fault's
        assert stats(ops)["faults_injected"] == 0
        with pytest.raises(TransientError):
            netsuite.upsert("salesOrder", "shopify-order-5003", sales_order())
    assert stats(ops)["faults_injected"] == 1
    refused = ops.post("/_sandbox/faults", json={"status": 503, "path": ""})
    assert refused.status_code == 400 and "path" in refused.json()["error"]


def test_the_limit_counts_its_own_429s_and_the_peak_offered(tmp_path: Path) -> None:
    # A long latency, so the six calls overlap even on a busy machine.
    with start_erp_sandbox(tmp_path, "--concurrency", "1", "--latency-ms", "1500", "--retry-after", "0") as base_url, \
            httpx.Client(base_url=base_url) as ops:
        with NetSuiteClient(settings_for(base_url), retry=ONCE) as netsuite, ThreadPoolExecutor(6) as pool:
            netsuite.get("salesOrder", "1")  # the token first, so the six calls below start together
            outcomes = list(pool.map(lambda n: _try_upsert(netsuite, f"limit-{n}"), range(6)))
        counters = stats(ops)
    refused = outcomes.count("refused")
    assert refused >= 1
    assert counters["throttled_by_limit"] == refused
    assert counters["throttled_injected"] == 0
    assert counters["peak_in_flight"] == 1
    assert counters["peak_offered"] >= 2
    # The refused calls never held a slot: the time per request is taken over the ones that did.
    assert counters["slot_requests"] == counters["api_requests"] - refused
    assert counters["busy_seconds"] >= 1.5 * counters["slot_requests"]


def test_a_long_tailed_profile_holds_each_request_its_seeded_draw(tmp_path: Path) -> None:
    profile = "lognormal:median=20,p99=200,seed=4"
    with start_erp_sandbox(tmp_path, "--latency-ms", "100", "--latency-profile", profile) as base_url, \
            httpx.Client(base_url=base_url) as ops:
        with NetSuiteClient(settings_for(base_url), retry=ONCE) as netsuite:
            for n in range(30):
                netsuite.upsert("salesOrder", f"profile-{n}", sales_order())
        counters = stats(ops)
    # The same seed draws the same latencies here; each request slept at least its own (a lower bound only:
    # the sandbox's own work comes on top, and the machine's load with it).
    draw = parse_latency_profile(profile).sampler()
    expected = sum(draw() for _ in range(counters["slot_requests"]))
    assert counters["latency_profile"] == profile  # the profile given last wins over --latency-ms
    assert counters["slot_requests"] == counters["api_requests"] >= 30
    assert counters["busy_seconds"] >= round(expected, 3) - 0.001


def _try_upsert(netsuite: NetSuiteClient, external_id: str) -> str:
    try:
        netsuite.upsert("salesOrder", external_id, sales_order())
        return "ok"
    except TransientError:
        return "refused"


def test_a_rejected_external_id_fails_for_good_and_is_not_written(erp: str, ops: httpx.Client) -> None:
    with NetSuiteClient(settings_for(erp), retry=FAST) as netsuite:
        with pytest.raises(ErpRejected) as raised:
            netsuite.upsert("salesOrder", "shopify-order-666", sales_order())
        netsuite.upsert("salesOrder", "shopify-order-668", sales_order())
    assert (raised.value.status, raised.value.code) == (400, "USER_ERROR")
    assert [r["external_id"] for r in records(ops)] == ["shopify-order-668"]
    counters = stats(ops)
    # A permanent error is never retried: one refused request, not five.
    assert counters["rejections_injected"] == 1
    assert counters["by_status"]["400"] == 1


def test_random_faults_of_every_kind_follow_their_rates(tmp_path: Path) -> None:
    args = ("--fault-rate", "0.2", "--throttle-rate", "0.2", "--timeout-rate", "0.2", "--timeout-hold-seconds", "1",
            "--seed", "3", "--retry-after", "0", "--concurrency", "0")
    with start_erp_sandbox(tmp_path, *args) as base_url, httpx.Client(base_url=base_url) as ops:
        with NetSuiteClient(settings_for(base_url, timeout_seconds=0.3), retry=ONCE) as netsuite:
            answers = [_try_get(netsuite) for _ in range(60)]
        counters = stats(ops)
    assert counters["throttled_injected"] == answers.count(429) > 0
    assert counters["timeouts_injected"] == answers.count("timeout") > 0
    # Every call either got a fault or went through (a missing record is no fault).
    assert counters["faults_injected"] == 60 - answers.count("answered")
    assert counters["api_requests"] == 60
    assert counters["throttled_by_limit"] == 0


def _try_get(netsuite: NetSuiteClient) -> Any:
    try:
        netsuite.get("salesOrder", "1")
    except ErpRejected as exc:
        return exc.status
    except TransientError as exc:
        return exc.status or "timeout"
    return "answered"


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--timeout-rate", "1.5", "give a share between 0 and 1"),
    ("--throttle-rate", "lots", "give a share between 0 and 1"),
    ("--reject-external-ids", "ok-1,not ok", "not external ids (letters, digits, _ and - only): not ok"),
])
def test_bad_fault_settings_are_refused_by_name(flag: str, value: str, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "erpsync_dev.sandboxes.netsuite", flag, value], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert flag in result.stderr and message in result.stderr
