"""Every source of the receiver, and its intake limits, over real HTTP against `erpsync serve` as its own process."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from erpsync.ledger import Ledger
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync.systems.standard.webhooks import standard_webhook_headers
from erpsync.systems.woocommerce.webhooks import woocommerce_signature
from tests.conftest import REPO
from tests.receiver_proc import running_receiver

SHOPIFY_SECRET = "shopify-receiver-secret"
WOO_SECRETS = ["woo-previous-secret", "woo-current-secret"]
STANDARD_SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXN0YW5kYXJkLXdlYmhvb2tzLWtleQ=="]
ALL_SECRETS = [SHOPIFY_SECRET, *WOO_SECRETS, *STANDARD_SECRETS]
CUSTOMER_EMAIL = "jane.customer@example.com"  # a payload value no answer or log line may repeat


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("receiver")
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {
        "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET,
        "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET": ",".join(WOO_SECRETS),
        "ERPSYNC_STANDARD_WEBHOOK_SECRET": ",".join(STANDARD_SECRETS),
        "ERPSYNC_MAPPINGS_DIR": str(mappings),
        "ERPSYNC_MAX_BODY_BYTES": str(2 * 1024 * 1024),
    }
    with running_receiver(tmp_path, database_url, env) as (client, log_path):
        ledger = Ledger.connect(database_url)
        try:
            yield client, ledger, log_path, mappings
        finally:
            ledger.close()


def stored(ledger: Ledger) -> int:
    return ledger.inbox_counts()["events"]


def woo_order(order_id: int = 727) -> bytes:
    return json.dumps({
        "id": order_id, "status": "processing", "currency": "EUR", "date_modified_gmt": "2026-11-28T10:00:00",
        "billing": {"first_name": "Jane", "email": CUSTOMER_EMAIL},
        "line_items": [{"sku": "SKU-1", "quantity": 2, "price": 9.5}],
    }).encode()


def woo_headers(body: bytes, *, secret: str = WOO_SECRETS[1], topic: str = "order.created",
                delivery_id: str | None = None) -> dict[str, str]:
    resource, event = topic.split(".", 1)
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)",
        "X-WC-Webhook-Source": "https://shop.example.org/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": woocommerce_signature(secret, body),
        "X-WC-Webhook-ID": "31",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }


def standard_event(event_type: str = "order.created", order_id: str = "ord_1") -> bytes:
    return json.dumps({
        "type": event_type, "timestamp": "2026-11-28T10:00:00Z",
        "data": {"id": order_id, "number": "1001", "updated_at": "2026-11-28T10:00:00Z", "currency": "EUR",
                 "customer": {"email": CUSTOMER_EMAIL},
                 "lines": [{"sku": "SKU-1", "quantity": 1, "price": "9.50", "title": "Mug"}]},
    }, separators=(",", ":")).encode()


def standard_headers(body: bytes, *, secrets=STANDARD_SECRETS[0], msg_id: str | None = None,
                     sent: datetime | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json",
            **standard_webhook_headers(secrets, msg_id or f"msg_{uuid.uuid4().hex}", body, sent)}


# -- WooCommerce -------------------------------------------------------------------------------------------

def test_a_signed_woocommerce_order_is_stored(receiver):
    client, ledger, _, _ = receiver
    body = woo_order()
    response = client.post("/webhooks/woocommerce", content=body, headers=woo_headers(body, delivery_id="wc-1"))
    assert response.status_code == 202
    event = ledger.get_event(response.json()["event_id"])
    assert (event.source, event.delivery_id, event.topic, event.shop) == (
        "woocommerce", "wc-1", "order.created", "https://shop.example.org/")
    assert event.body == body


def test_the_unsigned_woocommerce_ping_is_200_and_stores_nothing(receiver):
    client, ledger, _, _ = receiver
    before = stored(ledger)
    response = client.post("/webhooks/woocommerce", content=b"webhook_id=31",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (response.status_code, response.json()) == (200, {"ping": True})
    assert stored(ledger) == before


@pytest.mark.parametrize("secret", WOO_SECRETS)
def test_either_active_woocommerce_secret_verifies(receiver, secret):
    client, _, _, _ = receiver
    body = woo_order(800 + WOO_SECRETS.index(secret))  # an order of its own: the same body again is a replay
    assert client.post("/webhooks/woocommerce", content=body,
                       headers=woo_headers(body, secret=secret)).status_code == 202


@pytest.mark.parametrize("bad", ["retired-secret", "missing", "tampered", "ping-with-signature"])
def test_forged_woocommerce_deliveries_are_401(receiver, bad):
    client, ledger, _, _ = receiver
    body = woo_order()
    h = woo_headers(body, secret="retired-secret" if bad == "retired-secret" else WOO_SECRETS[1])
    if bad == "missing":
        del h["X-WC-Webhook-Signature"]
    sent = {"tampered": body.replace(b'"quantity": 2', b'"quantity": 200'),
            "ping-with-signature": b"webhook_id=31"}.get(bad, body)
    before = stored(ledger)
    response = client.post("/webhooks/woocommerce", content=sent, headers=h)
    assert response.status_code == 401
    assert response.json() == {"error": "missing or invalid X-WC-Webhook-Signature"}
    assert stored(ledger) == before


def test_a_woocommerce_delivery_without_its_delivery_id_is_400(receiver):
    client, _, _, _ = receiver
    body = woo_order()
    h = woo_headers(body)
    del h["X-WC-Webhook-Delivery-ID"]
    response = client.post("/webhooks/woocommerce", content=body, headers=h)
    assert (response.status_code, response.json()) == (400, {"error": "missing header: X-WC-Webhook-Delivery-ID"})


def test_a_delivery_id_wider_than_the_inbox_column_is_400(receiver):
    client, ledger, _, _ = receiver
    body = woo_order()
    before = stored(ledger)
    response = client.post("/webhooks/woocommerce", content=body, headers=woo_headers(body, delivery_id="d" * 201))
    assert (response.status_code, response.json()) == (400, {"error": "delivery id longer than 200 characters"})
    assert stored(ledger) == before


# -- Standard Webhooks -------------------------------------------------------------------------------------

def test_a_signed_standard_webhook_is_stored_under_its_type(receiver):
    client, ledger, _, _ = receiver
    body = standard_event()
    response = client.post("/webhooks/standard", content=body, headers=standard_headers(body, msg_id="msg_std_1"))
    assert response.status_code == 202
    event = ledger.get_event(response.json()["event_id"])
    assert (event.source, event.delivery_id, event.topic) == ("standard", "msg_std_1", "order.created")
    assert event.triggered_at == "2026-11-28T10:00:00Z"
    assert event.body == body


def test_standard_webhooks_key_rotation(receiver):
    """The sender signs with an unknown new key and a known old one; the receiver also holds two keys."""
    client, _, _, _ = receiver
    body = standard_event()
    both = standard_headers(body, secrets=["whsec_" + "bmV3LWtleS1ub3QteWV0LWtub3duLWhlcmU=", STANDARD_SECRETS[1]])
    assert len(both["webhook-signature"].split(" ")) == 2
    assert client.post("/webhooks/standard", content=body, headers=both).status_code == 202


def test_a_replayed_standard_webhook_is_refused_outside_the_window_and_deduplicated_inside(receiver):
    client, ledger, _, _ = receiver
    body = standard_event()
    old = standard_headers(body, sent=datetime.now(timezone.utc) - timedelta(minutes=6))
    future = standard_headers(body, sent=datetime.now(timezone.utc) + timedelta(minutes=6))
    before = stored(ledger)
    for h in (old, future):
        response = client.post("/webhooks/standard", content=body, headers=h)
        assert response.status_code == 401
        assert "webhook-timestamp outside" in response.json()["error"]
    assert stored(ledger) == before
    fresh = standard_headers(body)
    first = client.post("/webhooks/standard", content=body, headers=fresh)
    replay = client.post("/webhooks/standard", content=body, headers=fresh)
    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.json()["duplicate_delivery"] is True
    assert stored(ledger) == before + 1


@pytest.mark.parametrize("bad", ["wrong-key", "tampered", "no-signature", "no-id", "junk-signature",
                                 "no-comma", "bad-timestamp"])
def test_forged_standard_webhooks_are_401(receiver, bad):
    client, ledger, _, _ = receiver
    body = standard_event()
    h = standard_headers(body, secrets="whsec_" + "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZw==" if bad == "wrong-key"
                         else STANDARD_SECRETS[0])
    sent = body.replace(b'"quantity":1', b'"quantity":9') if bad == "tampered" else body
    if bad == "no-signature":
        del h["webhook-signature"]
    if bad == "no-id":
        del h["webhook-id"]
    if bad == "junk-signature":
        h["webhook-signature"] = "v1,!!!notbase64!!!"
    if bad == "no-comma":
        h["webhook-signature"] = "v1"
    if bad == "bad-timestamp":
        h["webhook-timestamp"] = "nan"
    before = stored(ledger)
    response = client.post("/webhooks/standard", content=sent, headers=h)
    assert response.status_code == 401, response.text
    assert "webhook-" in response.json()["error"]
    assert stored(ledger) == before


def test_a_standard_webhook_without_a_type_is_400(receiver):
    client, _, _, _ = receiver
    body = json.dumps({"data": {"id": "x"}}).encode()
    response = client.post("/webhooks/standard", content=body, headers=standard_headers(body))
    assert response.status_code == 400
    assert response.json() == {"error": "payload field 'type' must be a non-empty string"}


# -- routing and topics ------------------------------------------------------------------------------------

def test_an_unknown_source_is_404_and_stores_nothing(receiver):
    client, ledger, _, _ = receiver
    before = stored(ledger)
    response = client.post("/webhooks/magento", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 404
    assert response.json() == {"error": "unknown webhook source; known: netsuite, shopify, standard, woocommerce"}
    assert stored(ledger) == before


@pytest.mark.parametrize("source", ["shopify", "woocommerce", "standard"])
def test_a_topic_no_mapping_handles_is_404_and_stores_nothing(receiver, source):
    client, ledger, _, _ = receiver
    if source == "shopify":
        body = b'{"id": 1}'
        h = {"Content-Type": "application/json", "X-Shopify-Topic": "carts/update", "X-Shopify-Webhook-Id": "c-1",
             "X-Shopify-Hmac-Sha256": shopify_signature(SHOPIFY_SECRET, body)}
    elif source == "woocommerce":
        body = woo_order()
        h = woo_headers(body, topic="coupon.created")
    else:
        body = standard_event("invoice.paid")
        h = standard_headers(body)
    before = stored(ledger)
    response = client.post(f"/webhooks/{source}", content=body, headers=h)
    assert response.status_code == 404
    assert response.json()["error"].startswith(f"no mapping handles {source} topic")
    assert stored(ledger) == before


def test_a_new_mapping_file_is_picked_up_without_a_restart(receiver):
    client, _, _, mappings = receiver
    woo = mappings / "woocommerce_order_to_netsuite_sales_order.yaml"
    parked = mappings.parent / woo.name
    orders = iter(range(900, 2000))  # a new order each attempt: the same body again would be a replay (200)
    woo.rename(parked)
    try:
        deadline = time.monotonic() + 10
        while client.post("/webhooks/woocommerce", content=(body := woo_order(next(orders))),
                          headers=woo_headers(body)).status_code != 404:
            assert time.monotonic() < deadline, "the removed mapping's topics were still accepted after 10 s"
            time.sleep(0.2)
    finally:
        parked.rename(woo)
    deadline = time.monotonic() + 10
    while client.post("/webhooks/woocommerce", content=(body := woo_order(next(orders))),
                      headers=woo_headers(body)).status_code != 202:
        assert time.monotonic() < deadline, "the restored mapping's topics were not accepted within 10 s"
        time.sleep(0.2)


# -- JSON limits -------------------------------------------------------------------------------------------

def nested(depth: int) -> bytes:
    """An order whose ``note`` nests lists so the whole document is ``depth`` containers deep."""
    return b'{"id": 5, "note": ' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("body, status, error", [
    (nested(32), 202, None),
    (nested(33), 400, "JSON nested deeper than 32 levels"),
    (nested(100_000), 400, "JSON nested deeper than 32 levels"),  # deeper than Python's own recursion limit
    (json.dumps({"id": 6, "values": list(range(9_997))}).encode(), 202, None),  # 10,000: object, id, list, 9,997 items
    (json.dumps({"id": 7, "values": list(range(9_998))}).encode(), 400, "JSON holds more than 10000 values"),
], ids=["depth-32", "depth-33", "depth-100000", "10000-values", "10001-values"])
def test_json_depth_and_size_limits(receiver, body, status, error):
    client, ledger, _, _ = receiver
    before = stored(ledger)
    response = client.post("/webhooks/woocommerce", content=body, headers=woo_headers(body))
    assert response.status_code == status
    if error:
        assert response.json() == {"error": error}
        assert stored(ledger) == before


@pytest.mark.parametrize("body, error", [
    (b'{"id": NaN}', "body is not valid JSON"), (b'{"id": Infinity}', "body is not valid JSON"),
    (b'{"id": 1', "body is not valid JSON"), (b'{"id": "\xe9"}', "body is not valid JSON in UTF-8")])
def test_non_json_bodies_are_400(receiver, body, error):
    client, _, _, _ = receiver
    response = client.post("/webhooks/woocommerce", content=body, headers=woo_headers(body))
    assert (response.status_code, response.json()) == (400, {"error": error})


# -- the document, the errors and the secrets ---------------------------------------------------------------

def test_openapi_document_describes_every_route_and_answer(receiver):
    client, _, _, _ = receiver
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/healthz", "/webhooks/shopify", "/webhooks/woocommerce", "/webhooks/standard"} <= set(document["paths"])
    for source in ("shopify", "woocommerce", "standard"):
        answers = document["paths"][f"/webhooks/{source}"]["post"]["responses"]
        assert {"200", "202", "400", "401", "404", "413", "415", "429"} <= set(answers)
        assert "Retry-After" in answers["429"]["headers"]


def test_routing_errors_are_json(receiver):
    client, _, _, _ = receiver
    wrong_method = client.get("/webhooks/shopify")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert "error" in wrong_method.json()
    nowhere = client.post("/nowhere", content=b"{}")
    assert nowhere.status_code == 404 and "error" in nowhere.json()


def test_no_answer_or_log_line_repeats_a_secret_or_a_payload_value(receiver):
    client, _, log_path, _ = receiver
    answers = []
    woo, std = woo_order(), standard_event()
    for secret in ALL_SECRETS:  # every secret, used where it does not belong
        answers.append(client.post("/webhooks/woocommerce", content=woo, headers=woo_headers(woo, secret=secret)
                                   | {"X-WC-Webhook-Signature": secret}))
        answers.append(client.post("/webhooks/standard", content=std, headers=standard_headers(std)
                                   | {"webhook-signature": f"v1,{secret}"}))
        answers.append(client.post("/webhooks/shopify", content=woo,
                                   headers={"Content-Type": "application/json", "X-Shopify-Hmac-Sha256": secret}))
    answers.append(client.post("/webhooks/woocommerce", content=woo, headers=woo_headers(woo) | {
        "Content-Type": "text/plain"}))
    answers.append(client.post("/webhooks/woocommerce", content=woo,
                               headers=woo_headers(woo, topic=f"{CUSTOMER_EMAIL}.x")))
    text = "\n".join(r.text for r in answers) + log_path.read_text(errors="replace")
    assert {r.status_code for r in answers} <= {401, 404, 415}
    for secret in ALL_SECRETS:
        assert secret not in text
    assert CUSTOMER_EMAIL not in text


# -- rate limit (its own receiver: a bucket of 3, refilled at 1 a second) ------------------------------------

def test_each_source_has_its_own_rate_limit_answered_429_with_retry_after(tmp_path):
    env = {"ERPSYNC_RATE_LIMIT_PER_SECOND": "1", "ERPSYNC_RATE_LIMIT_BURST": "3",
           "ERPSYNC_WOOCOMMERCE_WEBHOOK_SECRET": WOO_SECRETS[1], "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET}
    with running_receiver(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", env) as (client, _):
        bodies = [woo_order(n) for n in range(6)]  # six orders: one body again would be a replay (200)
        statuses = [client.post("/webhooks/woocommerce", content=body, headers=woo_headers(body))
                    for body in bodies]
        assert [r.status_code for r in statuses][:3] == [202, 202, 202]
        limited = [r for r in statuses if r.status_code == 429]
        assert len(limited) >= 2
        assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
        assert "rate limit" in limited[0].json()["error"]
        # Another source's bucket is untouched.
        assert client.post("/webhooks/shopify", content=b"{}", headers={}).status_code == 401
        time.sleep(1.2)
        body = woo_order(6)
        assert client.post("/webhooks/woocommerce", content=body, headers=woo_headers(body)).status_code == 202
