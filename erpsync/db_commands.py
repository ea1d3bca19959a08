"""`erpsync db upgrade` and `erpsync db current`: bring the ledger's schema to this release, and say where it is."""

from __future__ import annotations

import argparse

from erpsync.errors import ConfigError

DB_DESCRIPTION = """\
The ledger's schema is versioned (Alembic revisions shipped inside erpsync). A new ledger is created at the newest
revision on first start. After installing a release that changes the schema, workers and the receiver refuse to
start until the ledger is upgraded: stop them, run `erpsync db upgrade`, start them again.
The ledger is the one ERPSYNC_DATABASE_URL names (SQLite file or PostgreSQL). Back it up first."""

UPGRADE_DESCRIPTION = """\
Upgrade the ledger's schema to the newest revision this erpsync knows, in one transaction (on PostgreSQL, all or
nothing; several upgrades at once wait for each other). A ledger from a release before schema versions (its tables,
no alembic_version table) is first recorded at the baseline revision, then upgraded; an empty database is created
at the newest revision. A ledger already at the newest revision is left as it is. A ledger at a revision this
erpsync does not know was upgraded by a newer release: it is refused (exit 2); install that release instead.
Stop workers and the receiver first: a process running on the old schema fails on the new one."""

CURRENT_DESCRIPTION = """\
Print the ledger's schema revision and whether it is the newest this erpsync knows. Exit 0 when it is, 1 when
`erpsync db upgrade` is needed (or the database is empty), 2 when a newer erpsync migrated it."""


def add_commands(commands) -> None:
    db = commands.add_parser("db", help="the ledger's schema: upgrade it, show its revision",
                             description=DB_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="upgrade the ledger's schema to the newest revision",
                                 description=UPGRADE_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    upgrade.set_defaults(handler=_upgrade)
    current = actions.add_parser("current", help="the ledger's schema revision, and whether it is the newest",
                                 description=CURRENT_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    current.set_defaults(handler=_current)


def _engine():
    from erpsync.db import make_engine
    from erpsync.settings import Settings

    return make_engine(Settings.from_env().database_url)


def _where(engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _upgrade(args: argparse.Namespace) -> int:
    from erpsync import migrations
    from erpsync.db import schema_transaction

    engine = _engine()
    try:
        with schema_transaction(engine) as connection:
            before, after = migrations.upgrade(connection)
    finally:
        engine.dispose()
    if not before.known:
        raise ConfigError(before.refusal(_where(engine)))
    if before.revision == after.revision:
        print(f"{_where(engine)}: already at {after.describe()}")
    else:
        print(f"{_where(engine)}: was {before.describe()}; now at {after.describe()}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from erpsync import migrations

    engine = _engine()
    try:
        with engine.connect() as connection:
            state = migrations.read_state(connection)
    finally:
        engine.dispose()
    print(f"{_where(engine)}: {state.describe()}")
    if not state.known:
        return 2
    return 0 if state.newest else 1
