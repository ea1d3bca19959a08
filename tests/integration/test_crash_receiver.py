"""The receiver SIGKILLed in the middle of a burst: every delivery it acknowledged (2xx) is in the inbox."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlmodel import select

from erpsync.ledger import InboxEvent, Ledger
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from tests.conftest import REPO, shopify_order_sample

SECRET = "crash-test-secret"
SENDERS = 8


def test_a_receiver_killed_mid_burst_loses_no_acknowledged_delivery(database_url, tmp_path):
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SECRET, "ERPSYNC_RATE_LIMIT_PER_SECOND": "0"}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    order = shopify_order_sample()
    acknowledged: list[str] = []
    refused_or_lost = 0
    lock = threading.Lock()
    killed = threading.Event()

    def send(n: int) -> None:
        nonlocal refused_or_lost
        body = json.dumps(order | {"id": 910000000000 + n}).encode()
        delivery_id = str(uuid.uuid4())
        try:
            answer = httpx.post(f"http://127.0.0.1:{port}/webhooks/shopify", content=body, timeout=30, headers={
                "Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": shopify_signature(SECRET, body), "X-Shopify-Webhook-Id": delivery_id,
                "X-Shopify-Shop-Domain": "erpsync-test.myshopify.com"})
        except httpx.HTTPError:  # the connection died with the receiver: not acknowledged, the source retries
            with lock:
                refused_or_lost += 1
            return
        with lock:
            if 200 <= answer.status_code < 300:
                acknowledged.append(delivery_id)
            else:
                refused_or_lost += 1
            if len(acknowledged) == 60 and not killed.is_set():
                killed.set()
                os.killpg(receiver.process.pid, signal.SIGKILL)  # mid-burst: requests are in flight

    try:
        receiver = group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port),
                                            "--no-dispatch"])
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        with ThreadPoolExecutor(SENDERS) as pool:
            list(pool.map(send, range(400)))
        assert killed.is_set(), "the receiver was killed during the burst"
        assert refused_or_lost > 0, "some deliveries met the dead receiver"
    finally:
        group.stop()

    ledger = Ledger.connect(database_url)
    try:
        with ledger.session() as session:
            stored = set(session.exec(select(InboxEvent.delivery_id)))
    finally:
        ledger.close()
    missing = [d for d in acknowledged if d not in stored]
    assert missing == [], f"{len(missing)} acknowledged deliveries are not in the inbox"
    assert len(acknowledged) >= 60
