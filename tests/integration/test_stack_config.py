"""The scaled-out local stack's settings: fresh PostgreSQL databases per run, workers by name, ERP faults.

The demo's defaults (SQLite, one worker named "worker", no faults) are what tests/e2e runs on; `make chaos`
uses the rest.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from erpsync.db import normalise_url
from erpsync.errors import ConfigError
from erpsync_dev.stack import StackConfig, fresh_postgres_databases
from tests.conftest import POSTGRES_URL


def test_the_demo_defaults_stay_on_sqlite_with_one_worker_and_no_faults(tmp_path) -> None:
    config = StackConfig(home=tmp_path)
    env = config.environment({})
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("sqlite+aiosqlite:///")
    assert env["ERPSYNC_DATABASE_URL"].startswith("sqlite:///")
    assert config.worker_names == ["worker"]
    assert "ERPSYNC_NETSUITE_CONCURRENCY" not in env and "ERPSYNC_NETSUITE_TIMEOUT_SECONDS" not in env
    assert "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" not in env
    args = config.erp_sandbox_args()
    assert not {"--fault-rate", "--throttle-rate", "--timeout-rate", "--reject-external-ids"} & set(args)


def test_the_scaled_out_stack_passes_its_databases_workers_and_faults_on(tmp_path) -> None:
    config = StackConfig(
        home=tmp_path, database_url="postgresql://postgres@127.0.0.1:5432/ledger_x",
        prefect_database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/prefect_x", workers=2,
        erp_fault_rate=0.05, erp_throttle_rate=0.02, erp_timeout_rate=0.01, erp_timeout_hold_seconds=12,
        erp_reject_external_ids=("shopify-order-1", "shopify-order-2"), erp_fault_seed=5,
        netsuite_timeout_seconds=10, netsuite_concurrency=5, crash_detection=True,
        extra_env={"ERPSYNC_RATE_LIMIT_PER_SECOND": "0"})
    env = config.environment({"PATH": "/bin"})
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://postgres@127.0.0.1:5432/prefect_x"
    assert env["ERPSYNC_DATABASE_URL"] == "postgresql://postgres@127.0.0.1:5432/ledger_x"
    assert (env["ERPSYNC_NETSUITE_CONCURRENCY"], env["ERPSYNC_NETSUITE_TIMEOUT_SECONDS"]) == ("5", "10")
    assert env["ERPSYNC_RATE_LIMIT_PER_SECOND"] == "0"
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"  # within the crash-detection automation's 90 s
    assert config.worker_names == ["worker-1", "worker-2"]
    args = config.erp_sandbox_args()
    flags = dict(zip(args[::2], args[1::2]))
    assert flags["--fault-rate"] == "0.05" and flags["--throttle-rate"] == "0.02"
    assert flags["--timeout-rate"] == "0.01" and flags["--timeout-hold-seconds"] == "12"
    assert flags["--reject-external-ids"] == "shopify-order-1,shopify-order-2" and flags["--seed"] == "5"


def test_no_workers_is_refused_by_name(tmp_path) -> None:
    with pytest.raises(ConfigError, match="workers: at least 1, got 0"):
        StackConfig(home=tmp_path, workers=0).worker_names


@pytest.mark.skipif(not POSTGRES_URL, reason="needs ERPSYNC_TEST_POSTGRES_URL")
def test_each_run_gets_fresh_databases_that_are_dropped_afterwards() -> None:
    admin = create_engine(normalise_url(POSTGRES_URL))

    def exists(name: str) -> bool:
        with admin.connect() as conn:
            return conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None

    try:
        with fresh_postgres_databases(POSTGRES_URL, "ledger", "prefect") as first, \
                fresh_postgres_databases(POSTGRES_URL, "ledger", "prefect") as second:
            assert first["prefect"].startswith("postgresql+asyncpg://")
            assert first["ledger"].startswith("postgresql+psycopg://")
            names = [url.rsplit("/", 1)[1] for url in (*first.values(), *second.values())]
            assert len(set(names)) == 4
            assert all(exists(name) for name in names)
            with create_engine(first["ledger"]).connect() as conn:  # empty and usable
                assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar() == 0
        assert not any(exists(name) for name in names)
    finally:
        admin.dispose()
