"""How the NetSuite connector meets the ERP's limits and failures, one behaviour per test, against the ERP sandbox
process and its fault queue: 429 with Retry-After and jitter, bounded classified retries, one token refresh."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from erpsync.errors import ErpAuthError, ErpRejected, TransientError
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

BODY = {"entity": {"id": "110"}, "item": {"items": [{"item": {"id": 98}, "quantity": 1}]}}


@pytest.fixture(scope="module")
def erp(tmp_path_factory) -> Iterator[str]:
    with start_erp_sandbox(tmp_path_factory.mktemp("erp")) as base_url:
        yield base_url


@pytest.fixture
def ops(erp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=erp) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client


def client_for(erp: str, sleeps: list[float], *, jitter: float = 0.0, **policy) -> NetSuiteClient:
    """A client whose retry waits are recorded instead of slept; ``jitter`` is what random() returns."""
    settings = NetSuiteSettings(base_url=erp, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    return NetSuiteClient(settings, retry=RetryPolicy(sleep=sleeps.append, random=lambda: jitter, **policy))


def fault(ops: httpx.Client, **spec) -> None:
    ops.post("/_sandbox/faults", json=spec).raise_for_status()


def stats(ops: httpx.Client) -> dict:
    return ops.get("/_sandbox/stats").json()


def test_a_429_waits_its_retry_after_plus_jitter_then_succeeds(erp, ops):
    fault(ops, status=429, count=2, retry_after=2)
    sleeps: list[float] = []
    with client_for(erp, sleeps, jitter=0.5, base=0.2) as netsuite:
        assert netsuite.upsert("salesOrder", "retry-429", BODY).isdigit()
    # 2 s from the server, plus up to `base` of jitter so that throttled workers do not return in lockstep
    assert sleeps == [pytest.approx(2.1), pytest.approx(2.1)]
    assert stats(ops)["too_many_requests"] == 2


def test_without_retry_after_the_backoff_is_exponential_with_full_jitter(erp, ops):
    fault(ops, status=500, count=3)
    sleeps: list[float] = []
    with client_for(erp, sleeps, jitter=0.5, base=0.1, cap=10) as netsuite:
        netsuite.upsert("salesOrder", "retry-500", BODY)
    assert sleeps == [pytest.approx(0.05), pytest.approx(0.1), pytest.approx(0.2)]


def test_retries_are_bounded(erp, ops):
    fault(ops, status=429, count=10, retry_after=0)
    sleeps: list[float] = []
    with client_for(erp, sleeps, max_attempts=4) as netsuite, pytest.raises(TransientError) as raised:
        netsuite.upsert("salesOrder", "retry-bounded", BODY)
    assert raised.value.status == 429
    assert len(sleeps) == 3
    assert stats(ops)["too_many_requests"] == 4, "four attempts, then the error goes to the task's slow retries"


def test_a_permanent_rejection_is_never_retried(erp, ops):
    fault(ops, status=400, count=1)
    sleeps: list[float] = []
    with client_for(erp, sleeps) as netsuite, pytest.raises(ErpRejected) as raised:
        netsuite.upsert("salesOrder", "retry-400", BODY)
    assert (raised.value.status, raised.value.code) == (400, "USER_ERROR")
    assert sleeps == []
    assert stats(ops)["by_status"] == {"200": 1, "400": 1}  # one token, one PUT


def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(erp, ops):
    sleeps: list[float] = []
    with client_for(erp, sleeps) as netsuite:
        first = netsuite.upsert("salesOrder", "retry-token", BODY)
        ops.post("/_sandbox/revoke-tokens").raise_for_status()  # every token issued so far dies at once
        assert netsuite.upsert("salesOrder", "retry-token", BODY) == first
    counters = stats(ops)
    assert (counters["unauthorized"], counters["tokens_issued"]) == (1, 2)
    assert sleeps == [], "the refresh is not a retry: no backoff"


def test_a_401_with_a_fresh_token_is_not_retried_blindly(erp, ops):
    fault(ops, status=401, count=5)
    sleeps: list[float] = []
    with client_for(erp, sleeps) as netsuite, pytest.raises(ErpAuthError, match="even with a fresh access token"):
        netsuite.upsert("salesOrder", "retry-401", BODY)
    counters = stats(ops)
    assert (counters["unauthorized"], counters["tokens_issued"]) == (2, 2), "one refresh, then a permanent error"
    assert sleeps == []
