"""The pipeline writes each record to its mapping's target (`to:`), through a writer opened once per target."""

from __future__ import annotations

from pathlib import Path

import pytest

from erpsync.errors import ConfigError
from erpsync.ledger import Ledger
from erpsync.pipeline import SyncPipeline
from erpsync.systems import open_writer


@pytest.fixture
def ledger(tmp_path: Path):
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger
    ledger.close()


class Opened:
    """What a writer opener was asked for: the seam production fills with ``erpsync.systems.open_writer``."""

    def __init__(self):
        self.asked: list[str] = []

    def __call__(self, target: str):
        self.asked.append(target)
        return Closing()


class Closing:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_writer_is_opened_once_per_target_and_closed_with_the_pipeline(ledger, tmp_path):
    opened = Opened()
    pipeline = SyncPipeline(ledger, tmp_path, writers=opened)
    first, again = pipeline.writer("netsuite"), pipeline.writer("netsuite")
    assert first is again and opened.asked == ["netsuite"]
    assert pipeline.erp is first  # the default target's writer
    pipeline.close()
    assert first.closed


def test_a_pipeline_given_only_the_default_writer_refuses_another_target(ledger, tmp_path):
    pipeline = SyncPipeline(ledger, tmp_path, Closing)
    with pytest.raises(ConfigError, match="writes to netsuite only; a mapping writes to 'tryton'"):
        pipeline.writer("tryton")


def test_a_system_that_takes_no_records_has_no_writer():
    with pytest.raises(ConfigError, match="'woocommerce' is not a system erpsync writes records to"):
        open_writer("woocommerce", "sqlite://")
    with pytest.raises(ConfigError, match="unknown system 'sap'"):
        open_writer("sap", "sqlite://")


def test_one_of_erp_or_writers(ledger, tmp_path):
    with pytest.raises(TypeError):
        SyncPipeline(ledger, tmp_path)
