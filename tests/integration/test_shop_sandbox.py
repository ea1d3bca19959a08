"""The shop sandbox process: signed webhook phases over real HTTP, and its Admin API's auth and pagination."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from erpsync.systems.shopify.webhooks import verify_shopify
from erpsync_dev.processes import ProcessGroup, log_lines, python_module
from erpsync_dev.scenarios.demo import build_demo_scenario
from tests.sandbox_procs import REPO, start_shop_sandbox

SECRET = "integration-webhook-secret"
TOKEN = "shpat_integration"
SEED = 4242
SHOPIFY_HEADERS = (
    "x-shopify-topic",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
    "x-shopify-triggered-at",
    "x-shopify-event-id",
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A stand-in for erpsync's receiver: records every webhook and answers 200."""

    url: str
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list[Received]:
        with self.lock:
            taken, self.requests = self.requests, []
        return taken


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with holder[0].lock:
                holder[0].requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/webhooks/shopify"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def shop(tmp_path, receiver) -> Iterator[str]:
    with start_shop_sandbox(
        tmp_path,
        "--target", receiver.url,
        "--orders", "50",
        "--seed", str(SEED),
        "--access-token", TOKEN,
        "--concurrency", "8",
        env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SECRET},
    ) as base_url:
        yield base_url


def _send(client: httpx.Client, phase: int) -> dict:
    response = client.post(f"/_sandbox/phases/{phase}/send", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_phase_one_arrives_signed_with_shopifys_headers_and_in_order(shop, receiver):
    with httpx.Client(base_url=shop) as client:
        assert client.get("/healthz").status_code == 200
        expected = client.get("/_sandbox/scenario").json()
        report = _send(client, 1)

    assert report["totals"] == {"deliveries": 61, "ok": 61, "failed": 0, "statuses": {"200": 61}}
    received = receiver.take()
    assert len(received) == 61 == expected["phases"][0]["deliveries"]
    for request in received:
        assert request.path == "/webhooks/shopify"
        assert all(name in request.headers for name in SHOPIFY_HEADERS)
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-shopify-api-version"] == "2026-10"
        assert request.headers["x-shopify-shop-domain"] == "erpsync-demo.myshopify.com"
        assert verify_shopify(SECRET, request.body, request.headers["x-shopify-hmac-sha256"])
        assert json.loads(request.body)["updated_at"]

    webhook_ids = [r.headers["x-shopify-webhook-id"] for r in received]
    assert len(set(webhook_ids)) == expected["phases"][0]["unique_deliveries"] == 56
    assert sorted(r.headers["x-shopify-topic"] for r in received).count("orders/paid") == 1

    # An update only leaves once its create was answered, so it is received after it.
    first_create = {}
    for index, request in enumerate(received):
        order_id = json.loads(request.body)["id"]
        topic = request.headers["x-shopify-topic"]
        if topic == "orders/create":
            first_create.setdefault(order_id, index)
        elif topic == "orders/updated":
            assert first_create[order_id] < index

    # The report lists every delivery with what it is.
    kinds = [r["kind"] for r in report["deliveries"]]
    assert kinds.count("redelivery") == 5 and kinds.count("content_duplicate") == 1
    assert {r["webhook_id"] for r in report["deliveries"]} == set(webhook_ids)


def test_phase_two_delivers_an_older_version_and_a_late_retry(shop, receiver):
    with httpx.Client(base_url=shop) as client:
        _send(client, 1)
        burst = receiver.take()
        report = _send(client, 2)
        scenario = client.get("/_sandbox/scenario").json()
    late = receiver.take()
    assert len(late) == 2 and report["totals"]["ok"] == 2
    assert scenario["sent_phases"] == [1, 2]

    burst_ids = {r.headers["x-shopify-webhook-id"] for r in burst}
    (retry,) = [r for r in late if r.headers["x-shopify-webhook-id"] in burst_ids]
    (stale,) = [r for r in late if r is not retry]
    assert verify_shopify(SECRET, retry.body, retry.headers["x-shopify-hmac-sha256"])
    stale_body = json.loads(stale.body)
    same_order = [json.loads(r.body) for r in burst if json.loads(r.body)["id"] == stale_body["id"]]
    newest = max(datetime.fromisoformat(body["updated_at"]) for body in same_order)
    assert datetime.fromisoformat(stale_body["updated_at"]) < newest


def test_admin_api_pages_the_newest_version_of_each_sent_order(shop):
    auth = {"X-Shopify-Access-Token": TOKEN}
    with httpx.Client(base_url=shop) as client:
        before = client.get("/admin/api/2026-10/orders.json", params={"status": "any"}, headers=auth)
        assert before.status_code == 200 and before.json() == {"orders": []}
        _send(client, 1)
        _send(client, 2)
        expected = {o["order_id"]: o for o in client.get("/_sandbox/scenario").json()["orders"]}

        seen = []
        url: str | None = "/admin/api/2026-10/orders.json?status=any&limit=7"
        pages = 0
        while url:
            response = client.get(url, headers=auth)
            assert response.status_code == 200, response.text
            seen.extend(response.json()["orders"])
            pages += 1
            url = response.links.get("next", {}).get("url")
        assert pages == 8
        assert len(seen) == len({o["id"] for o in seen}) == 50
        assert [o["id"] for o in seen] == sorted((o["id"] for o in seen), reverse=True)
        for order in seen:
            want = expected[str(order["id"])]
            assert order["updated_at"] == want["updated_at"]  # the late, older version did not win
            assert [(li["sku"], li["quantity"], li["price"]) for li in order["line_items"]] == [
                (li["sku"], li["quantity"], li["price"]) for li in want["line_items"]
            ]

        # Back one page from the second.
        first = client.get("/admin/api/2026-10/orders.json?limit=7", headers=auth)
        second = client.get(first.links["next"]["url"], headers=auth)
        back = client.get(second.links["previous"]["url"], headers=auth)
        assert back.json() == first.json()
        assert "previous" not in first.links

        newest = max(datetime.fromisoformat(o["updated_at"]) for o in seen)
        recent = client.get(
            "/admin/api/2026-10/orders.json", params={"updated_at_min": newest.isoformat(), "limit": 250}, headers=auth
        )
        assert [o["id"] for o in recent.json()["orders"]] == [
            o["id"] for o in seen if datetime.fromisoformat(o["updated_at"]) >= newest
        ]
        assert client.get("/admin/api/2026-10/orders/count.json", headers=auth).json() == {"count": 50}
        one = client.get(f"/admin/api/2026-10/orders/{seen[0]['id']}.json", params={"fields": "id,name"}, headers=auth)
        assert one.json() == {"order": {"id": seen[0]["id"], "name": seen[0]["name"]}}
        assert client.get("/admin/api/2026-10/orders/1.json", headers=auth).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"X-Shopify-Access-Token": "shpat_wrong"}])
def test_admin_api_refuses_a_missing_or_wrong_token(shop, headers):
    with httpx.Client(base_url=shop) as client:
        for path in ("/admin/api/2026-10/orders.json", "/admin/api/2026-10/orders/count.json"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert "Invalid API key or access token" in response.json()["errors"]


def test_admin_api_rejects_bad_paging(shop):
    auth = {"X-Shopify-Access-Token": TOKEN}
    with httpx.Client(base_url=shop, headers=auth) as client:
        _send(client, 1)
        assert client.get("/admin/api/2026-10/orders.json?limit=251").status_code == 400
        assert client.get("/admin/api/2026-10/orders.json?limit=0").status_code == 400
        assert client.get("/admin/api/2026-10/orders.json?updated_at_min=yesterday").json() == {
            "errors": {"updated_at_min": ["not an ISO 8601 timestamp"]}
        }
        next_url = client.get("/admin/api/2026-10/orders.json?limit=5").links["next"]["url"]
        assert client.get(next_url + "&status=any").status_code == 400
        assert client.get("/admin/api/2026-10/orders.json?page_info=not-a-cursor").status_code == 400


def test_scenario_view_holds_no_secret(shop):
    with httpx.Client(base_url=shop) as client:
        response = client.get("/_sandbox/scenario")
    assert response.status_code == 200
    assert SECRET not in response.text and TOKEN not in response.text
    document = response.json()
    assert document["seed"] == SEED
    assert document["counts"]["deliveries"] == 63
    assert sum(o["outcome"] == "dead_lettered" for o in document["orders"]) == 1


def test_unknown_phase_is_404(shop):
    with httpx.Client(base_url=shop) as client:
        assert client.post("/_sandbox/phases/3/send").status_code == 404


def _run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "erpsync_dev.sandboxes.shopify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_one_shot_send_without_a_server(receiver):
    env = {"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SECRET}
    done = _run_cli("send", "--target", receiver.url, "--orders", "5", "--seed", "7", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    expected = build_demo_scenario(5, seed=7).counts()
    assert report["expected"] == expected
    received = receiver.take()
    assert len(received) == expected["deliveries"]
    assert all(verify_shopify(SECRET, r.body, r.headers["x-shopify-hmac-sha256"]) for r in received)
    assert SECRET not in done.stdout + done.stderr


def test_one_shot_send_reports_an_unreachable_target(receiver):
    closed = receiver.url.replace("/webhooks/shopify", "").rsplit(":", 1)[0] + ":9/webhooks/shopify"
    done = _run_cli("send", "--target", closed, "--orders", "3", "--phase", "2", "--secret", SECRET, env={})
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["phases"][0]["totals"]["failed"] == 2
    assert all(f["status"] is None and f["error"] for f in report["phases"][0]["failures"])


def test_refuses_to_start_without_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ERPSYNC_SHOPIFY_WEBHOOK_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "erpsync_dev.sandboxes.shopify", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 2
    assert "ERPSYNC_SHOPIFY_WEBHOOK_SECRET" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_a_signal(stop, tmp_path):
    group = ProcessGroup(log_dir=tmp_path, env=dict(os.environ), cwd=REPO)
    shop = group.start("shop", python_module("erpsync_dev.sandboxes.shopify", "--port", "0", "--secret", SECRET,
                                             "--orders", "3"))
    try:
        url = group.wait_ready("shop", timeout=30)
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/healthz").status_code == 200
        group.send_signal("shop", stop)
        assert group.wait("shop", timeout=10) == 0
    finally:
        group.stop()
    assert log_lines(shop) == [f"ready on {url}"], "nothing on stdout or stderr but the ready line"
