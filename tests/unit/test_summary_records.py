"""The demo's summary and `erpsync status`: counts with what each counts, and the first ERP records, not thousands."""

from __future__ import annotations

import pytest

from erpsync import summary as summary_module
from erpsync.cli import main
from erpsync.ledger import Ledger
from erpsync.summary import COUNTS_EXPLAINED, RECORDS_SHOWN, Summary, format_summary


def _summary(records: int) -> Summary:
    return Summary(deliveries=records + 2, events=records + 1, redeliveries=1, synced=records, duplicates=1,
                   superseded=0,
                   records=[(f"shopify/order/{n}", f"shopify-order-{n}", str(500 + n)) for n in range(records)])


def test_the_first_records_are_listed_with_the_count_and_how_to_see_all() -> None:
    text = format_summary(_summary(40))
    assert f"ERP records (40, the first {RECORDS_SHOWN}): external id → ERP internal id" in text
    assert "shopify-order-0 → 500" in text and f"shopify-order-{RECORDS_SHOWN} →" not in text
    assert f"… and {40 - RECORDS_SHOWN} more: erpsync status --all lists every one" in text
    every = format_summary(_summary(40), max_records=None)
    assert "ERP records (40): external id" in every and "shopify-order-39 → 539" in every and "more:" not in every


def test_each_count_says_what_it_counts() -> None:
    text = format_summary(_summary(3))
    assert all(line in text for line in COUNTS_EXPLAINED)
    for count in ("received", "synced", "duplicates", "superseded", "dead-lettered", "skipped"):
        assert any(line.strip().startswith(count) for line in COUNTS_EXPLAINED), count
    assert "what the counts mean" not in format_summary(_summary(3), explain=False)


@pytest.mark.parametrize(("argv", "listed"), [(["status"], RECORDS_SHOWN), (["status", "--all"], 40)])
def test_status_lists_the_first_records_unless_all(tmp_path, monkeypatch, capsys, argv, listed) -> None:
    home = tmp_path / "state"
    home.mkdir()
    monkeypatch.setenv("ERPSYNC_HOME", str(home))
    monkeypatch.delenv("ERPSYNC_DATABASE_URL", raising=False)
    Ledger.connect(f"sqlite:///{home / 'erpsync.db'}").close()
    monkeypatch.setattr(summary_module, "summarize", lambda ledger: _summary(40))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert sum(1 for line in out.splitlines() if line.startswith("  shopify-order-")) == listed
