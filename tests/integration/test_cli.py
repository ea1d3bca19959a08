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
    for command in ("serve", "sandbox", "demo", "mapping", "status"):
        assert command in result.stdout


def test_mapping_test_runs_the_shipped_cases():
    result = erpsync("mapping", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shopify_order_to_netsuite_sales_order.yaml" in result.stdout
    assert "all cases passed" in result.stdout


def test_a_broken_mapping_is_refused_with_file_and_path(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "source: shopify\ntopic: orders/create\nrecord_type: salesOrder\nexternal_id: 'x-{id}'\n"
        "fields:\n  - source_field: name\n    target_field: memo\n    transform: upercase\n")
    result = erpsync("mapping", "test", str(broken))
    assert result.returncode == 2
    assert "broken.yaml: fields[0].transform: unknown transform 'upercase'" in result.stderr


def test_serve_without_a_secret_says_how_to_give_one(tmp_path):
    env = {"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "", "PREFECT_API_URL": "http://127.0.0.1:9/api",
           "ERPSYNC_HOME": str(tmp_path)}
    result = erpsync("serve", "--port", "0", env=env)
    assert result.returncode == 2
    assert "ERPSYNC_SHOPIFY_WEBHOOK_SECRET" in result.stderr


def test_a_bad_database_url_is_a_clear_error(tmp_path):
    result = erpsync("status", env={"ERPSYNC_DATABASE_URL": "mysql://nope", "ERPSYNC_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "ERPSYNC_DATABASE_URL" in result.stderr
