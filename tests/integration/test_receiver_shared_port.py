"""Two receivers on one port (`erpsync serve --reuse-port`): both start, the kernel gives each its share of new
connections, every delivery is stored once, and when one stops the other keeps taking deliveries."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid

import httpx
import pytest

from erpsync.errors import ConfigError
from erpsync.ledger import Ledger
from erpsync.receiver.server import shared_port_socket
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from tests.conftest import REPO, fixture_path

SECRET = "shared-port-webhook-secret"


def test_two_shared_port_sockets_bind_one_port_and_a_plain_bind_is_refused_naming_it():
    first = shared_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = shared_port_socket("127.0.0.1", port)
    try:
        plain = socket.socket()
        with pytest.raises(OSError):  # a process that did not ask to share the port cannot take it
            plain.bind(("127.0.0.1", port))
        plain.close()
    finally:
        first.close()
        second.close()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(ConfigError, match=f"cannot bind 127.0.0.1:{taken.getsockname()[1]}"):
            shared_port_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def delivery(order: dict, index: int) -> dict[str, object]:
    body = json.dumps({**order, "id": order["id"] + index}).encode()
    return {"content": body, "headers": {
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": shopify_signature(SECRET, body), "X-Shopify-Shop-Domain": "erpsync-test.myshopify.com",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-API-Version": "2025-01", "Connection": "close"}}


def post_orders(port: int, order: dict, indexes: range) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for index in indexes:
            response = client.post("/webhooks/shopify", **delivery(order, index))
            assert response.status_code == 202, response.text


def test_two_receivers_share_one_port_and_either_one_alone_keeps_taking_deliveries(database_url, tmp_path):
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SECRET, "ERPSYNC_RATE_LIMIT_PER_SECOND": "0"}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    order = json.loads(fixture_path("shopify", "orders_create.json").read_text())
    argv = [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch", "--reuse-port"]
    health = f"http://127.0.0.1:{port}/healthz"
    try:
        for name in ("receiver-1", "receiver-2"):
            group.start(name, argv)
            wait_listening(group, name, port)
        group.wait_http("receivers", health, timeout=60)
        group.check_alive()  # the second bound the port beside the first instead of failing "address in use"
        post_orders(port, order, range(0, 20))
        # Each one alone serves the port: neither is a bystander while the other does the work.
        group.kill("receiver-1")
        post_orders(port, order, range(20, 30))
        group.restart("receiver-1")
        wait_listening(group, "receiver-1", port)
        group.kill("receiver-2")
        post_orders(port, order, range(30, 40))
        assert group.get("receiver-1").process.poll() is None
        ledger = Ledger.connect(database_url)
        try:
            assert ledger.inbox_counts()["events"] == 40
        finally:
            ledger.close()
    finally:
        group.stop()


def wait_listening(group: ProcessGroup, name: str, port: int, timeout: float = 60.0) -> None:
    """Until the process itself holds a listening socket on ``port`` (/proc/net/tcp's LISTEN entries, matched to
    the process's open sockets): with the port shared, an answer on it does not say which process gave it."""
    pid = group.get(name).process.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group.check_alive()
        listening = set()
        for line in open("/proc/net/tcp").read().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                listening.add(f"socket:[{fields[9]}]")
        held = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
        if listening & held:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not listen on {port} within {timeout:.0f} s")
