"""The ERP concurrency limit shared by processes through the ledger database (SQLite file locks, PostgreSQL
advisory locks), against the ERP sandbox running with the same limit as its own process."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pytest

from erpsync.erp_slots import ErpSlots
from erpsync.errors import TransientError
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync_dev.processes import Managed, ProcessGroup, python_module, tail
from tests.conftest import REPO
from tests.erp_load_proc import SLOT_NAME
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

LIMIT = 3
PROCESSES, THREADS, CALLS = 3, 6, 4


@pytest.fixture
def group(tmp_path):
    """Where the load processes run: each with a log file; all stopped when the test ends."""
    group = ProcessGroup(log_dir=tmp_path / "logs", env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=REPO)
    yield group
    group.stop()


def start(group: ProcessGroup, name: str, *args: str) -> Managed:
    return group.start(name, python_module("tests.erp_load_proc", *args))


def test_processes_sharing_the_limit_never_exceed_it_and_draw_no_429(database_url, tmp_path, group):
    # The sandbox answers 429 above LIMIT requests in flight: any overshoot by the clients would show.
    with start_erp_sandbox(tmp_path, "--concurrency", str(LIMIT), "--latency-ms", "30", "--retry-after", "0") as erp:
        workers = [start(group, f"load-{n}", erp, database_url, str(LIMIT), str(THREADS), str(CALLS), f"p{n}")
                   for n in range(PROCESSES)]
        reports = []
        for worker in workers:
            assert group.wait(worker.name, timeout=300) == 0, tail(worker.log_path, 40)
            reports.append(json.loads(group.wait_line(worker.name, '{"written"')))  # its report, among its log
        stats = httpx.get(f"{erp}/_sandbox/stats").json()
        records = httpx.get(f"{erp}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    assert sum(report["written"] for report in reports) == PROCESSES * THREADS * CALLS == len(records)
    assert stats["too_many_requests"] == 0, stats
    assert 1 <= stats["peak_in_flight"] <= LIMIT, stats
    assert all(report["timeouts"] == 0 for report in reports)


def test_a_killed_holder_frees_its_slot_after_its_call_could_have_ended(database_url, group):
    """The lock goes with the process at once, but the call it was making may still run at the ERP: the next
    taker finds the slot still marked held and leaves it alone for ``linger`` seconds (every process does)."""
    start(group, "holder", "--hold", database_url, "1")
    assert json.loads(group.wait_line("holder", '{"holding"', timeout=60))["holding"] == 0
    slots = ErpSlots.for_database(database_url, 1, name=SLOT_NAME, max_wait=0.3, linger=2.0)
    other = ErpSlots.for_database(database_url, 1, name=SLOT_NAME, max_wait=0.3, linger=2.0)
    try:
        assert slots.shared
        with pytest.raises(TransientError, match="all 1 slots stayed busy"):
            slots.acquire()
        group.kill("holder")
        slots.max_wait = 30  # the kernel (file lock) or the server (advisory lock) lets go on its own
        waited = time.monotonic()
        with slots.hold() as slot:
            waited = time.monotonic() - waited
            assert slot == 0
        assert waited >= 1.9, f"the dead holder's slot was used after {waited:.2f}s, within its linger"
        assert slots.stats.rested_after_death == 1
        assert slots.stats.timeouts == 1 and slots.stats.acquired == 1
        # Given back cleanly, it is free at once, to this store and to another.
        with other.hold() as slot:
            assert slot == 0
        assert other.stats.rested_after_death == 0
    finally:
        slots.close()
        other.close()


def test_a_call_killed_in_flight_draws_no_429_from_the_next_caller(database_url, tmp_path, group):
    """A worker killed while its request is at the ERP: the ERP carries the request out and counts it against
    the limit. The next caller's request must not arrive before it ends (the sandbox would answer 429)."""
    with start_erp_sandbox(tmp_path, "--concurrency", "1", "--latency-ms", "2500", "--retry-after", "0") as erp:
        settings = NetSuiteSettings(base_url=erp, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET,
                                    concurrency_limit=1, timeout_seconds=5)
        slots = ErpSlots.for_database(database_url, 1, name=SLOT_NAME, linger=settings.timeout_seconds)
        with NetSuiteClient(settings, retry=RetryPolicy(max_attempts=1), slots=slots) as client:
            client.suiteql("SELECT id FROM item WHERE id = ?", [98])  # its token, so its next call goes at once
            start(group, "caller", erp, database_url, "1", "1", "1", "killed")
            # The caller's SuiteQL call (after its token), then its upsert: killed while the upsert is at the ERP.
            deadline = time.monotonic() + 60
            while True:
                stats = httpx.get(f"{erp}/_sandbox/stats").json()
                if stats["api_requests"] >= 3 and stats["in_flight"] == 1:
                    break
                assert time.monotonic() < deadline, stats
                time.sleep(0.05)
            group.kill("caller")
            client.upsert("salesOrder", "after-the-kill",
                          {"entity": {"id": "110"}, "item": {"items": [{"item": {"id": 98}, "quantity": 1}]}})
        stats = httpx.get(f"{erp}/_sandbox/stats").json()
        records = httpx.get(f"{erp}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    assert stats["throttled_by_limit"] == 0 and stats["peak_offered"] == 1, stats
    assert slots.stats.rested_after_death == 1
    assert len(records) == 2  # the killed caller's request was carried out, as NetSuite would


def test_the_slots_of_different_erp_accounts_are_apart(database_url):
    first = ErpSlots.for_database(database_url, 1, name="account-a", max_wait=0.2)
    second = ErpSlots.for_database(database_url, 1, name="account-b", max_wait=0.2)
    same = ErpSlots.for_database(database_url, 1, name="account-a", max_wait=0.2)
    try:
        with first.hold(), second.hold():
            with pytest.raises(TransientError):
                same.acquire()
        with same.hold() as slot:
            assert slot == 0
    finally:
        for slots in (first, second, same):
            slots.close()


def test_slots_pass_between_threads_without_starving_another_process(database_url):
    """A busy process hands each finished call's slot to one of its waiting threads (no unlock and lock again),
    never holding more than the limit, and still gives each slot back now and then so that another process —
    here a second slot store on the same database, as a second worker would have — gets one."""
    busy = ErpSlots.for_database(database_url, LIMIT, name="handover")
    other = ErpSlots.for_database(database_url, LIMIT, name="handover", max_wait=20)
    stop = threading.Event()
    in_use, peak, lock = 0, 0, threading.Lock()

    def hammer():
        nonlocal in_use, peak
        while not stop.is_set():
            with busy.hold():
                with lock:
                    in_use += 1
                    peak = max(peak, in_use)
                time.sleep(0.005)
                with lock:
                    in_use -= 1

    threads = [threading.Thread(target=hammer) for _ in range(LIMIT * 3)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        with other.hold() as slot:  # raises TransientError if the busy store never let a slot go for 20 s
            assert slot is not None
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        busy.close()
        other.close()
    assert peak <= LIMIT
    assert busy.stats.handed_over > 0, "no slot was passed straight to a waiting thread"
