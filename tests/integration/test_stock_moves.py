"""Stock moved by transactions in the ERP sandbox, as NetSuite moves it, and read back by the change reader: an item's
location quantities are computed and read-only, an inventory adjustment or a shipment moves them, the item's own
modification time stays put, and ``stockMove`` reads each move as a change of the item."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from erpsync.change_intake import ChangeIntake, notice_delivery
from erpsync.errors import ErpRejected
from erpsync.ledger import Ledger
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync_dev.stock_counts import count_stock, location_quantities
from tests.integration.conftest import FAST
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET

ERP_SANDBOX_ARGS = ("--items", "1-200")
ADJUSTMENT = {"account": {"id": "130"}, "subsidiary": {"id": "1"}}


@pytest.fixture
def reader(erp: str, ops: httpx.Client):
    """The connector with no settle time: a change is read once its second is over."""
    settings = NetSuiteSettings(base_url=erp, client_id=ERP_CLIENT_ID, client_secret=ERP_CLIENT_SECRET,
                                change_settle_seconds=0)
    with NetSuiteClient(settings, retry=FAST) as netsuite:
        yield netsuite


@pytest.fixture
def ledger(tmp_path: Path):
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger
    ledger.close()


def rejected(client: NetSuiteClient, record_type: str, external_id: str, body: dict[str, Any]) -> ErpRejected:
    with pytest.raises(ErpRejected) as raised:
        client.upsert(record_type, external_id, body)
    assert raised.value.status == 400
    return raised.value


def adjust(client: NetSuiteClient, external_id: str, *lines: tuple[str, str, Any]) -> str:
    return client.upsert("inventoryAdjustment", external_id, {**ADJUSTMENT, "inventory": {"items": [
        {"item": {"id": item}, "location": {"id": location}, "adjustQtyBy": by} for item, location, by in lines]}})


def quantities(client: NetSuiteClient, item_id: str) -> dict[str, tuple[int, int]]:
    held = location_quantities(client.get("inventoryItem", item_id, expand_sub_resources=True))
    return {location: (int(on_hand), int(committed)) for location, (on_hand, committed) in held.items()}


def new_item(client: NetSuiteClient, sku: str) -> str:
    return client.upsert("inventoryItem", f"sm-{sku}", {"itemId": sku, "locations": {"items": [
        {"location": {"id": "1"}}, {"location": {"id": "2"}}]}})


# --- the sandbox: what NetSuite refuses and computes --------------------------------------------------------------


@pytest.mark.parametrize("field", ["quantityOnHand", "quantityCommitted", "quantityavailable"])
def test_an_items_location_quantities_are_read_only(client: NetSuiteClient, erp: str, field: str) -> None:
    refused = rejected(client, "inventoryItem", "sm-MUG", {"itemId": "MUG", "locations": {"items": [
        {"location": {"id": "1"}}, {"location": {"id": "2"}, field: 40}]}})
    assert (refused.code, refused.path) == ("USER_ERROR", f"locations.items[1].{field}")
    assert f"set a value for element {field.lower()}" in refused.detail and "read-only" in refused.detail

    internal_id = new_item(client, "MUG")
    assert quantities(client, internal_id) == {"1": (0, 0), "2": (0, 0)}  # a new item holds nothing yet
    token = httpx.post(f"{erp}/services/rest/auth/oauth2/v1/token", data={"grant_type": "client_credentials"},
                       auth=(ERP_CLIENT_ID, ERP_CLIENT_SECRET)).json()["access_token"]
    patched = httpx.patch(f"{erp}/services/rest/record/v1/inventoryItem/{internal_id}",
                          headers={"Authorization": f"Bearer {token}"},
                          json={"locations": {"items": [{"line": 1, "quantityOnHand": 40}]}})
    assert patched.status_code == 400
    [detail] = patched.json()["o:errorDetails"]
    assert (detail["o:errorCode"], detail["o:errorPath"]) == ("USER_ERROR", "locations.items[0].quantityOnHand")
    assert quantities(client, internal_id) == {"1": (0, 0), "2": (0, 0)}


def test_an_adjustment_moves_on_hand_and_leaves_the_item_unmodified(client: NetSuiteClient) -> None:
    internal_id = new_item(client, "CAP")
    saved = client.get("inventoryItem", internal_id)
    assert saved is not None
    time.sleep(0.01)
    adjustment = adjust(client, "count-1", (internal_id, "1", 30), (internal_id, "2", 10))
    adjust(client, "count-2", (internal_id, "1", -4.0))
    assert quantities(client, internal_id) == {"1": (26, 0), "2": (10, 0)}
    # Like NetSuite, an adjustment may take a location below zero (see stock.py).
    adjust(client, "count-3", (internal_id, "2", -12))
    assert quantities(client, internal_id)["2"] == (-2, 0)

    # A count adjusts each location by its difference, and a count that matches moves nothing.
    made, before = count_stock(client, internal_id, {"1": 20, "2": 10}, "count-4")
    assert made is not None and {k: int(v[0]) for k, v in before.items()} == {"1": 26, "2": -2}
    assert quantities(client, internal_id) == {"1": (20, 0), "2": (10, 0)}
    assert count_stock(client, internal_id, {"1": 20, "2": 10}, "count-5")[0] is None

    after = client.get("inventoryItem", internal_id)
    assert after is not None and after["lastModifiedDate"] == saved["lastModifiedDate"]
    rows = client.suiteql("SELECT t.type, tl.item, tl.location, tl.quantity FROM transaction t JOIN transactionline tl"
                          " ON tl.transaction = t.id WHERE t.id = ? AND tl.mainline = 'F' ORDER BY tl.id",
                          [adjustment])
    assert rows == [{"type": "InvAdjst", "item": internal_id, "location": "1", "quantity": "30"},
                    {"type": "InvAdjst", "item": internal_id, "location": "2", "quantity": "10"}]


@pytest.mark.parametrize(("body", "code", "path", "detail"), [
    ({"inventory": {"items": [{"item": {"id": "5"}, "location": {"id": "1"}, "adjustQtyBy": 1}]}},
     "USER_ERROR", "account", "Please enter value(s) for: Adjustment Account, Subsidiary."),
    ({**ADJUSTMENT}, "USER_ERROR", "inventory.items", "at least one line item"),
    ({**ADJUSTMENT, "inventory": {"items": [{"item": {"id": "5"}}]}},
     "USER_ERROR", "inventory.items[0]", "Please enter value(s) for: Location, Adjust Qty. By."),
    ({**ADJUSTMENT, "inventory": {"items": [{"item": {"id": "5000"}, "location": {"id": "1"}, "adjustQtyBy": 1}]}},
     "INVALID_CONTENT", "inventory.items[0].item", "Invalid Field Value 5000"),
    ({**ADJUSTMENT, "inventory": {"items": [{"item": {"id": "5"}, "location": {"id": "77"}, "adjustQtyBy": 1}]}},
     "INVALID_CONTENT", "inventory.items[0].location", "Invalid Field Value 77"),
    ({**ADJUSTMENT, "inventory": {"items": [{"item": {"id": "5"}, "location": {"id": "1"}, "adjustQtyBy": "3"}]}},
     "INVALID_CONTENT", "inventory.items[0].adjustQtyBy", "adjustqtyby"),
    ({**ADJUSTMENT, "subsidiary": {"id": "99"}, "inventory": {"items": [
        {"item": {"id": "5"}, "location": {"id": "1"}, "adjustQtyBy": 1}]}},
     "INVALID_CONTENT", "subsidiary", "Invalid Field Value 99"),
])
def test_an_adjustment_is_checked_as_netsuite_checks_it(client: NetSuiteClient, body: dict[str, Any], code: str,
                                                        path: str, detail: str) -> None:
    refused = rejected(client, "inventoryAdjustment", "bad-count", body)
    assert (refused.code, refused.path) == (code, path)
    assert detail in refused.detail
    assert client.suiteql("SELECT id FROM transaction WHERE type = 'InvAdjst'") == []


def test_a_shipment_takes_its_quantity_off_on_hand_and_committed_at_its_location(client: NetSuiteClient) -> None:
    internal_id = new_item(client, "TEE")
    adjust(client, "count-1", (internal_id, "1", 20))
    order = client.upsert("salesOrder", "sm-order-1", {"entity": {"id": "110"}, "location": {"id": "1"},
                                                       "item": {"items": [{"item": {"id": internal_id},
                                                                           "quantity": 5}]}})
    assert quantities(client, internal_id)["1"] == (20, 5)  # committed by the open order line
    client.transform("salesOrder", order, "itemFulfillment", {"item": {"items": [{"orderLine": 1, "quantity": 3}]}},
                     external_id="sm-ship-1")
    assert quantities(client, internal_id)["1"] == (17, 2)
    shipped = client.suiteql("SELECT tl.location, tl.quantity FROM transaction t JOIN transactionline tl ON "
                             "tl.transaction = t.id WHERE t.type = 'ItemShip' AND tl.mainline = 'F'")
    assert shipped == [{"location": "1", "quantity": "-3"}]


# --- the reader: a stock move is a change of the item -------------------------------------------------------------


def moves(reader: NetSuiteClient, since: datetime) -> list[Any]:
    return reader.changes_since("stockMove", reader.cursor_at(since), limit=50)


def test_a_stock_move_without_an_item_change_is_read_as_a_change_of_the_item(client, reader) -> None:
    internal_id = new_item(client, "HAT")
    time.sleep(1.1)  # a second later: the reader would see the item's own creation in its second
    since = datetime.now(UTC)
    adjustment = adjust(client, "count-1", (internal_id, "1", 7), (internal_id, "2", 1))
    time.sleep(1.1)  # the reader leaves the current second alone
    assert reader.changes_since("inventoryItem", reader.cursor_at(since), limit=50) == []  # the item is unchanged
    [change] = moves(reader, since)
    assert (change.record_type, change.internal_id, change.external_id) == ("inventoryItem", internal_id, "sm-HAT")
    assert change.fields["cause"] == {"recordType": "inventoryadjustment", "id": adjustment}
    delivery = notice_delivery("netsuite", change)
    assert delivery.topic == "inventoryItem.changed"
    assert delivery.delivery_id.endswith(f":by-{adjustment}")
    assert json.loads(delivery.body)["data"]["cause"] == {"recordType": "inventoryadjustment", "id": adjustment}
    assert reader.notified_record_type("stockMove") == "inventoryItem"


def test_two_moves_of_one_item_in_one_second_are_two_events_and_a_reread_is_none(reader, ops, ledger) -> None:
    second = "2026-11-28T03:01:20.000Z"
    records = [{"externalId": f"count-{n}", "lastModified": second, "body": {**ADJUSTMENT, "inventory": {"items": [
        {"item": {"id": "5"}, "location": {"id": "1"}, "adjustQtyBy": by, "line": 1}]}}} for n, by in ((1, 3), (2, 4))]
    ops.post("/_sandbox/bulk/inventoryAdjustment", json={"records": records}).raise_for_status()
    start = datetime(2026, 11, 28, 3, 1, 20, tzinfo=UTC)
    found = moves(reader, start)
    assert [(c.internal_id, c.fields["cause"]["recordType"]) for c in found] == [("5", "inventoryadjustment")] * 2
    ids = {notice_delivery("netsuite", c).delivery_id for c in found}
    assert len(ids) == 2 and all(i.startswith("netsuite:inventoryItem:5:2026-11-28T03:01:20Z:by-") for i in ids)

    intake = ChangeIntake(ledger, reader, system="netsuite", record_types=["stockMove"], start=start,
                          clock=lambda: datetime(2026, 11, 28, 4, 0, tzinfo=UTC))
    first = intake.run()
    assert (first.types[0].read, first.types[0].new) == (2, 2)
    again = intake.run()  # the overlap window is over: nothing after the cursor
    assert again.types[0].new == 0
    # Read again from the start (the overlap of a pass that ran at once): the same deliveries, no new event.
    ledger.save_change_cursor("netsuite", "stockMove", cursor=reader.cursor_at(start), newest_cursor=None,
                              newest_modified=None)
    third = intake.run()
    assert (third.types[0].read, third.types[0].new, third.types[0].already) == (2, 0, 2)


def test_a_page_ends_inside_a_transaction_and_the_next_page_goes_on_from_its_item(reader, ops) -> None:
    second = "2026-11-28T05:00:00.000Z"
    lines = [{"item": {"id": str(item)}, "location": {"id": "1"}, "adjustQtyBy": 1, "line": n}
             for n, item in enumerate((7, 3, 9), start=1)]
    ops.post("/_sandbox/bulk/inventoryAdjustment", json={"records": [
        {"externalId": "count-big", "lastModified": second, "body": {**ADJUSTMENT, "inventory": {"items": lines}}}]}
             ).raise_for_status()
    cursor = reader.cursor_at(datetime(2026, 11, 28, 5, 0, tzinfo=UTC))
    read = []
    while page := reader.changes_since("stockMove", cursor, limit=2):
        read += [c.internal_id for c in page]
        cursor = page[-1].cursor
    assert read == ["3", "7", "9"]
