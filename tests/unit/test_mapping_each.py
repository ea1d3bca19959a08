"""`each:` mappings: one record per element of a source list, the elements left out, errors naming the element,
the checks at load, case files with `records:`, and `erp_lookup`'s table asked before the cross-reference."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, MappingError, SkipEvent
from erpsync.mapping import InMemoryXref, load_mapping, run_cases
from erpsync.mapping.engine import Mapping

REPO = Path(__file__).parents[2]
PRODUCT = REPO / "mappings" / "shopify_product_to_netsuite_inventory_item.yaml"
ORDER = REPO / "mappings" / "shopify_order_to_netsuite_sales_order.yaml"

BASE: dict[str, Any] = {
    "source": "shopify",
    "topic": "products/update",
    "entity": {"type": "product", "id": "{id}", "version": "updated_at"},
    "record_type": "inventoryItem",
    "external_id": "shopify-variant-{variant.id}",
    "each": {"list": "variants", "as": "variant", "key": "variant.sku", "without_key": "no SKU"},
    "fields": [
        {"source_field": "variant.sku", "target_field": "itemId"},
        {"source_field": "title", "target_field": "displayName"},
        {"source_field": "variant.price", "target_field": "basePrice", "transform": "decimal"},
    ],
}
PRODUCT_EVENT = {
    "id": 5,
    "title": "Hoodie",
    "updated_at": "2024-05-02T10:16:00-04:00",
    "variants": [{"id": 51, "sku": "H-M", "price": "40"}, {"id": 52, "sku": "H-L", "price": "42.50"}],
}


def load(tmp_path: Path, config: dict) -> Mapping:
    (tmp_path / "mappings").mkdir(exist_ok=True)
    path = tmp_path / "mappings" / "x.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_mapping(path)


def event(**changes: Any) -> dict:
    return copy.deepcopy(PRODUCT_EVENT) | changes


def test_each_element_is_its_own_record_in_the_lists_order(tmp_path: Path) -> None:
    result = load(tmp_path, BASE).apply_each(event())
    assert [(r.external_id, r.body, r.key_source, r.key) for r in result.records] == [
        ("shopify-variant-51", {"itemId": "H-M", "displayName": "Hoodie", "basePrice": 40}, "variants[0].sku", "H-M"),
        ("shopify-variant-52", {"itemId": "H-L", "displayName": "Hoodie", "basePrice": 42.5}, "variants[1].sku", "H-L"),
    ]
    assert result.skipped == ()


def test_an_element_without_its_key_is_left_out_with_the_reason(tmp_path: Path) -> None:
    variants = [{"id": 50, "sku": None}, {"id": 51, "sku": "H-M", "price": "1"}, {"id": 53, "sku": " "}, {"id": 54}]
    result = load(tmp_path, BASE).apply_each(event(variants=variants))
    assert [r.external_id for r in result.records] == ["shopify-variant-51"]
    assert result.skipped == ("variants[0]: no SKU", "variants[2]: no SKU", "variants[3]: no SKU")


def test_no_element_left_skips_the_event_with_the_reasons(tmp_path: Path) -> None:
    mapping = load(tmp_path, BASE)
    with pytest.raises(SkipEvent, match=r"^variants: no element to sync \(variants\[0\]: no SKU\)$"):
        mapping.apply_each(event(variants=[{"id": 50}]))
    with pytest.raises(SkipEvent, match=r"^variants: no element to sync \(empty\)$"):
        mapping.apply_each(event(variants=[]))


@pytest.mark.parametrize(("variants", "message"), [
    ([{"id": 51, "sku": "H-M", "price": "1"}, {"id": 52, "sku": "H-L", "price": "forty"}], "variants[1].price: "),
    ([{"id": 51, "sku": "H-M", "price": "1"}, {"id": 52, "sku": ["H"], "price": "1"}],
     "variants[1].sku: a key must be text or an integer, found list"),
    ([{"id": 51, "sku": "H-M", "price": "1"}, "H-L"], "variants[1]: expected an object, found text"),
    ([{"id": 51, "sku": "H-M", "price": "1"}, {"id": 51, "sku": "H-L", "price": "1"}],
     "variants[1]: maps to the external id shopify-variant-51 of variants[0] as well"),
    ("H-M", "variants: expected a list, found text"),
    (None, "variants: required source list is missing"),
])
def test_an_elements_error_names_the_element(tmp_path: Path, variants: Any, message: str) -> None:
    mapping = load(tmp_path, BASE)
    with pytest.raises(MappingError) as caught:
        mapping.apply_each(event(variants=variants))
    assert str(caught.value).startswith(f"x@{mapping.version}: {message}")


def test_a_payload_field_named_like_the_element_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="the payload has a field 'variant' of its own"):
        load(tmp_path, BASE).apply_each(event(variant={"id": 1}))


def test_apply_of_an_each_mapping_points_to_apply_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="maps one record per element of variants"):
        load(tmp_path, BASE).apply(event())


def test_a_one_record_mapping_gives_its_one_record_through_apply_each(tmp_path: Path) -> None:
    config = {**BASE, "external_id": "shop-product-{id}", "fields": [{"source_field": "title", "target_field": "custitem_x"}]}
    del config["each"]
    result = load(tmp_path, config).apply_each(event())
    assert [(r.external_id, r.body, r.key) for r in result.records] == [("shop-product-5", {"custitem_x": "Hoodie"}, None)]


def test_the_drift_report_reads_the_element_as_the_list(tmp_path: Path) -> None:
    mapping = load(tmp_path, BASE)
    payload = event()
    payload["variants"][0]["barcode"] = "123"
    assert mapping.unread_fields(payload) == ["variants[].barcode"]


def _with(**changes: Any) -> dict:
    config = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


INVALID = [
    (_with(each={**BASE["each"], "list": "variants[]"}), "each.list: Value error, 'variants[]': name the list itself"),
    (_with(each={**BASE["each"], "as": "2x"}), "each.as: Value error, expected a name such as variant"),
    (_with(each={**BASE["each"], "key": "sku"}), "each: Value error, key: 'sku' must be one value of the element"),
    (_with(each={**BASE["each"], "per": "x"}), "each: unknown key 'per'"),
    (_with(each={"list": "variants", "as": "variant"}), "each.key: required key is missing"),
    (_with(external_id="shop-product-{id}"), "each: the external_id must name the element"),
    (_with(reject=[{"when": {"field": "variant.sku", "exists": False}, "message": "no"}]),
     "reject[0] applies to the whole event and cannot read 'variant'"),
    (_with(entity={"type": "product", "id": "{variant.id}", "version": "updated_at"}),
     "each: entity.id and entity.version name the event's entity"),
]


@pytest.mark.parametrize(("config", "message"), INVALID)
def test_each_is_checked_at_load(tmp_path: Path, config: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config)
    assert message.replace("Value error, ", "") in str(caught.value)


def test_case_files_of_an_each_mapping_state_records(tmp_path: Path) -> None:
    load(tmp_path, BASE)
    cases = {"cases": [
        {"name": "two", "input": event(), "records": [{"external_id": "shopify-variant-51", "body": {
            "itemId": "H-M", "displayName": "Hoodie", "basePrice": 40}}, {"body": {
                "itemId": "H-L", "displayName": "Hoodie", "basePrice": 42.5}}]},
        {"name": "wrong count", "input": event(), "records": [{"body": {}}]},
        {"name": "one record stated as expected", "input": event(), "expected": {"body": {}}},
        {"name": "left out", "input": event(variants=[{"id": 9}, *PRODUCT_EVENT["variants"]]),
         "records": [{"body": {"itemId": "H-M", "displayName": "Hoodie", "basePrice": 40}},
                     {"body": {"itemId": "H-L", "displayName": "Hoodie", "basePrice": 42.5}}],
         "skipped_elements": ["variants\\[0\\]: no SKU"]},
        {"name": "left out unstated", "input": event(variants=[{"id": 9}, *PRODUCT_EVENT["variants"][:1]]),
         "records": [{"body": {"itemId": "H-M", "displayName": "Hoodie", "basePrice": 40}}]},
    ]}
    (tmp_path / "mappings" / "x_test.yaml").write_text(yaml.safe_dump(cases, sort_keys=False))
    results = {r.name: r for r in run_cases(tmp_path / "mappings" / "x.yaml")}
    assert results["two"].passed and results["left out"].passed
    assert not results["wrong count"].passed and "expected 1 records, got 2" in results["wrong count"].message
    assert not results["one record stated as expected"].passed
    assert "records:" in results["one record stated as expected"].message
    assert "expected 0 skipped elements, got 1 (variants[0]: no SKU)" in results["left out unstated"].message


def test_the_product_mapping_writes_one_item_per_variant_sku() -> None:
    assert all(r.passed for r in run_cases(PRODUCT)), [r.message for r in run_cases(PRODUCT) if not r.passed]
    product = load_mapping(PRODUCT)
    payload = {"id": 7, "title": "Tee", "updated_at": "2024-05-02T10:16:00Z", "variants": [
        {"id": 71, "sku": "TEE-S", "title": "S", "price": "10.00"},
        {"id": 72, "sku": None, "title": "M", "price": "10.00"},
        {"id": 73, "sku": "TEE-L", "title": "L", "price": "12.00"}]}
    result = product.apply_each(payload)
    assert [(r.external_id, r.body["itemId"], r.body["displayName"]) for r in result.records] == [
        ("shopify-variant-71", "TEE-S", "Tee - S"), ("shopify-variant-73", "TEE-L", "Tee - L")]
    assert all(r.body["custitem_erpsync_product_id"] == "7" for r in result.records)
    assert result.skipped == ("variants[1]: no SKU, and a NetSuite item is named by its SKU; give the variant a SKU"
                              " in Shopify",)


def order_with(*skus: str) -> dict:
    lines = [{"id": n, "sku": sku, "quantity": 1, "price": "10.00", "title": sku} for n, sku in enumerate(skus, 1)]
    return {"id": 9, "name": "#9", "order_number": 9, "created_at": "2024-05-02T10:15:00Z",
            "updated_at": "2024-05-02T10:16:00Z", "currency": "USD", "total_price": f"{10 * len(skus)}.00",
            "line_items": lines}


def test_an_order_finds_a_sku_the_table_lacks_through_the_cross_reference() -> None:
    order = load_mapping(ORDER)
    xref = InMemoryXref({"item.itemid": {"TEE-S": "1201"}})
    record = order.apply(order_with("CABLE-USBC-1M", "TEE-S"), xref=xref)
    assert [line["item"]["id"] for line in record.body["item"]["items"]] == ["140", "1201"]


def test_the_table_wins_over_the_cross_reference() -> None:
    xref = InMemoryXref({"item.itemid": {"CABLE-USBC-1M": "7777"}})
    record = load_mapping(ORDER).apply(order_with("CABLE-USBC-1M"), xref=xref)
    assert record.body["item"]["items"][0]["item"]["id"] == "140"


def test_an_unknown_sku_still_names_the_sku_and_the_table() -> None:
    order = load_mapping(ORDER)
    with pytest.raises(MappingError) as caught:
        order.apply(order_with("CABLE-USBC-1M", "NO-SUCH-SKU"), xref=InMemoryXref({}))
    assert str(caught.value) == (
        f"{order.ref}: line_items[1].sku: 'NO-SUCH-SKU' not found in lookup table 'sku_to_item'"
        " (mappings/lookups/sku_to_item.csv), and no ERP item has itemid 'NO-SUCH-SKU'; create it in the ERP"
        " (or add the row, or fix the source value), then retry the event")


def test_erp_lookup_table_must_be_declared(tmp_path: Path) -> None:
    config = {**BASE, "external_id": "x-{id}", "topic": "orders/create", "entity": BASE["entity"],
              "record_type": "salesOrder",
              "fields": [{"source_field": "sku", "target_field": "item.id",
                          "transform": {"name": "erp_lookup", "record": "item", "by": "itemid", "table": "skus"}}]}
    del config["each"]
    with pytest.raises(ConfigError, match=r"fields\[0\].transform: unknown lookup table 'skus'"):
        load(tmp_path, config)


def test_preview_prints_each_record_and_the_elements_left_out(tmp_path: Path) -> None:
    import io
    import json

    from erpsync.mapping.commands import preview

    payload = tmp_path / "product.json"
    payload.write_text(json.dumps({"id": 7, "title": "Tee", "updated_at": "2024-05-02T10:16:00Z", "variants": [
        {"id": 71, "sku": None, "title": "S"}, {"id": 72, "sku": "TEE-M", "title": "M", "price": "10.00"}]}))
    out = io.StringIO()
    assert preview(PRODUCT, payload, out) == 0
    text = out.getvalue()
    assert "skipped variants[0]: no SKU" in text
    assert "variants[1].sku TEE-M: external id shopify-variant-72" in text
    assert '"displayName": "Tee - M"' in text
