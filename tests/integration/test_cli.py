"""The `erpsync` command as a user runs it: help, mapping tests, refusing bad configuration clearly."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def erpsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "erpsync", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_help_explains_every_command():
    result = erpsync("--help")
    assert result.returncode == 0
    for command in ("serve", "sandbox", "demo", "mapping", "new", "status"):
        assert command in result.stdout


def test_mapping_validate_and_test_pass_for_the_shipped_mappings():
    validated = erpsync("mapping", "validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    tested = erpsync("mapping", "test")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "shopify_order_to_netsuite_sales_order.yaml" in tested.stdout
    assert "all cases passed" in tested.stdout


def test_a_broken_mapping_fails_validation_naming_file_rule_and_path(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "source: shopify\ntopic: orders/create\nrecord_type: salesOrder\nexternal_id: 'x-{id}'\n"
        "entity: {type: order, id: '{id}', version: updated_at}\n"
        "fields:\n  - source_field: name\n    target_field: memo\n    transform: upercase\n")
    result = erpsync("mapping", "validate", str(broken))
    assert result.returncode == 1
    assert "broken.yaml: fields[0].transform: unknown transform 'upercase' (did you mean 'uppercase'?)" in result.stdout


def test_preview_shows_the_body_a_payload_becomes(tmp_path):
    payload = tmp_path / "order.json"
    payload.write_text('{"id": 7, "name": "#7", "order_number": 7, "created_at": "2026-01-02T03:04:05Z", '
                       '"updated_at": "2026-01-02T03:04:05Z", "currency": "USD", "total_price": "5.00", '
                       '"line_items": [{"id": 70, "sku": "TEE-BLK-S", "quantity": 1, "price": "5.00", "title": "Tee"}]}')
    result = erpsync("mapping", "preview", str(REPO / "mappings" / "shopify_order_to_netsuite_sales_order.yaml"),
                     str(payload))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shopify-order-7" in result.stdout and '"210"' in result.stdout
    assert "money check: NetSuite total 5.00 USD = source total_price 5.00" in result.stdout


def test_new_mapping_scaffolds_files_that_pass_their_own_cases(tmp_path):
    env = {"ERPSYNC_MAPPINGS_DIR": str(tmp_path)}
    made = erpsync("new", "mapping", "shopify", "customers/update", "customer", env=env)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "shopify_customer_to_netsuite_customer.yaml", "shopify_customer_to_netsuite_customer_test.yaml"]
    assert erpsync("mapping", "test", str(tmp_path), env=env).returncode == 0
    again = erpsync("new", "mapping", "shopify", "customers/update", "customer", env=env)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_serve_without_a_secret_says_how_to_give_one(tmp_path):
    env = {"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "", "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET": "",
           "ERPSYNC_STANDARD_WEBHOOK_SECRET": "", "PREFECT_API_URL": "http://127.0.0.1:9/api",
           "ERPSYNC_HOME": str(tmp_path)}
    result = erpsync("serve", "--port", "0", env=env)
    assert result.returncode == 2, result.stderr
    assert "ERPSYNC_SHOPIFY_WEBHOOK_SECRET" in result.stderr and "shopify-webhook-secret" in result.stderr


def test_a_bad_database_url_is_a_clear_error(tmp_path):
    result = erpsync("status", env={"ERPSYNC_DATABASE_URL": "mysql://nope", "ERPSYNC_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "ERPSYNC_DATABASE_URL" in result.stderr
