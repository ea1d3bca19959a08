"""A mapping's target_field is checked against the fields its ERP knows of the record type (System.record_fields)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml

from erpsync.errors import ConfigError
from erpsync.mapping import commands, load_mapping
from erpsync.mapping.loader import discover_mappings
from erpsync.systems import SYSTEMS

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
REFUND = "shopify_refund_to_netsuite_cash_refund"


@pytest.fixture
def refund(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copytree(MAPPINGS / "lookups", folder / "lookups")
    for suffix in (".yaml", "_test.yaml"):
        shutil.copy(MAPPINGS / f"{REFUND}{suffix}", folder / f"{REFUND}{suffix}")
    return folder / f"{REFUND}.yaml"


def _edit(path: Path, *pairs: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)


def test_every_shipped_mapping_writes_fields_its_erp_knows() -> None:
    for path in discover_mappings(MAPPINGS):
        mapping = load_mapping(path)
        assert mapping.record_type in SYSTEMS[mapping.config.target].record_fields, path.name


def test_a_typo_is_refused_with_the_close_name(refund: Path) -> None:
    _edit(refund, ("target_field: memo\n", "target_field: memoo\n"),
          ("target_field: item.items[].quantity", "target_field: item.items[].quantiy"),
          ("target_field: entity.id", "target_field: entity.idd"))
    with pytest.raises(ConfigError) as refused:
        load_mapping(refund)
    message = str(refused.value)
    assert "'memoo' is not a field of a NetSuite cashRefund (did you mean 'memo'?)" in message
    assert "'item.items[].quantiy' is not a field of a NetSuite cashRefund (did you mean 'item.items[].quantity'?)" \
        in message
    assert "'entity.idd' is not a field of a NetSuite cashRefund (did you mean 'entity.id'?)" in message


def test_a_field_with_nothing_close_says_what_is_allowed(refund: Path) -> None:
    _edit(refund, ("target_field: memo\n", "target_field: zork.zap\n"))
    with pytest.raises(ConfigError, match=r"'zork.zap' is not a field of a NetSuite cashRefund: nothing called "
                                          r"'zork'; a custom field starts custbody_"):
        load_mapping(refund)


@pytest.mark.parametrize("target", ["custbody_refund_note", "location.externalId",
                                    "shippingAddress.addr1", "custbody_erpsync_order.externalId"])
def test_custom_fields_references_and_subrecords_pass(refund: Path, target: str) -> None:
    _edit(refund, ("target_field: memo\n", f"target_field: {target}\n"))
    load_mapping(refund)


def test_a_record_type_not_in_the_catalogue_is_not_checked_but_a_miscased_one_is(refund: Path) -> None:
    _edit(refund, ("record_type: cashRefund", "record_type: customerRefund"))
    load_mapping(refund)
    _edit(refund, ("record_type: customerRefund", "record_type: cashrefund"))
    with pytest.raises(ConfigError, match=r"record_type: NetSuite has no record type 'cashrefund' \(did you mean "
                                          r"'cashRefund'\?\)"):
        load_mapping(refund)


def test_validate_reports_a_target_typo_beside_the_files_other_errors(refund: Path) -> None:
    _edit(refund, ("target_field: memo\n", "target_field: memoo\n"), ("record_type:", "recordtype: x\nrecord_type:"))
    data = yaml.safe_load(refund.read_text())
    assert data["recordtype"] == "x"
    out = io.StringIO()
    assert commands.validate([refund.parent], out) == 1
    text = out.getvalue()
    assert "unknown key 'recordtype'" in text and "(did you mean 'memo'?)" in text


def test_validate_reports_every_error_of_the_mapping_and_of_its_cases(refund: Path) -> None:
    _edit(refund, ("target_field: memo\n", "target_field: memoo\n"),
          ("record_type:", "recordtype: x\nrecord_typ: y\nrecord_type:"))
    cases = refund.with_name(f"{REFUND}_test.yaml")
    _edit(cases, ("  - name:", "  - nme: x\n    name:"))
    out = io.StringIO()
    assert commands.validate([refund], out) == 1
    text = out.getvalue()
    assert f"FAIL {REFUND}.yaml: 3 error(s)" in text
    assert "unknown key 'recordtype' (did you mean 'record_type'?); unknown key 'record_typ'" in text
    assert "(did you mean 'memo'?)" in text
    assert f"{REFUND}_test.yaml: cases[0]: unknown key 'nme' (did you mean 'name'?)" in text
