"""NetSuite answers → erpsync errors, judged on NetSuite's published bodies; ids, settings, the M2M assertion."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import ValidationError

from erpsync.errors import (
    ConfigError,
    ErpAuthError,
    ErpRejected,
    MappingError,
    PermanentError,
    TransientError,
)
from erpsync.systems.netsuite.client import (
    NetSuiteSettings,
    check_external_id,
    classify_error,
    classify_transport_error,
    client_assertion,
    internal_id_from_location,
    load_private_key,
    parse_error_body,
    parse_retry_after,
    record_json,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def body(fixtures_dir: Path, name: str) -> bytes:
    path = fixtures_dir / "netsuite" / name
    if not path.exists():
        pytest.fail(f"reference fixture missing: {path}")
    return path.read_bytes()


# --- classification of NetSuite's published error bodies --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "code", "path"),
    [
        ("error_400_invalid_content_errorPath.oracle-docs.json", 400, "INVALID_CONTENT", "item.items[0].item"),
        ("error_400_invalid_request.oracle-docs.json", 400, "INVALID_REQUEST", None),
        ("error_400_user_error_missing_fields.github-issue.json", 400, "USER_ERROR", None),
        ("error_404_nonexistent_id.oracle-docs.json", 404, "NONEXISTENT_ID", None),
    ],
)
def test_4xx_with_error_details_is_a_rejection(
    fixtures_dir: Path, name: str, status: int, code: str, path: str | None
) -> None:
    error = classify_error(status, body(fixtures_dir, name), describe="upsert salesOrder/eid:SO-1")
    assert isinstance(error, ErpRejected)
    assert (error.status, error.code, error.path) == (status, code, path)
    assert error.detail
    assert f"HTTP {status} {code}" in str(error)


def test_invalid_content_keeps_netsuites_detail_and_path(fixtures_dir: Path) -> None:
    error = classify_error(400, body(fixtures_dir, "error_400_invalid_content_errorPath.oracle-docs.json"))
    assert isinstance(error, ErpRejected)
    assert "Invalid Field Value 9999" in error.detail
    assert str(error) == "HTTP 400 INVALID_CONTENT at item.items[0].item", "the detail may quote our data"
    assert error.reason.endswith(error.detail), "the ledger's reason keeps it"


def test_401_is_an_auth_error(fixtures_dir: Path) -> None:
    error = classify_error(401, body(fixtures_dir, "error_401_invalid_login.oracle-docs.json"))
    assert isinstance(error, ErpAuthError)
    assert "INVALID_LOGIN" in str(error)


def test_published_429_is_not_json_and_still_transient_with_its_code(fixtures_dir: Path) -> None:
    raw = body(fixtures_dir, "error_429_concurrency_limit.oracle-docs.AS-PUBLISHED-INVALID-JSON.txt")
    with pytest.raises(ValueError):
        json.loads(raw)
    assert parse_error_body(raw) == (
        "CONCURRENCY_LIMIT_EXCEEDED",
        "Concurrent request limit exceeded. Request blocked.",
        None,
    )
    error = classify_error(429, raw, {"Retry-After": "3"}, describe="upsert salesOrder/eid:SO-1")
    assert isinstance(error, TransientError)
    assert (error.status, error.retry_after) == (429, 3.0)
    assert "HTTP 429 CONCURRENCY_LIMIT_EXCEEDED" in str(error)


def test_500_is_transient(fixtures_dir: Path) -> None:
    error = classify_error(500, body(fixtures_dir, "error_500_unexpected.oracle-docs.json"))
    assert isinstance(error, TransientError)
    assert error.status == 500
    assert error.retry_after is None
    assert "UNEXPECTED_ERROR" in str(error)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_transient_whatever_the_body(status: int) -> None:
    error = classify_error(status, b"<html>Service Unavailable</html>", {"content-type": "text/html"})
    assert isinstance(error, TransientError)
    assert error.status == status
    assert f"HTTP {status}" in str(error)


def test_concurrency_code_is_transient_even_under_a_400_status() -> None:
    raw = json.dumps({"status": 400, "o:errorDetails": [{"detail": "x", "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"}]})
    assert isinstance(classify_error(400, raw), TransientError)


def test_unparseable_4xx_is_a_rejection_naming_the_status() -> None:
    headers = {"Content-Type": "text/html; charset=utf-8"}
    error = classify_error(400, b"<html>oops</html>", headers, describe="get salesOrder/1")
    assert isinstance(error, ErpRejected)
    assert error.status == 400
    assert error.code == "HTTP_400"
    assert "HTTP 400" in str(error)
    assert "text/html" in error.reason


def test_empty_error_body_names_the_status() -> None:
    error = classify_error(403, b"")
    assert isinstance(error, ErpRejected)
    assert "HTTP 403" in str(error)


def test_unexpected_redirect_is_permanent_naming_the_status() -> None:
    error = classify_error(302, b"", {"location": "https://system.netsuite.com/pages/login.jsp"})
    assert isinstance(error, PermanentError)
    assert "HTTP 302" in str(error)


def test_long_details_are_clipped() -> None:
    raw = json.dumps({"o:errorDetails": [{"detail": "x" * 5000, "o:errorCode": "USER_ERROR"}]})
    error = classify_error(400, raw)
    assert isinstance(error, ErpRejected)
    assert len(error.detail) <= 300


def test_oauth_error_shape_is_understood() -> None:
    assert parse_error_body(b'{"error": "invalid_client"}') == ("invalid_client", None, None)


# --- Retry-After -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_in_seconds_or_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_after_header_reaches_the_transient_error() -> None:
    date = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    error = classify_error(503, b"", {"Retry-After": date}, now=NOW)
    assert isinstance(error, TransientError)
    assert error.retry_after == 90.0


# --- network failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (httpx.ReadTimeout("read timed out"), "timed out (ReadTimeout)"),
        (httpx.ConnectTimeout("connect timed out"), "timed out (ConnectTimeout)"),
        (httpx.ConnectError("connection refused"), "connection failed (ConnectError)"),
        (httpx.RemoteProtocolError("server disconnected"), "connection failed (RemoteProtocolError)"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(error: httpx.TransportError, words: str) -> None:
    classified = classify_transport_error(error, "upsert salesOrder/eid:SO-1")
    assert isinstance(classified, TransientError)
    assert str(classified) == f"upsert salesOrder/eid:SO-1: {words}"


# --- identifiers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("external_id", ["CID001", "shopify-order-450789469", "a_b-C_9", "0"])
def test_valid_external_ids(external_id: str) -> None:
    assert check_external_id(external_id) == external_id


@pytest.mark.parametrize("external_id", ["", "a|b", "a b", "a/b", "eid:x", "ä", "a.b", "x\n"])
def test_invalid_external_ids_are_mapping_errors(external_id: str) -> None:
    with pytest.raises(MappingError) as raised:
        check_external_id(external_id)
    assert raised.value.field == "externalId"


@pytest.mark.parametrize(
    ("location", "internal_id"),
    [
        ("https://demo123.suitetalk.api.netsuite.com/services/rest/record/v1/salesOrder/647", "647"),
        ("http://127.0.0.1:8700/services/rest/record/v1/salesOrder/12/", "12"),
        ("/services/rest/record/v1/customer/107?x=1", "107"),
    ],
)
def test_internal_id_from_location(location: str, internal_id: str) -> None:
    assert internal_id_from_location(location) == internal_id


# --- settings ----------------------------------------------------------------------------------------------

SANDBOX_ENV = {
    "ERPSYNC_NETSUITE_BASE_URL": "http://127.0.0.1:8700/",
    "ERPSYNC_NETSUITE_CLIENT_ID": "sandbox",
    "ERPSYNC_NETSUITE_CLIENT_SECRET": "sandbox-secret",
}


def test_settings_from_env() -> None:
    settings = NetSuiteSettings.from_env(SANDBOX_ENV)
    assert settings.base_url == "http://127.0.0.1:8700"
    assert settings.token_url == "http://127.0.0.1:8700/services/rest/auth/oauth2/v1/token"
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == "sandbox-secret"
    assert "sandbox-secret" not in repr(settings)
    assert not settings.uses_certificate


def test_account_id_alone_gives_the_netsuite_host() -> None:
    env = {**SANDBOX_ENV, "ERPSYNC_NETSUITE_ACCOUNT_ID": "1234567_SB1"}
    del env["ERPSYNC_NETSUITE_BASE_URL"]
    settings = NetSuiteSettings.from_env(env)
    assert settings.base_url == "https://1234567-sb1.suitetalk.api.netsuite.com"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ERPSYNC_NETSUITE_BASE_URL": None}, "ERPSYNC_NETSUITE_BASE_URL (or ERPSYNC_NETSUITE_ACCOUNT_ID) is not set"),
        ({"ERPSYNC_NETSUITE_BASE_URL": "  "}, "ERPSYNC_NETSUITE_BASE_URL (or ERPSYNC_NETSUITE_ACCOUNT_ID) is not set"),
        ({"ERPSYNC_NETSUITE_CLIENT_ID": None}, "ERPSYNC_NETSUITE_CLIENT_ID is not set"),
        ({"ERPSYNC_NETSUITE_BASE_URL": "ftp://x"}, "ERPSYNC_NETSUITE_BASE_URL: Value error, must be an http(s) URL"),
        ({"ERPSYNC_NETSUITE_TIMEOUT_SECONDS": "0"}, "ERPSYNC_NETSUITE_TIMEOUT_SECONDS:"),
        (
            {"ERPSYNC_NETSUITE_CLIENT_SECRET": None},
            "set ERPSYNC_NETSUITE_CLIENT_SECRET, or ERPSYNC_NETSUITE_CERTIFICATE_ID",
        ),
        ({"ERPSYNC_NETSUITE_CERTIFICATE_ID": "abc"}, "ERPSYNC_NETSUITE_PRIVATE_KEY_PATH"),
    ],
)
def test_settings_errors_name_the_variable(change: dict[str, str | None], message: str) -> None:
    env = dict(SANDBOX_ENV)
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    with pytest.raises(ConfigError) as raised:
        NetSuiteSettings.from_env(env)
    assert message in str(raised.value)
    assert "sandbox-secret" not in str(raised.value)


def test_settings_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        NetSuiteSettings(
            base_url="http://x", client_id="a", client_secret="b", clientsecret="typo"  # type: ignore[call-arg]
        )


# --- OAuth 2.0 M2M client assertion ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _segment(part: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_client_assertion_is_a_ps256_jwt_netsuite_accepts(rsa_key: rsa.RSAPrivateKey) -> None:
    audience = "https://1234567.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token"
    token = client_assertion(
        client_id="client-1", certificate_id="cert-1", private_key=rsa_key, audience=audience, now=1_700_000_000
    )
    header_part, claims_part, signature_part = token.split(".")
    assert _segment(header_part) == {"alg": "PS256", "typ": "JWT", "kid": "cert-1"}
    claims = _segment(claims_part)
    assert claims["iss"] == "client-1"
    assert claims["aud"] == audience
    assert claims["scope"] == ["restlets", "rest_webservices"]
    assert claims["iat"] == 1_700_000_000
    assert 0 < claims["exp"] - claims["iat"] <= 3600  # type: ignore[operator]
    signature = base64.urlsafe_b64decode(signature_part + "=" * (-len(signature_part) % 4))
    rsa_key.public_key().verify(  # raises if the signature does not hold
        signature,
        f"{header_part}.{claims_part}".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def test_private_key_file_problems_are_config_errors(tmp_path: Path) -> None:
    missing = NetSuiteSettings(
        base_url="https://x.suitetalk.api.netsuite.com", client_id="c", certificate_id="k",
        private_key_path=tmp_path / "missing.pem",
    )
    with pytest.raises(ConfigError, match="ERPSYNC_NETSUITE_PRIVATE_KEY_PATH .*cannot read"):
        load_private_key(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_private_key(missing.model_copy(update={"private_key_path": garbage}))


def test_private_key_may_be_given_as_text(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings = NetSuiteSettings(
        base_url="https://x.suitetalk.api.netsuite.com", client_id="c", certificate_id="k", private_key=pem
    )
    assert isinstance(load_private_key(settings), rsa.RSAPrivateKey)
    assert "PRIVATE KEY" not in repr(settings)


# --- record bodies -----------------------------------------------------------------------------------------


def test_record_json_turns_decimals_and_dates_into_json() -> None:
    body = {"tranDate": date(2025, 3, 1), "item": {"items": [{"quantity": Decimal("2"), "amount": Decimal("19.99")}]}}
    assert json.loads(record_json(body)) == {
        "tranDate": "2025-03-01",
        "item": {"items": [{"quantity": 2, "amount": 19.99}]},
    }


@pytest.mark.parametrize("value", [object(), float("nan"), {1, 2}])
def test_record_json_refuses_what_json_cannot_carry(value: object) -> None:
    with pytest.raises(MappingError) as raised:
        record_json({"memo": value})
    assert raised.value.field == "body"
