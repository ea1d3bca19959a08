"""A ledger written by the previous release (7763480, before schema versions) upgrades with nothing lost: every row,
every value, in its new place; and the ledger then works as one created by this release.

SQLite: the release's own ledger, dumped as SQL (tests/fixtures/ledger/make_previous_release.py), loaded into a
fresh file. PostgreSQL: the baseline revision creates the release's tables and the same rows are inserted.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from sqlalchemy import MetaData, Table, select, text

from erpsync import migrations
from erpsync.db import make_engine, schema_transaction
from erpsync.ledger import EntityKey, Ledger
from tests.conftest import fixture_path

DUMP = ("ledger", "release-7763480.sqlite.sql")

# Old table → (new table, renamed columns, new columns with the value an existing row gets).
COLUMN_MAP = {
    # 0003: entity, entity_label filled by the next run; 0006: read_at by the next read of a notice's record
    "inbox_event": ("inbox_event", {}, {"entity": None, "entity_label": None, "read_at": None}),
    "entity_state": ("entity_state", {"source": "from_system", "erp_record_type": "to_record_type",
                                      "erp_id": "to_id"}, {"to_system": "netsuite", "to_version": None}),
    "entity_claim": ("entity_claim", {"source": "from_system"}, {"to_system": "netsuite"}),
    "outcome": ("outcome", {"erp_id": "to_id"},
                {"to_system": lambda row: "netsuite" if row["entity_type"] is not None else None}),
    "erp_xref": ("xref", {"erp_id": "record_id"}, {"system": "netsuite"}),
}


def rows(connection, table: str) -> list[dict]:
    reflected = Table(table, MetaData(), autoload_with=connection)
    return [dict(row._mapping) for row in connection.execute(select(reflected))]


def canonical(found: list[dict]) -> list[tuple]:
    return sorted((tuple(sorted(row.items())) for row in found), key=repr)


def load_previous_release(database_url: str, engine) -> None:
    with fixture_path(*DUMP).open() as dump:
        script = dump.read()
    if engine.dialect.name == "sqlite":
        connection = sqlite3.connect(engine.url.database)
        try:
            connection.executescript(script)
        finally:
            connection.close()
        return
    # PostgreSQL: the release's tables from the baseline (no version table, as that release left them), and the
    # release's rows read from its dump through SQLite.
    baseline = import_module(f"erpsync.migrations.versions.{migrations.BASELINE}").BASELINE
    source = sqlite3.connect(":memory:", detect_types=0)
    try:
        source.executescript(script)
        with engine.begin() as connection:
            baseline.create_all(connection)
            for table in baseline.sorted_tables:
                names = [column.name for column in table.columns]
                found = source.execute(f"SELECT {', '.join(names)} FROM {table.name}").fetchall()
                connection.execute(table.insert(), [dict(zip(names, _typed(table, row), strict=True)) for row in found])
            for table in ("inbox_event", "outcome"):  # the serial ids continue after the copied rows
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT MAX(id) FROM {table}))"))
    finally:
        source.close()


def _typed(table, row):
    """SQLite's text timestamps as the aware datetimes PostgreSQL's columns take."""
    for column, value in zip(table.columns, row, strict=True):
        if value is not None and column.type.python_type is datetime:
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        yield value


@pytest.fixture
def previous_release(database_url):
    engine = make_engine(database_url)
    load_previous_release(database_url, engine)
    yield engine
    engine.dispose()


def test_a_ledger_of_the_previous_release_upgrades_with_every_row_and_value_in_its_new_place(previous_release):
    engine = previous_release
    with engine.connect() as connection:
        assert migrations.read_state(connection).pre_versions
        before = {table: rows(connection, table) for table in COLUMN_MAP}
    assert {table: len(found) for table, found in before.items()} == {
        "inbox_event": 8, "entity_state": 3, "entity_claim": 2, "outcome": 7, "erp_xref": 2}
    assert any(row["entity_type"] == "variant" for row in before["entity_state"])  # an element's own row

    with schema_transaction(engine) as connection:
        _, after_state = migrations.upgrade(connection)
    assert after_state.newest

    with engine.connect() as connection:
        for old, (new, renamed, added) in COLUMN_MAP.items():
            expected = []
            for row in before[old]:
                moved = {renamed.get(name, name): value for name, value in row.items()}
                moved.update({name: value(row) if callable(value) else value for name, value in added.items()})
                expected.append(moved)
            found = rows(connection, new)
            assert canonical(found) == canonical(expected), new
            assert set(found[0]) == set(expected[0]), f"{new}: a column neither carried nor filled"


def test_the_upgraded_ledger_works_as_a_new_one(previous_release, database_url):
    with schema_transaction(previous_release) as connection:
        migrations.upgrade(connection)
    ledger = Ledger.connect(database_url)
    try:
        order = ledger.entity_state(EntityKey("shopify", "order", "1001", "netsuite"))
        assert (order.to_record_type, order.to_id, order.last_payload_sha256) == ("salesOrder", "501", "p2")
        variant = ledger.entity_state(EntityKey("shopify", "variant", "shopify-variant-7", "netsuite"))
        assert (variant.to_id, variant.external_id) == ("9001", "shopify-variant-7")
        held = EntityKey("shopify", "order", "1002", "netsuite")
        assert not ledger.claim(held, 999, stale_after=timedelta(days=36500))  # still held by its event
        assert [o.to_id for o in ledger.outcomes(1)] == ["501"]
        intake = ledger.record_delivery(source="shopify", delivery_id="after-upgrade", topic="orders/create",
                                        shop=None, triggered_at=None, body=b"{}", payload_sha256="0" * 64)
        assert intake.is_new and intake.event_id == 9
        ledger.record_outcome(event_id=intake.event_id, source="shopify", outcome="synced",
                              key=EntityKey("shopify", "order", "1003", "netsuite"), external_id="shopify-order-1003",
                              to_id="502", mapping_version="m", payload_sha256="0" * 64,
                              applied=("salesOrder", datetime(2024, 4, 1, tzinfo=UTC)))
        assert len(ledger.outcomes()) == 8 and ledger.outcomes(9)[0].to_system == "netsuite"
    finally:
        ledger.close()
