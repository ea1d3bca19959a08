"""The ledger commits durably (a delivery answered 202 survives a power loss) and its files are private.

The inbox holds raw customer payloads, so the state folder is created 0700 and the SQLite ledger with its
WAL and shared-memory files 0600, whatever the umask lets through. On SQLite, WAL with ``synchronous=NORMAL``
may lose the last commits on power loss (https://www.sqlite.org/pragma.html#pragma_synchronous); FULL syncs
the WAL at every commit. On PostgreSQL a commit is durable unless ``synchronous_commit`` is off
(https://www.postgresql.org/docs/current/wal-async-commit.html), which the ledger turns back on for its session.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from erpsync.ledger import Ledger
from erpsync.settings import private_folder
from tests.conftest import POSTGRES_URL, _postgres_database

SQLITE_SYNCHRONOUS_FULL = 2  # PRAGMA synchronous answers 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that lets everyone read new files (a common default), so only our own modes keep them private."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_commits_are_synced_to_disk(tmp_path: Path) -> None:
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'erpsync.db'}")
    try:
        with ledger.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar() == SQLITE_SYNCHRONOUS_FULL
    finally:
        ledger.close()


def test_the_state_folder_and_the_sqlite_ledger_are_private(tmp_path: Path, permissive_umask: None) -> None:
    home = tmp_path / "state"
    database = home / "erpsync.db"
    ledger = Ledger.connect(f"sqlite:///{database}")
    try:
        with ledger.engine.begin() as connection:  # a write, so the WAL and shared-memory files exist
            connection.execute(text("CREATE TABLE probe (x INTEGER)"))
            connection.execute(text("INSERT INTO probe VALUES (1)"))
        files = [database, database.with_name("erpsync.db-wal"), database.with_name("erpsync.db-shm")]
        assert all(f.exists() for f in files)
        assert mode(home) == 0o700
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        ledger.close()


def test_an_existing_state_folder_keeps_its_mode_and_a_new_ledger_in_it_is_private(
    tmp_path: Path, permissive_umask: None
) -> None:
    # The operator chose this folder's mode (a shared mount, a backup user's group): it is not changed.
    home = tmp_path / "shared"
    home.mkdir(mode=0o750)
    ledger = Ledger.connect(f"sqlite:///{home / 'erpsync.db'}")
    ledger.close()
    assert mode(home) == 0o750
    assert mode(home / "erpsync.db") == 0o600


def test_private_folder_creates_missing_parents_and_the_folder_itself_0700(
    tmp_path: Path, permissive_umask: None
) -> None:
    folder = private_folder(tmp_path / "a" / "b")
    assert folder == tmp_path / "a" / "b" and mode(folder) == 0o700
    assert private_folder(folder) == folder  # already there: fine


@pytest.mark.skipif(not POSTGRES_URL, reason="ERPSYNC_TEST_POSTGRES_URL not set")
def test_postgresql_commits_are_durable_even_where_the_connection_default_is_off() -> None:
    for base in _postgres_database():
        # A connection whose default is asynchronous commit, as a server or role setting could make it.
        ledger = Ledger.connect(f"{base}?options=-c%20synchronous_commit%3Doff")
        try:
            with ledger.engine.connect() as connection:
                assert connection.execute(text("SHOW synchronous_commit")).scalar() == "on"
        finally:
            ledger.close()
        # A stronger setting (waiting for a standby) is left as it is.
        ledger = Ledger.connect(f"{base}?options=-c%20synchronous_commit%3Dremote_apply")
        try:
            with ledger.engine.connect() as connection:
                assert connection.execute(text("SHOW synchronous_commit")).scalar() == "remote_apply"
        finally:
            ledger.close()
