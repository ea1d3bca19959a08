"""The Shopify order mapping for Tryton (mappings/tryton/): its cases, and its bodies written to a real Tryton, whose
own totals must be Shopify's to the cent (the money invariant, checked by Tryton itself, not only by totals.py)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.mapping.cases import load_cases, run_cases
from erpsync.mapping.loader import load_mapping
from erpsync.mapping.money_check import check_total
from erpsync.systems.tryton.client import SALE, TrytonClient
from erpsync.systems.tryton.reconcile import summarize_body
from erpsync.systems.tryton.settings import TrytonSettings
from erpsync_dev.tryton_server import RunningTryton, tryton_server

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "tryton" / "shopify_order_to_tryton_sale.yaml"
CASES = [case for case in load_cases(MAPPING) if case.input is not None and case.skipped is None]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonClient]:
    running: RunningTryton
    with tryton_server(Path(tmp_path_factory.mktemp("tryton-mapping"))) as running:
        settings = TrytonSettings(url=running.url, database=running.database, login=running.login,
                                  password=running.password)
        with TrytonClient(settings) as made:
            yield made


def test_the_mappings_cases_pass() -> None:
    results = run_cases(MAPPING)
    assert results and all(result.passed for result in results), [r.message for r in results if not r.passed]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_mapped_order_lands_in_tryton_with_shopifys_total(client: TrytonClient, case) -> None:
    mapping = load_mapping(MAPPING)
    record = mapping.apply(case.input)
    totals = check_total(record, mapping.ref)
    assert totals is not None and totals.total == Decimal(case.input["total_price"])
    sale_id = client.upsert(SALE, record.external_id, record.body)
    written = client.get(SALE, sale_id)
    assert written["state"] == record.body["state"]
    # Tryton computed the total itself, from the lines erpsync sent: the shop's total, to the cent.
    assert written["total_amount"] == totals.total
    # Reconciliation reads the mapped body and the record back alike (the tax line counted in both).
    mapped, read_back = summarize_body(record.body), summarize_body(written)
    assert (mapped.lines, mapped.total, mapped.status) == (read_back.lines, read_back.total, read_back.status)
    if "email" in record.body["party"]:
        assert client.find_id("party.party", "email", record.body["party"]["email"]) == str(written["party"])
