"""Sublist updates on the ERP sandbox as NetSuite applies them, and the connector that stays safe under them.

NetSuite appends an update's sublist lines that carry no ``line`` (Oracle, "Updating a Sublist"); only
``?replace=item`` removes the lines a request does not name (Oracle, "Replacing a Sublist"). The sandbox used
to replace a sales order's lines on every PUT, which hid the difference: a client that sent the same lines
twice without ``replace`` still saw one copy of each there, and would have doubled every order on a real
account. ``test_a_naive_client_doubles_the_lines_without_replace`` pins that trap.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from erpsync.errors import ErpRejected, MappingError
from erpsync.systems.netsuite.client import NetSuiteClient
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET

RECORD = "/services/rest/record/v1"


# erp, ops and client: tests/integration/conftest.py (items 1–999).


@pytest.fixture
def headers(erp: str) -> dict[str, str]:
    token = httpx.post(f"{erp}/services/rest/auth/oauth2/v1/token", data={"grant_type": "client_credentials"},
                       auth=(ERP_CLIENT_ID, ERP_CLIENT_SECRET)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def line(key: str, item: int = 98, quantity: int = 1, rate: float = 10.0, **extra: Any) -> dict[str, Any]:
    return {"item": {"id": str(item)}, "quantity": quantity, "rate": rate, "custcol_erpsync_line_key": key, **extra}


def order(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"entity": {"id": "110"}, "memo": "Shopify order #1001", "item": {"items": list(lines)}, **fields}


def stored_lines(http: httpx.Client, headers: dict[str, str], ref: str) -> list[dict[str, Any]]:
    response = http.get(f"{RECORD}/salesOrder/{ref}", params={"expandSubResources": "true"}, headers=headers)
    response.raise_for_status()
    return response.json()["item"]["items"]  # type: ignore[no-any-return]


def error(response: httpx.Response) -> tuple[int, str, str | None]:
    [detail] = response.json()["o:errorDetails"]
    return response.status_code, detail["o:errorCode"], detail.get("o:errorPath")


def api_requests(ops: httpx.Client) -> int:
    return int(ops.get("/_sandbox/stats").json()["api_requests"])


# --- the sandbox: NetSuite's update semantics over raw HTTP ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "numbers_after"),
    [
        # The trap: NetSuite appends unkeyed lines on an update. The old sandbox ended with 2 lines here as well,
        # so a client that never sent replace passed every test and doubled each order on a real account.
        ("", [1, 2, 3, 4]),
        # Replaced: the first write's lines 1 and 2 are gone, the second write's are new lines 3 and 4.
        ("?replace=item", [3, 4]),
    ],
    ids=["without replace: appended (the old sandbox said 2)", "replace=item: one copy"],
)
def test_a_naive_client_doubles_the_lines_without_replace(
    ops: httpx.Client, headers: dict[str, str], query: str, numbers_after: list[int]
) -> None:
    body = order(line("a"), line("b", item=99))
    for _ in range(2):
        response = ops.put(f"{RECORD}/salesOrder/eid:shopify-order-1{query}", json=body, headers=headers)
        assert response.status_code == 204, response.text
    lines = stored_lines(ops, headers, "eid:shopify-order-1")
    assert [entry["line"] for entry in lines] == numbers_after
    assert [entry["custcol_erpsync_line_key"] for entry in lines] == ["a", "b"] * (len(numbers_after) // 2)


def test_a_line_with_its_number_is_updated_in_place_and_others_are_kept(
    ops: httpx.Client, headers: dict[str, str]
) -> None:
    url = f"{RECORD}/salesOrder/eid:shopify-order-2"
    assert ops.put(url, json=order(line("a"), line("b", item=99)), headers=headers).status_code == 204
    update = {"item": {"items": [{"line": 1, "quantity": 5}, line("c", item=100)]}}
    assert ops.put(url, json=update, headers=headers).status_code == 204
    lines = stored_lines(ops, headers, "eid:shopify-order-2")
    assert [(entry["line"], entry["custcol_erpsync_line_key"], entry["quantity"]) for entry in lines] == [
        (1, "a", 5), (2, "b", 1), (3, "c", 1)
    ]
    record = ops.get(url, headers=headers).json()
    assert record["memo"] == "Shopify order #1001", "an update keeps the header fields it does not send"


def test_line_numbers_are_never_reused(ops: httpx.Client, headers: dict[str, str]) -> None:
    url = f"{RECORD}/salesOrder/eid:shopify-order-3"
    ops.put(url, json=order(line("a"), line("b"), line("c")), headers=headers).raise_for_status()
    # Replace keeps 1 and 2 and drops 3; the next new line is 4, not 3 again.
    keep = {"item": {"items": [{"line": 1}, {"line": 2}]}}
    ops.put(f"{url}?replace=item", json=keep, headers=headers).raise_for_status()
    ops.put(url, json={"item": {"items": [line("d")]}}, headers=headers).raise_for_status()
    assert [entry["line"] for entry in stored_lines(ops, headers, "eid:shopify-order-3")] == [1, 2, 4]


def test_patch_updates_like_an_upsert_of_an_existing_record(ops: httpx.Client, headers: dict[str, str]) -> None:
    created = ops.put(f"{RECORD}/salesOrder/eid:shopify-order-4", json=order(line("a")), headers=headers)
    internal_id = created.headers["location"].rsplit("/", 1)[1]
    patched = ops.patch(f"{RECORD}/salesOrder/{internal_id}?replace=item",
                        json={"item": {"items": [line("b", item=99)]}}, headers=headers)
    assert patched.status_code == 204
    assert [(e["line"], e["custcol_erpsync_line_key"]) for e in stored_lines(ops, headers, internal_id)] == [(2, "b")]
    missing = ops.patch(f"{RECORD}/salesOrder/424242", json={"memo": "x"}, headers=headers)
    assert error(missing) == (404, "NONEXISTENT_ID", None)


@pytest.mark.parametrize(
    ("query", "body", "path"),
    [
        ("", {"item": {"items": [{"line": 7, "quantity": 2}]}}, "item.items[0].line"),
        ("?replace=item", {"item": {"items": [{"line": 1}, {"line": "1"}]}}, "item.items[1].line"),
    ],
    ids=["no such line", "a line number as text"],
)
def test_a_line_that_does_not_exist_is_refused(
    ops: httpx.Client, headers: dict[str, str], query: str, body: dict[str, Any], path: str
) -> None:
    url = f"{RECORD}/salesOrder/eid:shopify-order-5"
    ops.put(url, json=order(line("a")), headers=headers).raise_for_status()
    assert error(ops.put(f"{url}{query}", json=body, headers=headers)) == (400, "INVALID_CONTENT", path)
    created_with_a_line = ops.put(f"{RECORD}/salesOrder/eid:shopify-order-6",
                                  json=order({**line("a"), "line": 1}), headers=headers)
    assert error(created_with_a_line) == (400, "INVALID_CONTENT", "item.items[0].line")


def test_a_fulfilled_line_cannot_be_removed_only_closed(ops: httpx.Client, headers: dict[str, str]) -> None:
    url = f"{RECORD}/salesOrder/eid:shopify-order-7"
    ops.put(url, json=order(line("a", quantity=2), line("b", item=99)), headers=headers).raise_for_status()
    shipped = ops.post(f"{url}/!transform/itemFulfillment",
                       json={"item": {"items": [{"orderLine": 1, "quantity": 1}, {"orderLine": 2,
                                                                                   "itemReceive": False}]}},
                       headers=headers)
    assert shipped.status_code == 204, shipped.text

    removed = ops.put(f"{url}?replace=item", json={"item": {"items": [{"line": 2}]}}, headers=headers)
    assert error(removed) == (400, "USER_ERROR", "item.items")
    below = ops.put(url, json={"item": {"items": [{"line": 1, "quantity": 0}]}}, headers=headers)
    assert error(below) == (400, "USER_ERROR", "item.items[0].quantity")
    closed = ops.put(f"{url}?replace=item", json={"item": {"items": [{"line": 1, "isClosed": True}, {"line": 2}]}},
                     headers=headers)
    assert closed.status_code == 204
    lines = stored_lines(ops, headers, "eid:shopify-order-7")
    assert [(e["line"], e.get("isClosed"), e["quantityFulfilled"]) for e in lines] == [(1, True, 1), (2, None, 0)]


def test_an_error_in_an_update_names_the_requests_line(ops: httpx.Client, headers: dict[str, str]) -> None:
    url = f"{RECORD}/salesOrder/eid:shopify-order-8"
    ops.put(url, json=order(line("a"), line("b")), headers=headers).raise_for_status()
    # Appended after the record's two lines, the bad line is the request's first.
    bad = ops.put(url, json={"item": {"items": [line("c", item=5000)]}}, headers=headers)
    assert error(bad) == (400, "INVALID_CONTENT", "item.items[0].item")


# --- the connector: safe on a real account -------------------------------------------------------------------------


@pytest.mark.parametrize("hinted", [True, False], ids=["ledger knows the ERP id", "crash before the ledger"])
def test_the_connector_never_adds_a_line_twice(
    client: NetSuiteClient, ops: httpx.Client, headers: dict[str, str], hinted: bool
) -> None:
    first = order(line("11"), line("12", item=99), line("shipping", item=903, rate=10.0))
    internal_id = client.upsert("salesOrder", "shopify-order-20", first)
    before = {e["custcol_erpsync_line_key"]: e["line"] for e in stored_lines(ops, headers, internal_id)}

    # The same order again, then an edit: one line's quantity changed, one removed, one added.
    previous = internal_id if hinted else None
    assert client.upsert("salesOrder", "shopify-order-20", first, previous_id=previous) == internal_id
    edited = order(line("11", quantity=3), line("shipping", item=903, rate=10.0), line("13", item=100))
    assert client.upsert("salesOrder", "shopify-order-20", edited, previous_id=previous) == internal_id

    after = stored_lines(ops, headers, internal_id)
    assert sorted(e["custcol_erpsync_line_key"] for e in after) == ["11", "13", "shipping"]
    by_key = {e["custcol_erpsync_line_key"]: e for e in after}
    assert by_key["11"]["quantity"] == 3
    if hinted:
        # Matched by key, the lines keep their NetSuite identity; only the new one has a new number.
        assert (by_key["11"]["line"], by_key["shipping"]["line"]) == (before["11"], before["shipping"])
        assert by_key["13"]["line"] > max(before.values())


def test_a_first_write_is_one_call_and_an_update_two(client: NetSuiteClient, ops: httpx.Client) -> None:
    client.upsert("salesOrder", "shopify-order-21", order(line("1")))  # the token is fetched outside the count
    start = api_requests(ops)
    internal_id = client.upsert("salesOrder", "shopify-order-22", order(line("1")))
    assert api_requests(ops) - start == 1
    client.upsert("salesOrder", "shopify-order-22", order(line("1"), line("2")), previous_id=internal_id)
    assert api_requests(ops) - start == 3


def test_a_cancelled_order_closes_its_lines_in_place(client: NetSuiteClient, ops: httpx.Client,
                                                     headers: dict[str, str]) -> None:
    internal_id = client.upsert("salesOrder", "shopify-order-23", order(line("1"), line("2", item=99)))
    cancelled = order(line("1", isClosed=True), line("2", item=99, isClosed=True))
    client.upsert("salesOrder", "shopify-order-23", cancelled, previous_id=internal_id)
    lines = stored_lines(ops, headers, internal_id)
    assert [(e["line"], e["isClosed"]) for e in lines] == [(1, True), (2, True)]
    [row] = client.suiteql("SELECT status FROM transaction WHERE id = ?", [internal_id])
    assert row == {"status": "H"}


def test_a_removed_line_that_shipped_is_closed_not_removed(client: NetSuiteClient, ops: httpx.Client,
                                                           headers: dict[str, str]) -> None:
    internal_id = client.upsert("salesOrder", "shopify-order-24", order(line("1"), line("2", item=99)))
    shipment = {"createdFrom": {"externalId": "shopify-order-24"},
                "item": {"items": [{"custcol_erpsync_line_key": "2", "quantity": 1, "itemReceive": True}]}}
    client.upsert("itemFulfillment", "shopify-fulfillment-24", shipment)
    # The shop's edit drops both lines (a refunded, restocked order); one of them already left the warehouse.
    client.upsert("salesOrder", "shopify-order-24", order(line("3", item=100)), previous_id=internal_id)
    lines = stored_lines(ops, headers, internal_id)
    assert [(e["custcol_erpsync_line_key"], e.get("isClosed"), e["quantityFulfilled"]) for e in lines] == [
        ("2", True, 1), ("3", None, 0)
    ]


def test_the_connector_fulfils_through_the_transform_once(client: NetSuiteClient, ops: httpx.Client,
                                                          headers: dict[str, str]) -> None:
    order_id = client.upsert("salesOrder", "shopify-order-25", order(line("1", quantity=2), line("2", item=99)))
    shipment = {"createdFrom": {"externalId": "shopify-order-25"}, "memo": "Shopify fulfillment #1025.1",
                "item": {"items": [{"custcol_erpsync_line_key": "1", "quantity": 2, "itemReceive": True}]},
                "package": {"items": [{"packageTrackingNumber": "1Z999AA10123456784"}]}}
    fulfillment_id = client.upsert("itemFulfillment", "shopify-fulfillment-25", shipment)
    # A retry after a crash before the ledger heard of it: found, not shipped twice.
    assert client.upsert("itemFulfillment", "shopify-fulfillment-25", shipment) == fulfillment_id
    # A later update (new tracking) by its known id.
    retracked = {**shipment, "package": {"items": [{"packageTrackingNumber": "1Z999AA10123456785"}]}}
    assert client.upsert("itemFulfillment", "shopify-fulfillment-25", retracked,
                         previous_id=fulfillment_id) == fulfillment_id

    fulfillments = ops.get("/_sandbox/records", params={"type": "itemFulfillment"}).json()["records"]
    assert len(fulfillments) == 1
    body = fulfillments[0]["body"]
    assert [(e["orderLine"], e["quantity"]) for e in body["item"]["items"]] == [(1, 2)], "line 2 did not ship"
    assert [p["packageTrackingNumber"] for p in body["package"]["items"]] == ["1Z999AA10123456785"]
    assert [e["quantityFulfilled"] for e in stored_lines(ops, headers, order_id)] == [2, 0]

    # fulfillments/update, status cancelled: nothing received any more, the fulfillment is deleted.
    cancelled = {**shipment, "item": {"items": [{"custcol_erpsync_line_key": "1", "quantity": 2,
                                                 "itemReceive": False}]}}
    assert client.upsert("itemFulfillment", "shopify-fulfillment-25", cancelled,
                         previous_id=fulfillment_id) == fulfillment_id
    assert ops.get("/_sandbox/records", params={"type": "itemFulfillment"}).json()["records"] == []
    assert [e["quantityFulfilled"] for e in stored_lines(ops, headers, order_id)] == [0, 0]
    assert client.upsert("itemFulfillment", "shopify-fulfillment-25", cancelled) == "", "nothing left to reverse"


def test_a_shipped_line_the_order_does_not_have_is_named(client: NetSuiteClient) -> None:
    client.upsert("salesOrder", "shopify-order-26", order(line("1")))
    shipment = {"createdFrom": {"externalId": "shopify-order-26"},
                "item": {"items": [{"custcol_erpsync_line_key": "99", "quantity": 1, "itemReceive": True}]}}
    with pytest.raises(MappingError) as raised:
        client.upsert("itemFulfillment", "shopify-fulfillment-26", shipment)
    assert "item.items[0].custcol_erpsync_line_key" in str(raised.value)
    missing_order = {**shipment, "createdFrom": {"externalId": "shopify-order-404"}}
    with pytest.raises(ErpRejected) as refused:
        client.upsert("itemFulfillment", "shopify-fulfillment-27", missing_order)
    assert (refused.value.code, refused.value.path) == ("NONEXISTENT_ID", "createdFrom")


def test_a_second_shipment_ships_the_rest_and_leaves_closed_lines_alone(client: NetSuiteClient, ops: httpx.Client,
                                                                       headers: dict[str, str]) -> None:
    order_id = client.upsert("salesOrder", "shopify-order-28",
                             order(line("1"), line("2", item=99), line("3", item=100, isClosed=True)))

    def ship(fulfillment: str, key: str) -> str:
        return client.upsert("itemFulfillment", fulfillment, {
            "createdFrom": {"externalId": "shopify-order-28"},
            "item": {"items": [{"custcol_erpsync_line_key": key, "quantity": 1, "itemReceive": True}]}})

    ship("shopify-fulfillment-28", "1")
    # Line 1 is shipped and line 3 closed: neither is on the second transform's sublist, so neither is sent.
    ship("shopify-fulfillment-29", "2")
    assert [e["quantityFulfilled"] for e in stored_lines(ops, headers, order_id)] == [1, 1, 0]
    again = ops.post(f"{RECORD}/salesOrder/{order_id}/!transform/itemFulfillment",
                     json={"item": {"items": [{"orderLine": 3, "itemReceive": False}]}}, headers=headers)
    assert error(again) == (400, "USER_ERROR", "item.items[0].orderLine")
