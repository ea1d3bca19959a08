"""`erpsync mapping test`: a count at the end, expected against actual for a failed case, and --accept."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from erpsync.cli import main
from erpsync.mapping import commands

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
CUSTOMER = "shopify_customer_to_netsuite_customer"
PRODUCT = "shopify_product_to_netsuite_inventory_item"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    for name in (CUSTOMER, PRODUCT):
        for suffix in (".yaml", "_test.yaml"):
            shutil.copy(MAPPINGS / f"{name}{suffix}", tmp_path / "m" / f"{name}{suffix}")
    return tmp_path / "m"


def _break(folder: Path, name: str, old: str, new: str) -> str:
    path = folder / f"{name}_test.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path.read_text()


def test_a_run_ends_with_its_counts(folder: Path) -> None:
    out = io.StringIO()
    assert commands.test([folder], out) == 0
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("all cases passed; ") and " passed, 0 failed" in last


def test_a_failed_case_shows_expected_against_actual(folder: Path) -> None:
    _break(folder, CUSTOMER, "lastName: Smith", "lastName: Smyth")
    out = io.StringIO()
    assert commands.test([folder / f"{CUSTOMER}.yaml"], out) == 1
    text = out.getvalue()
    assert "body.lastName: expected 'Smyth', got 'Smith'" in text
    assert '-    "lastName": "Smyth",' in text and '+    "lastName": "Smith",' in text
    assert "--- expected" in text and "+++ actual" in text
    lines = text.splitlines()
    assert lines[-2].endswith("1 failed") and "--accept" in lines[-1]


def test_accept_rewrites_only_the_failed_case_and_keeps_the_comments(folder: Path) -> None:
    broken = _break(folder, CUSTOMER, "lastName: Smith", "lastName: Smyth")
    out = io.StringIO()
    assert commands.test([folder / f"{CUSTOMER}.yaml"], out, accept=True) == 0, out.getvalue()
    assert "accepted shopify_customer_to_netsuite_customer.yaml: the customer of Shopify's orders/create sample" \
        in out.getvalue()
    assert out.getvalue().splitlines()[-1].endswith("1 accepted (their expected output rewritten)")
    after = (folder / f"{CUSTOMER}_test.yaml").read_text()
    assert "Smyth" not in after and "lastName: Smith" in after
    comments = [line for line in broken.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)
    # the second case, which passed, is as written
    second = broken.index("  - name: without a default address")
    assert broken[second:second + 400] in after
    out = io.StringIO()
    assert commands.test([folder], out) == 0, out.getvalue()


def test_accept_rewrites_an_each_mappings_records(folder: Path) -> None:
    _break(folder, PRODUCT, "displayName: Example T-Shirt", "displayName: Example Tee")
    out = io.StringIO()
    assert commands.test([folder / f"{PRODUCT}.yaml"], out, accept=True) == 0, out.getvalue()
    out = io.StringIO()
    assert commands.test([folder / f"{PRODUCT}.yaml"], out) == 0, out.getvalue()


def test_accept_leaves_a_case_that_made_no_record(folder: Path) -> None:
    _break(folder, CUSTOMER, "lastName: Smith", "lastName: Smyth")
    path = folder / f"{CUSTOMER}_test.yaml"
    text = path.read_text()
    marker = "  - name: a customer without a last name is refused, naming the field"
    start = text.index(marker)
    error_at = text.index("    error:", start)
    end = text.index("\n", error_at)
    path.write_text(text[:error_at] + "    error: not this error" + text[end:])
    out = io.StringIO()
    assert commands.test([folder / f"{CUSTOMER}.yaml"], out, accept=True) == 1
    assert "(not accepted: the mapping made no record to accept)" in out.getvalue()
    assert "not this error" in path.read_text()


def test_the_cli_passes_accept(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _break(folder, CUSTOMER, "lastName: Smith", "lastName: Smyth")
    assert main(["mapping", "test", str(folder)]) == 1
    assert main(["mapping", "test", "--accept", str(folder)]) == 0
    assert main(["mapping", "test", str(folder)]) == 0
    assert "all cases passed" in capsys.readouterr().out
