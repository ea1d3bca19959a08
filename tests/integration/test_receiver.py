"""The receiver as its own process (`erpsync serve`), over real HTTP, against a real database."""

from __future__ import annotations

import json
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, text

from erpsync.db import normalise_url
from erpsync.ledger import Ledger
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from tests.conftest import POSTGRES_URL, REPO, _postgres_database, fixture_path

SECRET = "test-webhook-secret"
PREVIOUS_SECRET = "previous-webhook-secret"  # still active during a rotation
CAP = 64 * 1024


@pytest.fixture
def receiver(database_url, tmp_path):
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": f"{PREVIOUS_SECRET}, {SECRET}", "ERPSYNC_MAX_BODY_BYTES": str(CAP)}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            ledger = Ledger.connect(database_url)
            yield client, ledger
            ledger.close()
    finally:
        group.stop()


def order_body() -> bytes:
    return fixture_path("shopify", "orders_create.json").read_bytes()


def another_order_body(n: int) -> bytes:
    """Shopify's order with another id: a different body (the same body under a new delivery id is a replay)."""
    order = json.loads(order_body())
    order["id"] = order["id"] + n
    return json.dumps(order).encode()


def headers(body: bytes, *, delivery_id: str | None = None, secret: str = SECRET, prefix: str = "X-Shopify-",
            topic: str = "orders/create"):
    return {
        "Content-Type": "application/json",
        f"{prefix}Topic": topic,
        f"{prefix}Hmac-Sha256": shopify_signature(secret, body),
        f"{prefix}Shop-Domain": "erpsync-test.myshopify.com",
        f"{prefix}API-Version": "2025-01",
        f"{prefix}Webhook-Id": delivery_id or str(uuid.uuid4()),
        f"{prefix}Triggered-At": "2026-11-28T10:00:00.000000Z",
    }


def test_a_signed_delivery_is_stored_before_the_answer(receiver):
    client, ledger = receiver
    body = order_body()
    response = client.post("/webhooks/shopify", content=body, headers=headers(body, delivery_id="wh-1"))
    assert response.status_code == 202
    event = ledger.get_event(response.json()["event_id"])
    assert event.body == body
    assert (event.delivery_id, event.topic, event.shop) == ("wh-1", "orders/create", "erpsync-test.myshopify.com")
    assert event.triggered_at == "2026-11-28T10:00:00.000000Z"
    import hashlib

    assert event.payload_sha256 == hashlib.sha256(body).hexdigest()


def test_a_repeated_delivery_id_answers_2xx_and_creates_no_work(receiver):
    client, ledger = receiver
    body = order_body()
    first = client.post("/webhooks/shopify", content=body, headers=headers(body, delivery_id="wh-dup"))
    again = client.post("/webhooks/shopify", content=body, headers=headers(body, delivery_id="wh-dup"))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate_delivery": True}
    assert ledger.inbox_counts()["events"] == 1
    assert ledger.inbox_counts()["redeliveries"] == 1


@pytest.mark.parametrize("bad", ["wrong-secret", "missing", "tampered"])
def test_bad_or_missing_signature_is_401_and_stores_nothing(receiver, bad):
    client, ledger = receiver
    body = order_body()
    h = headers(body, secret="wrong" if bad == "wrong-secret" else SECRET)
    if bad == "missing":
        del h["X-Shopify-Hmac-Sha256"]
    sent = body.replace(b"jon@example.com", b"eve@example.com") if bad == "tampered" else body
    response = client.post("/webhooks/shopify", content=sent, headers=h)
    assert response.status_code == 401
    assert "X-Shopify-Hmac-Sha256" in response.json()["error"]
    assert ledger.inbox_counts()["events"] == 0


def test_a_body_over_the_cap_is_413(receiver):
    client, ledger = receiver
    body = json.dumps({"id": 1, "note": "x" * CAP}).encode()
    assert client.post("/webhooks/shopify", content=body, headers=headers(body)).status_code == 413

    def chunks():  # no Content-Length: the cap must hold while streaming
        yield body[: CAP // 2]
        yield body[CAP // 2 :]

    assert client.post("/webhooks/shopify", content=chunks(), headers=headers(body)).status_code == 413
    assert ledger.inbox_counts()["events"] == 0


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]", b""])
def test_malformed_json_is_400(receiver, body):
    client, ledger = receiver
    response = client.post("/webhooks/shopify", content=body, headers=headers(body))
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    assert ledger.inbox_counts()["events"] == 0


def test_missing_delivery_headers_are_named(receiver):
    client, _ = receiver
    body = order_body()
    h = headers(body)
    del h["X-Shopify-Webhook-Id"]
    response = client.post("/webhooks/shopify", content=body, headers=h)
    assert response.status_code == 400
    assert response.json()["error"] == "missing header: X-Shopify-Webhook-Id"


def test_unprefixed_shopify_header_names_are_accepted(receiver):
    client, ledger = receiver
    body = order_body()
    response = client.post("/webhooks/shopify", content=body, headers=headers(body, prefix="Shopify-"))
    assert response.status_code == 202
    assert ledger.get_event(response.json()["event_id"]).topic == "orders/create"


def test_parallel_deliveries_all_land(receiver):
    client, ledger = receiver
    def send(i):
        body = another_order_body(i % 20)
        return client.post("/webhooks/shopify", content=body, headers=headers(body, delivery_id=f"p-{i % 20}"))

    with ThreadPoolExecutor(8) as pool:
        statuses = [r.status_code for r in pool.map(send, range(40))]
    assert sorted(set(statuses)) == [200, 202]
    assert statuses.count(202) == 20
    assert ledger.inbox_counts() == {"received": 20, "events": 20, "redeliveries": 20}


def test_healthz(receiver):
    client, _ = receiver
    assert client.get("/healthz").json() == {"status": "ok"}


def test_every_active_secret_verifies_during_a_rotation(receiver):
    client, ledger = receiver
    body, other, third = another_order_body(1), another_order_body(2), another_order_body(3)
    old = client.post("/webhooks/shopify", content=body, headers=headers(body, secret=PREVIOUS_SECRET))
    new = client.post("/webhooks/shopify", content=other, headers=headers(other, secret=SECRET))
    retired = client.post("/webhooks/shopify", content=third, headers=headers(third, secret="retired-secret"))
    assert (old.status_code, new.status_code, retired.status_code) == (202, 202, 401)
    assert ledger.inbox_counts()["events"] == 2


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_signed_body_not_declared_json_is_415(receiver, content_type):
    client, ledger = receiver
    body = order_body()
    h = headers(body)
    if content_type is None:
        del h["Content-Type"]
    else:
        h["Content-Type"] = content_type
    response = client.post("/webhooks/shopify", content=body, headers=h)
    assert response.status_code == 415
    assert "Content-Type" in response.json()["error"]
    assert ledger.inbox_counts()["events"] == 0


def test_json_with_a_charset_parameter_is_accepted(receiver):
    client, _ = receiver
    body = order_body()
    h = {**headers(body), "Content-Type": "application/json; charset=utf-8"}
    assert client.post("/webhooks/shopify", content=body, headers=h).status_code == 202


def test_a_topic_no_mapping_handles_is_404_and_stores_nothing(receiver):
    client, ledger = receiver
    body = order_body()
    response = client.post("/webhooks/shopify", content=body, headers=headers(body, topic="carts/update"))
    assert response.status_code == 404
    assert response.json() == {"error": "no mapping handles shopify topic 'carts/update'"}
    assert ledger.inbox_counts()["events"] == 0


@pytest.mark.skipif(not POSTGRES_URL, reason="needs ERPSYNC_TEST_POSTGRES_URL (a PostgreSQL server to cut off)")
def test_the_database_gone_is_503_and_nothing_is_acknowledged(tmp_path):
    """Cut the receiver's database off (no new connections, existing ones killed): every delivery is answered
    503, so the source retries it; once the database is back the same delivery is stored."""
    throwaway = _postgres_database()  # keep the generator alive: closing it drops the database
    database_url = next(throwaway)
    name = database_url.rsplit("/", 1)[1]
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SECRET}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    body = order_body()
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client, admin.connect() as pg:
            pg.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            pg.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            refused = client.post("/webhooks/shopify", content=body, headers=headers(body, delivery_id="while-down"))
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"]
            assert client.get("/healthz").status_code == 503
            pg.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            stored = client.post("/webhooks/shopify", content=body, headers=headers(body, delivery_id="while-down"))
            assert stored.status_code == 202, stored.text
        ledger = Ledger.connect(database_url)
        try:
            assert ledger.inbox_counts() == {"received": 1, "events": 1, "redeliveries": 0}
        finally:
            ledger.close()
    finally:
        group.stop()
        admin.dispose()
        throwaway.close()
