"""Refunds and order edits through the real pipeline (`erpsync sync`, a process) into the ERP sandbox (a process):
the cash refund NetSuite computes is the money the refund returned; an order edit is recorded as skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, fixture_path
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), "--items", "1-999") as base_url:
        yield base_url


def sync(home: Path, erp_url: str, payload: dict, topic: str) -> subprocess.CompletedProcess[str]:
    path = home / f"{topic.replace('/', '_')}.json"
    path.write_text(json.dumps(payload))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ERPSYNC_")}
    env.update({"ERPSYNC_HOME": str(home), "ERPSYNC_MAPPINGS_DIR": str(REPO / "mappings"),
                "ERPSYNC_NETSUITE_CONCURRENCY": "0", "ERPSYNC_NETSUITE_BASE_URL": erp_url,
                "ERPSYNC_NETSUITE_CLIENT_ID": ERP_CLIENT_ID, "ERPSYNC_NETSUITE_CLIENT_SECRET": ERP_CLIENT_SECRET})
    return subprocess.run([sys.executable, "-m", "erpsync", "sync", str(path), "--source", "shopify", "--topic",
                           topic], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def usd(amount: str) -> dict:
    return {"shop_money": {"amount": amount, "currency_code": "USD"},
            "presentment_money": {"amount": amount, "currency_code": "USD"}}


def erp_totals(stdout: str) -> dict[str, str]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("ERP totals: ")]
    return dict(part.rsplit(" ", 1) for part in line.removeprefix("ERP totals: ").split(", "))


def test_shopifys_sample_refund_is_a_cash_refund_of_85_in_the_erp(tmp_path, erp_url):
    done = sync(tmp_path, erp_url, json.loads(fixture_path("shopify", "refunds_create.json").read_text()),
                "refunds/create")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERP cashRefund " in done.stdout
    assert float(erp_totals(done.stdout)["total"]) == 85.0  # not the 398.00 of its lines


def test_a_refund_of_a_taxed_line_and_its_shipping_with_a_discrepancy_totals_the_money_returned(tmp_path, erp_url):
    refund = {
        "id": 880001, "order_id": 770001, "created_at": "2026-11-03T09:00:00-05:00",
        "refund_line_items": [{"id": 1, "line_item_id": 11, "quantity": 2, "subtotal": "45.00",
                               "subtotal_set": usd("45.00"), "total_tax": "3.71", "total_tax_set": usd("3.71"),
                               "restock_type": "return",
                               "line_item": {"id": 11, "sku": "IPOD2008PINK", "quantity": 3, "price": "25.00",
                                             "title": "IPod Nano - 8GB"}}],
        "refund_shipping_lines": [{"id": 2, "subtotal_amount_set": usd("7.50"), "tax_amount_set": usd("0.62")}],
        "order_adjustments": [{"id": 3, "kind": "refund_discrepancy", "amount": "5.00", "tax_amount": "0.00",
                               "amount_set": usd("5.00"), "tax_amount_set": usd("0.00")}],
        "transactions": [{"id": 4, "kind": "refund", "status": "success", "amount": "51.83", "currency": "USD"},
                         {"id": 5, "kind": "refund", "status": "failure", "amount": "51.83", "currency": "USD"}],
    }
    done = sync(tmp_path, erp_url, refund, "refunds/create")
    assert done.returncode == 0, done.stdout + done.stderr
    totals = erp_totals(done.stdout)
    # 45.00 + 3.71 tax + 7.50 shipping + 0.62 tax - 5.00 kept back = 51.83, the one successful transaction.
    assert float(totals["total"]) == 51.83 and float(totals["taxTotal"]) == 4.33


def test_an_order_edit_is_recorded_as_skipped_with_its_reason(tmp_path, erp_url):
    done = sync(tmp_path, erp_url, json.loads(fixture_path("shopify", "orders_edited.json").read_text()),
                "orders/edited")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped (shopify/order_edit/78912328793123780)" in done.stdout
    assert "applied from the orders/updated" in done.stdout
