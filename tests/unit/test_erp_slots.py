"""The ERP slots within one process, and how their size is configured."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
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


def test_a_call_that_timed_out_keeps_its_slot_while_the_erp_may_still_run_it():
    slots = ErpSlots.in_process(1, max_wait=0.1, linger=3.0)
    with pytest.raises(httpx.ReadTimeout):
        with slots.hold():
            raise httpx.ReadTimeout("no answer")
    with pytest.raises(TransientError):
        slots.acquire()  # the request may still hold the ERP's slot
    assert slots.stats.lingered == 1
    slots.max_wait = 30
    with slots.hold() as slot:  # given back once the linger is over
        assert slot == 0
    slots.close()


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.PoolTimeout("pool"), ValueError("ours")])
def test_a_call_that_never_reached_the_erp_frees_its_slot_at_once(error):
    slots = ErpSlots.in_process(1, max_wait=0.1, linger=30.0)
    with pytest.raises(type(error)):
        with slots.hold():
            raise error
    with slots.hold() as slot:
        assert slot == 0
    assert slots.stats.lingered == 0


def test_a_negative_linger_is_refused():
    with pytest.raises(ConfigError, match="linger must be 0 or more"):
        ErpSlots.in_process(1, linger=-1)
