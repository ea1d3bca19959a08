"""A mapping's ``ignore:``: the source fields it knowingly leaves alone, checked at load and left out of drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from erpsync.errors import ConfigError
from erpsync.mapping import load_mapping
from erpsync.mapping.source_fields import covers
from erpsync.settings import PROJECT_DIR
from erpsync_dev.scenarios.demo import build_demo_scenario

HEAD = """\
from: shopify
topic: orders/create
entity: {type: order, id: "{id}", version: updated_at}
record_type: salesOrder
external_id: "shopify-order-{id}"
fields:
  - {source_field: name, target_field: otherRefNum}
  - {source_field: "line_items[].sku", target_field: "item.items[].item.id"}
"""
ORDER = {
    "id": 1, "name": "#1001", "updated_at": "2026-01-01T00:00:00Z", "admin_graphql_api_id": "gid://shopify/Order/1",
    "total_weight": 0, "customer": {"id": 7, "default_address": {"city": "x", "zip": "y"}},
    "line_items": [{"sku": "A", "grams": 10, "tax_lines": [{"rate": 0.1, "price": "1.00"}]}],
}


def mapping_with(tmp_path: Path, ignore: str):
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + ignore)
    return load_mapping(path)


def load_error(tmp_path: Path, ignore: str) -> str:
    with pytest.raises(ConfigError) as caught:
        mapping_with(tmp_path, ignore)
    return str(caught.value)


def test_an_ignored_field_and_everything_under_it_leave_the_drift_report(tmp_path):
    mapping = mapping_with(tmp_path, "ignore:\n  - admin_graphql_api_id\n  - customer.default_address\n"
                                     "  - line_items[].tax_lines\n")
    assert mapping.unread_fields(ORDER) == ["customer.id", "line_items[].grams", "total_weight"]
    assert mapping.unread_fields(ORDER, include_ignored=True) == [
        "admin_graphql_api_id", "customer.default_address.city", "customer.default_address.zip", "customer.id",
        "line_items[].grams", "line_items[].tax_lines[].price", "line_items[].tax_lines[].rate", "total_weight"]


def test_a_mapping_without_ignore_reports_every_unread_field(tmp_path):
    assert len(mapping_with(tmp_path, "").unread_fields(ORDER)) == 8


def test_an_ignored_path_names_a_list_leaf_with_brackets(tmp_path):
    mapping = mapping_with(tmp_path, "ignore: ['line_items[].grams', 'line_items[].tax_lines[].rate']\n")
    unread = mapping.unread_fields(ORDER)
    assert "line_items[].grams" not in unread and "line_items[].tax_lines[].rate" not in unread
    assert "line_items[].tax_lines[].price" in unread, "a sibling of an ignored field is still reported"


def test_a_malformed_path_is_an_error_naming_it_and_its_place(tmp_path):
    message = load_error(tmp_path, "ignore: [total_weight, 'customer..id']\n")
    assert "m.yaml: ignore[1]: bad path 'customer..id'" in message


def test_a_list_position_is_refused_with_the_path_to_write_instead(tmp_path):
    message = load_error(tmp_path, "ignore: ['line_items[0].grams']\n")
    assert "ignore[0]: 'line_items[0].grams': a field is ignored in every element of a list" in message
    assert "write 'line_items[].grams'" in message


def test_a_field_listed_twice_is_an_error(tmp_path):
    message = load_error(tmp_path, "ignore: [total_weight, customer.id, total_weight]\n")
    assert "ignore: 'total_weight' is listed twice (ignore[0] and ignore[2])" in message


def test_ignore_must_be_a_list(tmp_path):
    assert "ignore: expected a list of source paths" in load_error(tmp_path, "ignore: total_weight\n")


def test_an_unknown_key_near_ignore_suggests_it(tmp_path):
    assert "did you mean 'ignore'?" in load_error(tmp_path, "ignored: [total_weight]\n")


@pytest.mark.parametrize(("shape", "leaf", "expected"), [
    (("customer",), ("customer", "id"), True),                   # a field covers what lies under it
    (("customer", "id"), ("customer", "id"), True),
    (("customer", "id"), ("customer",), True),                   # customer: null or {} on the way to it
    (("customer", "id"), ("customer", "email"), False),
    (("line_items", "[]", "tax_lines"), ("line_items", "[]", "tax_lines", "[]", "rate"), True),
    (("tax_lines",), ("line_items", "[]", "tax_lines", "[]"), False),  # the order's tax_lines, not a line's
])
def test_covers(shape, leaf, expected):
    assert covers(shape, leaf) is expected


def test_the_demos_orders_carry_no_field_the_shipped_order_mapping_has_not_weighed():
    """So a demo run logs nothing about drift: every field is read or named under ignore:."""
    mapping = load_mapping(PROJECT_DIR / "mappings" / "shopify_order_to_netsuite_sales_order.yaml")
    for seed in (1, 2, 3):
        for delivery in build_demo_scenario(seed=seed).deliveries:
            assert mapping.unread_fields(json.loads(delivery.body)) == [], (seed, delivery.topic)
