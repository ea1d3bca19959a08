"""How the NetSuite connector keys a body's lines to a record's existing lines, and picks the order lines to ship."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.errors import MappingError
from erpsync.systems.netsuite.client import LINE_KEY, keyed_to_existing, order_lines_to_ship


def keyed(key: str | None, **fields: Any) -> dict[str, Any]:
    return {LINE_KEY: key, **fields} if key is not None else dict(fields)


def existing(*lines: dict[str, Any]) -> dict[str, Any]:
    return {"id": "17", "item": {"items": list(lines)}}


def test_lines_take_the_number_of_the_existing_line_with_their_key() -> None:
    record = existing({"line": 1, LINE_KEY: "11", "quantity": 1}, {"line": 4, LINE_KEY: "12", "quantity": 2})
    body = {"memo": "m", "item": {"items": [keyed("12", quantity=5), keyed("13", quantity=1)]}}
    assert keyed_to_existing(body, record, ["item"]) == {
        "memo": "m",
        "item": {"items": [{LINE_KEY: "12", "quantity": 5, "line": 4}, {LINE_KEY: "13", "quantity": 1}]},
    }


def test_a_gone_line_is_dropped_unless_it_shipped_and_hand_made_lines_stay() -> None:
    record = existing(
        {"line": 1, LINE_KEY: "11", "quantity": 2, "quantityFulfilled": 1},
        {"line": 2, LINE_KEY: "12", "quantity": 1, "quantityFulfilled": 0},
        {"line": 3, "item": {"id": "500"}, "quantity": 1},  # added in NetSuite by a person
    )
    result = keyed_to_existing({"item": {"items": []}}, record, ["item"])
    assert result["item"]["items"] == [{"line": 1, "isClosed": True}, {"line": 3}]


def test_a_hand_made_line_the_body_names_by_number_is_sent_once() -> None:
    # Closing a record sends each line back with its number: a line without a key must not be kept a second time.
    record = existing({"line": 3, "item": {"id": "500"}, "quantity": 1})
    body = {"item": {"items": [{"line": 3, "item": {"id": "500"}, "quantity": 1, "isClosed": True}]}}
    assert keyed_to_existing(body, record, ["item"])["item"]["items"] == body["item"]["items"]


def test_two_lines_with_one_key_are_a_mapping_error() -> None:
    body = {"item": {"items": [keyed("11"), keyed("11")]}}
    with pytest.raises(MappingError, match=r"item\.items\[1\]\.custcol_erpsync_line_key"):
        keyed_to_existing(body, existing(), ["item"])


def test_only_the_shipped_lines_are_received_and_finished_lines_are_left_out() -> None:
    order_lines = [
        {"line": 1, LINE_KEY: "11", "quantity": 2, "quantityFulfilled": 0},
        {"line": 2, LINE_KEY: "12", "quantity": 1, "quantityFulfilled": 0},
        {"line": 3, LINE_KEY: "13", "quantity": 1, "quantityFulfilled": 1},  # shipped before
        {"line": 5, LINE_KEY: "shipping", "quantity": 1, "isClosed": True},
    ]
    shipped = [{LINE_KEY: "11", "quantity": 2, "itemReceive": True}]
    assert order_lines_to_ship(shipped, order_lines) == [
        {"quantity": 2, "orderLine": 1, "itemReceive": True},
        {"orderLine": 2, "itemReceive": False},
    ]


@pytest.mark.parametrize(
    ("shipped", "message"),
    [
        ([{LINE_KEY: "99", "quantity": 1}], "no line of the sales order has the line key 99"),
        ([{"quantity": 1}], "a fulfilled line needs the order line's key"),
        ([{LINE_KEY: "11"}, {LINE_KEY: "11"}], "two fulfilled lines ship the same order line"),
    ],
    ids=["unknown key", "no key", "the same line twice"],
)
def test_a_shipped_line_that_names_no_order_line_is_a_mapping_error(shipped: list[dict[str, Any]],
                                                                     message: str) -> None:
    with pytest.raises(MappingError, match=message):
        order_lines_to_ship(shipped, [{"line": 1, LINE_KEY: "11", "quantity": 1}])
