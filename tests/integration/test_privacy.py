"""Shopify's compliance requests against a real ledger (SQLite, and PostgreSQL when configured): a redaction leaves
no personal data queryable anywhere, a shop redaction empties every payload of that shop, and the export holds what
the ledger holds about the customer."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlmodel import Session, SQLModel

from erpsync.ledger import HANDLED_IN_RECEIVER, EntityKey, InboxDelivery, Ledger
from erpsync.systems.shopify import compliance, order_delete
from erpsync.xref_cache import XrefEntry
from tests.conftest import REPO, fixture_path

SHOP, OTHER_SHOP = "erpsync-test.myshopify.com", "another-shop.myshopify.com"
JANE = {"id": 4242, "email": "Jane.Quinn@example.com", "first_name": "Jane", "last_name": "Quinnelly",
        "phone": "+1-555-0199"}
JANES = ["jane.quinn@example.com", "Quinnelly", "+1-555-0199", "17 Larkspur Lane", "Springfieldia"]
ROB = {"id": 4343, "email": "rob.other@example.com", "first_name": "Rob", "last_name": "Otherton"}


def order(order_id: int, customer: dict, *, street: str, city: str) -> dict:
    body = json.loads(fixture_path("shopify", "orders_create.json").read_text())
    address = {"first_name": customer["first_name"], "last_name": customer["last_name"], "address1": street,
               "city": city, "zip": "90210", "country_code": "US", "phone": customer.get("phone")}
    return body | {"id": order_id, "email": customer["email"], "contact_email": customer["email"],
                   "customer": customer, "billing_address": address, "shipping_address": address}


def store(ledger: Ledger, topic: str, payload: dict, *, shop: str | None = SHOP) -> int:
    body = json.dumps(payload).encode()
    delivery = InboxDelivery("shopify", f"{topic}-{hashlib.sha256(body).hexdigest()[:16]}", topic, shop, None, body,
                             hashlib.sha256(body).hexdigest())
    return ledger.record_deliveries([delivery])[0].event_id


@pytest.fixture
def populated(ledger):
    """Jane's order, its refund and edit, her customer record; Rob's order; the ledger's traces of both."""
    ids = {
        "jane_order": store(ledger, "orders/create",
                            order(9001, JANE, street="17 Larkspur Lane", city="Springfieldia")),
        "jane_update": store(ledger, "customers/update", JANE | {"updated_at": "2024-05-02T10:00:00Z"}),
        "jane_refund": store(ledger, "refunds/create", json.loads(fixture_path("shopify", "refunds_create.json")
                                                                  .read_text()) | {"order_id": 9001}),
        "jane_edit": store(ledger, "orders/edited", {"order_edit": {"id": 1, "order_id": 9001,
                                                                    "committed_at": "2024-05-02T10:00:00Z"}}),
        "rob_order": store(ledger, "orders/create", order(9002, ROB, street="1 Other Road", city="Elsewhere")),
        "rob_elsewhere": store(ledger, "orders/create", order(9003, ROB, street="2 Far Road", city="Faraway"),
                               shop=OTHER_SHOP),
    }
    version = datetime(2024, 5, 2, tzinfo=UTC)
    ledger.record_outcome(event_id=ids["jane_order"], source="shopify", outcome="synced",
                          key=EntityKey("shopify", "order", "9001", "netsuite"), external_id="shopify-order-9001",
                          to_id="17",
                          payload_sha256="a" * 64, mapping_version="m1", applied=("salesOrder", version))
    # The ledger keeps an ERP error's detail, which may quote what was sent (an email, a name).
    ledger.record_outcome(event_id=ids["jane_update"], source="shopify", outcome="failed",
                          key=EntityKey("shopify", "customer", "4242", "netsuite"),
                          reason="ErpRejected: HTTP 400 USER_ERROR: email jane.quinn@example.com of Jane Quinnelly "
                                 "is already used")
    with Session(ledger.engine) as session:
        for email in (JANE["email"], ROB["email"]):
            session.add(XrefEntry(system="netsuite", record_type="customer", field="email", record_id="300",
                                value="sha256:" + hashlib.sha256(email.lower().encode()).hexdigest(),
                                fetched_at=version))
        session.commit()
    return ids


def everything_stored(ledger: Ledger) -> str:
    """Every value of every row of every table, as one lower-case text: what any query could still find."""
    parts = []
    with ledger.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    parts.append(value.decode("utf-8", "replace") if isinstance(value, (bytes, memoryview))
                                 else str(value))
    return "\n".join(parts).lower()


def redact_request(ledger: Ledger, customer: dict, orders: list[int]) -> int:
    return store(ledger, compliance.CUSTOMERS_REDACT, {
        "shop_id": 954889, "shop_domain": SHOP, "orders_to_redact": orders,
        "customer": {"id": customer["id"], "email": customer["email"], "phone": customer.get("phone")}})


def test_customers_redact_leaves_nothing_of_the_customer_queryable(ledger, populated):
    stored = everything_stored(ledger)
    assert all(text.lower() in stored for text in JANES)  # the test would prove nothing otherwise
    request = redact_request(ledger, JANE, [9001])

    assert compliance.act(ledger, request) == compliance.REDACTED

    stored = everything_stored(ledger)
    for personal in JANES + ["jane"]:
        assert personal.lower() not in stored, f"{personal!r} is still stored"
    # The audit trail keeps ids: the order's cross-reference, the outcomes, the events' metadata.
    assert ledger.entity_state(EntityKey("shopify", "order", "9001", "netsuite")).to_id == "17"
    assert ledger.get_event(populated["jane_refund"]).body == b""
    assert ledger.get_event(populated["jane_edit"]).body == b""
    assert "<redacted>" in [o for o in ledger.outcomes(populated["jane_update"]) if o.outcome == "failed"][0].reason
    # Rob, in this shop and the other, is untouched.
    assert b"rob.other@example.com" in ledger.get_event(populated["rob_order"]).body
    assert b"rob.other@example.com" in ledger.get_event(populated["rob_elsewhere"]).body
    with Session(ledger.engine) as session:
        assert len(session.exec(select(XrefEntry)).all()) == 1
    event = ledger.get_event(request)
    assert (event.state, event.flow_run_id) == ("redacted", HANDLED_IN_RECEIVER)
    assert json.loads(event.body) == {"shop_id": 954889, "shop_domain": SHOP, "customer": {"id": 4242},
                                      "orders_to_redact": [9001]}
    reason = [o.reason for o in ledger.outcomes(request)][0]
    assert "4 stored payloads erased" in reason and "1 personal cross-reference keys deleted" in reason


def test_a_repeated_redaction_changes_nothing_and_records_once(ledger, populated):
    request = redact_request(ledger, JANE, [9001])
    compliance.act(ledger, request)
    assert compliance.act(ledger, request) == compliance.REDACTED
    assert [o.outcome for o in ledger.outcomes(request)] == ["redacted"]


def test_the_customers_orders_are_found_through_the_customer_when_the_request_names_none(ledger, populated):
    compliance.act(ledger, redact_request(ledger, JANE, []))
    assert ledger.get_event(populated["jane_refund"]).body == b""  # order 9001 is Jane's by its customer.id


def test_shop_redact_erases_every_payload_of_that_shop_only(ledger, populated):
    request = store(ledger, compliance.SHOP_REDACT, {"shop_id": 954889, "shop_domain": SHOP})
    assert compliance.act(ledger, request) == compliance.REDACTED
    for name in ("jane_order", "jane_update", "jane_refund", "jane_edit", "rob_order"):
        assert ledger.get_event(populated[name]).body == b"", name
    assert b"rob.other@example.com" in ledger.get_event(populated["rob_elsewhere"]).body


def test_a_data_request_is_recorded_with_ids_only_and_the_export_holds_what_the_ledger_holds(ledger, populated):
    request = store(ledger, compliance.DATA_REQUEST, {
        "shop_id": 954889, "shop_domain": SHOP, "orders_requested": [9001],
        "customer": {"id": 4242, "email": JANE["email"], "phone": JANE["phone"]}, "data_request": {"id": 9999}})

    assert compliance.act(ledger, request) == compliance.REQUEST_RECORDED
    event = ledger.get_event(request)
    assert event.state == "request_recorded" and b"example.com" not in event.body
    assert "erpsync privacy export --customer 4242" in ledger.outcomes(request)[0].reason

    exported = compliance.export_customer(ledger, "4242")
    events = {e["event_id"]: e for e in exported["events"]}
    assert set(events) == {populated[n] for n in ("jane_order", "jane_update", "jane_refund", "jane_edit")} | {request}
    assert events[populated["jane_order"]]["payload"]["shipping_address"]["address1"] == "17 Larkspur Lane"
    assert {r["external_id"] for r in exported["erp_records"]} == {"shopify-order-9001"}
    assert any("jane.quinn@example.com" in (o["reason"] or "") for o in exported["outcomes"])
    assert "rob" not in json.dumps(exported).lower()


def test_the_export_after_a_redaction_holds_ids_only(ledger, populated):
    compliance.act(ledger, redact_request(ledger, JANE, [9001]))
    exported = json.dumps(compliance.export_customer(ledger, "4242")).lower()
    for personal in JANES:
        assert personal.lower() not in exported


def test_privacy_export_command_writes_the_json_to_a_file(ledger, populated, database_url, tmp_path):
    out = tmp_path / "export.json"
    done = subprocess.run([sys.executable, "-m", "erpsync", "privacy", "export", "--customer", "4242",
                           "--output", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "ERPSYNC_DATABASE_URL": database_url,
                               "ERPSYNC_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "jane" not in done.stdout.lower() + done.stderr.lower()  # the data goes to the file only
    exported = json.loads(out.read_text())
    assert populated["jane_order"] in [e["event_id"] for e in exported["events"]]


def test_sqlite_overwrites_what_a_redaction_removed(tmp_path):
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        store(ledger, "orders/create", order(9001, JANE, street="17 Larkspur Lane", city="Springfieldia"))
        compliance.act(ledger, redact_request(ledger, JANE, [9001]))
        with ledger.engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        ledger.close()
    raw = (tmp_path / "ledger.db").read_bytes().lower()
    assert b"larkspur" not in raw and b"jane.quinn@example.com" not in raw


def test_erpsync_status_counts_the_requests_acted_on_as_handled(ledger, populated):
    from erpsync.summary import format_summary, summarize

    before = summarize(ledger)
    compliance.act(ledger, redact_request(ledger, JANE, [9001]))
    after = summarize(ledger)
    assert (after.compliance, after.pending) == (1, before.pending)
    assert "compliance    1 requests acted on" in format_summary(after)


def test_no_flow_run_takes_a_topic_the_receiver_acts_on(ledger):
    from datetime import timedelta

    from erpsync.ledger import receiver_topics

    handled = {(source, topic) for source, topics in receiver_topics().items() for topic in topics}
    assert handled == {("shopify", topic) for topic in (*compliance.TOPICS, order_delete.TOPIC)}
    order_event = store(ledger, "orders/create", order(9001, JANE, street="17 Larkspur Lane", city="Springfieldia"))
    # Stored, not yet acted on: neither the sweep nor a batch run may pick it up meanwhile.
    request = redact_request(ledger, JANE, [9001])
    deleted = store(ledger, "orders/delete", {"id": 9001})
    assert ledger.undispatched(older_than=timedelta(seconds=-60)) == [order_event]
    assert ledger.take_for_batch("batch-run", limit=10) == [order_event]
    assert {ledger.get_event(e).flow_run_id for e in (request, deleted)} == {None}


def test_a_guest_order_is_found_by_its_email_in_any_case(ledger, populated):
    guest = order(9100, JANE, street="17 Larkspur Lane", city="Springfieldia") | {
        "customer": None, "email": "JANE.QUINN@EXAMPLE.COM", "contact_email": None}
    guest_event = store(ledger, "orders/create", guest)
    refund = store(ledger, "refunds/create", {"id": 1, "order_id": 9100, "created_at": "2024-05-02T10:00:00Z"})
    compliance.act(ledger, redact_request(ledger, JANE, []))
    assert ledger.get_event(guest_event).body == b""
    assert ledger.get_event(refund).body == b""  # the guest order's refund names only the order
