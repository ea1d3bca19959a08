"""A mapping's ``read:`` key: the records read from the source system before mapping, checked at load."""

from __future__ import annotations

import pytest
import yaml

from erpsync.errors import ConfigError
from erpsync.mapping import load_mapping

BASE = """
from: netsuite
to: shopify
topic: inventoryItem.changed
model: netsuite.change
entity: {type: inventoryItem, id: "{data.id}", version: data.lastModified}
record_type: productVariant
external_id: "netsuite-price-{data.id}"
fields:
  - {source_field: record.itemId, target_field: sku}
"""


def _load(tmp_path, read):
    data = yaml.safe_load(BASE)
    data["read"] = read
    path = tmp_path / "netsuite_item_to_shopify_variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_mapping(path)


def test_read_record_reads_the_record_the_notice_names(tmp_path):
    mapping = _load(tmp_path, "record")
    spec = mapping.config.read["record"]
    assert (spec.record_type.text, spec.id.text) == ("{data.recordType}", "{data.id}")


def test_named_reads_keep_their_order(tmp_path):
    mapping = _load(tmp_path, {"record": {"record_type": "itemFulfillment", "id": "{data.id}"},
                               "order": {"record_type": "salesOrder", "id": "{record.createdFrom.id}"}})
    assert list(mapping.config.read) == ["record", "order"]


@pytest.mark.parametrize(("read", "message"), [
    ("records", "write `read: record`"),
    ({"notice": {"record_type": "x", "id": "{data.id}"}}, "'notice': the notice's own field has that name"),
    ({"record": {"record_type": "x"}}, "read.record.id"),
    ({"record": {"record_type": "x", "id": "{data.id}", "expand": True}}, "unknown key 'expand'"),
])
def test_a_bad_read_is_refused_naming_it(tmp_path, read, message):
    with pytest.raises(ConfigError, match="read") as refused:
        _load(tmp_path, read)
    assert message in str(refused.value)
