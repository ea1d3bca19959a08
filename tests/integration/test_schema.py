"""Schema creation: workers starting together on a fresh PostgreSQL database, and a ledger from before a column."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, inspect, text

from erpsync.db import normalise_url
from erpsync.ledger import Ledger
from tests.conftest import POSTGRES_URL, REPO, _postgres_database

STARTERS = 6

CONNECT_AT = """
import sys, time
from erpsync.ledger import Ledger
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all processes reach create_all together
Ledger.connect(sys.argv[1]).close()
"""


@pytest.mark.skipif(not POSTGRES_URL, reason="needs ERPSYNC_TEST_POSTGRES_URL")
def test_workers_starting_together_on_a_fresh_database_all_start():
    databases = _postgres_database()
    url = next(databases)
    try:
        start_at = str(time.time() + 3.0)
        starters = [subprocess.Popen([sys.executable, "-c", CONNECT_AT, url, start_at], cwd=REPO,
                                     stderr=subprocess.PIPE, text=True, env=dict(os.environ))
                    for _ in range(STARTERS)]
        errors = [starter.communicate(timeout=120)[1] for starter in starters]
        assert [starter.returncode for starter in starters] == [0] * STARTERS, "\n".join(errors)[-3000:]
        engine = create_engine(normalise_url(url))
        try:
            assert {"inbox_event", "entity_state", "entity_claim", "outcome"} <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
    finally:
        next(databases, None)


def test_a_ledger_created_before_a_new_nullable_column_gets_it(database_url):
    Ledger.connect(database_url).close()
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE entity_claim DROP COLUMN flow_run_id"))
        assert "flow_run_id" not in {c["name"] for c in inspect(engine).get_columns("entity_claim")}
        Ledger.connect(database_url).close()
        assert "flow_run_id" in {c["name"] for c in inspect(engine).get_columns("entity_claim")}
    finally:
        engine.dispose()
