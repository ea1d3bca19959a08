"""A mapping reads only files inside its own folder, and no error quotes what a file holds.

A mapping is data edited by people who may not run code, and a run's error reaches the ledger and the logs:
``lookups: {t: {path: ../../../../proc/self/environ, key: nope, value: nope}}`` once printed the whole
environment (the ERP secret included) as "no column 'nope' (header: SHELL=… HOME=…)".
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import yaml

from erpsync.errors import ConfigError
from erpsync.mapping import load_mapping
from erpsync.mapping.commands import validate
from erpsync.mapping.lookup_tables import MAX_TABLE_BYTES

SECRET = "erp-secret-3f9a1c"  # stands for anything a file outside the folder holds

BASE = {
    "source": "shopify",
    "topic": "orders/create",
    "entity": {"type": "order", "id": "{id}", "version": "updated_at"},
    "record_type": "salesOrder",
    "external_id": "o-{id}",
    "fields": [{"source_field": "sku", "target_field": "memo", "transform": {"name": "lookup", "table": "t"}}],
}


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(mappings folder, a folder beside it holding a secret file); the working directory is their parent."""
    monkeypatch.chdir(tmp_path)
    mappings = tmp_path / "mappings"
    (mappings / "lookups").mkdir(parents=True)
    (mappings / "lookups" / "skus.csv").write_text("sku,item_id\nA-1,11\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"{SECRET},TOKEN={SECRET}\n{SECRET},{SECRET}\n")
    return mappings, outside


def write_mapping(mappings: Path, table: str | dict) -> Path:
    path = mappings / "x.yaml"
    path.write_text(yaml.safe_dump({**BASE, "lookups": {"t": table}}))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    return str(caught.value)


def test_the_reported_attack_prints_nothing_of_the_environment(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    table = {"path": "../../../../../../../../proc/self/environ", "key": "nope", "value": "nope"}
    out = io.StringIO()
    assert validate([write_mapping(mappings, table)], out) == 1
    printed = out.getvalue()
    assert "lookups.t: path '../../../../../../../../proc/self/environ' leads outside the mapping's folder" in printed
    for name in ("PATH", "HOME"):
        if os.environ.get(name):
            assert os.environ[name] not in printed and f"{name}=" not in printed


@pytest.mark.parametrize("how", ["dot-dot", "absolute", "dot-dot inside a longer path"])
def test_a_path_leading_out_of_the_folder_is_refused_unread(folders: tuple[Path, Path], how: str) -> None:
    mappings, outside = folders
    path = {"dot-dot": "../outside/secret.csv", "absolute": str(outside / "secret.csv"),
            "dot-dot inside a longer path": "lookups/../../outside/secret.csv"}[how]
    message = refusal(write_mapping(mappings, {"path": path, "key": "nope", "value": "nope"}))
    assert "leads outside the mapping's folder" in message
    assert SECRET not in message


def test_a_link_pointing_out_of_the_folder_is_refused(folders: tuple[Path, Path]) -> None:
    mappings, outside = folders
    (mappings / "lookups" / "linked.csv").symlink_to(outside / "secret.csv")
    message = refusal(write_mapping(mappings, {"path": "lookups/linked.csv", "key": "nope", "value": "nope"}))
    assert "'lookups/linked.csv' leads outside the mapping's folder" in message and SECRET not in message


def test_a_linked_folder_pointing_out_is_refused(folders: tuple[Path, Path]) -> None:
    mappings, outside = folders
    (mappings / "shared").symlink_to(outside, target_is_directory=True)
    message = refusal(write_mapping(mappings, {"path": "shared/secret.csv", "key": "nope", "value": "nope"}))
    assert "leads outside the mapping's folder" in message and SECRET not in message


def test_a_loop_of_links_is_a_config_error_not_a_crash(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    (mappings / "lookups" / "a.csv").symlink_to(mappings / "lookups" / "b.csv")
    (mappings / "lookups" / "b.csv").symlink_to(mappings / "lookups" / "a.csv")
    assert "path 'lookups/a.csv' cannot be resolved" in refusal(write_mapping(mappings, "lookups/a.csv"))


def test_links_that_stay_inside_the_folder_are_followed(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    (mappings / "lookups" / "current.csv").symlink_to(mappings / "lookups" / "skus.csv")
    mapping = load_mapping(write_mapping(mappings, "lookups/current.csv"))
    assert mapping.tables["t"].get("A-1") == "11"
    assert mapping.tables["t"].display == "mappings/lookups/current.csv"  # named as written


def test_a_table_in_the_folder_is_read_as_before(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    assert load_mapping(write_mapping(mappings, "lookups/skus.csv")).tables["t"].get("A-1") == "11"


def test_no_error_quotes_a_table_inside_the_folder_either(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    (mappings / "lookups" / "odd.csv").write_text(f"{SECRET},other\n")
    message = refusal(write_mapping(mappings, {"path": "lookups/odd.csv", "key": "nope", "value": "other"}))
    assert "no column 'nope' in its first row (2 columns)" in message and SECRET not in message
    (mappings / "lookups" / "twice.csv").write_text(f"sku,item\n{SECRET},1\n{SECRET},2\n")
    message = refusal(write_mapping(mappings, "lookups/twice.csv"))
    assert "mappings/lookups/twice.csv: line 3: duplicate key (also on line 2)" in message and SECRET not in message


def test_a_close_column_name_is_suggested(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    message = refusal(write_mapping(mappings, {"path": "lookups/skus.csv", "key": "sku", "value": "item_ids"}))
    assert "no column 'item_ids' in its first row (2 columns); did you mean 'item_id'?" in message


def test_a_binary_file_is_not_quoted(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    (mappings / "lookups" / "environ").write_bytes(f"HOME=/root\0TOKEN={SECRET}\0".encode())
    message = refusal(write_mapping(mappings, {"path": "lookups/environ", "key": "nope", "value": "nope"}))
    assert "mappings/lookups/environ: no column 'nope' in its first row (1 column)" in message
    assert SECRET not in message and "HOME" not in message


def test_a_fifo_or_a_device_is_refused_without_blocking(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    os.mkfifo(mappings / "lookups" / "pipe.csv")  # opening it for reading would wait for a writer forever
    assert "mappings/lookups/pipe.csv: not a regular file" in refusal(write_mapping(mappings, "lookups/pipe.csv"))


def test_a_table_over_the_size_cap_is_refused_before_it_is_read(folders: tuple[Path, Path]) -> None:
    mappings, _ = folders
    with open(mappings / "lookups" / "huge.csv", "wb") as sparse:
        sparse.truncate(MAX_TABLE_BYTES + 1)
    message = refusal(write_mapping(mappings, "lookups/huge.csv"))
    assert f"mappings/lookups/huge.csv: {MAX_TABLE_BYTES + 1} bytes, more than the {MAX_TABLE_BYTES} allowed" in message


def test_erp_lookup_create_does_not_follow_a_link_out_of_the_folder(folders: tuple[Path, Path]) -> None:
    from erpsync.mapping import InMemoryXref
    from tests.unit.test_erp_lookup_create import CUSTOMER_MAPPING, order_mapping, sample_order

    mappings, outside = folders
    path = order_mapping(mappings)
    (mappings / CUSTOMER_MAPPING.name).rename(outside / CUSTOMER_MAPPING.name)
    (mappings / CUSTOMER_MAPPING.name).symlink_to(outside / CUSTOMER_MAPPING.name)
    mapping = load_mapping(path)
    with pytest.raises(ConfigError, match="create: path 'shopify_customer_to_netsuite_customer.yaml' leads outside"):
        mapping.apply(sample_order(), xref=InMemoryXref({}))
