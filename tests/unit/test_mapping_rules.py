"""Field rules beyond source → target: when, default, chains, type checks, Jinja templates, entity, drift, commands."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping import commands, find_mapping, load_mapping

ENTITY = {"type": "order", "id": "{id}", "version": "updated_at"}
BASE: dict[str, Any] = {
    "source": "shopify",
    "topic": "orders/create",
    "entity": ENTITY,
    "record_type": "estimate",  # a record type the ERP's field catalogue leaves unchecked: these fields are made up
    "external_id": "o-{id}",
    "fields": [{"source_field": "name", "target_field": "otherRefNum"}],
}
ORDER: dict[str, Any] = {
    "id": 7,
    "name": "#7",
    "updated_at": "2024-05-02T10:16:00-04:00",
    "financial_status": "paid",
    "note": None,
    "customer": {"email": "jane@example.com", "tags": "vip, wholesale"},
    "line_items": [
        {"sku": "A-1", "price": "2.50", "gift_card": False, "tax_lines": [{"rate": 0.1}]},
        {"sku": "GIFT-1", "price": "10", "gift_card": True, "tax_lines": []},
    ],
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mappings").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def mapping_with(workdir: Path, *fields: dict, name: str = "x.yaml", **top: Any):
    config = {**copy.deepcopy(BASE), **top}
    config["fields"] = config["fields"] + list(fields)
    path = workdir / "mappings" / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_mapping(path)


def refused(workdir: Path, *fields: dict, **top: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        mapping_with(workdir, *fields, **top)
    return str(caught.value)


# --- when -----------------------------------------------------------------------------------------


def test_when_on_the_order(workdir: Path) -> None:
    mapping = mapping_with(
        workdir,
        {"target_field": "status", "value": "B", "when": {"field": "financial_status", "equals": "paid"}},
        {"target_field": "memo", "value": "pending", "when": {"field": "financial_status", "in": ["pending"]}},
        {"target_field": "hasNote", "value": True, "when": {"field": "note", "exists": True}},
        {"target_field": "noNote", "value": True, "when": {"not": {"field": "note", "exists": True}}},
        {"target_field": "vip", "value": True, "when": {"all": [
            {"field": "customer.tags", "matches": "vip"}, {"any": [{"field": "id", "equals": 7}]}]}},
    )
    assert mapping.apply(ORDER).body == {"otherRefNum": "#7", "status": "B", "noNote": True, "vip": True}


def test_when_is_evaluated_per_line(workdir: Path) -> None:
    mapping = mapping_with(
        workdir,
        {"source_field": "line_items[].sku", "target_field": "item.items[].item.id"},
        {"source_field": "line_items[].price", "target_field": "item.items[].rate", "transform": "decimal",
         "when": {"field": "line_items[].gift_card", "equals": False}},
        {"target_field": "item.items[].taxCode", "value": "T1", "when": {"field": "line_items[].tax_lines[].rate", "exists": True}},
    )
    items = mapping.apply(ORDER).body["item"]["items"]
    assert items == [{"item": {"id": "A-1"}, "rate": 2.5, "taxCode": "T1"}, {"item": {"id": "GIFT-1"}}]


def test_exclusive_conditions_may_share_a_target(workdir: Path) -> None:
    mapping = mapping_with(
        workdir,
        {"target_field": "status", "value": "B", "when": {"field": "financial_status", "equals": "paid"}},
        {"target_field": "status", "value": "A", "when": {"not": {"field": "financial_status", "equals": "paid"}}},
    )
    assert mapping.apply(ORDER).body["status"] == "B"
    assert mapping.apply({**ORDER, "financial_status": "pending"}).body["status"] == "A"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"field": "x"}, "fields[1].when: a field test needs exactly one of equals, in, exists, matches"),
        ({"field": "x", "equals": 1, "in": [1]}, "exactly one of equals"),
        ({"equals": 1}, "set field"),
        ({"field": "x", "exist": True}, "when.exist"),
        ({"field": "x", "matches": "("}, "bad regular expression"),
        ({"not": {"field": "x", "equals": 1}, "field": "y"}, "a condition is one of"),
    ],
)
def test_bad_conditions(workdir: Path, when: dict, message: str) -> None:
    assert message in refused(workdir, {"target_field": "t", "value": 1, "when": when})


def test_a_condition_cannot_iterate_another_list(workdir: Path) -> None:
    message = refused(workdir, {"source_field": "line_items[].sku", "target_field": "items[].id",
                                "when": {"field": "shipping_lines[].code", "equals": "X"}})
    assert "iterates another list than source_field 'line_items[].sku'" in message


# --- default, required, type, chains ------------------------------------------------------------------


def test_default_comes_before_the_transforms(workdir: Path) -> None:
    mapping = mapping_with(
        workdir,
        {"source_field": "note", "target_field": "memo", "default": "none", "transform": "uppercase"},
        {"source_field": "line_items[].discount", "target_field": "item.items[].discount", "default": "0",
         "transform": "decimal"},
    )
    body = mapping.apply(ORDER).body
    assert body["memo"] == "NONE" and body["item"]["items"] == [{"discount": 0}, {"discount": 0}]


def test_a_chain_applies_in_order_and_names_its_step(workdir: Path) -> None:
    mapping = mapping_with(workdir, {"source_field": "customer.tags", "target_field": "tags",
                                     "transform": ["split", {"name": "join", "sep": "|"}, "uppercase"]})
    assert mapping.apply(ORDER).body["tags"] == "VIP|WHOLESALE"
    message = refused(workdir, {"source_field": "name", "target_field": "t", "transform": ["trim", "upercase"]})
    assert "mappings/x.yaml: fields[1].transform[1]: unknown transform 'upercase' (did you mean 'uppercase'?)" in message


def test_type_drift_names_mapping_version_and_field(workdir: Path) -> None:
    mapping = mapping_with(workdir, {"source_field": "line_items[].price", "target_field": "items[].rate", "type": "text"})
    drifted = copy.deepcopy(ORDER)
    drifted["line_items"][1]["price"] = 10
    with pytest.raises(MappingError) as caught:
        mapping.apply(drifted)
    assert str(caught.value) == f"x@{mapping.version}: line_items[1].price: expected text, found integer"
    assert caught.value.field == "line_items[1].price"


def test_reject_refuses_an_event_with_a_named_reason(workdir: Path) -> None:
    mapping = mapping_with(workdir, reject=[{"when": {"field": "line_items[].gift_card", "equals": True},
                                             "message": "gift cards are sold outside the ERP"}])
    with pytest.raises(MappingError, match=r"^x@\w+: line_items\[\]\.gift_card: gift cards are sold outside the ERP$"):
        mapping.apply(ORDER)


# --- templates --------------------------------------------------------------------------------------


def test_jinja_template(workdir: Path) -> None:
    mapping = mapping_with(workdir, {"template": "{{ name }}: {{ line_items | map(attribute='sku') | join(', ') }}"
                                                 "{% if note %} ({{ note }}){% endif %}", "target_field": "memo"})
    assert mapping.apply(ORDER).body["memo"] == "#7: A-1, GIFT-1"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ name.__class__ }}", "template: 'str object' has no attribute '__class__'"),
        ("{{ customer.items() }}", "has no attribute 'items'"),
        ("{{ missing }}", "template: 'missing' is undefined"),
        ("{{ 'x' * 100000 }}", "template refused: '*' would build more than"),
        ("{% for a in line_items %}{% for b in line_items %}{% for c in line_items %}{% for d in line_items %}"
         "{{ 'x' * 999 }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}", "template output exceeds 10000 characters"),
    ],
)
def test_jinja_sandbox(workdir: Path, template: str, message: str) -> None:
    mapping = mapping_with(workdir, {"template": template, "target_field": "memo"})
    with pytest.raises(MappingError) as caught:
        mapping.apply(ORDER)
    assert message in str(caught.value) and caught.value.field == "fields[1].template"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Order {name}", "'{name}' is key-template syntax; a template: rule is Jinja, write {{ name }}"),
        ("{{ name | center(99) }}", "filter(s) not available in templates: center"),
        ("{{ range(10) }}", ""),
        ("{{ name ", "bad Jinja template (line 1)"),
    ],
)
def test_jinja_checked_at_load(workdir: Path, template: str, message: str) -> None:
    if not message:  # no globals: an unknown name is an error when rendered
        mapping = mapping_with(workdir, {"template": template, "target_field": "memo"})
        with pytest.raises(MappingError, match="'range' is undefined"):
            mapping.apply(ORDER)
        return
    assert message in refused(workdir, {"template": template, "target_field": "memo"})


def test_key_templates_are_not_jinja(workdir: Path) -> None:
    message = refused(workdir, external_id="o-{{ id }}")
    assert "external_id: bad template 'o-{{ id }}': '{{' is Jinja syntax; key templates take {field}" in message
    mapping = mapping_with(workdir, external_id="o-{line_items[0].sku}")
    assert mapping.apply(ORDER).external_id == "o-A-1"


# --- entity, version, file-level options ------------------------------------------------------------


def test_entity_and_version(workdir: Path) -> None:
    mapping = mapping_with(workdir, model="shopify.order")
    assert (mapping.entity_type, mapping.entity_id(ORDER), mapping.model, mapping.name) == ("order", "7", "shopify.order", "x")
    assert mapping.source_version(ORDER) == datetime(2024, 5, 2, 14, 16, tzinfo=UTC)
    assert mapping.source_version({**ORDER, "updated_at": 12}) == 12


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"id": 7}, "updated_at: required source field is missing"),
        ({"id": 7, "updated_at": "2024-05-02T10:16:00"}, "updated_at: timestamp has no UTC offset"),
        ({"id": 7, "updated_at": "yesterday"}, "updated_at: not an ISO 8601 timestamp"),
        ({"id": 7, "updated_at": True}, "updated_at: a version must be a timestamp or a number, found boolean"),
    ],
)
def test_bad_versions_are_named(workdir: Path, payload: dict, message: str) -> None:
    mapping = mapping_with(workdir)
    with pytest.raises(MappingError) as caught:
        mapping.source_version(payload)
    assert str(caught.value).startswith(f"x@{mapping.version}: {message}")


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"entity": None}, "entity: Input should be a valid dictionary"),
        ({"entity": {**ENTITY, "version": "lines[].updated_at"}}, "entity.version: Value error, 'lines[].updated_at' iterates"),
        ({"entity": {**ENTITY, "kind": "x"}}, "entity: unknown key 'kind'"),
        ({"model": "shopify.ordr"}, "model: unknown model 'shopify.ordr' (did you mean 'shopify.order'?)"),
        ({"timezone": "Europe/Pariss"}, "timezone: Value error, unknown time zone"),
        ({"recordtype": "x"}, "unknown key 'recordtype' (did you mean 'record_type'?)"),
    ],
)
def test_bad_file_level_keys(workdir: Path, top: dict, message: str) -> None:
    assert message.replace("Value error, ", "") in refused(workdir, **top)


def test_file_timezone_applies_to_dates(workdir: Path) -> None:
    mapping = mapping_with(workdir, {"source_field": "updated_at", "target_field": "tranDate", "transform": "date"},
                           timezone="Asia/Tokyo")
    assert mapping.apply({**ORDER, "updated_at": "2024-05-02T20:00:00-04:00"}).body["tranDate"] == "2024-05-03"


# --- drift: fields nobody reads ---------------------------------------------------------------------


def test_unread_fields(workdir: Path) -> None:
    mapping = mapping_with(
        workdir,
        {"source_field": "line_items[].sku", "target_field": "items[].id"},
        {"template": "{{ customer.email }}", "target_field": "email"},
        {"target_field": "x", "value": 1, "when": {"field": "financial_status", "exists": True}},
    )
    assert mapping.unread_fields(ORDER) == [
        "line_items[].gift_card", "line_items[].price", "line_items[].tax_lines[]", "line_items[].tax_lines[].rate", "note",
    ]


def test_find_mapping(workdir: Path) -> None:
    mapping_with(workdir)
    mapping_with(workdir, name="y.yaml", topic="orders/paid")
    assert find_mapping(workdir / "mappings", "shopify", "orders/paid").name == "y"
    with pytest.raises(ConfigError, match="no mapping handles shopify topic 'refunds/create'"):
        find_mapping(workdir / "mappings", "shopify", "refunds/create")
    mapping_with(workdir, name="z.yaml", topic="orders/paid")
    with pytest.raises(ConfigError, match="handled by more than one mapping: mappings/y.yaml, mappings/z.yaml"):
        find_mapping(workdir / "mappings", "shopify", "orders/paid")


def test_find_mapping_sees_an_edit(workdir: Path) -> None:
    first = mapping_with(workdir)
    assert find_mapping("mappings", "shopify", "orders/create").version == first.version
    second = mapping_with(workdir, {"source_field": "id", "target_field": "x"})
    assert find_mapping("mappings", "shopify", "orders/create").version == second.version != first.version


# --- commands -----------------------------------------------------------------------------------------


def write_cases(workdir: Path, cases: list[dict], name: str = "x") -> None:
    (workdir / "mappings" / f"{name}_test.yaml").write_text(yaml.safe_dump({"cases": cases}))


def test_validate_and_test_commands(workdir: Path) -> None:
    mapping_with(workdir, {"source_field": "line_items[].sku", "target_field": "items[].id",
                           "transform": {"name": "erp_lookup", "record": "item", "by": "itemid"}})
    write_cases(workdir, [
        {"name": "ids from the case's xref", "input": ORDER, "xref": {"item.itemid": {"A-1": "11", "GIFT-1": "12"}},
         "expected": {"body": {"otherRefNum": "#7", "items": [{"id": "11"}, {"id": "12"}]}, "entity_id": "7"}},
        {"name": "unknown sku", "input": ORDER, "xref": {"item.itemid": {"A-1": "11"}},
         "error": "line_items[1].sku: no ERP item has itemid 'GIFT-1'"},
    ])
    out = io.StringIO()
    assert commands.validate(["mappings"], out) == 0, out.getvalue()
    assert commands.test(["mappings"], out) == 0, out.getvalue()
    assert "ok   x.yaml: ids from the case's xref" in out.getvalue()

    write_cases(workdir, [{"name": "wrong", "input": ORDER, "expected": {"body": {}}}])
    out = io.StringIO()
    assert commands.test(["mappings/x.yaml"], out) == 1
    assert "FAIL x.yaml: wrong" in out.getvalue() and "1 failed" in out.getvalue()

    (workdir / "mappings" / "bad.yaml").write_text("source: shopify\n")
    out = io.StringIO()
    assert commands.validate(["mappings"], out) == 1
    assert "FAIL mappings/bad.yaml: topic" not in out.getvalue() and "mappings/bad.yaml: entity: required key is missing" in out.getvalue()


def test_preview_prints_each_rule_and_the_body(workdir: Path) -> None:
    mapping_with(workdir, {"source_field": "line_items[].price", "target_field": "items[].rate", "transform": "decimal",
                           "when": {"field": "line_items[].gift_card", "equals": False}})
    write_cases(workdir, [{"name": "a", "input": ORDER, "expected": {"body": {}}}])
    (workdir / "order.json").write_text(json.dumps(ORDER))
    out = io.StringIO()
    assert commands.preview("mappings/x.yaml", "order.json", out) == 0
    text = out.getvalue()
    assert "  fields[1]   items[0].rate ← line_items[0].price: 2.5" in text
    assert "  fields[1]   items[1].rate ← line_items[1].price: skipped (when: condition does not hold)" in text
    assert "entity: order 7 version 2024-05-02T10:16:00-04:00" in text and '"rate": 2.5' in text
    (workdir / "order.json").write_text(json.dumps({**ORDER, "name": None}))
    out = io.StringIO()
    assert commands.preview("mappings/x.yaml", "order.json", out) == 1
    assert "FAIL x@" in out.getvalue() and "name: required source field is missing" in out.getvalue()


def test_drift_lists_fields_no_mapping_reads(workdir: Path, ledger: Any) -> None:
    import hashlib

    mapping_with(workdir, {"source_field": "line_items[].sku", "target_field": "items[].id"})
    for n, (topic, payload) in enumerate([("orders/create", ORDER), ("orders/create", {**ORDER, "new_field": 1}),
                                          ("refunds/create", {"id": 1})]):
        body = json.dumps(payload).encode()
        ledger.record_delivery(source="shopify", delivery_id=f"d{n}", topic=topic, shop=None, triggered_at=None,
                               body=body, payload_sha256=hashlib.sha256(body).hexdigest())
    out = io.StringIO()
    assert commands.drift(ledger, "mappings", out) == 0
    text = out.getvalue()
    assert text.startswith("3 event(s) read; 9 field(s) no rule reads in 1 of 1 mapping(s)\n")
    assert "  x: 2 event(s) (shopify orders/create), 9 field(s)" in text
    assert "  new_field  (1 of 2 event(s))" in text and "  line_items[].price  (2 of 2 event(s))" in text
    assert "line_items[].sku" not in text
    assert "  shopify refunds/create: 1 event(s), no mapping handles this topic" in text
