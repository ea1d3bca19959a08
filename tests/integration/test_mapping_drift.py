"""Drift as signal: a run logs a source field no rule reads once, the first time any worker meets it; `erpsync mapping
drift` narrows by topic and age and shows what is new since it last looked, on a real ledger (SQLite / PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from erpsync.cli import main
from erpsync.ledger import InboxEvent, utcnow
from erpsync.pipeline import SyncPipeline

ORDERS = """\
from: shopify
topics: [orders/create, orders/updated]
entity: {type: order, id: "{id}", version: updated_at}
record_type: salesOrder
external_id: "shopify-order-{id}"
fields:
  - {source_field: name, target_field: otherRefNum}
ignore: [admin_graphql_api_id]
"""
REFUNDS = """\
from: shopify
topic: refunds/create
entity: {type: refund, id: "{id}", version: created_at}
record_type: cashRefund
external_id: "shopify-refund-{id}"
fields:
  - {source_field: note, target_field: memo}
"""


def order(**extra) -> dict:
    return {"id": 1, "name": "#1001", "updated_at": "2026-01-01T00:00:00Z", "admin_graphql_api_id": "gid://1",
            **extra}


@pytest.fixture
def mappings(tmp_path):
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "orders.yaml").write_text(ORDERS)
    (folder / "refunds.yaml").write_text(REFUNDS)
    return folder


def store(ledger, payload: dict, topic: str = "orders/create") -> int:
    body = json.dumps(payload).encode()
    return ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic=topic, shop=None,
                                  triggered_at=None, body=body, payload_sha256=hashlib.sha256(body).hexdigest()
                                  ).event_id


def drift_lines(caplog) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if "no rule reads" in r.getMessage()]
    caplog.clear()
    return lines


def worker(ledger, mappings) -> SyncPipeline:
    return SyncPipeline(ledger, mappings, lambda: None)  # validate never opens the ERP writer


def test_a_run_logs_a_new_field_once_across_workers(ledger, mappings, caplog):
    caplog.set_level(logging.INFO, logger="erpsync.pipeline")
    first, second = worker(ledger, mappings), worker(ledger, mappings)
    first.validate(store(ledger, order(total_weight=0, tags="")))
    [line] = drift_lines(caplog)
    assert line.startswith("orders@") and "2 new source field(s) no rule reads" in line
    assert line.endswith(": tags, total_weight") and "admin_graphql_api_id" not in line, "ignore: is left out"
    assert "#1001" not in line, "names only, never a value"

    first.validate(store(ledger, order(total_weight=1, tags="a")))
    second.validate(store(ledger, order(total_weight=2, tags="b")))  # another worker: the ledger remembers
    assert drift_lines(caplog) == []

    second.validate(store(ledger, order(total_weight=3, tags="c", po_number="7")))
    [line] = drift_lines(caplog)
    assert "1 new source field(s)" in line and line.endswith(": po_number")
    first.validate(store(ledger, order(po_number="8")))
    assert drift_lines(caplog) == []


@pytest.fixture
def cli(ledger, database_url, mappings, monkeypatch, capsys):
    monkeypatch.setenv("ERPSYNC_DATABASE_URL", database_url)
    monkeypatch.setenv("ERPSYNC_MAPPINGS_DIR", str(mappings))

    def run(*args: str) -> tuple[int, str]:
        code = main(["mapping", "drift", *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


def test_drift_prints_counts_first_then_the_fields_grouped_by_mapping(ledger, cli):
    store(ledger, order(total_weight=0))
    store(ledger, order(total_weight=0, tags=""), "orders/updated")
    store(ledger, {"id": 5, "created_at": "2026-01-01T00:00:00Z", "note": "", "amount": "1.00"}, "refunds/create")
    store(ledger, {"id": 6}, "orders/delete")
    code, out = cli()
    assert code == 0
    assert out.splitlines()[:5] == [
        "4 event(s) read; 3 field(s) no rule reads in 2 of 2 mapping(s)",
        "  orders: 2 event(s) (shopify orders/create, orders/updated), 2 field(s)",
        "  refunds: 1 event(s) (shopify refunds/create), 1 field(s)",
        "  shopify orders/delete: 1 event(s), no mapping handles this topic",
        "",
    ]
    orders_at, refunds_at = out.index("\norders ("), out.index("\nrefunds (")
    assert orders_at < out.index("  tags  (1 of 2 event(s))") < out.index("  total_weight  (2 of 2 event(s))") \
        < refunds_at < out.index("  amount  (1 of 1 event(s))")
    assert "admin_graphql_api_id" not in out


def test_drift_topic_reads_only_that_topics_events(ledger, cli):
    store(ledger, order(total_weight=0))
    store(ledger, order(tags=""), "orders/updated")
    code, out = cli("--topic", "orders/updated")
    assert code == 0
    assert out.startswith("1 event(s) of topic orders/updated read; 1 field(s) no rule reads in 1 of 1 mapping(s)")
    assert "  tags  (1 of 1 event(s))" in out and "total_weight" not in out


def test_drift_refuses_a_topic_nobody_knows_suggesting_the_close_one(ledger, cli):
    store(ledger, order())
    code, out = cli("--topic", "orders/craete")
    assert code == 1
    assert "unknown topic 'orders/craete': no mapping handles it and no event has it (did you mean 'orders/create'?)" \
        in out


def test_drift_since_reads_only_events_received_within_it(ledger, cli):
    old = store(ledger, order(total_weight=0))
    store(ledger, order(tags=""))
    with ledger.session() as session:
        session.exec(update(InboxEvent).where(InboxEvent.id == old).values(received_at=utcnow() - timedelta(days=3)))
        session.commit()
    code, out = cli("--since", "2d")
    assert code == 0
    assert out.startswith("1 event(s) received in the last 2d read; 1 field(s)")
    assert "tags" in out and "total_weight" not in out
    assert cli("--since", "4d")[1].startswith("2 event(s) received in the last 4d read; 2 field(s)")


def test_drift_since_refuses_a_value_without_a_unit(cli):
    with pytest.raises(SystemExit) as exit_:
        cli("--since", "2")
    assert exit_.value.code == 2


def test_drift_new_lists_only_what_it_has_not_listed_before(ledger, cli):
    store(ledger, order(total_weight=0))
    code, out = cli("--new")
    assert code == 0
    assert out.startswith("1 event(s) read; 1 new field(s) (not listed by --new before) no rule reads")
    assert "  total_weight  (1 of 1 event(s))" in out
    code, out = cli("--new")
    assert out.startswith("1 event(s) read; 0 new field(s)") and "total_weight" not in out
    store(ledger, order(total_weight=1, tags=""))
    code, out = cli("--new")
    assert out.startswith("2 event(s) read; 1 new field(s)") and "  tags  (1 of 2 event(s))" in out
    assert "total_weight" not in out
    assert "total_weight" in cli()[1], "without --new every field is listed, whatever --new has shown"


def test_drift_help_explains_each_option(capsys):
    with pytest.raises(SystemExit):
        main(["mapping", "drift", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for option, words in (("--topic T", "only events of this topic"),
                          ("--since DURATION", "only events received within this long before now, e.g. 7d"),
                          ("--new", "only fields this view has not listed before"),
                          ("--limit N", "read at most the newest N events")):
        assert f"{option} {words}" in out
    assert "Counts first, then the fields grouped by mapping" in out
