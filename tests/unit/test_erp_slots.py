"""The ERP slots within one process, and how their size is configured."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from erpsync.erp_slots import ErpSlots
from erpsync.errors import ConfigError, TransientError
from erpsync.systems.netsuite.client import NetSuiteSettings

ENV = {"ERPSYNC_NETSUITE_BASE_URL": "http://127.0.0.1:9", "ERPSYNC_NETSUITE_CLIENT_ID": "c",
       "ERPSYNC_NETSUITE_CLIENT_SECRET": "s"}


def peak_holders(slots: ErpSlots, threads: int) -> int:
    inside, peak, lock = 0, 0, threading.Lock()

    def call(_):
        nonlocal inside, peak
        with slots.hold():
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.005)
            with lock:
                inside -= 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, range(threads * 4)))
    return peak


def test_threads_never_hold_more_than_the_limit():
    slots = ErpSlots.in_process(3)
    assert peak_holders(slots, 12) <= 3
    assert slots.stats.acquired == 48


def test_zero_means_no_limit():
    assert peak_holders(ErpSlots.in_process(0), 6) > 1


def test_a_bounded_wait_ends_in_a_transient_error():
    slots = ErpSlots.in_process(1, max_wait=0.05)
    with slots.hold(), pytest.raises(TransientError, match="all 1 slots stayed busy for 0.05s"):
        slots.acquire()
    assert slots.stats.timeouts == 1


def test_the_limit_comes_from_the_environment_with_5_as_default():
    assert NetSuiteSettings.from_env(ENV).concurrency_limit == 5
    assert NetSuiteSettings.from_env({**ENV, "ERPSYNC_NETSUITE_CONCURRENCY": "0"}).concurrency_limit == 0


@pytest.mark.parametrize("value", ["-1", "five"])
def test_a_bad_limit_names_the_variable(value):
    with pytest.raises(ConfigError, match="ERPSYNC_NETSUITE_CONCURRENCY"):
        NetSuiteSettings.from_env({**ENV, "ERPSYNC_NETSUITE_CONCURRENCY": value})


def test_an_in_memory_ledger_keeps_the_slots_in_process():
    assert not ErpSlots.for_database("sqlite://", 2).shared
    assert not ErpSlots.for_database("sqlite:///:memory:", 2).shared
