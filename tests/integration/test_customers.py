"""Find-or-create of an order's customer by email, against the ERP sandbox as its own process and a real ledger.

The order mapping's customer rule (erp_lookup with create:) runs through ``LedgerXref`` and the NetSuite
connector: a hit, a miss that creates the customer, the ledger's cache, two events of one new customer at
once, and a customer that NetSuite already holds under another external id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlmodel import Session, SQLModel, select

from erpsync.errors import ErpRejected, MappingError
from erpsync.ledger import Ledger
from erpsync.mapping import load_mapping
from erpsync.mapping.engine import Mapping as LoadedMapping
from erpsync.pipeline import SyncPipeline
from erpsync.retry import RetryPolicy
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.xref_cache import LedgerXref, XrefEntry
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET
from tests.unit.test_erp_lookup_create import ORDER_SAMPLE, SAMPLE_CUSTOMER_EID, order_mapping

FAST = RetryPolicy(max_attempts=3, base=0.01, cap=0.05, max_retry_after=0.05)


class CountingErp:
    """The real client, counting the SuiteQL queries and upserts that reach the ERP.

    With ``race``, every SuiteQL answer waits until that many callers hold one: callers that all missed then
    write at the same moment, the race two events of one new customer run in production.
    """

    def __init__(self, client: NetSuiteClient, race: int = 0):
        self.client = client
        self.queries: list[str] = []
        self.upserts: list[tuple[str, str]] = []
        self._barrier = threading.Barrier(race) if race else None
        self._lock = threading.Lock()

    def suiteql(self, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self.queries.append(query)
        rows = self.client.suiteql(query, params)
        if self._barrier is not None:
            self._barrier.wait(timeout=20)
        return rows

    # The client's own find_id, asking its SuiteQL through the counting suiteql above.
    find_id = NetSuiteClient.find_id

    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> str:
        with self._lock:
            self.upserts.append((record_type, external_id))
        return self.client.upsert(record_type, external_id, body)


# The shared sandbox fixtures (tests/integration/conftest.py: erp, ops), started with the sandbox's defaults.
ERP_SANDBOX_ARGS: tuple[str, ...] = ()


@pytest.fixture
def erp_url(erp: str) -> str:
    return erp  # a name of its own here: the tests keep `erp` for the client they count calls of


@pytest.fixture
def client(erp_url: str, ops: httpx.Client) -> Iterator[NetSuiteClient]:
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    with NetSuiteClient(settings, retry=FAST) as netsuite:
        yield netsuite


@pytest.fixture
def mapping(tmp_path: Path) -> LoadedMapping:
    return load_mapping(order_mapping(tmp_path))


def xref_for(ledger: Ledger, erp: CountingErp) -> LedgerXref:
    SQLModel.metadata.create_all(ledger.engine)
    return LedgerXref(ledger.engine, erp)


def customers(ops: httpx.Client) -> list[dict[str, Any]]:
    return ops.get("/_sandbox/records", params={"type": "customer"}).json()["records"]


def order(customer_id: int = 115310627314723954, email: str = "john@example.com", **changes: Any) -> dict[str, Any]:
    payload = json.loads(ORDER_SAMPLE.read_text())
    payload["customer"].update(id=customer_id, email=email, **changes)
    return payload


def existing_customer(client: NetSuiteClient, external_id: str, email: str) -> str:
    body = {"isPerson": True, "firstName": "Jane", "lastName": "Doe", "email": email, "subsidiary": {"id": "1"}}
    return client.upsert("customer", external_id, body)


def test_a_customer_the_erp_has_is_found_by_email_and_nothing_is_written(
    mapping: LoadedMapping, client: NetSuiteClient, ops: httpx.Client, ledger: Ledger
) -> None:
    # Typed in NetSuite by hand, under an external id erpsync never wrote, with another case.
    internal_id = existing_customer(client, "crm-contact-5521", "John@Example.com")
    erp = CountingErp(client)
    assert mapping.apply(order(), xref=xref_for(ledger, erp)).body == {"entity": {"id": internal_id}}
    assert erp.upserts == []
    assert [c["external_id"] for c in customers(ops)] == ["crm-contact-5521"]  # not duplicated


def test_a_miss_creates_the_customer_from_the_order_then_the_ledger_answers(
    mapping: LoadedMapping, client: NetSuiteClient, ops: httpx.Client, ledger: Ledger
) -> None:
    erp = CountingErp(client)
    xref = xref_for(ledger, erp)
    first = mapping.apply(order(), xref=xref).body["entity"]["id"]
    assert erp.upserts == [("customer", SAMPLE_CUSTOMER_EID)]
    (created,) = customers(ops)
    assert (created["internal_id"], created["external_id"]) == (first, SAMPLE_CUSTOMER_EID)
    assert created["body"]["email"] == "john@example.com"
    assert created["body"]["addressBook"]["items"][0]["addressBookAddress"]["city"] == "Ottawa"

    queries = len(erp.queries)
    assert mapping.apply(order(), xref=xref).body["entity"]["id"] == first  # the cache
    assert (len(erp.queries), len(erp.upserts)) == (queries, 1)
    # Another process (a fresh resolver on the same ledger) finds it in the cache too.
    other = CountingErp(client)
    assert mapping.apply(order(), xref=xref_for(ledger, other)).body["entity"]["id"] == first
    assert (other.queries, other.upserts) == ([], [])


def test_the_cache_holds_no_email(mapping: LoadedMapping, client: NetSuiteClient, ledger: Ledger) -> None:
    mapping.apply(order(email="cache.check@example.com"), xref=xref_for(ledger, CountingErp(client)))
    with Session(ledger.engine) as session:
        rows = session.exec(select(XrefEntry)).all()
    assert [(row.record_type, row.field) for row in rows] == [("customer", "email")]
    assert rows[0].value.startswith("sha256:")
    assert "cache.check" not in repr(rows)


def test_a_cached_id_is_found_whatever_the_case_of_the_email(
    client: NetSuiteClient, ledger: Ledger
) -> None:
    erp = CountingErp(client)
    xref = xref_for(ledger, erp)
    internal_id = existing_customer(client, "crm-contact-9", "Mixed.Case@Example.com")
    assert xref.resolve("customer", "email", "mixed.case@example.com") == internal_id
    assert xref.resolve("customer", "email", "MIXED.case@example.COM") == internal_id
    assert len(erp.queries) == 1


def test_two_events_of_one_new_customer_at_once_create_one_customer(
    mapping: LoadedMapping, client: NetSuiteClient, ops: httpx.Client, ledger: Ledger
) -> None:
    erp = CountingErp(client, race=2)
    xref = xref_for(ledger, erp)
    first, second = order(), order()
    second["id"] += 1  # another order of the same customer
    with ThreadPoolExecutor(max_workers=2) as pool:
        ids = list(pool.map(lambda payload: mapping.apply(payload, xref=xref).body["entity"]["id"], [first, second]))
    # Both missed and both wrote: the upsert by external id is what keeps it one customer.
    assert erp.upserts == [("customer", SAMPLE_CUSTOMER_EID)] * 2
    (created,) = customers(ops)
    assert ids == [created["internal_id"]] * 2


def test_two_processes_racing_on_separate_resolvers_still_create_one_customer(
    mapping: LoadedMapping, client: NetSuiteClient, ops: httpx.Client, ledger: Ledger
) -> None:
    erp = CountingErp(client, race=2)
    resolvers = [xref_for(ledger, erp), xref_for(ledger, erp)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        ids = list(pool.map(lambda xref: mapping.apply(order(), xref=xref).body["entity"]["id"], resolvers))
    (created,) = customers(ops)
    assert ids == [created["internal_id"]] * 2


def test_a_customer_the_erp_refuses_names_the_field_and_external_id_never_the_value(
    tmp_path: Path, client: NetSuiteClient, ops: httpx.Client, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    # A customer mapping that sends no last name: NetSuite refuses a person without one.
    folder = tmp_path / "m"
    folder.mkdir()
    path = order_mapping(folder)
    customer_mapping = folder / "shopify_customer_to_netsuite_customer.yaml"
    text = customer_mapping.read_text()
    customer_mapping.write_text(text.replace("target_field: lastName", "target_field: custentity_surname"))
    mapping = load_mapping(path)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MappingError) as caught:
        payload = order(customer_id=42, email="Private.Person@example.com")
        mapping.apply(payload, xref=xref_for(ledger, CountingErp(client)))
    message = str(caught.value)
    assert caught.value.field == "customer.email"
    assert "the ERP refused the new customer shopify-customer-42 (HTTP 400 USER_ERROR" in message
    assert "Last Name" in caught.value.reason  # the ERP's own detail, for the ledger
    assert "Last Name" not in message  # not for logs: on a real account it may quote a value
    for text in (message, caught.value.reason, caplog.text):
        assert "private.person" not in text.lower() and "Smith" not in text
    assert customers(ops) == []
    with Session(ledger.engine) as session:
        assert session.exec(select(XrefEntry)).all() == []


def test_several_erp_customers_with_the_email_fail_without_quoting_it(
    mapping: LoadedMapping, client: NetSuiteClient, ledger: Ledger
) -> None:
    existing_customer(client, "crm-a", "twice@example.com")
    existing_customer(client, "crm-b", "Twice@Example.com")
    with pytest.raises(MappingError) as caught:
        mapping.apply(order(email="twice@example.com"), xref=xref_for(ledger, CountingErp(client)))
    assert caught.value.field == "customer.email"
    assert "2 ERP customer records have this email" in str(caught.value)
    assert "twice" not in str(caught.value)


# --- through the pipeline: the customer is created inside the event that needs it -------------------------------


class RacingClient(NetSuiteClient):
    """The real client; its customer queries wait until two callers hold an answer: both events miss, then write."""

    def __init__(self, *args: Any, barrier: threading.Barrier, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.barrier = barrier

    def suiteql(self, query: str, params: list[Any] | None = None, page_size: int = 1000) -> list[dict[str, Any]]:
        rows = super().suiteql(query, params, page_size)
        if "FROM customer" in query:
            self.barrier.wait(timeout=20)
        return rows


def order_mapping_with_lines(folder: Path) -> None:
    """The customer rule plus one item line, so the sales order is one the ERP sandbox accepts."""
    path = order_mapping(folder, name="shopify_order.yaml")
    data = yaml.safe_load(path.read_text())
    data["topics"] = ["orders/create", "orders/updated"]
    del data["topic"]
    data["fields"] += [
        {"target_field": "item.items[0].item.id", "value": "98"},
        {"target_field": "item.items[0].quantity", "value": 1},
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def store(ledger: Ledger, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    return ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/create", shop=None,
                                  triggered_at=None, body=body, payload_sha256=hashlib.sha256(body).hexdigest()
                                  ).event_id


def sync(pipeline: SyncPipeline, event_id: int) -> str:
    event = pipeline.validate(event_id)
    assert pipeline.dedupe(event) is None
    transformed = pipeline.transform(event)
    erp_id = pipeline.push(transformed)
    pipeline.confirm(event, transformed, erp_id)
    return erp_id


def test_two_events_of_a_new_customer_through_the_pipeline_end_with_one_customer_on_both_orders(
    tmp_path: Path, erp_url: str, ops: httpx.Client, ledger: Ledger
) -> None:
    order_mapping_with_lines(tmp_path)
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    barrier = threading.Barrier(2)
    pipeline = SyncPipeline(ledger, tmp_path, lambda: RacingClient(settings, FAST, barrier=barrier))
    try:
        SQLModel.metadata.create_all(ledger.engine)
        orders = [order(), order()]
        orders[1]["id"] += 1
        events = [store(ledger, payload) for payload in orders]
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda event_id: sync(pipeline, event_id), events))
        (customer,) = customers(ops)
        assert customer["external_id"] == SAMPLE_CUSTOMER_EID
        sales_orders = ops.get("/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
        assert sorted(o["external_id"] for o in sales_orders) == sorted(f"shopify-order-{o['id']}" for o in orders)
        assert {str(o["body"]["entity"]["id"]) for o in sales_orders} == {customer["internal_id"]}
    finally:
        pipeline.close()


def test_reconciliation_reads_the_customer_from_the_cache_without_asking_the_erp(
    mapping: LoadedMapping, client: NetSuiteClient, ledger: Ledger
) -> None:
    from erpsync.reconcile import source_row
    from erpsync.xref_cache import CachedXref

    created = mapping.apply(order(), xref=xref_for(ledger, CountingErp(client))).body["entity"]["id"]
    cached = CachedXref(ledger.engine)
    assert source_row(mapping, order(), cached)["src_customer"] == created
    # An order whose customer was never synced: its customer is not compared, and the row is no map error.
    row = source_row(mapping, order(customer_id=5, email="never.seen@example.com"), cached)
    assert (row["src_customer"], row["map_error"]) == (None, None)
    guest = order()
    guest["customer"] = None
    assert source_row(mapping, guest, cached)["src_customer"] == "110"


class LosingRaceErp(CountingErp):
    """The real client, but its customer upsert loses a race as a real account may answer it: another upsert of
    the same external id lands first, and this one is refused as a duplicate."""

    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> str:
        self.client.upsert(record_type, external_id, body)  # the other event's write
        raise ErpRejected(400, "USER_ERROR", "A record with this external ID already exists.", "externalId")


def test_an_upsert_refused_because_the_other_event_created_the_customer_uses_that_customer(
    mapping: LoadedMapping, client: NetSuiteClient, ops: httpx.Client, ledger: Ledger
) -> None:
    entity_id = mapping.apply(order(), xref=xref_for(ledger, LosingRaceErp(client))).body["entity"]["id"]
    (created,) = customers(ops)
    assert entity_id == created["internal_id"]


def test_shopifys_sample_order_through_the_shipped_mappings_lands_on_its_own_customer(
    erp_url: str, ops: httpx.Client, ledger: Ledger
) -> None:
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET)
    pipeline = SyncPipeline(ledger, PROJECT_DIR / "mappings", lambda: NetSuiteClient(settings, FAST))
    try:
        SQLModel.metadata.create_all(ledger.engine)
        payload = json.loads(ORDER_SAMPLE.read_text())
        payload["test"] = False
        sales_order_id = sync(pipeline, store(ledger, payload))
        guest = {**payload, "id": payload["id"] + 1, "customer": None}
        guest_order_id = sync(pipeline, store(ledger, guest))
    finally:
        pipeline.close()
    (customer,) = customers(ops)
    assert customer["external_id"] == SAMPLE_CUSTOMER_EID
    assert customer["body"]["lastName"] == "Smith"
    records = ops.get("/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    sales_orders = {record["internal_id"]: record for record in records}
    assert str(sales_orders[sales_order_id]["body"]["entity"]["id"]) == customer["internal_id"]
    assert str(sales_orders[guest_order_id]["body"]["entity"]["id"]) == "110"
