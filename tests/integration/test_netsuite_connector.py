"""The NetSuite connector against the ERP sandbox running as its own process: records, SuiteQL, limits, faults, auth.

What every ERP must do (idempotent upsert, refusals, 429, token refresh, changes, windows) is checked once for all
in tests/contract/test_erp_contract.py; this file keeps what is NetSuite's own.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from erpsync.errors import ErpAuthError, ErpRejected, MappingError, TransientError
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

FAST = RetryPolicy(max_attempts=5, base=0.01, cap=0.05, max_retry_after=0.05)


def sales_order(item_id: int = 98, **fields: Any) -> dict[str, Any]:
    return {"entity": {"id": "110"}, "item": {"items": [{"item": {"id": item_id}, "quantity": 1}]}, **fields}


def settings_for(base_url: str, **overrides: Any) -> NetSuiteSettings:
    values: dict[str, Any] = {"base_url": base_url, "client_id": ERP_CLIENT_ID, "client_secret": ERP_CLIENT_SECRET}
    values.update(overrides)
    return NetSuiteSettings(**values)


# erp, ops and client: tests/integration/conftest.py. 107 is the customer of Oracle's published examples
# (tests/fixtures/netsuite), 110 the shops' guest customer.
ERP_SANDBOX_ARGS = ("--customers", "107=Oracle sample,110=Web Store")
ERP_RETRY = FAST


def records(ops: httpx.Client, record_type: str = "salesOrder") -> list[dict[str, Any]]:
    return ops.get("/_sandbox/records", params={"type": record_type}).json()["records"]


def stats(ops: httpx.Client) -> dict[str, Any]:
    return ops.get("/_sandbox/stats").json()


def recording_policy(sleeps: list[float], **settings: Any) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append, random=lambda: 0.0, **settings)


# --- records -----------------------------------------------------------------------------------------------


def test_get_by_external_and_internal_id(client: NetSuiteClient) -> None:
    internal_id = client.upsert("salesOrder", "shopify-order-2002", sales_order(otherRefNum="#2002"))
    by_eid = client.get_by_external_id("salesOrder", "shopify-order-2002", expand_sub_resources=False)
    assert by_eid is not None
    assert by_eid["id"] == internal_id
    assert by_eid["externalId"] == "shopify-order-2002"
    assert by_eid["otherRefNum"] == "#2002"
    assert "links" in by_eid["item"]  # a sublist comes back as a link unless expanded
    assert client.get("salesOrder", "eid:shopify-order-2002") == by_eid
    by_id = client.get("salesOrder", internal_id, expand_sub_resources=True)
    assert by_id is not None
    assert by_id["item"]["items"][0]["item"]["id"] == 98


def test_external_id_is_checked_before_any_request(client: NetSuiteClient, ops: httpx.Client) -> None:
    with pytest.raises(MappingError) as raised:
        client.upsert("salesOrder", "order|1001", sales_order())
    assert raised.value.field == "externalId"
    assert stats(ops)["requests"] == 0


def test_invalid_item_is_rejected_with_netsuites_code_and_path(client: NetSuiteClient, ops: httpx.Client) -> None:
    with pytest.raises(ErpRejected) as raised:
        client.upsert("salesOrder", "shopify-order-3003", sales_order(item_id=9999))
    error = raised.value
    assert (error.status, error.code, error.path) == (400, "INVALID_CONTENT", "item.items[0].item")
    assert "Invalid Field Value 9999" in error.detail
    assert records(ops) == []
    assert stats(ops)["by_status"] == {"200": 1, "400": 1}  # one token, one PUT: no retries


def test_missing_customer_is_a_user_error(client: NetSuiteClient) -> None:
    body = sales_order()
    del body["entity"]
    with pytest.raises(ErpRejected) as raised:
        client.upsert("salesOrder", "shopify-order-3004", body)
    assert raised.value.code == "USER_ERROR"
    assert "Customer" in raised.value.detail


# --- SuiteQL -----------------------------------------------------------------------------------------------


def test_suiteql_follows_pages_and_binds_params(client: NetSuiteClient) -> None:
    ids = [
        client.upsert("salesOrder", f"shopify-order-{n}", sales_order(otherRefNum=f"#{n}", tranDate="2025-03-01"))
        for n in range(1, 6)
    ]
    rows = client.suiteql(
        "SELECT id, externalid, type, otherrefnum, trandate FROM transaction WHERE type = ? AND id >= ? ORDER BY id",
        ["SalesOrd", ids[1]],
        page_size=2,
    )
    assert [row["id"] for row in rows] == ids[1:]
    assert rows[0] == {
        "id": ids[1],
        "externalid": "shopify-order-2",
        "type": "SalesOrd",
        "otherrefnum": "#2",
        "trandate": "2025-03-01",
    }
    assert client.suiteql("SELECT TOP 1 itemid FROM item WHERE id = ?", [98]) == [{"itemid": "item-98"}]


def test_suiteql_is_read_only(client: NetSuiteClient) -> None:
    with pytest.raises(ErpRejected) as raised:
        client.suiteql("DELETE FROM transaction")
    assert (raised.value.status, raised.value.code) == (400, "INVALID_PARAMETER")


# --- throttling, faults, timeouts --------------------------------------------------------------------------


def test_concurrency_limit_answers_429_and_retries_recover(tmp_path: Path) -> None:
    args = ("--concurrency", "1", "--latency-ms", "40", "--retry-after", "0")
    patient = RetryPolicy(max_attempts=100, base=0.05, cap=0.1)
    with start_erp_sandbox(tmp_path, *args) as base_url, httpx.Client(base_url=base_url) as ops:
        with NetSuiteClient(settings_for(base_url), retry=patient) as netsuite, ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda n: netsuite.upsert("salesOrder", f"burst-{n}", sales_order()), range(8)))
        assert len(set(ids)) == 8
        assert len(records(ops)) == 8
        counters = stats(ops)
    assert counters["too_many_requests"] > 0
    assert counters["peak_in_flight"] == 1


def test_503_retry_after_is_honoured(erp: str, ops: httpx.Client) -> None:
    ops.post("/_sandbox/faults", json={"status": 503, "count": 2, "retry_after": 1}).raise_for_status()
    sleeps: list[float] = []
    with NetSuiteClient(settings_for(erp), retry=recording_policy(sleeps, base=0.01, cap=0.01)) as netsuite:
        netsuite.upsert("salesOrder", "shopify-order-5005", sales_order())
    assert sleeps == [1.0, 1.0]  # the server's hint, not the 0.01 s backoff
    assert stats(ops)["by_status"]["503"] == 2


def test_exhausted_retries_raise_the_transient_error(erp: str, ops: httpx.Client) -> None:
    ops.post("/_sandbox/faults", json={"status": 500, "count": 3}).raise_for_status()
    sleeps: list[float] = []
    with NetSuiteClient(settings_for(erp), retry=recording_policy(sleeps, max_attempts=3)) as netsuite:
        with pytest.raises(TransientError) as raised:
            netsuite.upsert("salesOrder", "shopify-order-6006", sales_order())
    assert raised.value.status == 500
    assert "UNEXPECTED_ERROR" in str(raised.value)
    assert len(sleeps) == 2


def test_timeout_is_transient_and_the_retried_upsert_writes_one_record(erp: str, ops: httpx.Client) -> None:
    ops.post("/_sandbox/faults", json={"delay_ms": 800, "count": 1}).raise_for_status()
    with NetSuiteClient(settings_for(erp, timeout_seconds=0.3), retry=FAST) as netsuite:
        internal_id = netsuite.upsert("salesOrder", "shopify-order-7007", sales_order())
    # The timed-out PUT still lands after its delay: upsert by external id makes that harmless.
    deadline = time.monotonic() + 5
    while stats(ops)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    [record] = records(ops)
    assert record["internal_id"] == internal_id
    assert record["versions"] >= 2  # more if a slow machine timed out the retry too


def test_timeout_without_retries_raises_transient(erp: str, ops: httpx.Client) -> None:
    ops.post("/_sandbox/faults", json={"delay_ms": 600, "count": 1}).raise_for_status()
    with NetSuiteClient(settings_for(erp, timeout_seconds=0.2), retry=RetryPolicy(max_attempts=1)) as netsuite:
        with pytest.raises(TransientError, match="timed out"):
            netsuite.get("salesOrder", "1")


def test_unreachable_erp_is_transient(tmp_path: Path) -> None:
    with start_erp_sandbox(tmp_path) as base_url:
        pass  # the port is free again once the sandbox has stopped
    with NetSuiteClient(settings_for(base_url), retry=RetryPolicy(max_attempts=2, base=0.01)) as netsuite:
        with pytest.raises(TransientError, match="connection failed"):
            netsuite.get("salesOrder", "1")


# --- authentication ----------------------------------------------------------------------------------------


def test_token_is_cached(client: NetSuiteClient, ops: httpx.Client) -> None:
    for n in range(3):
        client.upsert("salesOrder", f"cached-{n}", sales_order())
    assert stats(ops)["tokens_issued"] == 1


def test_expired_token_answers_401_and_the_client_renews_once(tmp_path: Path) -> None:
    frozen = lambda: 0.0  # noqa: E731 - the client never notices the lifetime running out; the ERP must tell it
    with start_erp_sandbox(tmp_path, "--token-lifetime", "1") as base_url, httpx.Client(base_url=base_url) as ops:
        with NetSuiteClient(settings_for(base_url), retry=FAST, clock=frozen) as netsuite:
            first = netsuite.upsert("salesOrder", "shopify-order-8008", sales_order())
            time.sleep(1.2)
            assert netsuite.upsert("salesOrder", "shopify-order-8008", sales_order()) == first
        counters = stats(ops)
    assert counters["unauthorized"] == 1
    assert counters["tokens_issued"] == 2


def test_token_renewed_before_expiry_without_a_401(tmp_path: Path) -> None:
    with start_erp_sandbox(tmp_path, "--token-lifetime", "1") as base_url, httpx.Client(base_url=base_url) as ops:
        with NetSuiteClient(settings_for(base_url), retry=FAST) as netsuite:
            netsuite.upsert("salesOrder", "shopify-order-8009", sales_order())
            time.sleep(1.0)
            netsuite.upsert("salesOrder", "shopify-order-8009", sales_order())
        counters = stats(ops)
    assert counters["unauthorized"] == 0
    assert counters["tokens_issued"] == 2


def test_wrong_secret_is_an_auth_error(erp: str, ops: httpx.Client) -> None:
    with NetSuiteClient(settings_for(erp, client_secret="not-the-secret"), retry=FAST) as netsuite:
        with pytest.raises(ErpAuthError) as raised:
            netsuite.upsert("salesOrder", "shopify-order-9009", sales_order())
    assert "invalid_client" in str(raised.value)
    assert "not-the-secret" not in str(raised.value)
    counters = stats(ops)
    assert (counters["tokens_issued"], counters["by_status"]) == (0, {"401": 1})


def test_certificate_client_assertion_flow(erp: str, ops: httpx.Client) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    settings = NetSuiteSettings(
        base_url=erp, client_id=ERP_CLIENT_ID, certificate_id="cert-1", private_key=pem.decode()
    )
    with NetSuiteClient(settings, retry=FAST) as netsuite:
        assert netsuite.upsert("salesOrder", "shopify-order-m2m", sales_order()).isdigit()
    assert stats(ops)["tokens_issued"] == 1


# --- the sandbox speaks NetSuite's shapes ------------------------------------------------------------------


def fixture_json(fixtures_dir: Path, name: str) -> dict[str, Any]:
    path = fixtures_dir / "netsuite" / name
    if not path.exists():
        pytest.fail(f"reference fixture missing: {path}")
    return json.loads(path.read_text())


def bearer(base_url: str) -> dict[str, str]:
    token = httpx.post(
        f"{base_url}/services/rest/auth/oauth2/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(ERP_CLIENT_ID, ERP_CLIENT_SECRET),
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_error_bodies_have_netsuites_shape(erp: str, ops: httpx.Client, fixtures_dir: Path) -> None:
    unauthorized = ops.get("/services/rest/record/v1/salesOrder/1")
    assert unauthorized.status_code == 401
    assert unauthorized.json() == fixture_json(fixtures_dir, "error_401_invalid_login.oracle-docs.json")

    headers = bearer(erp)
    missing = ops.get("/services/rest/record/v1/salesOrder/424242", headers=headers)
    assert missing.json() == fixture_json(fixtures_dir, "error_404_nonexistent_id.oracle-docs.json")

    invalid = ops.put(
        "/services/rest/record/v1/salesOrder/eid:x1",
        json=fixture_json(fixtures_dir, "salesOrder_post_invalid_item.request.oracle-docs.json"),
        headers=headers,
    )
    assert invalid.json() == fixture_json(fixtures_dir, "error_400_invalid_content_errorPath.oracle-docs.json")

    ops.post("/_sandbox/faults", json={"status": 429, "count": 1}).raise_for_status()
    throttled = ops.get("/services/rest/record/v1/salesOrder/1", headers=headers)
    published = fixtures_dir / "netsuite" / "error_429_concurrency_limit.oracle-docs.AS-PUBLISHED-INVALID-JSON.txt"
    # the same document with the comma NetSuite's documentation lost
    text = published.read_text().replace('"USER_ERROR"   "o:errorDetails"', '"USER_ERROR", "o:errorDetails"')
    repaired = json.loads(text)
    assert throttled.status_code == 429
    assert throttled.json() == repaired
    assert throttled.headers["retry-after"] == "1"


def test_create_and_collection_paging(erp: str, ops: httpx.Client, fixtures_dir: Path) -> None:
    headers = bearer(erp)
    body = fixture_json(fixtures_dir, "salesOrder_post_more_complicated.oracle-docs.json")
    locations = []
    for n in range(3):
        created = ops.post("/services/rest/record/v1/salesOrder", json={**body, "externalId": f"c{n}"}, headers=headers)
        assert created.status_code == 204
        locations.append(created.headers["location"])
    duplicate = ops.post("/services/rest/record/v1/salesOrder", json={**body, "externalId": "c0"}, headers=headers)
    assert duplicate.status_code == 400

    first = ops.get("/services/rest/record/v1/salesOrder", params={"limit": 2}, headers=headers).json()
    second = ops.get("/services/rest/record/v1/salesOrder", params={"limit": 2, "offset": 2}, headers=headers).json()
    published = fixture_json(fixtures_dir, "collection_page1_customer_limit2.oracle-docs.json")
    assert set(first) == set(published)
    assert (first["count"], first["hasMore"], first["totalResults"]) == (2, True, 3)
    assert (second["count"], second["hasMore"], second["offset"]) == (1, False, 2)
    assert [item["links"][0]["href"] for item in first["items"] + second["items"]] == locations
    assert {link["rel"] for link in first["links"]} == {"next", "last", "self"}
    assert {link["rel"] for link in second["links"]} == {"prev", "first", "self"}


def test_random_faults_follow_the_seed(tmp_path: Path) -> None:
    args = ("--fault-rate", "1", "--fault-statuses", "503", "--retry-after", "0", "--seed", "7")
    with start_erp_sandbox(tmp_path, *args) as base_url, httpx.Client(base_url=base_url) as ops:
        with NetSuiteClient(settings_for(base_url), retry=RetryPolicy(max_attempts=3, base=0.01)) as netsuite:
            with pytest.raises(TransientError) as raised:
                netsuite.get("salesOrder", "1")
        assert raised.value.status == 503
        assert raised.value.retry_after == 0
        assert stats(ops)["faults_injected"] == 3
