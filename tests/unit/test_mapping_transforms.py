"""The transform catalog: every docstring example runs as documented, and docs/transforms.md matches the registry."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.errors import MappingError
from erpsync.mapping.config import TransformRef
from erpsync.mapping.transforms import TRANSFORMS, TransformContext
from erpsync.mapping.transforms_doc import DOC_PATH, render_transforms_doc
from erpsync.mapping.xref_resolvers import InMemoryXref

EXAMPLES = [(name, n, example) for name, spec in sorted(TRANSFORMS.items()) for n, example in enumerate(spec.examples)]


def run(transform: Any, value: Any, *, xref: dict | None = None, timezone: str | None = None) -> Any:
    ref = TransformRef.model_validate(transform)
    ctx = TransformContext("line_items[2].x", {}, InMemoryXref(xref or {}), timezone)
    return TRANSFORMS[ref.name].func(value, ref.params, ctx)


def test_every_transform_has_an_example() -> None:
    assert [name for name, spec in TRANSFORMS.items() if not spec.examples] == []


@pytest.mark.parametrize(("name", "n", "example"), EXAMPLES, ids=[f"{name}-{n}" for name, n, _ in EXAMPLES])
def test_docstring_example(name: str, n: int, example: dict) -> None:
    assert set(example) <= {"transform", "input", "output", "error", "xref"}
    if "error" in example:
        with pytest.raises(MappingError) as caught:
            run(example["transform"], example["input"], xref=example.get("xref"))
        assert example["error"] in str(caught.value)
        assert caught.value.field == "line_items[2].x"
    else:
        result = run(example["transform"], example["input"], xref=example.get("xref"))
        assert result == example["output"] and type(result) is type(example["output"])


def test_docs_match_the_registry() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_transforms_doc(), (
        "docs/transforms.md is out of date: run `python -m erpsync.mapping.transforms_doc --write`"
    )


CASES = [
    ("trim", "\t x \n", "x"),
    ({"name": "replace", "old": "-", "new": ""}, "A-B-C", "ABC"),
    ({"name": "regex_extract", "pattern": "(?P<n>\\d+)", "group": "n"}, "SKU 42", "42"),
    ({"name": "regex_extract", "pattern": "\\d+"}, "x12y", "12"),
    ({"name": "split", "sep": ";", "strip": False}, "a; b;", ["a", " b", ""]),
    ({"name": "pad", "width": 5, "side": "right", "fill": "."}, "ab", "ab..."),
    ({"name": "pad", "width": 4, "fill": "0"}, 7, "0007"),
    ({"name": "truncate", "length": 3}, "abcdef", "abc"),
    ({"name": "truncate", "length": 10}, "short", "short"),
    ({"name": "decimal", "places": 2, "rounding": "half_even"}, "2.345", 2.34),
    ({"name": "decimal", "places": 0, "rounding": "floor"}, "-1.5", -2),
    ({"name": "decimal", "places": 1, "rounding": "up"}, 1.01, 1.1),
    ({"name": "cents_to_amount", "places": 0}, 500, 500),
    ({"name": "cents_to_amount", "render": "string"}, 5, "0.05"),
    ({"name": "amount_to_cents", "rounding": "half_up"}, "0.125", 13),
    ({"name": "amount_to_cents", "places": 0}, 1200, 1200),
    ({"name": "currency", "allowed": ["CAD"]}, " cad ", "CAD"),
    ("boolean", 0, False),
    ("boolean", "off", False),
    ({"name": "map", "values": {"1": "One"}}, 1, "One"),
    ({"name": "date", "assume_tz": "America/New_York", "tz": "UTC"}, "2024-01-01T22:00:00", "2024-01-02"),
    ("date", "2024-05-02", "2024-05-02"),
    ({"name": "date", "format": "%d.%m.%Y"}, "2024-05-02T10:15:00Z", "02.05.2024"),
    ("datetime", "2024-05-02T10:15:00-04:00", "2024-05-02T10:15:00-04:00"),
    ({"name": "datetime", "format": "%Y-%m-%d %H:%M"}, "2024-05-02T10:15:00Z", "2024-05-02 10:15"),
]


@pytest.mark.parametrize(("transform", "value", "expected"), CASES)
def test_transform(transform: Any, value: Any, expected: Any) -> None:
    result = run(transform, value)
    assert result == expected and type(result) is type(expected)


def test_the_file_timezone_is_the_default_zone_of_dates() -> None:
    assert run("date", "2021-12-31T19:00:00-05:00", timezone="Asia/Tokyo") == "2022-01-01"
    assert run({"name": "date", "tz": "America/New_York"}, "2021-12-31T19:00:00-05:00", timezone="Asia/Tokyo") == (
        "2021-12-31"
    )


ERRORS = [
    ("title", 3, "expected text, found int"),
    ({"name": "regex_extract", "pattern": "^X"}, "Jane Customer", "does not match the pattern '^X'"),
    ({"name": "regex_extract", "pattern": "(a)", "group": 3}, "a", "the pattern has no group 3"),
    ("join", "Jane", "expected a list, found str"),
    ({"name": "join"}, ["a", {"b": 1}], "element [1]: expected text or a number, found dict"),
    ({"name": "decimal", "places": 2}, "1.555", "more than 2 decimal places"),
    ("amount_to_cents", "1.999", "more than 2 decimal places"),
    ("amount_to_cents", "1E+26", "too many digits to keep 2 decimal places"),
    ("cents_to_amount", "12.5", "a count of cents must be a whole number"),
    ("currency", "ZZZ", "'ZZZ' is not an ISO 4217 currency code"),
    ("currency", "Jane Customer", "value is not an ISO 4217 currency code"),
    ("boolean", "Jane", "not a yes/no value"),
    ("boolean", 2, "expected a boolean, found int"),
    ("date", "2021-12-31T19:00:00", "no UTC offset"),
    ("datetime", "Jane", "not an ISO 8601 timestamp"),
    ({"name": "date", "input_format": "%d/%m/%Y", "assume_tz": "UTC"}, "2024-01-01", "not the format '%d/%m/%Y'"),
    ({"name": "lookup", "values": {"a": "1"}, "redact_key": True}, "jane@example.com", "key not found"),
    ({"name": "erp_lookup", "record": "item", "by": "itemid"}, "NOPE-1", "no ERP item has itemid 'NOPE-1'"),
]


@pytest.mark.parametrize(("transform", "value", "message"), ERRORS)
def test_transform_error_names_the_field_not_customer_data(transform: Any, value: Any, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        run(transform, value)
    assert caught.value.field == "line_items[2].x"
    assert message in str(caught.value)
    assert "Jane" not in str(caught.value) and "jane" not in str(caught.value)


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ({"name": "decimal", "rounding": "half_up"}, "rounding needs places"),
        ({"name": "decimal", "places": 2, "rounding": "bankers"}, "rounding: Input should be 'half_up'"),
        ({"name": "regex_extract", "pattern": "("}, "bad regular expression"),
        ({"name": "currency", "allowed": ["USD", "XYZ"]}, "not ISO 4217 currency codes: XYZ"),
        ({"name": "truncate", "length": 1, "ellipsis": "…"}, "the ellipsis must be shorter than the length"),
        ({"name": "lookup", "table": "a", "values": {}}, "set exactly one of table"),
        ({"name": "erp_lookup", "record": "items", "by": "itemid"}, "unknown ERP record 'items' (did you mean 'item'?)"),
        ({"name": "erp_lookup", "record": "customer", "by": "password"}, "'customer' cannot be looked up by 'password'"),
        ({"name": "date", "assume_tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"name": "pad", "width": 3, "fil": "0"}, "fil: unknown key"),
        ({"name": "map", "values": {}}, "values: Dictionary should have at least 1 item"),
    ],
)
def test_bad_transform_parameters_are_refused_at_load(transform: dict, message: str) -> None:
    with pytest.raises(Exception) as caught:  # pydantic's ValidationError, reported by the loader as ConfigError
        TransformRef.model_validate(transform)
    assert message in str(caught.value)


def test_an_erp_lookup_without_a_resolver_is_a_wiring_error() -> None:
    from erpsync.errors import ConfigError

    ref = TransformRef.model_validate({"name": "erp_lookup", "record": "item", "by": "itemid"})
    with pytest.raises(ConfigError, match="needs the ERP cross-reference"):
        TRANSFORMS["erp_lookup"].func("A", ref.params, TransformContext("line_items[0].sku"))
