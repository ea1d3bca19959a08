"""Alembic's entry point for the ledger's revisions: runs them on the connection erpsync/migrations hands over.

There is no alembic.ini: erpsync/migrations builds the configuration in code and passes an open connection in
``config.attributes["connection"]``. ``render_as_batch``: SQLite cannot ALTER a column or a key, so Alembic
rebuilds the table (copy, drop, rename) there, and issues plain ALTERs on PostgreSQL.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from erpsync.db import make_engine
from erpsync.migrations import target_metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata(), render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def run_offline() -> None:
    """``--sql``: the statements as text, for a database administrator to review and run."""
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=SQLModel.metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
