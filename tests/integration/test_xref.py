"""The ledger-backed ERP cross-reference against the real ERP sandbox process and a real ledger (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, SQLModel, select

from erpsync.errors import MappingError
from erpsync.ledger import Ledger
from erpsync.mapping import load_mapping
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.xref_cache import LedgerXref, XrefEntry
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

FAST = RetryPolicy(max_attempts=3, base=0.01, cap=0.05, max_retry_after=0.05)


class CountingErp:
    """The real client, counting the SuiteQL queries and the upserts that reach the ERP."""

    def __init__(self, client: NetSuiteClient):
        self.client = client
        self.queries: list[tuple[str, list[Any] | None]] = []
        self.upserts: list[tuple[str, str]] = []

    def suiteql(self, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        self.queries.append((query, params))
        return self.client.suiteql(query, params)

    # The client's own find_id, asking its SuiteQL through the counting suiteql above.
    find_id = NetSuiteClient.find_id

    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> str:
        self.upserts.append((record_type, external_id))
        return self.client.upsert(record_type, external_id, body)


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    items = "98=IPOD2008PINK,99=IPOD2008BLACK,140=CABLE-USBC-1M,141=O'NEILL-CAP"
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), "--items", items) as base_url:
        yield base_url


@pytest.fixture
def erp(erp_url: str) -> Iterator[CountingErp]:
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    with NetSuiteClient(settings, retry=FAST) as client:
        yield CountingErp(client)


@pytest.fixture
def xref(ledger: Ledger, erp: CountingErp) -> LedgerXref:
    SQLModel.metadata.create_all(ledger.engine)  # until erpsync.db.create_schema imports erpsync.xref_cache
    return LedgerXref(ledger.engine, erp)


def test_a_miss_asks_the_erp_once_then_the_ledger_answers(xref: LedgerXref, erp: CountingErp, ledger: Ledger) -> None:
    assert xref.resolve("item", "itemid", "IPOD2008PINK") == "98"
    assert erp.queries == [("SELECT id FROM item WHERE itemid = 'IPOD2008PINK'", None)]
    assert xref.resolve("item", "itemid", "IPOD2008PINK") == "98"
    assert len(erp.queries) == 1
    with Session(ledger.engine) as session:
        (row,) = session.exec(select(XrefEntry)).all()
    assert (row.system, row.record_type, row.field, row.value, row.record_id) == (
        "netsuite", "item", "itemid", "IPOD2008PINK", "98")
    assert row.fetched_at.tzinfo is not None


def test_not_found_is_not_cached(xref: LedgerXref, erp: CountingErp, ledger: Ledger) -> None:
    assert xref.resolve("item", "itemid", "NOT-IN-CATALOGUE") is None
    assert xref.resolve("item", "itemid", "NOT-IN-CATALOGUE") is None
    assert len(erp.queries) == 2
    with Session(ledger.engine) as session:
        assert session.exec(select(XrefEntry)).all() == []


def test_a_stale_entry_is_asked_again(ledger: Ledger, erp: CountingErp) -> None:
    SQLModel.metadata.create_all(ledger.engine)
    xref = LedgerXref(ledger.engine, erp, ttl=timedelta(0))
    assert xref.resolve("item", "itemid", "CABLE-USBC-1M") == "140"
    assert xref.resolve("item", "itemid", "CABLE-USBC-1M") == "140"
    assert len(erp.queries) == 2


def test_a_value_stays_inside_its_literal(xref: LedgerXref, erp: CountingErp) -> None:
    assert xref.resolve("item", "itemid", "x' OR '1'='1") is None
    assert erp.queries == [("SELECT id FROM item WHERE itemid = 'x'' OR ''1''=''1'", None)]
    assert xref.resolve("item", "itemid", "O'NEILL-CAP") == "141"


@pytest.mark.parametrize("value", ["a\nb", "a\x00b", "x" * 301, ""])
def test_a_value_that_cannot_be_a_literal_is_refused_before_any_query(
    xref: LedgerXref, erp: CountingErp, value: str
) -> None:
    with pytest.raises(MappingError):
        xref.resolve("item", "itemid", value)
    assert erp.queries == []


@pytest.mark.parametrize(
    ("record_type", "field", "message"),
    [
        ("item; DROP TABLE item", "itemid", "unknown ERP record"),
        ("itme", "itemid", "did you mean 'item'?"),
        ("item", "itemid = itemid OR 1", "cannot be looked up by"),
        ("customer", "emial", "did you mean 'email'?"),
    ],
)
def test_names_outside_the_allow_list_are_refused(
    xref: LedgerXref, erp: CountingErp, record_type: str, field: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        xref.resolve(record_type, field, "x")
    assert erp.queries == []


def test_an_unknown_sku_fails_the_mapping_permanently_and_actionably(
    xref: LedgerXref, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({
        "source": "shopify",
        "topic": "orders/create",
        "entity": {"type": "order", "id": "{id}", "version": "updated_at"},
        "record_type": "salesOrder",
        "external_id": "shopify-order-{id}",
        "fields": [{
            "source_field": "line_items[].sku",
            "target_field": "item.items[].item.id",
            "transform": {"name": "erp_lookup", "record": "item", "by": "itemid"},
        }],
    }))
    mapping = load_mapping(tmp_path / "m.yaml")
    order = {"id": 1, "updated_at": "2024-05-02T10:15:00Z", "line_items": [{"sku": "IPOD2008BLACK"}]}
    assert mapping.apply(order, xref=xref).body == {"item": {"items": [{"item": {"id": "99"}}]}}
    order["line_items"].append({"sku": "NOT-IN-CATALOGUE"})
    with pytest.raises(MappingError) as caught:
        mapping.apply(order, xref=xref)
    assert caught.value.field == "line_items[1].sku"
    assert str(caught.value) == (
        f"m@{mapping.version}: line_items[1].sku: no ERP item has itemid 'NOT-IN-CATALOGUE';"
        " create it in the ERP (or fix the source value), then retry the event"
    )
