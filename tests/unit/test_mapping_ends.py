"""A mapping names both ends (`from:`, `to:`), each a registered system; files that say `source:` keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError
from erpsync.mapping import load_mapping
from erpsync.mapping.scaffold import scaffold_mapping

REPO = Path(__file__).parents[2]
BASE: dict[str, Any] = {
    "topic": "customers/create",
    "entity": {"type": "customer", "id": "{id}", "version": "updated_at"},
    "record_type": "customer",
    "external_id": "shopify-customer-{id}",
    "fields": [{"source_field": "email", "target_field": "email"}],
}


def load(tmp_path: Path, **ends: str):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**ends, **BASE}))
    return load_mapping(path)


def test_both_ends_are_named_by_from_and_to(tmp_path):
    mapping = load(tmp_path, **{"from": "shopify", "to": "netsuite"})
    assert (mapping.source, mapping.target) == ("shopify", "netsuite")


def test_a_file_that_says_source_reads_as_from_and_writes_to_netsuite(tmp_path):
    mapping = load(tmp_path, source="woocommerce")
    assert (mapping.source, mapping.target) == ("woocommerce", "netsuite")


@pytest.mark.parametrize(("ends", "message"), [
    ({"from": "shopify", "source": "shopify"}, "set one of from, source"),
    ({"from": "shopfy"}, "from: unknown system 'shopfy' (did you mean 'shopify'?)"),
    ({"from": "shopify", "to": "sap"}, "to: unknown system 'sap' (known: netsuite, shopify, standard, tryton, woocommerce)"),
    ({"from": "netsuite", "to": "netsuite"}, "from and to are both 'netsuite'"),
    ({"to": "netsuite"}, "from: "),
])
def test_ends_that_are_not_two_registered_systems_are_refused(tmp_path, ends, message):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **ends)
    assert message in str(info.value)


def test_every_shipped_mapping_names_both_ends():
    for path in sorted((REPO / "mappings").glob("*.yaml")):
        if path.name.endswith("_test.yaml"):
            continue
        text = yaml.safe_load(path.read_text())
        assert {"from", "to"} <= text.keys(), path.name
        mapping = load_mapping(path)
        # The way in writes to the ERP its file names (netsuite or tryton); the way back (from the ERP) to the shop.
        erps = {"netsuite", "tryton"}
        if mapping.source in erps:
            assert mapping.target == "shopify", path.name
        else:
            assert mapping.target in erps and f"_to_{mapping.target}_" in path.stem, path.name


def test_a_scaffolded_mapping_names_the_target_it_was_asked_for(tmp_path):
    mapping_path, _cases = scaffold_mapping(tmp_path, "standard", "customers/create", "customer", "netsuite")
    assert mapping_path.name == "standard_customer_to_netsuite_customer.yaml"
    assert load_mapping(mapping_path).target == "netsuite"
    with pytest.raises(ConfigError, match="unknown system 'sap'"):
        scaffold_mapping(tmp_path, "standard", "orders/create", "salesOrder", "sap")
