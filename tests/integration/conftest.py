"""The ERP sandbox as a process for a test module, its reset endpoint, and a connector to it.

A module starts the sandbox with its own options by setting ``ERP_SANDBOX_ARGS`` (e.g. the items it knows,
faults to inject); the sandbox is shared by the module's tests and reset before each test that asks for
``ops`` or ``client``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

# Retries without waiting: a test of behaviour, not of timing.
FAST = RetryPolicy(max_attempts=3, base=0.01, cap=0.05, max_retry_after=0.05)


@pytest.fixture(scope="module")
def erp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sandbox's base URL; started with the module's ``ERP_SANDBOX_ARGS`` (default: items 1–999)."""
    args = getattr(request.module, "ERP_SANDBOX_ARGS", ("--items", "1-999"))
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), *args) as base_url:
        yield base_url


@pytest.fixture
def ops(erp: str) -> Iterator[httpx.Client]:
    """The sandbox's own test endpoints, reset before each test."""
    with httpx.Client(base_url=erp) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client


@pytest.fixture
def client(erp: str, ops: httpx.Client, request: pytest.FixtureRequest) -> Iterator[NetSuiteClient]:
    """The NetSuite connector on the reset sandbox; a module's ``ERP_RETRY`` replaces the quick retries."""
    settings = NetSuiteSettings(base_url=erp, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    with NetSuiteClient(settings, retry=getattr(request.module, "ERP_RETRY", FAST)) as netsuite:
        yield netsuite
