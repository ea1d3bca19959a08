"""The field-ownership table (erpsync/field_ownership.py): the repository's own loads, and each kind of mistake is
refused naming the file and the path in it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from erpsync.errors import ConfigError
from erpsync.field_ownership import FILE_NAME, load_ownership, parse_ownership

REPO = Path(__file__).resolve().parents[2]


def test_the_repositorys_table_loads_and_says_who_owns_what():
    table = load_ownership(REPO / "mappings")
    assert table.owner("shopify", "productVariant", "price") == "netsuite"
    assert table.owner("shopify", "inventoryLevel", "available") == "netsuite"
    assert table.owner("shopify", "fulfillment", "tracking.numbers") == "netsuite"  # a field's parts are its own
    assert table.owner("shopify", "product", "title") == "shopify"
    assert table.owner("shopify", "productVariant", "sku") is None
    assert table.owned_by("shopify", "productVariant", "netsuite") == ["compareAtPrice", "price"]


def test_no_table_owns_nothing(tmp_path: Path):
    assert load_ownership(tmp_path).owners == {}


INVALID = [
    ("not a mapping", "- shopify\n", "fields.yaml: expected a mapping of system → record type → field → owner"),
    ("unknown system", "shopfy:\n  productVariant: {price: netsuite}\n",
     "fields.yaml: shopfy: unknown system (did you mean 'shopify'?)"),
    ("no record types", "shopify: {}\n", "fields.yaml: shopify: expected record types"),
    ("no fields", "shopify:\n  productVariant: {}\n", "fields.yaml: shopify.productVariant: expected fields"),
    ("a field the record type does not take", "shopify:\n  productVariant: {prise: netsuite}\n",
     "fields.yaml: shopify.productVariant.prise: shopify productVariant has no field 'prise' (did you mean 'price'?)"),
    ("a nested field", "shopify:\n  fulfillment: {tracking.numbers: netsuite}\n",
     "fields.yaml: shopify.fulfillment.tracking.numbers: a field is named as a mapping's top-level target_field"),
    ("an unknown owner", "shopify:\n  productVariant: {price: netsute}\n",
     "fields.yaml: shopify.productVariant.price: the owner must be a system (did you mean 'netsuite'?)"),
    ("an owner that is not a name", "shopify:\n  productVariant: {price: [netsuite]}\n",
     "fields.yaml: shopify.productVariant.price: the owner must be a system"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in INVALID], ids=[n for n, _, _ in INVALID])
def test_a_bad_table_is_refused_naming_the_path(tmp_path: Path, text: str, message: str):
    (tmp_path / "ownership").mkdir()
    (tmp_path / FILE_NAME).write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_ownership(tmp_path)
    assert str(refused.value).startswith(f"{tmp_path.name}/ownership/{message}")


def test_yaml_that_does_not_parse_names_the_line(tmp_path: Path):
    (tmp_path / "ownership").mkdir()
    (tmp_path / FILE_NAME).write_text("shopify:\n  productVariant: {price: netsuite\n")
    with pytest.raises(ConfigError, match=r"ownership/fields.yaml: not valid YAML at line \d"):
        load_ownership(tmp_path)


def test_a_record_type_outside_the_systems_catalogue_is_taken_as_written():
    # Like a mapping's target fields: a record type the system lists no fields of is not checked.
    table = parse_ownership(yaml.safe_load("shopify:\n  product: {title: shopify}\n"))
    assert table.owner("shopify", "product", "title") == "shopify"


def test_a_changed_table_is_read_again(tmp_path: Path):
    (tmp_path / "ownership").mkdir()
    (tmp_path / FILE_NAME).write_text("shopify:\n  productVariant: {price: netsuite}\n")
    assert load_ownership(tmp_path).owner("shopify", "productVariant", "price") == "netsuite"
    (tmp_path / FILE_NAME).write_text("shopify:\n  productVariant: {price: shopify, compareAtPrice: shopify}\n")
    assert load_ownership(tmp_path).owner("shopify", "productVariant", "price") == "shopify"


def test_erpsync_ownership_checks_the_table_and_names_what_is_wrong(tmp_path: Path, capsys):
    from erpsync.cli import main

    assert main(["ownership", "--mappings", str(REPO / "mappings")]) == 0
    assert "shopify productVariant.price: owned by netsuite" in capsys.readouterr().out
    (tmp_path / "ownership").mkdir()
    (tmp_path / FILE_NAME).write_text("shopify:\n  inventoryLevel: {avaliable: netsuite}\n")
    assert main(["ownership", "--mappings", str(tmp_path)]) == 2
    assert "shopify.inventoryLevel.avaliable: shopify inventoryLevel has no field 'avaliable' (did you mean " \
           "'available'?)" in capsys.readouterr().err
