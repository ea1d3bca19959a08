"""The WooCommerce order model, the shipped WooCommerce mapping, and entity.version's zone for *_gmt timestamps."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, InvalidPayload, MappingError
from erpsync.mapping import load_mapping
from erpsync.mapping.money_check import check_total
from erpsync.systems import MODELS
from erpsync.systems.woocommerce.models import WooOrder, parse_order

MAPPING = Path(__file__).parents[2] / "mappings" / "woocommerce_order_to_netsuite_sales_order.yaml"

# The REST v3 order body WooCommerce posts for order.created / order.updated, trimmed to what matters here.
ORDER: dict[str, Any] = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "order_key": "wc_order_58d2d042d1d",
    "created_via": "rest-api",
    "version": "8.9.1",
    "status": "processing",
    "currency": "USD",
    "date_created": "2024-05-02T10:15:00",
    "date_created_gmt": "2024-05-02T14:15:00",
    "date_modified": "2024-05-02T10:16:00",
    "date_modified_gmt": "2024-05-02T14:16:00",
    "discount_total": "0.00",
    "shipping_total": "10.00",
    "total": "35.00",
    "total_tax": "0.00",
    "prices_include_tax": False,
    "customer_id": 0,
    "customer_note": "Leave at the door of Jane Doe",
    "billing": {"first_name": "Jane", "last_name": "Doe", "email": "jane.doe@example.com", "phone": "555-0100"},
    "shipping": {"first_name": "Jane", "last_name": "Doe", "address_1": "1 Main St", "city": "Springfield"},
    "payment_method": "bacs",
    "line_items": [
        {"id": 315, "name": "USB-C cable 1 m", "product_id": 93, "variation_id": 0, "quantity": 2,
         "tax_class": "", "subtotal": "25.00", "total": "25.00", "sku": "CABLE-USBC-1M", "price": 12.5,
         "meta_data": []},
    ],
    "shipping_lines": [{"id": 316, "method_title": "Flat Rate", "method_id": "flat_rate", "total": "10.00"}],
    "meta_data": [],
    "_links": {"self": [{"href": "https://example.com/wp-json/wc/v3/orders/727"}]},
}
CUSTOMER_VALUES = ("Jane", "Doe", "jane.doe@example.com", "555-0100", "1 Main St", "Leave at the door")


def order(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(ORDER)
    out.update(changes)
    return out


def line(**changes: Any) -> dict[str, Any]:
    return {**ORDER["line_items"][0], **changes}


def test_registered_by_name() -> None:
    assert MODELS["woocommerce.order"] is parse_order


def test_order_sample() -> None:
    parsed = parse_order(ORDER)
    assert isinstance(parsed, WooOrder)
    assert (parsed.entity_id, parsed.number, parsed.currency, parsed.total) == ("727", "727", "USD", Decimal("35.00"))
    # *_gmt carries no offset; it is UTC, and the model says so, so versions compare across deliveries.
    assert parsed.version == datetime(2024, 5, 2, 14, 16, tzinfo=UTC) and parsed.version.tzinfo is not None
    assert parsed.line_items[0].price == Decimal("12.5") and parsed.line_items[0].quantity == 2
    assert parsed.model_extra is not None and "billing" in parsed.model_extra  # kept, not typed


def test_a_timestamp_with_an_offset_keeps_it() -> None:
    parsed = parse_order(order(date_modified_gmt="2024-05-02T10:16:00-04:00"))
    assert parsed.version == datetime(2024, 5, 2, 10, 16, tzinfo=timezone(timedelta(hours=-4)))


def test_a_numeric_order_number_is_read_as_text() -> None:
    assert parse_order(order(number=727)).number == "727"


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        (order(line_items=[line(), line(quantity=-1)]), "line_items[1].quantity", "greater than or equal to 0"),
        (order(line_items=[line(total="NaN")]), "line_items[0].total", "finite"),
        (order(shipping_lines=[{"method_id": "flat_rate"}]), "shipping_lines[0].total", "required field is missing"),
        (order(line_items=[line(price="twelve")]), "line_items[0].price", "decimal"),
        (order(line_items=[line(price=True)]), "line_items[0].price", "expected a number"),
        (order(line_items=[]), "line_items", "at least 1 item"),
        (order(currency="usd"), "currency", "pattern"),
        (order(date_modified_gmt="yesterday"), "date_modified_gmt", "ISO 8601"),
        (order(date_modified_gmt=None), "date_modified_gmt", "ISO 8601"),
        ({k: v for k, v in ORDER.items() if k != "id"}, "id", "required field is missing"),
        ([ORDER], "(payload)", "valid dictionary"),
    ],
)
def test_invalid_orders_name_the_field(payload: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_order(payload)
    assert caught.value.field == field and message in str(caught.value)


def test_errors_never_carry_customer_data() -> None:
    bad = order(billing={"email": "jane.doe@example.com"}, customer_note=["Jane Doe"], total="Jane Doe",
                line_items=[line(name={"Jane": "Doe"}, sku=None, quantity="Jane Doe")])
    with pytest.raises(InvalidPayload) as caught:
        parse_order(bad)
    text = str(caught.value)
    assert "total" in text and "line_items[0].quantity" in text
    assert not any(value in text for value in CUSTOMER_VALUES)


def test_the_shipped_mapping_agrees_with_the_model() -> None:
    mapping = load_mapping(MAPPING)
    assert mapping.model == "woocommerce.order" and mapping.topics == ("order.created", "order.updated")
    MODELS[mapping.model](ORDER)
    record = mapping.apply(ORDER)
    assert (record.record_type, record.external_id) == ("salesOrder", "woocommerce-order-727")
    assert mapping.entity_id(ORDER) == "727"
    assert mapping.source_version(ORDER) == parse_order(ORDER).version
    assert record.body["memo"] == "WooCommerce order 727"
    assert not any(value in repr(record.body) for value in CUSTOMER_VALUES)


# --- entity.version with a zone ----------------------------------------------------------------------

BASE: dict[str, Any] = {
    "source": "woocommerce",
    "topic": "order.updated",
    "entity": {"type": "order", "id": "{id}", "version": {"field": "date_modified_gmt", "timezone": "UTC"}},
    "record_type": "salesOrder",
    "external_id": "o-{id}",
    "fields": [{"source_field": "number", "target_field": "otherRefNum"}],
}


def write(tmp_path: Path, version: Any) -> Path:
    config = copy.deepcopy(BASE)
    config["entity"]["version"] = version
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("version", "value", "expected"),
    [
        ({"field": "date_modified_gmt", "timezone": "UTC"}, "2024-05-02T14:16:00", datetime(2024, 5, 2, 14, 16, tzinfo=UTC)),
        # The zone applies to zone-less text only; an offset in the text wins.
        ({"field": "date_modified_gmt", "timezone": "UTC"}, "2024-05-02T10:16:00-04:00",
         datetime(2024, 5, 2, 14, 16, tzinfo=UTC)),
        ({"field": "date_modified_gmt", "timezone": "Europe/Paris"}, "2024-05-02T16:16:00",
         datetime(2024, 5, 2, 14, 16, tzinfo=UTC)),
        ({"field": "date_modified_gmt"}, "2024-05-02T14:16:00Z", datetime(2024, 5, 2, 14, 16, tzinfo=UTC)),
        ("date_modified_gmt", "2024-05-02T14:16:00+00:00", datetime(2024, 5, 2, 14, 16, tzinfo=UTC)),
        ({"field": "date_modified_gmt", "timezone": "UTC"}, 12, 12),
    ],
)
def test_version_zone(tmp_path: Path, version: Any, value: Any, expected: Any) -> None:
    mapping = load_mapping(write(tmp_path, version))
    assert mapping.source_version({"id": 1, "date_modified_gmt": value}) == expected


def test_without_a_zone_a_zone_less_version_is_refused_and_the_fix_is_named(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, "date_modified_gmt"))
    with pytest.raises(MappingError, match=r"date_modified_gmt: timestamp has no UTC offset.*timezone: UTC"):
        mapping.source_version({"id": 1, "date_modified_gmt": "2024-05-02T14:16:00"})


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ({"field": "date_modified_gmt", "tz": "UTC"}, "entity.version: unknown key 'tz'"),
        ({"timezone": "UTC"}, "entity.version: field: required key is missing"),
        ({"field": "date_modified_gmt", "timezone": "Mars/Olympus"}, "entity.version: unknown time zone 'Mars/Olympus'"),
        ({"field": "date_modified_gmt", "timezone": 5}, "entity.version: timezone: expected an IANA zone name"),
        ({"field": "lines[].date", "timezone": "UTC"}, "entity.version: 'lines[].date' iterates a list"),
        ({"field": "a..b"}, "entity.version: bad path 'a..b'"),
    ],
)
def test_bad_version_blocks_are_named(tmp_path: Path, version: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(write(tmp_path, version))
    assert message in str(caught.value)


def test_the_version_field_counts_as_read(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, {"field": "date_modified_gmt", "timezone": "UTC"}))
    assert "date_modified_gmt" not in mapping.unread_fields({"id": 1, "number": "1", "date_modified_gmt": "x"})


# --- WooCommerce's own documented example order (REST API docs, "Create an order") ---------------------------

DOCUMENTED = Path(__file__).parents[1] / "fixtures" / "woocommerce" / "order_created.json"


def test_the_documented_example_order_syncs_to_its_total() -> None:
    example = json.loads(DOCUMENTED.read_text())
    assert example["line_items"][0]["sku"] == ""  # a product without SKU, as WooCommerce documents it
    parse_order(example)
    record = load_mapping(MAPPING).apply(example)
    totals = check_total(record)
    assert totals is not None and totals.total == Decimal("29.35") == Decimal(example["total"])
    lines = record.body["item"]["items"]
    assert [(line["item"]["id"], line["amount"], line["tax1Amt"]) for line in lines] == [("900", 6, 0.45), ("220", 12, 0.9)]
    assert lines[1]["description"] == "Ship Your Idea \u2013 Color: Black, Size: M Test"  # &ndash; decoded
    assert (record.body["shippingCost"], record.body["shipMethod"]) == (10, {"id": "911"})
    assert [line["custcol_erpsync_line_key"] for line in lines] == ["315", "316"]
