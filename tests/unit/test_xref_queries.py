"""The SuiteQL text of a NetSuite lookup by natural key: allowed names only, the value a checked SQL-92 literal."""

from __future__ import annotations

import pytest

from erpsync.errors import MappingError
from erpsync.systems.netsuite.queries import CASE_INSENSITIVE_FIELDS, suiteql_lookup
from erpsync.xref_cache import _cache_key


@pytest.mark.parametrize(
    ("record", "field", "value", "query"),
    [
        ("item", "itemid", "IPOD2008PINK", "SELECT id FROM item WHERE itemid = 'IPOD2008PINK'"),
        ("item", "itemid", "O'NEILL-CAP", "SELECT id FROM item WHERE itemid = 'O''NEILL-CAP'"),
        ("item", "itemid", "x' OR '1'='1", "SELECT id FROM item WHERE itemid = 'x'' OR ''1''=''1'"),
        ("customer", "email", "Jo.O'Brien@Example.com",
         "SELECT id FROM customer WHERE LOWER(email) = 'jo.o''brien@example.com'"),
        ("item", "itemid", "Ünïcode-SKU", "SELECT id FROM item WHERE itemid = 'Ünïcode-SKU'"),
    ],
)
def test_the_query(record: str, field: str, value: str, query: str) -> None:
    assert suiteql_lookup(record, field, value) == query


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("itemid", "", "an empty itemid cannot be looked up"),
        ("itemid", "A\nB", "itemid 'A\\nB' holds a control character"),
        ("itemid", "A\x85B", "holds a control character"),
        ("itemid", "x" * 301, "is longer than 300 characters"),
        ("email", "jane\t@example.com", "this email holds a control character"),
    ],
)
def test_a_value_that_cannot_be_a_literal_is_refused_naming_the_field(field: str, value: str, message: str) -> None:
    record = "customer" if field == "email" else "item"
    with pytest.raises(MappingError) as caught:
        suiteql_lookup(record, field, value)
    assert message in str(caught.value)
    if field == "email":
        assert "jane" not in str(caught.value)


def test_names_outside_the_allow_list_never_reach_the_text() -> None:
    with pytest.raises(ValueError, match="cannot be looked up by"):
        suiteql_lookup("customer", "email) = '' OR (1", "x")


def test_an_email_is_cached_under_the_hash_of_its_lower_case() -> None:
    keys = CASE_INSENSITIVE_FIELDS
    assert _cache_key("email", "Jane@Example.com", keys) == _cache_key("email", "jane@example.com", keys)
    assert _cache_key("email", "jane@example.com", keys).startswith("sha256:")
    assert _cache_key("itemid", "SKU-1", keys) == "SKU-1"
