"""find_mapping runs twice for every event, so it reuses its answer while the folder is unchanged; any change to a
mapping file (edited, added, removed) or to a table the answer uses is seen by the next call."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from erpsync.errors import ConfigError
from erpsync.mapping import find_mapping

ORDERS = """\
from: shopify
topics: [orders/create, orders/updated]
entity: {type: order, id: "{id}", version: updated_at}
record_type: salesOrder
external_id: "shopify-order-{id}"
lookups:
  currency_to_id: lookups/currency_to_id.csv
fields:
  - {source_field: name, target_field: otherRefNum}
  - {source_field: currency, target_field: currency, transform: {name: lookup, table: currency_to_id}}
"""
REFUNDS = """\
from: shopify
topic: refunds/create
entity: {type: refund, id: "{id}", version: created_at}
record_type: cashRefund
external_id: "shopify-refund-{id}"
fields:
  - {source_field: note, target_field: memo}
"""


def write(path: Path, text: str, *, tick: int) -> None:
    """Write ``text`` and give the file its own modification time: two writes within one clock tick of the file
    system would otherwise look unchanged when their sizes are equal."""
    path.write_text(text)
    os.utime(path, ns=(tick * 1_000_000_000, tick * 1_000_000_000))


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "lookups").mkdir()
    write(tmp_path / "lookups" / "currency_to_id.csv", "currency,currency_id\nUSD,1\n", tick=1)
    write(tmp_path / "orders.yaml", ORDERS, tick=1)
    write(tmp_path / "refunds.yaml", REFUNDS, tick=1)
    return tmp_path


def test_an_unchanged_folder_gives_the_same_answer_without_reading_it_again(folder):
    first = find_mapping(folder, "shopify", "orders/create")
    assert find_mapping(folder, "shopify", "orders/create") is first
    assert find_mapping(str(folder), "shopify", "orders/updated").record_type == "salesOrder"


def test_an_edit_of_the_same_size_is_seen(folder):
    first = find_mapping(folder, "shopify", "orders/create")
    write(folder / "orders.yaml", ORDERS.replace("shopify-order-", "shopify-ORDER-"), tick=2)
    edited = find_mapping(folder, "shopify", "orders/create")
    assert edited.config.external_id.text == "shopify-ORDER-{id}" and edited.version != first.version


def test_an_edited_table_is_seen(folder):
    assert find_mapping(folder, "shopify", "orders/create").tables["currency_to_id"].get("USD") == "1"
    write(folder / "lookups" / "currency_to_id.csv", "currency,currency_id\nUSD,7\n", tick=2)
    assert find_mapping(folder, "shopify", "orders/create").tables["currency_to_id"].get("USD") == "7"


def test_a_file_added_or_removed_is_seen(folder):
    find_mapping(folder, "shopify", "orders/create")
    write(folder / "orders_again.yaml", ORDERS, tick=1)
    with pytest.raises(ConfigError, match="handled by more than one mapping"):
        find_mapping(folder, "shopify", "orders/create")
    (folder / "orders_again.yaml").unlink()
    find_mapping(folder, "shopify", "orders/create")
    (folder / "orders.yaml").unlink()
    with pytest.raises(ConfigError, match="no mapping handles shopify topic 'orders/create'"):
        find_mapping(folder, "shopify", "orders/create")


def test_a_file_broken_after_an_answer_stops_its_own_topic_and_not_the_others(folder):
    find_mapping(folder, "shopify", "orders/create")
    find_mapping(folder, "shopify", "refunds/create")
    write(folder / "refunds.yaml", REFUNDS + "bogus: 1\n", tick=2)
    with pytest.raises(ConfigError, match="refunds.yaml"):
        find_mapping(folder, "shopify", "refunds/create")
    assert find_mapping(folder, "shopify", "orders/create").record_type == "salesOrder"


def test_case_files_beside_the_mappings_do_not_count(folder):
    first = find_mapping(folder, "shopify", "orders/create")
    write(folder / "orders_test.yaml", "cases: []\n", tick=3)
    assert find_mapping(folder, "shopify", "orders/create") is first
