"""`erpsync sync PAYLOAD.json`: the real command, as a process, against the ERP sandbox as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.ledger import Ledger
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

REPO = Path(__file__).resolve().parents[2]

# A small order that adds up: 2 × 25.00, no shipping, no tax, total 50.00.
ORDER = {
    "id": 5550001,
    "name": "#5001",
    "order_number": 5001,
    "test": False,
    "created_at": "2026-11-02T10:00:00-05:00",
    "updated_at": "2026-11-02T10:00:00-05:00",
    "currency": "USD",
    "presentment_currency": "USD",
    "taxes_included": False,
    "total_price": "50.00",
    "current_total_price": "50.00",
    "subtotal_price": "50.00",
    "total_line_items_price": "50.00",
    "total_discounts": "0.00",
    "total_tax": "0.00",
    "financial_status": "paid",
    "line_items": [{
        "id": 7770001, "sku": "IPOD2008PINK", "title": "IPod Nano - 8GB", "name": "IPod Nano - 8GB",
        "quantity": 2, "current_quantity": 2, "price": "25.00", "gift_card": False, "taxable": False,
        "tax_lines": [], "discount_allocations": [], "total_discount": "0.00",
    }],
    "shipping_lines": [],
    "discount_codes": [],
    "discount_applications": [],
    "tax_lines": [],
    "refunds": [],
}


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), "--items", "1-999") as base_url:
        yield base_url


def run_sync(home: Path, erp_url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ERPSYNC_")}
    env.update({"ERPSYNC_HOME": str(home), "ERPSYNC_MAPPINGS_DIR": str(REPO / "mappings"),
                "ERPSYNC_NETSUITE_CONCURRENCY": "0"})
    if erp_url is not None:
        env.update({"ERPSYNC_NETSUITE_BASE_URL": erp_url, "ERPSYNC_NETSUITE_CLIENT_ID": ERP_CLIENT_ID,
                    "ERPSYNC_NETSUITE_CLIENT_SECRET": ERP_CLIENT_SECRET})
    return subprocess.run([sys.executable, "-m", "erpsync.cli", "sync", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def write(path: Path, payload: object) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_a_payload_syncs_prints_the_erp_id_and_totals_and_is_recorded(tmp_path: Path, erp_url: str) -> None:
    payload = write(tmp_path / "order.json", ORDER)
    first = run_sync(tmp_path, erp_url, str(payload), "--source", "shopify", "--topic", "orders/create")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "synced (shopify/order/5550001)" in first.stdout
    assert "ERP salesOrder " in first.stdout and "external id shopify-order-5550001" in first.stdout
    # The totals the ERP computed, read back from it (not the body sent).
    assert Decimal(totals_of(first.stdout)["total"]) == Decimal("50.00")

    # The ledger holds it like any other event.
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'erpsync.db'}")
    try:
        outcomes = [row.outcome for row in ledger.outcomes()]
        assert outcomes == ["synced"]
    finally:
        ledger.close()

    # The same content again is a new delivery that dedupe recognises.
    again = run_sync(tmp_path, erp_url, str(payload), "--source", "shopify", "--topic", "orders/create")
    assert again.returncode == 0, again.stdout + again.stderr
    assert ": duplicate" in again.stdout


def test_a_failing_payload_exits_1_with_the_reason_and_is_a_dead_letter(tmp_path: Path, erp_url: str) -> None:
    order = json.loads(json.dumps(ORDER))
    order["id"] = 5550002
    order["line_items"][0]["sku"] = "NO-SUCH-SKU-0001"
    result = run_sync(tmp_path, erp_url, str(write(tmp_path / "order.json", order)),
                      "--source", "shopify", "--topic", "orders/create")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ": failed" in result.stdout
    assert "MappingError" in result.stdout and "line_items[0].sku" in result.stdout
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'erpsync.db'}")
    try:
        assert [row.outcome for row in ledger.outcomes()] == ["failed"]
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("{not json", ("--source", "shopify", "--topic", "orders/create"), "not valid JSON at line 1"),
        ("[1, 2]", ("--source", "shopify", "--topic", "orders/create"), "expected a JSON object"),
        (json.dumps(ORDER), ("--source", "shopify", "--topic", "orders/nonsense"), "orders/nonsense"),
    ],
)
def test_bad_input_is_a_usage_error_and_stores_nothing(
    tmp_path: Path, erp_url: str, content: str, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "payload.json"
    path.write_text(content)
    result = run_sync(tmp_path, erp_url, str(path), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'erpsync.db'}")
    try:
        assert ledger.inbox_counts().get("received", 0) == 0 and not ledger.outcomes()
    finally:
        ledger.close()


def test_without_an_erp_configured_it_says_which_setting_is_missing(tmp_path: Path) -> None:
    result = run_sync(tmp_path, None, str(write(tmp_path / "order.json", ORDER)),
                      "--source", "shopify", "--topic", "orders/create")
    assert result.returncode == 2
    assert "ERPSYNC_NETSUITE_BASE_URL" in result.stderr


def totals_of(stdout: str) -> dict[str, str]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("ERP totals: ")]
    return dict(part.rsplit(" ", 1) for part in line.removeprefix("ERP totals: ").split(", "))


@pytest.mark.parametrize(
    ("fixture", "source", "topic", "total"),
    [
        # WooCommerce's documented example order: a line with "sku": "", State Tax, flat-rate shipping.
        ("woocommerce/order_created.json", "woocommerce", "order.created", "29.35"),
        # Shopify's sample order, as a real one: 2 × 199.00, a 20.00 discount, 10.00 shipping.
        ("shopify/orders_create.json", "shopify", "orders/create", "388"),
    ],
)
def test_the_vendors_own_sample_orders_land_at_their_total(
    tmp_path: Path, erp_url: str, fixture: str, source: str, topic: str, total: str
) -> None:
    payload = json.loads((REPO / "tests" / "fixtures" / fixture).read_text())
    if source == "shopify":
        payload["test"] = False  # Shopify's sample is a test order, which the mapping skips
    result = run_sync(tmp_path, erp_url, str(write(tmp_path / "sample.json", payload)), "--source", source,
                      "--topic", topic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": synced" in result.stdout
    assert Decimal(totals_of(result.stdout)["total"]) == Decimal(total)


def test_a_payload_that_is_not_what_its_topic_carries_is_reported_as_mismatched(tmp_path: Path, erp_url: str) -> None:
    # A refund's body sent as an order: not a broken order, the wrong kind of payload (issue of --topic).
    refund = json.loads((REPO / "tests" / "fixtures" / "shopify" / "refunds_create.json").read_text())
    result = run_sync(tmp_path, erp_url, str(write(tmp_path / "refund.json", refund)),
                      "--source", "shopify", "--topic", "orders/create")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ": mismatched" in result.stdout
