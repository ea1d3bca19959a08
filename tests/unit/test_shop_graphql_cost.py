"""The shop sandbox's calculated query cost and orders search syntax, as Shopify's rate-limit page describes them."""

from __future__ import annotations

from graphql import parse
from graphql.utilities import get_operation_ast

from erpsync_dev.sandboxes.shopify.graphql_api import parse_search
from erpsync_dev.sandboxes.shopify.graphql_schema import (
    actual_cost,
    build_admin_schema,
    requested_cost,
    undefined_fields,
)

SCHEMA = build_admin_schema()


def _cost(query: str, variables: dict | None = None, data: dict | None = None) -> tuple[int, int]:
    document = parse(query)
    operation = get_operation_ast(document)
    return (requested_cost(SCHEMA, document, operation, variables or {}),
            actual_cost(SCHEMA, document, operation, data) if data is not None else -1)


def test_a_connection_costs_two_plus_its_page_times_a_node_and_nested_pages_multiply():
    query = ("query($n: Int) { orders(first: $n) { edges { node { id "
             "fulfillmentOrders(first: 5) { nodes { id } } } } } }")
    # 2 + 10 × (1 for the order + 2 + 5 × 1 for its fulfillment orders)
    assert _cost(query, {"n": 10})[0] == 2 + 10 * (1 + 2 + 5)
    # Actual cost counts what came back: two orders, one fulfillment order each.
    data = {"orders": {"edges": [{"node": {"id": "a", "fulfillmentOrders": {"nodes": [{"id": "f"}]}}},
                                 {"node": {"id": "b", "fulfillmentOrders": {"nodes": [{"id": "g"}]}}}]}}
    assert _cost(query, {"n": 10}, data)[1] == 2 + 2 * (1 + 2 + 1)


def test_scalars_are_free_objects_cost_one_and_a_mutation_ten():
    assert _cost('{ order(id: "gid://shopify/Order/1") { id name } }') == (1, -1)
    assert _cost('{ productVariant(id: "x") { price product { title } } }', data={
        "productVariant": None})[1] == 0
    mutation = ('mutation { productVariantsBulkUpdate(productId: "x", variants: []) '
                '{ product { variants(first: 100) { nodes { id } } } userErrors { field } } }')
    assert _cost(mutation) == (10, -1)


def test_unknown_fields_and_arguments_are_named_in_shopifys_words():
    errors = undefined_fields(SCHEMA, parse("{ orders(first: 1, colour: RED) { nodes { id total } } }"))
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [
        ("Field 'orders' doesn't accept argument 'colour'", "argumentNotAccepted"),
        ("Field 'total' doesn't exist on type 'Order'", "undefinedField"),
    ]


def test_search_terms_take_comparators_and_quotes_and_report_unknown_fields():
    terms, warnings = parse_search("updated_at:>='2026-12-01T00:00:00Z' AND status:open colour:red")
    assert terms == [("updated_at", ">=", "2026-12-01T00:00:00Z"), ("status", "=", "open")]
    assert [w["field"] for w in warnings] == ["colour"]
