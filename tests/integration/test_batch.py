"""Batches without Prefect: the inbox hands events to batch runs, and a chunk runs them through the pipeline.

A real ledger (SQLite / PostgreSQL) and the ERP sandbox as its own process.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from erpsync.batch import batch_summary, run_chunk, table_rows
from erpsync.pipeline import CLAIM_STALE_AFTER
from tests.conftest import with_quantity
from tests.integration.test_pipeline import pipeline, sample_order, store  # noqa: F401  (pipeline: a fixture)
from tests.sandbox_procs import start_erp_sandbox


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory):
    # Item 221 (GIFTWRAP-STD in the lookup table) is unknown to this ERP: a permanent rejection. The fallback
    # items 900-907 (discount, shipping, custom lines) stay.
    items = ("--items", "1-220,222-999")
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), *items, "--latency-ms", "20") as base_url:
        yield base_url


def test_batch_runs_take_disjoint_events_and_a_rerun_takes_its_own_back_first(ledger):
    ids = [store(ledger, sample_order()) for _ in range(12)]
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda run: ledger.take_for_batch(run, limit=5), ["run-a", "run-b"])
    assert len(first) == len(second) == 5 and not set(first) & set(second)
    # "run-a" crashed and was rescheduled under the same id: it finds its 5, then takes the 2 nobody has.
    assert ledger.held_by_run("run-a") == first
    rest = ledger.take_for_batch("run-a", limit=10)
    assert rest == sorted(set(ids) - set(first) - set(second))
    assert ledger.take_for_batch("run-c", limit=10) == []
    ledger.release_from_batch(first[0])
    assert ledger.take_for_batch("run-c", limit=10) == [first[0]]


def test_a_chunk_syncs_the_newest_version_and_hands_off_what_fails(pipeline, ledger):  # noqa: F811 (a fixture)
    plain = [sample_order() for _ in range(6)]
    versions = [sample_order(updated_at=f"2026-11-0{day}T10:00:00Z") for day in (1, 2, 3)]
    for version, quantity in zip(versions, (1, 2, 3), strict=True):
        version["id"] = versions[0]["id"]
        with_quantity(version, 0, quantity)
    bad = sample_order()
    bad["line_items"][0]["sku"] = "GIFTWRAP-STD"  # same price: the order still adds up, the ERP refuses the item
    orders = plain + versions + [bad]
    random.Random(4).shuffle(orders)
    ids = {id(order): store(ledger, order) for order in orders}

    result = run_chunk(pipeline, ids.values(), run_id="batch-run", threads=4)

    assert result.handed_off == {ids[id(bad)]: "ErpRejected"}
    # Events of one entity run in inbox order: the versions apply or are superseded by what came before.
    assert sum(result.outcomes.values()) == 9 and result.outcomes["synced"] >= 7
    newest = pipeline.erp.get("salesOrder", f"eid:shopify-order-{versions[0]['id']}", expand_sub_resources=True)
    assert newest["item"]["items"][0]["quantity"] == 3
    # The batch records no failure: the event's own sync-event run will, so the dead-letter view stays one
    # failed run per event. Its claim is released for that run.
    assert [o.outcome for o in ledger.outcomes(ids[id(bad)])] == []
    assert ledger.get_event(ids[id(bad)]).state == "received"
    assert ledger.claim(pipeline.validate(ids[id(bad)]).key, -1, stale_after=CLAIM_STALE_AFTER)
    # Each event is in the run's table, and the inbox knows who each is about, so `erpsync status '#1042'` finds it.
    rows = {row["event"]: row for row in table_rows(result)[0]}
    assert len(rows) == len(orders)
    bad_row = rows[str(ids[id(bad)])]
    assert bad_row["outcome"] == "handed off (ErpRejected): its own sync-event run" and bad_row["ERP id"] == "-"
    assert bad_row["entity"] == f"order/{bad['id']}" and bad_row["order code"] == bad["name"]
    synced = [row for row in rows.values() if row["outcome"] == "synced"]
    assert synced and all(row["ERP id"] != "-" for row in synced)
    stored = ledger.get_event(ids[id(plain[0])])
    assert (stored.entity, stored.entity_label) == (f"order/{plain[0]['id']}", plain[0]["name"])
    text = batch_summary(result, taken=len(orders), deferred=0, erp_calls=12, slot_wait_seconds=0.04,
                         slot_held_ms_per_call=21.5)
    assert text.startswith(f"This batch run took {len(orders)} events from the inbox (events {min(ids.values())}..")
    assert "1 handed to a sync-event run of their own (1 ErpRejected)" in text and "{" not in text


def test_a_batch_run_stopping_on_an_error_gives_back_what_it_holds(ledger):
    ids = [store(ledger, sample_order()) for _ in range(3)]
    taken = ledger.take_for_batch("run-x", limit=10)
    assert taken == ids and ledger.take_for_batch("run-x", limit=10) == []  # not taken twice
    assert ledger.release_batch("run-x") == 3
    assert ledger.take_for_batch("run-y", limit=10) == ids
