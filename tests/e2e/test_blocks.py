"""Credentials from Prefect blocks instead of the environment: the NetSuite connection and the webhook secret."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest

from erpsync.ledger import Ledger
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from erpsync_dev.stack import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def prefect_env(stack) -> dict[str, str]:
    """The stack's Prefect, but none of the ERPSYNC_* credentials: they must come from blocks."""
    env = {k: v for k, v in stack.env.items() if not k.startswith("ERPSYNC_")}
    return {**env, "ERPSYNC_HOME": str(stack.config.home / "blocks")}


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_flows_reach_the_erp_with_the_netsuite_connection_block(stack):
    stack_, _ = stack
    env = prefect_env(stack_)
    save = run_python(
        "from pydantic import SecretStr\n"
        "from blocks.netsuite import NetSuiteConnection\n"
        f"NetSuiteConnection(base_url={stack_.config.erp_url!r}, client_id={SANDBOX_CLIENT_ID!r},\n"
        f"    client_secret=SecretStr({SANDBOX_CLIENT_SECRET!r})).save('netsuite-e2e', overwrite=True)\n", env)
    assert save.returncode == 0, save.stderr
    use = run_python(
        "from tasks.sync import erp_client\n"
        "with erp_client() as client:\n"
        "    print(client.upsert('customer', 'block-e2e-1', {'companyName': 'Block Test'}))\n",
        {**env, "ERPSYNC_NETSUITE_BLOCK": "netsuite-e2e"})
    assert use.returncode == 0, use.stderr
    internal_id = use.stdout.strip().splitlines()[-1]
    record = httpx.get(f"{stack_.config.erp_url}/_sandbox/records", params={"type": "customer"}).json()["records"]
    assert [(r["external_id"], r["internal_id"]) for r in record] == [("block-e2e-1", internal_id)]
    assert SANDBOX_CLIENT_SECRET not in use.stdout + use.stderr


def test_the_receiver_takes_its_secret_from_a_prefect_secret_block(stack, tmp_path):
    stack_, _ = stack
    env = prefect_env(stack_)
    secret = uuid.uuid4().hex
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    group = ProcessGroup(log_dir=tmp_path / "logs", env={**env, "ERPSYNC_DATABASE_URL": database_url}, cwd=REPO)

    missing = subprocess.run([sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"],
                             cwd=REPO, env={**env, "ERPSYNC_DATABASE_URL": database_url}, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2
    assert "ERPSYNC_SHOPIFY_WEBHOOK_SECRET" in missing.stderr and "shopify-webhook-secret" in missing.stderr

    save = run_python("from prefect.blocks.system import Secret\n"
                      f"Secret(value={secret!r}).save('shopify-webhook-secret', overwrite=True)\n", env)
    assert save.returncode == 0, save.stderr
    group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        body = json.dumps({"id": 1}).encode()
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                   "X-Shopify-Webhook-Id": "block-1", "X-Shopify-Hmac-Sha256": shopify_signature(secret, body)}
        assert httpx.post(f"http://127.0.0.1:{port}/webhooks/shopify", content=body, headers=headers).status_code == 202
        headers["X-Shopify-Hmac-Sha256"] = shopify_signature("not-the-secret", body)
        assert httpx.post(f"http://127.0.0.1:{port}/webhooks/shopify", content=body, headers=headers).status_code == 401
    finally:
        group.stop()
    ledger = Ledger.connect(database_url)
    assert ledger.inbox_counts()["events"] == 1
    ledger.close()
    assert secret not in (tmp_path / "logs" / "receiver.log").read_text()
