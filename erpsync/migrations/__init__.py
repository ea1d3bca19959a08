"""The ledger's schema versions (Alembic, configured in code): read where a ledger stands, create, adopt, upgrade.

Revisions live in ``versions/``; ``env.py`` runs them on a connection handed over here, so no alembic.ini is
needed at run time. A new revision: write it beside the others (``down_revision`` = the newest), or let Alembic
draft one with ``alembic.command.revision(config(url=...), message, autogenerate=True)`` against a ledger at the
newest revision, then read and correct it (tests/integration/test_schema.py checks the result equals the models).

Where a ledger can stand:
- empty (no table of ours, no version table): Ledger.connect creates it at the newest revision;
- pre-versions (our tables, no version table): a release before schema versions; ``upgrade`` adopts it at the
  baseline (adding what that release added at connect, if missing), then upgrades;
- at an older revision: ``upgrade`` carries it forward;
- at the newest revision: in use;
- at a revision this code does not know: a newer erpsync migrated it; only a newer erpsync may use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

# Alembic says "Context impl SQLiteImpl." at INFO on every connect: every command and worker would print it.
# `erpsync db upgrade` reports what it did itself.
logging.getLogger("alembic").setLevel(logging.WARNING)

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
BASELINE = "0001_baseline"
# Every table name a release of erpsync created: one of them present means the database is a ledger already.
LEDGER_TABLES = frozenset({"inbox_event", "entity_state", "entity_claim", "outcome", "erp_xref", "xref"})


def target_metadata():
    """The tables as the models declare them (what the newest revision must produce)."""
    from sqlmodel import SQLModel

    import erpsync.drift_fields  # noqa: F401  (registers the table of drift fields seen)
    import erpsync.ledger  # noqa: F401  (registers the ledger's tables)
    import erpsync.xref_cache  # noqa: F401  (registers the cross-reference table)

    return SQLModel.metadata


def config(connection=None, *, url: str | None = None) -> Config:
    """Alembic's configuration without a file: the revisions' folder, and the connection (or URL) to run on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    return scripts().get_current_head()


def known_revisions() -> list[str]:
    """This code's revisions, newest first."""
    return [script.revision for script in scripts().walk_revisions()]


@dataclass(frozen=True)
class SchemaState:
    """Where one ledger database stands."""

    revision: str | None  # the version table's revision; None when there is no version table
    tables: frozenset[str]  # ledger tables present

    @property
    def empty(self) -> bool:
        return self.revision is None and not self.tables

    @property
    def pre_versions(self) -> bool:
        return self.revision is None and bool(self.tables)

    @property
    def known(self) -> bool:
        return self.revision is None or self.revision in known_revisions()

    @property
    def newest(self) -> bool:
        return self.revision == head()

    def describe(self) -> str:
        if self.empty:
            return "an empty database"
        if self.pre_versions:
            return "a ledger from before schema versions (tables, no alembic_version)"
        if not self.known:
            return f"schema revision {self.revision}, which this erpsync does not know"
        return f"schema revision {self.revision}" + (" (the newest)" if self.newest else f" (the newest is {head()})")

    def refusal(self, where: str) -> str:
        """Why a worker or the receiver must not run on this ledger, and what to run."""
        if not self.known:
            return (f"the ledger at {where} is at {self.describe()}: a newer erpsync migrated it. "
                    f"Upgrade erpsync to the release that did (this one knows up to {head()})")
        if self.empty:
            return f"the ledger at {where} is {self.describe()}: run `erpsync db upgrade` to create it"
        return (f"the ledger at {where} is {self.describe()}; this erpsync needs {head()}. "
                f"Run `erpsync db upgrade` (with ERPSYNC_DATABASE_URL pointing at it), then start again")


def read_state(connection) -> SchemaState:
    tables = set(inspect(connection).get_table_names())
    revision = MigrationContext.configure(connection).get_current_revision() if VERSION_TABLE in tables else None
    return SchemaState(revision=revision, tables=frozenset(tables & LEDGER_TABLES))


def create_newest(connection) -> None:
    """An empty database straight at the newest revision: the models' tables, stamped. Replaying every revision
    would build the same tables (tests/integration/test_schema.py compares them) more slowly."""
    target_metadata().create_all(connection)
    MigrationContext.configure(connection).stamp(scripts(), head())


def adopt(connection) -> None:
    """Stamp a ledger from before schema versions at the baseline, after adding what its release would have added
    at connect when missing: an older release's ledger lacks a nullable column or an index that the baseline has.
    """
    baseline = import_module(f"erpsync.migrations.versions.{BASELINE}").BASELINE
    inspector = inspect(connection)
    preparer = connection.dialect.identifier_preparer
    for table in baseline.sorted_tables:
        if not inspector.has_table(table.name):
            table.create(connection)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable or column.primary_key:
                raise RuntimeError(f"{table.name} lacks {column.name}, which no release added later: not a ledger "
                                   "erpsync created")
            kind = column.type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE {preparer.format_table(table)} "
                                    f"ADD COLUMN {preparer.format_column(column)} {kind}"))
        for index in table.indexes:
            index.create(connection, checkfirst=True)
    MigrationContext.configure(connection).stamp(scripts(), BASELINE)


def upgrade(connection) -> tuple[SchemaState, SchemaState]:
    """Bring the ledger on ``connection`` (in a transaction, holding the schema lock) to the newest revision.

    Returns where it stood before and after. An empty database is created at the newest revision; a ledger from
    before schema versions is adopted at the baseline first. A revision this code does not know is left alone
    (``before.known`` is False).
    """
    from alembic import command

    before = read_state(connection)
    if not before.known:
        return before, before
    if before.empty:
        create_newest(connection)
    else:
        if before.pre_versions:
            adopt(connection)
        command.upgrade(config(connection), "head")
    return before, read_state(connection)
