"""Commands that only read the ledger say when there is nothing to read, instead of creating one and printing
zeros: no ledger at all (with the demo's ledger named when there is one), or a ledger with no events yet."""

from __future__ import annotations

import pytest

from erpsync.cli import main
from erpsync.errors import ConfigError
from erpsync.ledger import Ledger
from erpsync.settings import Settings, missing_ledger


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "state"
    monkeypatch.setenv("ERPSYNC_HOME", str(home))
    monkeypatch.delenv("ERPSYNC_DATABASE_URL", raising=False)
    return home


@pytest.mark.parametrize("argv", [["status"], ["mapping", "drift"], ["dlq", "list"], ["dlq", "show", "1"]])
def test_a_read_only_command_refuses_a_missing_ledger_and_creates_none(home, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"no ledger at {home / 'erpsync.db'}" in err and "ERPSYNC_HOME" in err
    assert not (home / "erpsync.db").exists()


def test_the_missing_ledger_message_names_the_demos_ledger_when_there_is_one(home, tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    Ledger.connect(f"sqlite:///{demo / 'erpsync.db'}").close()
    message = missing_ledger(Settings.from_env(), demo_home=demo)
    assert message and f"ERPSYNC_HOME={demo} erpsync" in message
    assert missing_ledger(Settings.from_env(), demo_home=tmp_path / "no-demo") == \
        f"no ledger at {home / 'erpsync.db'} (ERPSYNC_HOME or ERPSYNC_DATABASE_URL choose it)"


def test_status_on_an_empty_ledger_says_it_holds_no_events(home, capsys):
    home.mkdir()
    Ledger.connect(f"sqlite:///{home / 'erpsync.db'}").close()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "received      0 deliveries" in out
    assert f"the ledger sqlite:///{home / 'erpsync.db'} holds no events yet" in out


def test_a_server_database_is_never_reported_missing(home, monkeypatch):
    monkeypatch.setenv("ERPSYNC_DATABASE_URL", "postgresql+psycopg://erpsync:pw@db.internal/erpsync")
    assert missing_ledger(Settings.from_env()) is None


@pytest.mark.parametrize("value", ["0", "two", "-1", ""])
def test_a_bad_number_of_batch_runs_is_refused_by_name(tmp_path, value):
    with pytest.raises(ConfigError, match=f"ERPSYNC_BATCH_RUNS: expected a whole number of sync-batch runs, at "
                                          f"least 1, got {value!r}"):
        Settings.from_env({"ERPSYNC_HOME": str(tmp_path), "ERPSYNC_BATCH_RUNS": value})


def test_a_backlog_starts_one_batch_run_unless_told(tmp_path):
    assert Settings.from_env({"ERPSYNC_HOME": str(tmp_path)}).batch_runs == 1
    assert Settings.from_env({"ERPSYNC_HOME": str(tmp_path), "ERPSYNC_BATCH_RUNS": "3"}).batch_runs == 3
