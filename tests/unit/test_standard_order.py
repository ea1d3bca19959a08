"""The Standard Webhooks order event model (docs/sources.md) and the shipped mapping that reads it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import InvalidPayload
from erpsync.mapping import load_mapping
from erpsync.systems import MODELS
from erpsync.systems.standard.models import StandardOrderEvent, parse_order

MAPPING = Path(__file__).parents[2] / "mappings" / "standard_order_to_netsuite_sales_order.yaml"

EVENT: dict[str, Any] = {
    "type": "order.created",
    "timestamp": "2024-05-02T14:15:01.344522Z",
    "data": {
        "id": "ord_2KWPBgLlAfxdpx2A",
        "number": "SO-1001",
        "created_at": "2024-05-02T10:15:00-04:00",
        "updated_at": "2024-05-02T10:16:00-04:00",
        "currency": "USD",
        "total": "25.00",
        "customer": {"name": "Jane Doe", "email": "jane.doe@example.com"},
        "lines": [{"sku": "CABLE-USBC-1M", "quantity": 2, "price": "12.50", "title": "USB-C cable 1 m"}],
    },
}
CUSTOMER_VALUES = ("Jane", "Doe", "jane.doe@example.com")


def event(**data_changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(EVENT)
    out["data"].update(data_changes)
    return out


def line(**changes: Any) -> dict[str, Any]:
    return {**EVENT["data"]["lines"][0], **changes}


def test_registered_by_name() -> None:
    assert MODELS["standard.order"] is parse_order


def test_event_sample() -> None:
    parsed = parse_order(EVENT)
    assert isinstance(parsed, StandardOrderEvent)
    assert (parsed.type, parsed.entity_id, parsed.data.number) == ("order.created", "ord_2KWPBgLlAfxdpx2A", "SO-1001")
    assert parsed.version == datetime(2024, 5, 2, 14, 16, tzinfo=UTC)
    assert parsed.data.lines[0].price == Decimal("12.50") and parsed.data.total == Decimal("25.00")
    assert parse_order({**event(total=None), "type": "order.updated"}).data.total is None


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({**EVENT, "type": "order.deleted"}, "type", "'order.created' or 'order.updated'"),
        ({**EVENT, "timestamp": "2024-05-02T14:15:01"}, "timestamp", "timezone"),
        ({k: v for k, v in EVENT.items() if k != "data"}, "data", "required field is missing"),
        (event(id="ord 1/2"), "data.id", "pattern"),
        (event(id=1001), "data.id", "valid string"),
        (event(updated_at="2024-05-02T10:16:00"), "data.updated_at", "timezone"),
        (event(currency="dollars"), "data.currency", "pattern"),
        (event(lines=[]), "data.lines", "at least 1 item"),
        (event(lines=[line(), line(kind="voucher")]), "data.lines[1].kind", "'product', 'gift_card' or 'tip'"),
        (event(lines=[line(quantity=-1)]), "data.lines[0].quantity", "greater than or equal to 0"),
        (event(lines=[line(discount="-1")]), "data.lines[0].discount", "greater than or equal to 0"),
        (event(shipping={"method": "Express"}), "data.shipping.price", "required field is missing"),
        (event(total="1e20"), "data.total", "out of range"),
        (event(lines=[line(quantity=True)]), "data.lines[0].quantity", "expected a number"),
        (event(lines=[line(price="NaN")]), "data.lines[0].price", "finite"),
        (event(lines=[line(price="-1")]), "data.lines[0].price", "greater than or equal to 0"),
        ("order.created", "(payload)", "valid dictionary"),
    ],
)
def test_invalid_events_name_the_field(payload: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_order(payload)
    assert caught.value.field == field and message in str(caught.value), str(caught.value)


def test_errors_never_carry_customer_data() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_order(event(number=["Jane Doe"], lines=[line(title={"jane.doe@example.com": 1})]))
    text = str(caught.value)
    assert "data.number" in text and not any(value in text for value in CUSTOMER_VALUES)


def test_the_shipped_mapping_agrees_with_the_model() -> None:
    mapping = load_mapping(MAPPING)
    assert mapping.model == "standard.order" and mapping.topics == ("order.created", "order.updated")
    MODELS[mapping.model](EVENT)
    record = mapping.apply(EVENT)
    assert (record.record_type, record.external_id) == ("salesOrder", "standard-order-ord_2KWPBgLlAfxdpx2A")
    assert mapping.entity_id(EVENT) == "ord_2KWPBgLlAfxdpx2A"
    assert mapping.source_version(EVENT) == parse_order(EVENT).version
    assert record.body["memo"] == "Order SO-1001" and record.body["currency"] == {"id": "1"}
    assert record.body["item"] == {"items": [{
        "item": {"id": "140"}, "quantity": 2, "rate": 12.5, "amount": 25, "description": "USB-C cable 1 m",
        "tax1Amt": 0, "custcol_erpsync_line_key": "line-1",
    }]}
    assert record.expected_total is not None and record.expected_total.total == Decimal("25.00")
    assert not any(value in repr(record.body) for value in CUSTOMER_VALUES)


def test_a_line_without_sku_goes_to_the_custom_item() -> None:
    mapping = load_mapping(MAPPING)
    record = mapping.apply(event(total="30.00", lines=[line(), line(sku=" ", price="5.00", quantity=1, id="x")]))
    assert [(li["item"]["id"], li["custcol_erpsync_line_key"]) for li in record.body["item"]["items"]] == [
        ("140", "line-1"), ("900", "x")]
