"""The mapping layer: transforms, paths and line items, config validation messages, versions, and the case files."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping import CaseResult, MappedRecord, discover_mappings, load_mapping, run_cases
from erpsync.mapping.cases import load_cases, run_case
from erpsync.mapping.lookup_tables import LookupTable
from erpsync.mapping.paths import MISSING, FieldPath, read, write
from erpsync.mapping.transforms import TRANSFORMS, TransformContext

REPO = Path(__file__).parents[2]
MAPPINGS = REPO / "mappings"
SALES_ORDER = MAPPINGS / "shopify_order_to_netsuite_sales_order.yaml"


# --- transforms ---------------------------------------------------------------------------------


def run_transform(name: str, value: Any, tables: dict[str, LookupTable] | None = None, **args: Any) -> Any:
    spec = TRANSFORMS[name]
    return spec.func(value, spec.params.model_validate(args), TransformContext("line_items[2].x", tables or {}))


TRANSFORM_CASES = [
    ("uppercase", "abc-1", {}, "ABC-1"),
    ("lowercase", "AbC", {}, "abc"),
    ("string", 820982911946154508, {}, "820982911946154508"),
    ("string", "x", {}, "x"),
    ("int", "3", {}, 3),
    ("int", 3, {}, 3),
    ("int", "2.00", {}, 2),
    ("decimal", "199.00", {}, 199),
    ("decimal", "19.99", {}, 19.99),
    ("decimal", "0.1", {}, 0.1),
    ("decimal", 19.99, {}, 19.99),
    ("decimal", Decimal("7.25"), {}, 7.25),
    ("decimal", "199.00", {"render": "string"}, "199.00"),
    ("decimal", "1.5", {"render": "string", "places": 2}, "1.50"),
    ("decimal", "12345678901234567.89", {"render": "string"}, "12345678901234567.89"),
    ("date", "2021-12-31T19:00:00-05:00", {}, "2021-12-31"),
    ("date", "2021-12-31T19:00:00-05:00", {"tz": "UTC"}, "2022-01-01"),
    ("date", "2024-03-01T00:30:00+01:00", {"tz": "America/New_York"}, "2024-02-29"),
    ("date", "2024-05-02T10:15:00Z", {}, "2024-05-02"),
]


@pytest.mark.parametrize(("name", "value", "args", "expected"), TRANSFORM_CASES)
def test_transform(name: str, value: Any, args: dict, expected: Any) -> None:
    result = run_transform(name, value, **args)
    assert result == expected and type(result) is type(expected)


def test_decimal_number_is_written_with_the_exact_digits() -> None:
    body = {"rate": run_transform("decimal", "1234567.89"), "small": run_transform("decimal", "0.07")}
    assert json.dumps(body) == '{"rate": 1234567.89, "small": 0.07}'


TRANSFORM_ERRORS = [
    ("uppercase", 5, {}, "expected text, found int"),
    ("int", "1.5", {}, "not a whole number"),
    ("int", True, {}, "expected a number, found bool"),
    ("decimal", "Jane Customer", {}, "not a decimal number"),
    ("decimal", "NaN", {}, "not a finite number"),
    ("decimal", "12345678901234567.89", {}, "use render: string"),
    ("decimal", "1.555", {"places": 2}, "more than 2 decimal places"),
    ("date", "Jane Customer", {}, "not an ISO 8601 timestamp"),
    ("date", "2021-12-31T19:00:00", {}, "no UTC offset"),
    ("string", {"name": "Jane Customer"}, {}, "found dict"),
]


@pytest.mark.parametrize(("name", "value", "args", "message"), TRANSFORM_ERRORS)
def test_transform_error_names_the_field_not_the_value(name: str, value: Any, args: dict, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        run_transform(name, value, **args)
    assert caught.value.field == "line_items[2].x"
    assert message in str(caught.value)
    assert "Jane" not in str(caught.value)


def sku_table(tmp_path: Path, text: str = "sku,item_id\nA-1,11\nB-2,22\n") -> LookupTable:
    path = tmp_path / "skus.csv"
    path.write_text(text)
    return LookupTable.load("skus", path, "lookups/skus.csv")


def test_lookup(tmp_path: Path) -> None:
    tables = {"skus": sku_table(tmp_path)}
    assert run_transform("lookup", "B-2", tables, table="skus") == "22"
    with pytest.raises(MappingError) as caught:
        run_transform("lookup", "C-3", tables, table="skus")
    assert str(caught.value) == "line_items[2].x: 'C-3' not found in lookup table 'skus' (lookups/skus.csv)"
    with pytest.raises(MappingError) as caught:
        run_transform("lookup", "jane@example.com", tables, table="skus", redact_key=True)
    assert "jane" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("sku\nA,1\n", "no column ''"),
        ("sku,item_id\nA,1\nA,2\n", r"line 3: duplicate key \(also on line 2\)"),
        ("sku,item_id\nA\n", "line 2: 1 cells, header has 2"),
        ("sku,item_id\nA,\n", "line 2: empty item_id"),
    ],
)
def test_bad_lookup_table(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        sku_table(tmp_path, text)


# --- paths and line items -----------------------------------------------------------------------


def test_path_parse() -> None:
    path = FieldPath.parse("item.items[].item.id")
    assert path.iterations == 1 and str(path) == "item.items[].item.id"
    assert FieldPath.parse("line_items[0].sku").iterations == 0


@pytest.mark.parametrize("text", ["", "a..b", "a.b[x]", "1a", "a[]]", "a b", "a.__class__x[", "a-b"])
def test_bad_path(text: str) -> None:
    with pytest.raises(ValueError):
        FieldPath.parse(text)


def test_read_line_items_and_missing_places() -> None:
    payload = {"line_items": [{"sku": "A"}, {"sku": None}, {}, None], "customer": None}
    found = read(payload, FieldPath.parse("line_items[].sku"))
    assert [(f.where, f.indices, f.value) for f in found] == [
        ("line_items[0].sku", (0,), "A"),
        ("line_items[1].sku", (1,), MISSING),
        ("line_items[2].sku", (2,), MISSING),
        ("line_items[3].sku", (3,), MISSING),
    ]
    (one,) = read(payload, FieldPath.parse("customer.id"))
    assert one.where == "customer.id" and one.value is MISSING
    (first,) = read(payload, FieldPath.parse("line_items[0].sku"))
    assert first.value == "A"


def test_read_refuses_wrong_shapes_without_values() -> None:
    with pytest.raises(MappingError) as caught:
        read({"line_items": "Jane"}, FieldPath.parse("line_items[].sku"))
    assert str(caught.value) == "line_items: expected a list, found str"


def test_nested_lists_keep_their_positions() -> None:
    payload = {"lines": [{"taxes": [{"rate": 1}, {"rate": 2}]}, {"taxes": [{"rate": 3}]}]}
    body: dict = {}
    target = FieldPath.parse("item.items[].taxes[].rate")
    for found in read(payload, FieldPath.parse("lines[].taxes[].rate")):
        write(body, target, found.indices, found.value)
    assert body == {"item": {"items": [{"taxes": [{"rate": 1}, {"rate": 2}]}, {"taxes": [{"rate": 3}]}]}}


# --- the engine, on small mapping files ---------------------------------------------------------

BASE = {
    "source": "shopify",
    "topic": "orders/create",
    "entity": {"type": "order", "id": "{id}", "version": "updated_at"},
    "record_type": "salesOrder",
    "external_id": "shopify-order-{id}",
    "lookups": {"sku_to_item": "lookups/skus.csv"},
    "fields": [
        {"target_field": "entity.id", "value": "110"},
        {"source_field": "created_at", "target_field": "tranDate", "transform": "date"},
        {"source_field": "name", "target_field": "otherRefNum"},
        {
            "source_field": "line_items[].sku",
            "target_field": "item.items[].item.id",
            "transform": {"name": "lookup", "table": "sku_to_item"},
        },
        {"source_field": "line_items[].price", "target_field": "item.items[].rate", "transform": "decimal"},
    ],
}
ORDER = {
    "id": 7,
    "name": "#7",
    "created_at": "2024-05-02T10:15:00-04:00",
    "updated_at": "2024-05-02T10:16:00-04:00",
    "line_items": [{"sku": "A-1", "price": "2.50"}, {"sku": "B-2", "price": "10"}],
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out like the repo (mappings/, mappings/lookups/), also the working directory."""
    (tmp_path / "mappings" / "lookups").mkdir(parents=True)
    (tmp_path / "mappings" / "lookups" / "skus.csv").write_text("sku,item_id\nA-1,11\nB-2,22\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_mapping(workdir: Path, config: dict | str, name: str = "x.yaml") -> Path:
    path = workdir / "mappings" / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return path


def with_fields(*extra: dict, base: dict = BASE) -> dict:
    config = copy.deepcopy(base)
    config["fields"] += list(extra)
    return config


def test_apply(workdir: Path) -> None:
    mapping = load_mapping(write_mapping(workdir, BASE))
    record = mapping.apply(ORDER)
    assert record == MappedRecord(
        "salesOrder",
        "shopify-order-7",
        {
            "entity": {"id": "110"},
            "tranDate": "2024-05-02",
            "otherRefNum": "#7",
            "item": {"items": [{"item": {"id": "11"}, "rate": 2.5}, {"item": {"id": "22"}, "rate": 10}]},
        },
    )
    assert mapping.record_type == "salesOrder" and mapping.topics == ("orders/create",)
    assert mapping.handles("shopify", "orders/create") and not mapping.handles("shopify", "orders/delete")
    json.dumps(record.body)  # plain JSON, no Decimal


def test_constant_goes_to_every_line_and_does_not_share_state(workdir: Path) -> None:
    config = with_fields({"target_field": "item.items[].taxCode", "value": {"id": "5"}})
    record = load_mapping(write_mapping(workdir, config)).apply(ORDER)
    items = record.body["item"]["items"]
    assert [i["taxCode"] for i in items] == [{"id": "5"}, {"id": "5"}]
    assert items[0]["taxCode"] is not items[1]["taxCode"]


def test_template_field(workdir: Path) -> None:
    config = with_fields({"template": "Shopify order {{ name }} ({{ line_items[0].sku }})", "target_field": "memo"})
    record = load_mapping(write_mapping(workdir, config)).apply(ORDER)
    assert record.body["memo"] == "Shopify order #7 (A-1)"


def test_optional_field_is_skipped_and_required_is_named(workdir: Path) -> None:
    config = with_fields(
        {"source_field": "line_items[].title", "target_field": "item.items[].description", "required": False},
        {"source_field": "line_items[].quantity", "target_field": "item.items[].quantity", "transform": "int"},
    )
    mapping = load_mapping(write_mapping(workdir, config))
    order = copy.deepcopy(ORDER)
    order["line_items"][0].update(title="Cable", quantity=1)
    with pytest.raises(MappingError) as caught:
        mapping.apply(order)
    assert caught.value.field == "line_items[1].quantity"
    assert str(caught.value) == f"x@{mapping.version}: line_items[1].quantity: required source field is missing"
    order["line_items"][1]["quantity"] = 3
    items = mapping.apply(order).body["item"]["items"]
    assert items[0]["description"] == "Cable" and "description" not in items[1]


def test_unknown_sku_names_line_sku_and_table(workdir: Path) -> None:
    mapping = load_mapping(write_mapping(workdir, BASE))
    order = copy.deepcopy(ORDER)
    order["line_items"].append({"sku": "ZZ-9", "price": "1"})
    with pytest.raises(MappingError) as caught:
        mapping.apply(order)
    assert caught.value.field == "line_items[2].sku"
    assert str(caught.value) == (
        f"x@{mapping.version}: line_items[2].sku: 'ZZ-9' not found in lookup table 'sku_to_item'"
        " (mappings/lookups/skus.csv)"
    )


def test_template_reads_payload_keys_never_python_attributes(workdir: Path) -> None:
    mapping = load_mapping(write_mapping(workdir, {**BASE, "external_id": "x-{id.__class__}"}))
    with pytest.raises(MappingError, match=r"^x@\w{12}: id: expected an object, found int$"):
        mapping.apply(ORDER)


@pytest.mark.parametrize(
    ("order_id", "message"),
    [(None, "id: required source field is missing"), ("7|8", "external_id: rendered external id may hold only")],
)
def test_external_id_errors(workdir: Path, order_id: Any, message: str) -> None:
    mapping = load_mapping(write_mapping(workdir, BASE))
    with pytest.raises(MappingError, match=message.replace("|", r"\|")):
        mapping.apply({**ORDER, "id": order_id})


def test_version_covers_the_file_and_its_tables(workdir: Path) -> None:
    path = write_mapping(workdir, BASE)
    first = load_mapping(path).version
    assert len(first) == 12 and first == load_mapping(path).version
    (workdir / "mappings" / "lookups" / "skus.csv").write_text("sku,item_id\nA-1,11\nB-2,23\n")
    second = load_mapping(path).version
    assert second != first
    path.write_text(path.read_text() + "# a comment is a change too\n")
    assert load_mapping(path).version not in (first, second)


# --- config validation: VALID / INVALID tables --------------------------------------------------

VALID_CONFIGS = [
    ("base", BASE),
    ("topics list", {**{k: v for k, v in BASE.items() if k != "topic"}, "topics": ["orders/create", "orders/paid"]}),
    ("lookup with columns", {**BASE, "lookups": {"sku_to_item": {"path": "lookups/skus.csv", "key": "sku", "value": "item_id"}}}),
    ("null constant", with_fields({"target_field": "memo", "value": None})),
    ("indexed source", with_fields({"source_field": "line_items[0].sku", "target_field": "custbody_first_sku"})),
    ("date with zone", with_fields({"source_field": "updated_at", "target_field": "startDate", "transform": {"name": "date", "tz": "Europe/Paris"}})),
]


@pytest.mark.parametrize("config", [c[1] for c in VALID_CONFIGS], ids=[c[0] for c in VALID_CONFIGS])
def test_valid_config(workdir: Path, config: dict) -> None:
    load_mapping(write_mapping(workdir, config))


def _field(i: int, **changes: Any) -> dict:
    config = copy.deepcopy(BASE)
    config["fields"][i].update(changes)
    return config


def _without(key: str) -> dict:
    return {k: v for k, v in BASE.items() if k != key}


INVALID_CONFIGS = [
    (
        "unknown transform",
        _field(3, transform="upercase"),
        "mappings/x.yaml: fields[3].transform: unknown transform 'upercase' (did you mean 'uppercase'?)",
    ),
    (
        "unknown lookup table",
        _field(3, transform={"name": "lookup", "table": "sku_to_itm"}),
        "mappings/x.yaml: fields[3].transform: unknown lookup table 'sku_to_itm' (did you mean 'sku_to_item'?)",
    ),
    (
        "lookup without table",
        _field(3, transform={"name": "lookup"}),
        "mappings/x.yaml: fields[3].transform: transform 'lookup': set exactly one of table (a CSV under lookups:)"
        " or values (inline)",
    ),
    (
        "unknown transform argument",
        _field(1, transform={"name": "date", "zone": "UTC"}),
        "mappings/x.yaml: fields[1].transform: transform 'date': zone: unknown key",
    ),
    (
        "unknown time zone",
        _field(1, transform={"name": "date", "tz": "Mars/Olympus"}),
        "mappings/x.yaml: fields[1].transform: transform 'date': tz: unknown time zone 'Mars/Olympus'",
    ),
    (
        "bad source path",
        _field(2, source_field="line_items[x].sku"),
        "mappings/x.yaml: fields[2].source_field: bad path 'line_items[x].sku': "
        "segment 'line_items[x]' is not a name, name[] or name[N]",
    ),
    (
        "list source into single target",
        _field(4, target_field="rate"),
        "mappings/x.yaml: fields[4]: source_field has 1 list step(s) ([]) but target_field has 0; they must match",
    ),
    (
        "duplicate target",
        with_fields({"source_field": "name", "target_field": "otherRefNum"}),
        "mappings/x.yaml: fields[5].target_field: duplicate target 'otherRefNum' (also fields[2])",
    ),
    (
        "overlapping targets",
        with_fields({"target_field": "entity", "value": {"id": "1"}}),
        "mappings/x.yaml: fields[5].target_field: 'entity' overlaps fields[0].target_field (one is inside the other)",
    ),
    (
        "constant for a list nobody fills",
        with_fields({"target_field": "shipments[].id", "value": "1"}),
        "mappings/x.yaml: fields[5].target_field: no source_field fills the list of 'shipments[].id'",
    ),
    (
        "two sources",
        _field(2, value="x"),
        "mappings/x.yaml: fields[2]: set exactly one of source_field, value, template (found: source_field, value)",
    ),
    ("typo in key", _field(2, sourcefield="x"), "mappings/x.yaml: fields[2]: unknown key 'sourcefield' (did you mean 'source_field'?)"),
    ("missing record type", _without("record_type"), "mappings/x.yaml: record_type: required key is missing"),
    ("topic and topics", {**BASE, "topics": ["a"]}, "mappings/x.yaml: set exactly one of topic, topics"),
    (
        "positional template field",
        {**BASE, "external_id": "x-{0}"},
        "mappings/x.yaml: external_id: bad path '0'",
    ),
    (
        "template with format spec",
        {**BASE, "external_id": "x-{id:>20}"},
        "mappings/x.yaml: external_id: bad template 'x-{id:>20}': only {field} is allowed",
    ),
    (
        "missing lookup file",
        {**BASE, "lookups": {"sku_to_item": "lookups/nope.csv"}},
        "mappings/x.yaml: lookups.sku_to_item: cannot read mappings/lookups/nope.csv: No such file or directory",
    ),
    ("not a mapping", "- just\n- a list\n", "mappings/x.yaml: expected a mapping of keys at the top level"),
    ("bad yaml", "source: [shopify\n", "mappings/x.yaml: invalid YAML at line 2 column 1"),
]


@pytest.mark.parametrize(
    ("config", "message"), [c[1:] for c in INVALID_CONFIGS], ids=[c[0] for c in INVALID_CONFIGS]
)
def test_invalid_config(workdir: Path, config: dict | str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(write_mapping(workdir, config))
    assert message in str(caught.value)


def test_missing_mapping_file(workdir: Path) -> None:
    with pytest.raises(ConfigError, match=r"^mappings/absent.yaml: cannot read"):
        load_mapping("mappings/absent.yaml")


def test_every_problem_of_a_file_is_reported(workdir: Path) -> None:
    config = _field(3, transform={"name": "lookup", "table": "nope"})
    config["fields"].append({"source_field": "name", "target_field": "otherRefNum"})
    with pytest.raises(ConfigError) as caught:
        load_mapping(write_mapping(workdir, config))
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and all(line.startswith("mappings/x.yaml: fields[") for line in lines)


# --- case files ---------------------------------------------------------------------------------


def _shipped_cases() -> list[tuple[Path, Any]]:
    """(mapping, case) for every shipped case; a mapping whose files do not load becomes one failing entry."""
    out: list[tuple[Path, Any]] = []
    for path in discover_mappings(MAPPINGS):
        try:
            out += [(path, case) for case in load_cases(path)]
        except ConfigError as exc:
            out.append((path, exc))
    return out


@pytest.mark.parametrize(
    ("mapping_path", "case"),
    _shipped_cases(),
    ids=lambda v: getattr(v, "name", None) if not isinstance(v, Exception) else "invalid files",
)
def test_mapping_case(mapping_path: Path, case: Any) -> None:
    if isinstance(case, ConfigError):
        pytest.fail(str(case))
    result = run_case(load_mapping(mapping_path), case, mapping_path.parent)
    if result.skipped:
        pytest.skip(result.message)
    assert result.passed, result.message


def test_shipped_mappings_found_and_cases_run() -> None:
    assert SALES_ORDER in discover_mappings(MAPPINGS)
    results = run_cases(SALES_ORDER)
    assert len(results) >= 11 and all(r.passed for r in results), [r for r in results if not r.passed]


def test_the_shipped_mapping_covers_the_fixture_skus() -> None:
    mapping = load_mapping(SALES_ORDER)
    table = mapping.tables["sku_to_item"]
    assert table.get("IPOD2008PINK") is not None
    assert len(table.rows) >= 20 and all(1 <= int(v) <= 999 for v in table.rows.values())


def test_failing_cases_say_why(workdir: Path) -> None:
    path = write_mapping(workdir, BASE)
    cases = {
        "cases": [
            {"name": "right", "input": ORDER, "expected": {
                "external_id": "shopify-order-7", "entity_id": "7", "version": "2024-05-02T14:16:00Z",
                "body": load_mapping(path).apply(ORDER).body}},
            {"name": "wrong rate", "input": ORDER, "expected": {
                "body": {**load_mapping(path).apply(ORDER).body, "tranDate": "2024-05-03"}}},
            {"name": "wrong entity", "input": ORDER, "expected": {
                "entity_id": "8", "version": 5, "body": load_mapping(path).apply(ORDER).body}},
            {"name": "expected error", "input": ORDER, "error": "nope"},
            {"name": "wrong error", "input": {**ORDER, "id": None}, "error": "sku"},
            {"name": "error as a pattern", "input": {**ORDER, "id": None}, "error": r"^x@[0-9a-f]{12}: id: required"},
            {"name": "absent file", "input_file": "nowhere.json", "optional": True, "expected": {"body": {}}},
        ]
    }
    (workdir / "mappings" / "x_test.yaml").write_text(yaml.safe_dump(cases))
    results = {r.name: r for r in run_cases(path)}
    assert results["right"] == CaseResult("right", True, "")
    assert results["wrong rate"].message == "body.tranDate: expected '2024-05-03', got '2024-05-02'"
    assert results["wrong entity"].message == (
        "entity_id: expected '8', got '7'; version: expected 5, got '2024-05-02T10:16:00-04:00'"
    )
    assert "expected an error matching 'nope'" in results["expected error"].message
    assert results["wrong error"].message.endswith(": id: required source field is missing' does not match 'sku'")
    assert results["error as a pattern"].passed
    assert results["absent file"].skipped and results["absent file"].passed


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        (None, "mappings/x_test.yaml: missing"),
        ({"cases": [{"name": "a", "input": {}}]}, "mappings/x_test.yaml: cases[0]: set exactly one of expected"),
        ({"cases": [{"name": "a", "input": {}, "expect": 1}]}, "cases[0]: unknown key 'expect' (did you mean 'expected'?)"),
        ({"cases": [{"name": "a", "input": {}, "expected": {"body": {}}}] * 2}, "duplicate case name 'a'"),
    ],
)
def test_invalid_case_file(workdir: Path, cases: dict | None, message: str) -> None:
    path = write_mapping(workdir, BASE)
    if cases is not None:
        (workdir / "mappings" / "x_test.yaml").write_text(yaml.safe_dump(cases))
    with pytest.raises(ConfigError) as caught:
        run_cases(path)
    assert message in str(caught.value)


def test_mapping_layer_does_not_import_prefect() -> None:
    code = (
        "import sys, erpsync.mapping, erpsync.systems.shopify.models;"
        "sys.exit(any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
