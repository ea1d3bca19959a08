"""The ledger's database engine: an embedded SQLite file by default, PostgreSQL when the URL says so."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import create_engine

from erpsync.errors import ConfigError
from erpsync.settings import private_folder


def dialect_insert(connection: Connection):
    """The INSERT construct of the connection's database, which has ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (both backends the ledger runs on spell ``ON CONFLICT`` alike)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs for many writers in many processes."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"ERPSYNC_DATABASE_URL: not a database URL ({exc})") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_private_file(Path(parsed.database))
        # Receiver, workers and sweep write from separate processes: wait for the lock instead of failing.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - exercised by every SQLite test
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # The receiver answers 202 after COMMIT. In WAL mode NORMAL syncs only at checkpoints, so a power
            # loss can undo commits already answered; FULL syncs the WAL at every commit
            # (https://www.sqlite.org/pragma.html#pragma_synchronous). The intake commits a whole batch of
            # deliveries at once, so this costs one sync per batch (docs/BENCHMARKS.md, "Intake").
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_size=5, max_overflow=10)
        _durable_commits(engine)
        _ping_idle_connections(engine)
        return engine
    raise ConfigError(f"ERPSYNC_DATABASE_URL: unsupported backend {parsed.get_backend_name()!r} (use sqlite or postgresql)")


def _create_private_file(database: Path) -> None:
    """Create the SQLite file readable by this user only (0600) before SQLite does, in a private state folder.

    The inbox keeps raw customer payloads. SQLite creates the ``-wal`` and ``-shm`` files with the database
    file's permissions, whatever the umask (SQLite's own test/journal3.test checks this), so they are private
    too. An existing file keeps its mode."""
    private_folder(database.parent)
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return  # ours from an earlier start, or another process created it a moment ago
    os.close(fd)  # an empty file is an empty SQLite database


def _durable_commits(engine: Engine) -> None:
    """Turn ``synchronous_commit`` back on for the ledger's sessions where a server or role setting turned it off.

    With it off, PostgreSQL reports a commit before its WAL reaches disk, and a crash can lose the last ones
    (https://www.postgresql.org/docs/current/wal-async-commit.html): a delivery answered 202 could vanish.
    ``local``, ``remote_write``, ``on`` and ``remote_apply`` all flush locally first and are left as set. One
    more round trip per new connection, not per commit."""

    @event.listens_for(engine, "connect")
    def _synchronous_commit(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            if cursor.fetchone()[0] == "off":
                cursor.execute("SET synchronous_commit TO on")
        dbapi_connection.commit()  # a SET inside a transaction rolled back later would be undone


# A pooled connection checked in less than this long ago is used without a ping (see _ping_idle_connections).
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle, instead of on every checkout (pool_pre_ping).

    The ping is a round trip. The receiver's inbox writer checks a connection out for every batch, and under a
    burst every round trip also waits for the GIL behind the request threads: pinging there cost 2-10 ms a batch
    for a connection used a millisecond before. A connection that sat idle (the server may have restarted or
    dropped it meanwhile) is still pinged, and replaced when dead. One dropped less than PING_AFTER_IDLE_SECONDS
    after its last use fails its next statement instead: SQLAlchemy sees the disconnect and empties the pool,
    and the caller gets a TransientError (the receiver answers 503; the source retries).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection is dead") from exc  # the pool connects anew


# Key of the advisory lock that serialises schema work on PostgreSQL (any constant of our own).
SCHEMA_LOCK_KEY = 0x6572_7073_796E_6301  # "erpsync" + 1


@contextmanager
def schema_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the ledger's schema lock: one process at a time creates or upgrades the schema.

    On PostgreSQL several workers starting together on a fresh database would race to create it (both see no
    table, one CREATE fails on the type or index the other just made): a transaction-scoped advisory lock lets one
    create and the others then find it in place. On SQLite ``BEGIN IMMEDIATE`` takes the database's write lock
    before the first read (Python's sqlite3 would begin only at the first INSERT, after the check).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection


def prepare_schema(engine: Engine, *, create: bool = True) -> None:
    """Check that the ledger's schema is the newest revision this code knows; create an empty database at it.

    Anything else (an older revision, a ledger from before schema versions, a revision this code does not know)
    is a ConfigError saying what was found and what to run: workers and the receiver refuse to start rather
    than write to tables they do not know. Upgrading is a deliberate step (``erpsync db upgrade``), never a side
    effect of a process starting.
    """
    from erpsync import migrations

    with engine.connect() as connection:
        state = migrations.read_state(connection)
    if state.known and state.newest:
        return
    if state.empty and create:
        with schema_transaction(engine) as connection:
            state = migrations.read_state(connection)  # another process may have created it meanwhile
            if state.empty:
                migrations.create_newest(connection)
                return
        if state.known and state.newest:
            return
    raise ConfigError(state.refusal(engine.url.render_as_string(hide_password=True)))
