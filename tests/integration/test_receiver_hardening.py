"""Issue 16, items 3, 5 and 6 and the serve start-up: `erpsync serve` as a process, attacked over raw sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from erpsync.ledger import Ledger
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port
from tests.conftest import REPO, fixture_path

SECRET = "hardening-secret"


@contextmanager
def receiver(tmp_path: Path, **env: str) -> Iterator[tuple[int, Ledger, Path]]:
    """The receiver on a free port with extra ERPSYNC_* settings; its port, ledger and log file."""
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    full_env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
                "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SECRET, **env}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=full_env, cwd=REPO)
    child = group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        ledger = Ledger.connect(database_url)
        try:
            yield port, ledger, child.log_path
        finally:
            ledger.close()
    finally:
        group.stop()


def signed_head(body: bytes, *, content_length: int | None = None) -> bytes:
    lines = ["POST /webhooks/shopify HTTP/1.1", "Host: localhost", "Content-Type: application/json",
             f"Content-Length: {len(body) if content_length is None else content_length}",
             "X-Shopify-Topic: orders/create", f"X-Shopify-Hmac-Sha256: {shopify_signature(SECRET, body)}",
             f"X-Shopify-Webhook-Id: {uuid.uuid4()}", "X-Shopify-Shop-Domain: erpsync-test.myshopify.com"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(port: int, data: bytes, *, wait: float = 20.0) -> bytes:
    """Send ``data`` (as far as the server takes it) and read until the server closes or ``wait`` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused part way through: the answer may still be readable
        return read_until_closed(sock, wait)


def read_until_closed(sock: socket.socket, wait: float) -> bytes:
    received = b""
    sock.settimeout(wait)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {wait}s; received {received[:200]!r}")
    return received


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def wait_for_line(log_path: Path, needle: str, *, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if needle in text:
            return text
        time.sleep(0.2)
    pytest.fail(f"{needle!r} never appeared in the receiver's log:\n{log_path.read_text(errors='replace')[-3000:]}")


# -- item 3: header size and count, slow heads and bodies, concurrent connections --------------------------


def test_a_request_head_over_the_size_cap_is_431_and_closed(tmp_path):
    with receiver(tmp_path) as (port, _, _):
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
        assert status_of(exchange(port, big)) == 431
        # A head that never ends is refused too, having been read no further than the cap and one read more.
        endless = b"GET /nowhere HTTP/1.1\r\nX-Big: " + b"a" * (8 * 1024 * 1024)
        assert status_of(exchange(port, endless)) == 431
        ordinary = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8000 + b"\r\nConnection: close\r\n\r\n"
        assert status_of(exchange(port, ordinary)) == 200


def test_more_headers_than_the_cap_is_431(tmp_path):
    with receiver(tmp_path) as (port, _, log_path):
        many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n"
        assert status_of(exchange(port, many)) == 431
        fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(90)) \
            + b"Connection: close\r\n\r\n"
        assert status_of(exchange(port, fine)) == 200
        assert "Traceback" not in log_path.read_text()


def test_a_half_sent_head_is_timed_out_with_408(tmp_path):
    with receiver(tmp_path, ERPSYNC_HEADER_TIMEOUT_SECONDS="1") as (port, _, _):
        answer = exchange(port, b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\n", wait=20)
        assert status_of(answer) == 408
        assert b"request head not received in time" in answer
        # A connection that sends nothing at all is closed as well (with the same answer).
        with socket.create_connection(("127.0.0.1", port)) as idle:
            assert status_of(read_until_closed(idle, 20)) == 408


def test_a_body_sent_too_slowly_is_timed_out_with_one_short_log_line(tmp_path):
    body = fixture_path("shopify", "orders_create.json").read_bytes()
    with receiver(tmp_path, ERPSYNC_BODY_TIMEOUT_SECONDS="1") as (port, ledger, log_path):
        answer = exchange(port, signed_head(body) + body[:100], wait=20)
        assert status_of(answer) == 408
        assert b"request body not received in time" in answer
        text = wait_for_line(log_path, "client disconnected after")
        assert "Traceback" not in text
        assert ledger.inbox_counts()["events"] == 0


def test_connections_beyond_the_cap_are_answered_503_and_closed(tmp_path):
    with receiver(tmp_path, ERPSYNC_MAX_CONNECTIONS="20", ERPSYNC_HEADER_TIMEOUT_SECONDS="30") as (port, _, _):
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        try:
            time.sleep(0.5)  # the server has accepted all 20
            extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
            answers = [read_until_closed(sock, 20) for sock in extra]
            assert [status_of(a) for a in answers] == [503] * 5
            for sock in extra:
                sock.close()
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.5)  # closed connections free their places
        ok = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(ok) == 200


# -- item 5: a disconnect is one short line -------------------------------------------------------------------


def test_a_client_that_disconnects_mid_body_costs_one_log_line_and_no_traceback(tmp_path):
    body = fixture_path("shopify", "orders_create.json").read_bytes()
    with receiver(tmp_path) as (port, ledger, log_path):
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(signed_head(body) + body[:100])
                time.sleep(0.2)
        text = wait_for_line(log_path, "client disconnected after 100 body bytes")
        time.sleep(1)
        text = log_path.read_text()
        assert "Traceback" not in text
        assert "Exception in ASGI application" not in text
        assert text.count("client disconnected") == 3
        assert len([line for line in text.splitlines() if "shopify" in line or "ClientDisconnect" in line]) == 3
        assert ledger.inbox_counts()["events"] == 0


# -- item 6: strict UTF-8 JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    '{"id": 1, "email": "a@example.org"}'.encode("utf-16"),  # UTF-16 with its BOM
    '{"id": 1, "email": "a@example.org"}'.encode("utf-32-le"),
    b'{"id": 1, "note": "\xed\xa0\x80"}',  # a surrogate written raw (CESU-8), not UTF-8
    b'{"id": 1, "note": "\\ud800"}',  # a lone surrogate as an escape
    b'{"id": 1, "\\udfff": 2}',  # in a key
    b'\xef\xbb\xbf{"id": 1}',  # a UTF-8 byte order mark
])
def test_a_signed_body_that_is_not_strict_utf8_json_is_400_and_stores_nothing(tmp_path, body):
    with receiver(tmp_path) as (port, ledger, _):
        answer = exchange(port, signed_head(body) + body)
        assert status_of(answer) == 400, answer
        assert b"UTF-8" in answer or b"not valid JSON" in answer
        assert ledger.inbox_counts()["events"] == 0


def test_a_surrogate_pair_escape_is_valid_utf8_and_stored(tmp_path):
    body = b'{"id": 1, "note": "\\ud83d\\ude00"}'  # one emoji, written as its pair of escapes
    with receiver(tmp_path) as (port, ledger, _):
        answer = exchange(port, signed_head(body) + body)
        assert status_of(answer) == 202, answer
        assert ledger.inbox_counts()["events"] == 1


# -- also seen: no temporary Prefect server ----------------------------------------------------------------------


def _without_prefect_api(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_KEY")}
    # Only the last source has a secret in the environment: the others would be looked up in Prefect blocks.
    env = {k: v for k, v in env.items() if not k.endswith("_WEBHOOK_SECRET")}
    prefect_home = tmp_path / "prefect-home"
    return {**env, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
            "ERPSYNC_STANDARD_WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "PREFECT_HOME": str(prefect_home)}


def test_serve_without_prefect_api_url_refuses_before_asking_prefect(tmp_path):
    env = _without_prefect_api(tmp_path)
    done = subprocess.run([sys.executable, "-m", "erpsync", "serve", "--port", str(free_port())], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "PREFECT_API_URL" in done.stderr
    assert "temporary server" not in done.stdout + done.stderr
    assert not any((tmp_path / "prefect-home").glob("*.db")), "Prefect created a server database"


def test_serve_no_dispatch_without_prefect_api_url_asks_no_prefect_block(tmp_path):
    env = _without_prefect_api(tmp_path)
    port = free_port()
    group = ProcessGroup(log_dir=tmp_path / "logs", env=env, cwd=REPO)
    child = group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
    finally:
        group.stop()
    text = child.log_path.read_text()
    assert "temporary server" not in text
    assert not any((tmp_path / "prefect-home").glob("*.db")), "Prefect created a server database"


# -- item 4: a body replayed under a new delivery id, and Shopify's event id ---------------------------------------


def post(port: int, body: bytes, **extra: str) -> tuple[int, dict]:
    import httpx

    head = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": shopify_signature(SECRET, body), "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": "erpsync-test.myshopify.com", **extra}
    response = httpx.post(f"http://127.0.0.1:{port}/webhooks/shopify", content=body, headers=head, timeout=30)
    return response.status_code, response.json()


def test_a_body_replayed_under_new_delivery_ids_and_topics_is_a_recorded_duplicate(tmp_path):
    body = fixture_path("shopify", "orders_create.json").read_bytes()
    with receiver(tmp_path) as (port, ledger, _):
        status, first = post(port, body)
        assert status == 202
        for topic in ("customers/create", "products/create", "refunds/create", "orders/create"):
            status, answer = post(port, body, **{"X-Shopify-Topic": topic})
            assert status == 200, answer
            assert answer["duplicate_of"] == first["event_id"]
            event = ledger.get_event(answer["event_id"])
            assert (event.topic, event.state, event.duplicate_of) == (topic, "duplicate", first["event_id"])
            [outcome] = ledger.outcomes(answer["event_id"])
            assert outcome.outcome == "duplicate"
            assert outcome.reason == f"replay: same body as inbox event {first['event_id']}; no new work"
        # Nothing for the sweep to dispatch but the original.
        from datetime import timedelta

        assert ledger.undispatched(older_than=timedelta(0)) == [first["event_id"]]


def test_shopify_event_id_api_version_and_trigger_time_are_kept_and_the_event_id_deduplicates(tmp_path):
    import json

    order = json.loads(fixture_path("shopify", "orders_create.json").read_bytes())
    one = json.dumps(order).encode()
    order["note"] = "the same event, delivered to a second subscription"
    two = json.dumps(order).encode()
    shopify = {"X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5", "X-Shopify-API-Version": "2025-07",
               "X-Shopify-Triggered-At": "2026-12-01T10:00:00.123456Z"}
    with receiver(tmp_path) as (port, ledger, _):
        status, first = post(port, one, **shopify)
        assert status == 202
        event = ledger.get_event(first["event_id"])
        assert (event.source_event_id, event.api_version, event.triggered_at) == (
            "98880550-7158-44d4-b7cd-2c97c8a091b5", "2025-07", "2026-12-01T10:00:00.123456Z")
        status, again = post(port, two, **shopify)
        assert (status, again["duplicate_of"]) == (200, first["event_id"])
        assert ledger.outcomes(again["event_id"])[0].reason.startswith("replay: same source event id")


def test_replays_within_one_batch_and_on_a_ledger_from_before(tmp_path):
    """The ledger side: two copies in one group commit; an inbox created without the new columns and indexes."""
    import hashlib

    from sqlalchemy import create_engine, inspect, text

    from erpsync import migrations
    from erpsync.db import schema_transaction
    from erpsync.errors import ConfigError
    from erpsync.ledger import InboxDelivery

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as connection:  # the inbox as the previous version created it
        connection.execute(text(
            "CREATE TABLE inbox_event (id INTEGER PRIMARY KEY, source VARCHAR(40) NOT NULL, delivery_id VARCHAR(200) "
            "NOT NULL, topic VARCHAR(100) NOT NULL, shop VARCHAR(255), triggered_at VARCHAR(64), received_at "
            "DATETIME NOT NULL, payload_sha256 VARCHAR(64) NOT NULL, body BLOB NOT NULL, redeliveries INTEGER NOT "
            "NULL, state VARCHAR(20) NOT NULL, flow_run_id VARCHAR(64), dispatched_at DATETIME, "
            "CONSTRAINT uq_inbox_source_delivery UNIQUE (source, delivery_id))"))
    with pytest.raises(ConfigError, match="erpsync db upgrade"):
        Ledger.connect(url)  # a ledger from before schema versions: refused, naming the command
    with schema_transaction(old) as connection:  # what `erpsync db upgrade` runs
        migrations.upgrade(connection)
    old.dispose()
    ledger = Ledger.connect(url)
    try:
        indexes = {index["name"] for index in inspect(ledger.engine).get_indexes("inbox_event")}
        assert {"ix_inbox_source_sha256", "ix_inbox_source_event"} <= indexes
        body = b'{"id": 7}'

        def delivery(delivery_id: str, topic: str = "orders/create") -> InboxDelivery:
            return InboxDelivery("shopify", delivery_id, topic, None, None, body, hashlib.sha256(body).hexdigest())

        first, copy, again, redact = ledger.record_deliveries(
            [delivery("a"), delivery("b", "customers/create"), delivery("a"), delivery("r", "customers/redact")],
            replays={"shopify"})
        assert (first.is_new, first.duplicate_of) == (True, None)
        assert (copy.is_new, copy.duplicate_of) == (False, first.event_id)
        assert (again.is_new, again.event_id) == (False, first.event_id)  # the same delivery id: a redelivery
        assert (redact.is_new, redact.duplicate_of) == (True, None)  # acted on whenever it comes
        # Without ``replays`` (files, repairs), a body may be stored again.
        [plain] = ledger.record_deliveries([delivery("c")])
        assert (plain.is_new, plain.duplicate_of) == (True, None)
    finally:
        ledger.close()
