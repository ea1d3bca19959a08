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
from erpsync_dev.processes import Managed, ProcessGroup, python_module, tail
from tests.conftest import REPO
from tests.erp_load_proc import SLOT_NAME
from tests.sandbox_procs import start_erp_sandbox

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


def test_a_killed_holder_frees_its_slot(database_url, group):
    start(group, "holder", "--hold", database_url, "1")
    assert json.loads(group.wait_line("holder", '{"holding"', timeout=60))["holding"] == 0
    slots = ErpSlots.for_database(database_url, 1, name=SLOT_NAME, max_wait=0.3)
    try:
        assert slots.shared
        with pytest.raises(TransientError, match="all 1 slots stayed busy"):
            slots.acquire()
        group.kill("holder")
        slots.max_wait = 30  # the kernel (file lock) or the server (advisory lock) lets go on its own
        with slots.hold() as slot:
            assert slot == 0
        assert slots.stats.timeouts == 1 and slots.stats.acquired == 1
    finally:
        slots.close()


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
