"""Schema versions: created at the newest revision, refused when older or unknown, upgraded by `erpsync db upgrade`,
and several processes starting together on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import import_module

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from erpsync import migrations
from erpsync.db import make_engine, schema_transaction
from erpsync.errors import ConfigError
from erpsync.ledger import EventLabel, Ledger
from tests.conftest import REPO
from tests.integration.test_cli import erpsync

STARTERS = 6

CONNECT_AT = """
import sys, time
from erpsync.ledger import Ledger
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all processes reach the empty database together
Ledger.connect(sys.argv[1]).close()
"""


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def state(engine) -> migrations.SchemaState:
    with engine.connect() as connection:
        return migrations.read_state(connection)


def run(engine, action, revision: str) -> None:
    """An Alembic command (upgrade, downgrade) to ``revision``, through the revisions themselves."""
    with schema_transaction(engine) as connection:
        action(migrations.config(connection), revision)


def baseline_without_versions(engine) -> None:
    """The tables as the release before schema versions left them: no alembic_version."""
    with engine.begin() as connection:
        import_module(f"erpsync.migrations.versions.{migrations.BASELINE}").BASELINE.create_all(connection)


def differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, migrations.target_metadata())


def test_workers_starting_together_on_a_fresh_database_all_start(database_url, engine):
    start_at = str(time.time() + 3.0)
    starters = [subprocess.Popen([sys.executable, "-c", CONNECT_AT, database_url, start_at], cwd=REPO,
                                 stderr=subprocess.PIPE, text=True, env=dict(os.environ))
                for _ in range(STARTERS)]
    errors = [starter.communicate(timeout=120)[1] for starter in starters]
    assert [starter.returncode for starter in starters] == [0] * STARTERS, "\n".join(errors)[-3000:]
    assert state(engine).newest
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1


def test_an_empty_database_is_created_at_the_newest_revision_with_the_models_tables(database_url, engine):
    Ledger.connect(database_url).close()
    assert state(engine).revision == migrations.head()
    assert differences(engine) == []


def test_the_revisions_from_nothing_build_exactly_the_models_tables(engine):
    run(engine, command.upgrade, "head")
    assert state(engine).newest
    assert differences(engine) == []


def test_a_downgrade_to_the_baseline_and_back_keeps_the_schema(engine):
    run(engine, command.upgrade, "head")
    run(engine, command.downgrade, migrations.BASELINE)
    assert state(engine).revision == migrations.BASELINE
    assert {"erp_xref", "entity_state"} <= set(inspect(engine).get_table_names())
    run(engine, command.upgrade, "head")
    assert differences(engine) == []


def test_a_ledger_at_an_older_revision_is_refused_saying_what_to_run(database_url, engine):
    run(engine, command.upgrade, migrations.BASELINE)
    with pytest.raises(ConfigError, match=f"schema revision {migrations.BASELINE}.*Run `erpsync db upgrade`"):
        Ledger.connect(database_url)


def test_a_ledger_from_before_schema_versions_is_refused_saying_what_to_run(database_url, engine):
    baseline_without_versions(engine)
    with pytest.raises(ConfigError, match="before schema versions.*Run `erpsync db upgrade`"):
        Ledger.connect(database_url)


def test_a_revision_this_code_does_not_know_is_refused_and_left_alone(database_url, engine):
    Ledger.connect(database_url).close()
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(ConfigError, match="9999_from_the_future, which this erpsync does not know.*Upgrade erpsync"):
        Ledger.connect(database_url)
    with schema_transaction(engine) as connection:
        before, after = migrations.upgrade(connection)
    assert not before.known and after.revision == "9999_from_the_future"


def test_a_ledger_older_than_the_baseline_gets_what_its_release_added_at_connect(database_url, engine):
    baseline_without_versions(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_inbox_source_event"))
        connection.execute(text("ALTER TABLE entity_claim DROP COLUMN flow_run_id"))
    with schema_transaction(engine) as connection:
        migrations.upgrade(connection)
    assert state(engine).newest
    assert differences(engine) == []
    Ledger.connect(database_url).close()


def test_db_upgrade_and_current_on_the_command_line(database_url, engine):
    env = {"ERPSYNC_DATABASE_URL": database_url}
    baseline_without_versions(engine)
    current = erpsync("db", "current", env=env)
    assert current.returncode == 1 and "before schema versions" in current.stdout
    upgraded = erpsync("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"now at schema revision {migrations.head()} (the newest)" in upgraded.stdout
    again = erpsync("db", "upgrade", env=env)
    assert "already at" in again.stdout
    current = erpsync("db", "current", env=env)
    assert current.returncode == 0 and f"{migrations.head()} (the newest)" in current.stdout


def test_db_upgrade_help_explains_what_it_does():
    result = erpsync("db", "upgrade", "--help")
    assert result.returncode == 0
    for words in ("newest revision", "before schema versions", "baseline", "Stop workers"):
        assert words in result.stdout


def test_0003_adds_the_inbox_events_entity_and_order_code_and_keeps_existing_rows(database_url, engine):
    run(engine, command.upgrade, "0002_identity_both_ends")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO inbox_event (source, delivery_id, topic, received_at, payload_sha256, body, redeliveries, "
            "state) VALUES ('shopify', 'd-1', 'orders/create', '2025-07-01 00:00:00+00:00', 'ab', :body, 0, "
            "'synced')"), {"body": b"{}"})
    run(engine, command.upgrade, "head")
    assert state(engine).newest and differences(engine) == []
    ledger = Ledger.connect(database_url)
    try:
        (event,) = ledger.events_by_id([1])
        assert (event.delivery_id, event.entity, event.entity_label) == ("d-1", None, None)
        ledger.note_entities([EventLabel(1, "order/820982911946154508", "#1042")])
        assert [e.id for e in ledger.events_about(label="#1042")] == [1]
        assert [e.id for e in ledger.events_about(entity="order/820982911946154508")] == [1]
    finally:
        ledger.close()
    run(engine, command.downgrade, "0002_identity_both_ends")
    assert "entity_label" not in {c["name"] for c in inspect(engine).get_columns("inbox_event")}
