"""NetSuite REST web services client: OAuth 2.0 client credentials, upsert by external id, SuiteQL, error classes."""

from __future__ import annotations

import base64
import email.utils
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from erpsync.erp_slots import ErpSlots
from erpsync.errors import (
    ConfigError,
    ErpAuthError,
    ErpRejected,
    ErpsyncError,
    MappingError,
    PermanentError,
    TransientError,
)
from erpsync.natural_keys import PERSONAL_FIELDS
from erpsync.ports import Change
from erpsync.retry import RetryPolicy
from erpsync.systems.netsuite import queries

RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
M2M_SCOPES = ["restlets", "rest_webservices"]
SUITEQL_MAX_PAGE = 1000
# What a line is made of, sent back unchanged when a record is closed (links and computed fields left out).
_LINE_FIELDS = frozenset({"line", "item", "quantity", "rate", "amount", "description", "taxCode", "tax1Amt",
                          "custcol_erpsync_line_key", "price", "location", "department", "class"})

# NetSuite: "An external ID can be any string containing letters, numbers, underscore (_), and hyphen (-)";
# a pipe is read as a multi-select delimiter, so anything else would address the wrong record.
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]+")
_RECORD_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INTERNAL_ID = re.compile(r"-?[0-9]+")
# NetSuite's own documentation publishes a 429 body that is not valid JSON; this still finds its code.
_LOOSE_DETAIL_AND_CODE = re.compile(
    r'"detail"\s*:\s*"(?P<detail>(?:[^"\\]|\\.)*)"\s*,\s*"o:errorCode"\s*:\s*"(?P<code>[A-Za-z0-9_]+)"'
)
_LOOSE_CODE = re.compile(r'"o:errorCode"\s*:\s*"(?P<code>[A-Za-z0-9_]+)"')
# Codes that mean "too much at once" whatever status they arrive with.
TRANSIENT_CODES = frozenset({"CONCURRENCY_LIMIT_EXCEEDED", "SSS_REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED"})
_DETAIL_MAX = 300

ENV_NAMES = {
    "base_url": "ERPSYNC_NETSUITE_BASE_URL",
    "account_id": "ERPSYNC_NETSUITE_ACCOUNT_ID",
    "client_id": "ERPSYNC_NETSUITE_CLIENT_ID",
    "client_secret": "ERPSYNC_NETSUITE_CLIENT_SECRET",
    "certificate_id": "ERPSYNC_NETSUITE_CERTIFICATE_ID",
    "private_key_path": "ERPSYNC_NETSUITE_PRIVATE_KEY_PATH",
    "timeout_seconds": "ERPSYNC_NETSUITE_TIMEOUT_SECONDS",
    "concurrency_limit": "ERPSYNC_NETSUITE_CONCURRENCY",
    "change_settle_seconds": "ERPSYNC_NETSUITE_CHANGE_SETTLE_SECONDS",
}


class NetSuiteSettings(BaseModel):
    """Where NetSuite is and how erpsync proves who it is; either a client secret or a certificate + key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        description="REST web services root, e.g. https://1234567.suitetalk.api.netsuite.com or the ERP sandbox URL."
    )
    account_id: str | None = Field(default=None, description="NetSuite account id, e.g. 1234567 or 1234567_SB1.")
    client_id: str = Field(min_length=1, description="Client id of the integration record.")
    client_secret: SecretStr | None = Field(
        default=None, description="Client secret; selects plain client credentials with HTTP basic client auth."
    )
    certificate_id: str | None = Field(
        default=None, description="Certificate id of the OAuth 2.0 client credentials (M2M) mapping."
    )
    private_key_path: Path | None = Field(
        default=None, description="PEM file of the RSA private key whose certificate was uploaded to NetSuite."
    )
    private_key: SecretStr | None = Field(
        default=None, description="The same PEM key as text, for deployments that hold it in a secret store."
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of every HTTP call, in seconds.")
    concurrency_limit: int = Field(
        default=5, ge=0,
        description="Requests in flight to this account, all workers together (NetSuite's account limit; 0: no "
                    "limit). Token requests do not count, as NetSuite does not count them.",
    )
    change_settle_seconds: float = Field(
        default=10.0, ge=0,
        description="Changes younger than this are left for the next changes_since call: SuiteQL gives "
                    "lastmodifieddate to the second, so a record written later in a second already read would fall "
                    "behind the cursor. Covers clock skew and late commits too; 0 still holds back the current second.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_root(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://1234567.suitetalk.api.netsuite.com")
        return value

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> NetSuiteSettings:
        has_key = self.private_key_path is not None or self.private_key is not None
        if self.certificate_id and not has_key:
            raise ValueError("certificate_id needs private_key_path (or private_key)")
        if has_key and not self.certificate_id:
            raise ValueError("a private key needs certificate_id")
        if self.client_secret is None and not self.certificate_id:
            raise ValueError("set client_secret, or certificate_id with private_key_path")
        return self

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def uses_certificate(self) -> bool:
        return self.certificate_id is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> NetSuiteSettings:
        """Read the ``ERPSYNC_NETSUITE_*`` variables; a ``ConfigError`` names the variable that is wrong."""
        values: dict[str, Any] = {}
        for name, env_name in ENV_NAMES.items():
            raw = environ.get(env_name, "").strip()
            if raw:
                values[name] = raw
        if "base_url" not in values and "account_id" in values:
            values["base_url"] = base_url_for_account(values["account_id"])
        for required in ("base_url", "client_id"):
            if required not in values:
                hint = f" (or {ENV_NAMES['account_id']})" if required == "base_url" else ""
                raise ConfigError(f"{ENV_NAMES[required]}{hint} is not set")
        try:
            return cls(**values)
        except ValidationError as error:
            problem = error.errors()[0]
            field = str(problem["loc"][0]) if problem["loc"] else ""
            if field in ENV_NAMES:
                raise ConfigError(f"{ENV_NAMES[field]}: {problem['msg']}") from None
            message = problem["msg"].removeprefix("Value error, ")
            if "client_secret" in message or "certificate_id" in message:
                message = (
                    f"set {ENV_NAMES['client_secret']}, or {ENV_NAMES['certificate_id']} "
                    f"with {ENV_NAMES['private_key_path']} ({message})"
                )
            raise ConfigError(message) from None


def base_url_for_account(account_id: str) -> str:
    """NetSuite's REST host for an account: ``1234567_SB1`` → ``https://1234567-sb1.suitetalk.api.netsuite.com``."""
    return f"https://{account_id.strip().lower().replace('_', '-')}.suitetalk.api.netsuite.com"


# --- error classification (pure) --------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header given as delta-seconds or an HTTP-date; ``None`` if absent or garbled."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def parse_error_body(body: bytes | str) -> tuple[str, str | None, str | None] | None:
    """``(code, detail, path)`` of a NetSuite error document, or ``None`` when the body does not hold one."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        details = document.get("o:errorDetails")
        if isinstance(details, list) and details and isinstance(details[0], dict) and details[0].get("o:errorCode"):
            first = details[0]
            code, detail, path = first["o:errorCode"], first.get("detail"), first.get("o:errorPath")
            return str(code), _optional_str(detail), _optional_str(path)
        if document.get("o:errorCode"):
            return str(document["o:errorCode"]), _optional_str(document.get("title")), None
        if isinstance(document.get("error"), str):  # the OAuth 2.0 token endpoint's shape
            return document["error"], _optional_str(document.get("error_description")), None
        return None
    match = _LOOSE_DETAIL_AND_CODE.search(text)
    if match:
        return match["code"], match["detail"], None
    match = _LOOSE_CODE.search(text)
    if match:
        return match["code"], None, None
    return None


def classify_error(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    describe: str = "NetSuite",
    now: datetime | None = None,
) -> ErpsyncError:
    """The erpsync error for a NetSuite answer that is not a success; the caller raises it.

    429, 408, 5xx and NetSuite's rate-limit codes are transient; 401 is an auth failure; other 4xx are
    rejections of the record, carrying NetSuite's code, detail and error path.
    """
    parsed = parse_error_body(body)
    code, detail, path = parsed if parsed else (None, None, None)
    retry_after = parse_retry_after(_header(headers, "retry-after"), now)
    label = f"{describe}: HTTP {status}" + (f" {code}" if code else "")
    if status in (408, 429) or status >= 500 or code in TRANSIENT_CODES:
        return TransientError(label, retry_after=retry_after, status=status)
    if status == 401:
        return ErpAuthError(f"{label}: NetSuite refused the access token")
    if 400 <= status < 500:
        if code:
            return ErpRejected(status, code, _clip(detail or "(no detail)"), path)
        summary = _body_summary(body, headers)
        return ErpRejected(status, f"HTTP_{status}", f"{describe}: {summary} is not a NetSuite error document")
    return PermanentError(f"{describe}: unexpected HTTP {status} ({_body_summary(body, headers)})")


def classify_transport_error(error: httpx.TransportError, describe: str = "NetSuite") -> TransientError:
    """Timeouts and connection failures: the request may or may not have reached NetSuite, so retry."""
    if isinstance(error, httpx.TimeoutException):
        return TransientError(f"{describe}: timed out ({type(error).__name__})")
    return TransientError(f"{describe}: connection failed ({type(error).__name__})")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if headers is None:
        return None
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _body_summary(body: bytes | str, headers: Mapping[str, str] | None) -> str:
    content_type = _header(headers, "content-type") or "no content type"
    size = len(body.encode() if isinstance(body, str) else body)
    return f"body of {size} bytes ({content_type.split(';')[0]})"


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


# --- identifiers ------------------------------------------------------------------------------------------


def check_external_id(external_id: str) -> str:
    """Return ``external_id`` if NetSuite can address a record by it, else raise ``MappingError``."""
    if not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id):
        raise MappingError("may hold only letters, digits, '_' and '-' (NetSuite's rule for external ids)",
                           field="externalId")
    return external_id


def _check_record_type(record_type: str) -> str:
    if not isinstance(record_type, str) or not _RECORD_TYPE.fullmatch(record_type):
        raise ConfigError(f"record type {record_type!r} is not a NetSuite record type name")
    return record_type


def _record_ref(id_or_eid: str) -> str:
    if isinstance(id_or_eid, str) and id_or_eid.startswith("eid:"):
        return "eid:" + check_external_id(id_or_eid[4:])
    if isinstance(id_or_eid, int) or (isinstance(id_or_eid, str) and _INTERNAL_ID.fullmatch(id_or_eid)):
        return str(id_or_eid)
    raise MappingError("must be an internal id (digits) or eid:<external id>", field="id")


def internal_id_from_location(location: str) -> str:
    """The record id NetSuite puts at the end of the ``Location`` of a created or upserted record."""
    return location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


# --- OAuth 2.0 M2M client assertion -----------------------------------------------------------------------


def load_private_key(settings: NetSuiteSettings) -> Any:
    """The RSA key of the M2M certificate; ``ConfigError`` names the setting when it cannot be used."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if settings.private_key is not None:
        pem, where = settings.private_key.get_secret_value().encode(), "private_key"
    else:
        assert settings.private_key_path is not None
        where = f"{ENV_NAMES['private_key_path']} ({settings.private_key_path})"
        try:
            pem = settings.private_key_path.read_bytes()
        except OSError as error:
            raise ConfigError(f"{where}: cannot read the key file ({error.strerror})") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{where}: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{where}: PS256 needs an RSA key")
    return key


def client_assertion(
    *, client_id: str, certificate_id: str, private_key: Any, audience: str, now: float | None = None
) -> str:
    """A JWT for NetSuite's client-credentials (M2M) grant, signed PS256 with the certificate's key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    issued = int(time.time() if now is None else now)
    header = {"alg": "PS256", "typ": "JWT", "kid": certificate_id}
    # NetSuite refuses exp more than an hour after iat; half an hour leaves room for clock skew.
    claims = {"iss": client_id, "scope": M2M_SCOPES, "aud": audience, "iat": issued, "exp": issued + 1800}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = private_key.sign(
        signing_input.encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return f"{signing_input}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the client -------------------------------------------------------------------------------------------


class NetSuiteClient:
    """Talks to NetSuite's REST record and query APIs; every call goes through the retry policy.

    ``transport`` is the httpx seam: tests may pass ``httpx.MockTransport`` to exercise pure behaviour.
    Thread-safe: one client may be shared by threads (the token is fetched under a lock).

    Every record and SuiteQL request holds one of ``slots`` while on the wire (the account's concurrency limit);
    pass ``ErpSlots.for_database(...)`` to share the limit with other processes. Without it the limit
    (``settings.concurrency_limit``) holds within this process only. The client closes its slots.
    """

    def __init__(
        self,
        settings: NetSuiteSettings,
        retry: RetryPolicy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        slots: ErpSlots | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry if retry is not None else RetryPolicy()
        if slots is None:
            slots = ErpSlots.in_process(settings.concurrency_limit, linger=settings.timeout_seconds)
        self.slots = slots
        self._clock = clock
        self._private_key = load_private_key(settings) if settings.uses_certificate else None
        self._http = httpx.Client(
            base_url=settings.base_url,
            transport=transport,
            timeout=settings.timeout_seconds,
            headers={"Accept": "application/json", "User-Agent": "erpsync"},
        )
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0

    @classmethod
    def from_env(cls, database_url: str, environ: Mapping[str, str] = os.environ) -> NetSuiteClient:
        """The connection of ``ERPSYNC_NETSUITE_*``, under the account's limit shared with every worker and
        process through the ledger's database (erpsync/erp_slots.py): every caller of the ERP counts."""
        settings = NetSuiteSettings.from_env(environ)
        slots = ErpSlots.for_database(database_url, settings.concurrency_limit, name=settings.base_url,
                                      linger=settings.timeout_seconds)
        return cls(settings, slots=slots)

    def __enter__(self) -> NetSuiteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self.slots.close()

    # -- records --

    def upsert(
        self, record_type: str, external_id: str, body: Mapping[str, Any], *, previous_id: str | None = None
    ) -> str:
        """Create or update the record with this external id (``PUT …/eid:{id}``); return its internal id.

        Every sublist in ``body`` is sent with ``?replace=<sublist>``: NetSuite appends the lines of an update
        that carry no ``line`` (Oracle, "Updating a Sublist"), so without it each update would add the lines
        again. ``previous_id``, the internal id erpsync last wrote this record to, says the record exists: it is
        read first, and each line whose ``custcol_erpsync_line_key`` matches an existing line takes that line's
        ``line``, so it keeps its identity (and what was fulfilled of it). ``None`` saves that read: replace
        semantics still leave one copy of each line if the record exists after all.

        An item fulfillment is not upserted but made from its sales order (``fulfil``).
        """
        if record_type == "itemFulfillment":
            return self.fulfil(external_id, body, previous_id=previous_id)
        ref = f"{_check_record_type(record_type)}/eid:{check_external_id(external_id)}"
        describe = f"upsert {ref}"
        names = _sublists(body)
        if names and previous_id is not None:
            existing = self.get(record_type, previous_id, expand_sub_resources=True)
            if existing is not None:
                body = keyed_to_existing(body, existing, names)
        response = self.retry.call(
            self._request,
            "PUT",
            f"{RECORD_PATH}/{ref}",
            what=describe,
            ok=(200, 201, 204),
            content=record_json(body),
            params={"replace": ",".join(names)} if names else None,
            headers={"Content-Type": "application/json"},
            describe=describe,
        )
        location = response.headers.get("location")
        if location:
            return internal_id_from_location(location)
        # Not what NetSuite documents, but the write succeeded: ask for the id rather than fail the event.
        record = self.get(record_type, f"eid:{external_id}")
        if record is None or "id" not in record:
            raise PermanentError(f"{describe}: HTTP {response.status_code} without a Location header")
        return str(record["id"])

    def fulfil(self, external_id: str, body: Mapping[str, Any], *, previous_id: str | None = None) -> str:
        """Write an item fulfillment the way NetSuite makes one: transformed from its sales order.

        ``body`` is the mapping's: ``createdFrom`` ({externalId} or {id}) names the order, each ``item.items`` line
        names the order line it ships by ``custcol_erpsync_line_key``, with ``quantity``; ``package.items`` carry
        tracking numbers. The order is read (expanded) to turn line keys into its ``orderLine`` numbers, then
        ``POST salesOrder/{id}/!transform/itemFulfillment`` ships those lines and no other (every other order
        line is sent ``itemReceive: false``: NetSuite would otherwise receive it in full). The external id goes
        on the fulfillment, so a retry finds it instead of shipping twice; a fulfillment already written is
        updated (tracking, header) by a ``PATCH``. A body whose every line has ``itemReceive: false`` is a
        cancelled shipment: the fulfillment is deleted, which reverses it (its lines are open on the order
        again); its internal id is returned, or ``""`` when it was never written.
        """
        check_external_id(external_id)
        lines = _lines(body, "item")
        if lines and all(line.get("itemReceive") is False for line in lines):
            existing = self.get("itemFulfillment", previous_id or f"eid:{external_id}")
            if existing is None and previous_id is not None:
                existing = self.get("itemFulfillment", f"eid:{external_id}")
            if existing is None:
                return ""
            self.delete("itemFulfillment", str(existing["id"]))
            return str(existing["id"])
        if previous_id is not None:
            return self._update_fulfillment(previous_id, body)
        order_ref = _created_from(body)
        order = self.get("salesOrder", order_ref, expand_sub_resources=True)
        if order is None:
            raise ErpRejected(404, "NONEXISTENT_ID", "the sales order this fulfillment ships is not in NetSuite "
                              "(yet): retry once the order has synced", "createdFrom")
        request = {key: value for key, value in body.items() if key not in ("createdFrom", "item")}
        request["item"] = {"items": order_lines_to_ship(lines, _lines(order, "item"))}
        try:
            return self.transform("salesOrder", str(order["id"]), "itemFulfillment", request,
                                  external_id=external_id)
        except ErpRejected as error:
            if not _duplicate_external_id(error):
                raise
            # Written before (a crash between NetSuite's answer and the ledger): update it, never ship twice.
            return self._update_fulfillment(f"eid:{external_id}", body)

    def transform(
        self, from_type: str, from_id: str, to_type: str, body: Mapping[str, Any], *, external_id: str
    ) -> str:
        """Make a ``to_type`` record from the ``from_type`` record ``from_id``; the new record's internal id.

        ``POST /record/v1/{from}/{id}/!transform/{to}`` (Oracle, "Transforming Records"): NetSuite fills the new
        record from the old one, and ``body`` sets or overrides its fields and sublist lines in NetSuite's own
        terms (an item fulfillment's lines by ``orderLine``). The external id goes on the new record, so a retry
        after a lost answer is refused as a duplicate (``ErpRejected`` on ``externalId``) instead of making a
        second one. A ``from_id`` that is not there is an ``ErpRejected`` 404 ``NONEXISTENT_ID``.
        """
        source = f"{_check_record_type(from_type)}/{_record_ref(from_id)}"
        target = _check_record_type(to_type)
        describe = f"transform {source} to {target}/eid:{check_external_id(external_id)}"
        response = self.retry.call(
            self._request,
            "POST",
            f"{RECORD_PATH}/{source}/!transform/{target}",
            what=describe,
            ok=(200, 201, 204),
            content=record_json({**body, "externalId": external_id}),
            headers={"Content-Type": "application/json"},
            describe=describe,
        )
        location = response.headers.get("location")
        if location:
            return internal_id_from_location(location)
        record = self.get(target, f"eid:{external_id}")
        if record is None or "id" not in record:
            raise PermanentError(f"{describe}: HTTP {response.status_code} without a Location header")
        return str(record["id"])

    def _update_fulfillment(self, id_or_eid: str, body: Mapping[str, Any]) -> str:
        """What may change on a fulfillment once shipped: its header and its packages (tracking numbers)."""
        ref = f"itemFulfillment/{_record_ref(id_or_eid)}"
        describe = f"update {ref}"
        update = {key: value for key, value in body.items() if key not in ("createdFrom", "item")}
        if "package" not in update:
            update["package"] = {"items": []}
        response = self.retry.call(
            self._request, "PATCH", f"{RECORD_PATH}/{ref}", what=describe, ok=(200, 204),
            content=record_json(update), params={"replace": "package"},
            headers={"Content-Type": "application/json"}, describe=describe,
        )
        location = response.headers.get("location")
        if location:
            return internal_id_from_location(location)
        record = self.get("itemFulfillment", id_or_eid)
        if record is None or "id" not in record:
            raise PermanentError(f"{describe}: HTTP {response.status_code} without a Location header")
        return str(record["id"])

    def close_record(self, record_type: str, external_id: str) -> str | None:
        """Close the record without deleting it: every line sent back as NetSuite holds it, with
        ``isClosed: true`` and its ``line`` (an upsert replaces the item sublist, so a line left out would be
        removed rather than closed); a sales order whose lines are all closed is closed (Oracle, "Closing a
        Sales Order"). Its internal id, or None when there is none."""
        record = self.get_by_external_id(record_type, external_id)
        if record is None:
            return None
        lines = ((record.get("item") or {}).get("items")) or []
        closed = [{**{k: v for k, v in line.items() if k in _LINE_FIELDS}, "isClosed": True} for line in lines]
        return self.upsert(record_type, external_id, {"item": {"items": closed}}, previous_id=str(record["id"]))

    def delete(self, record_type: str, id_or_eid: str) -> bool:
        """Delete a record (``DELETE``); False when there was none."""
        ref = f"{_check_record_type(record_type)}/{_record_ref(id_or_eid)}"
        describe = f"delete {ref}"
        response = self.retry.call(
            self._request, "DELETE", f"{RECORD_PATH}/{ref}", what=describe, ok=(200, 204, 404), describe=describe,
        )
        if response.status_code == 404:
            parsed = parse_error_body(response.content)
            if parsed is None or parsed[0] == "NONEXISTENT_ID":
                return False
            raise classify_error(404, response.content, response.headers, describe=describe)
        return True

    def get(self, record_type: str, id_or_eid: str, *, expand_sub_resources: bool = False) -> dict[str, Any] | None:
        """The record by internal id (``"123"``) or external id (``"eid:X"``); ``None`` if it does not exist."""
        ref = f"{_check_record_type(record_type)}/{_record_ref(id_or_eid)}"
        describe = f"get {ref}"
        params = {"expandSubResources": "true"} if expand_sub_resources else None
        response = self.retry.call(
            self._request, "GET", f"{RECORD_PATH}/{ref}", what=describe, ok=(200, 404), params=params,
            describe=describe,
        )
        if response.status_code == 404:
            parsed = parse_error_body(response.content)
            if parsed is None or parsed[0] == "NONEXISTENT_ID":
                return None
            raise classify_error(404, response.content, response.headers, describe=describe)
        return _json_object(response, describe)

    def get_by_external_id(
        self, record_type: str, external_id: str, *, expand_sub_resources: bool = True
    ) -> dict[str, Any] | None:
        # Expanded by default, as the RecordWriter port promises: a caller that closes or rewrites a sublist
        # must see its lines, not a link to them.
        return self.get(record_type, f"eid:{external_id}", expand_sub_resources=expand_sub_resources)

    # -- SuiteQL: ids by natural key, changes since a cursor --

    def find_id(self, record_type: str, field: str, value: str) -> str | None:
        """The internal id of the one ``record_type`` whose ``field`` is ``value`` (``queries.NATURAL_KEYS``).

        ``None`` when none is; two or more are a ``MappingError``: a natural key that is not unique in the
        account cannot say which record is meant, and a person has to make it unique.
        """
        rows = self.suiteql(queries.suiteql_lookup(record_type, field, value))
        ids = sorted({str(row["id"]) for row in rows if row.get("id") is not None})
        if len(ids) > 1:
            shown = "this" if field in PERSONAL_FIELDS else repr(value)
            raise MappingError(
                f"{len(ids)} ERP {record_type} records have {shown} {field} (ids {', '.join(ids[:5])});"
                " make it unique in the ERP, then retry the event"
            )
        return ids[0] if ids else None

    def changes_since(self, record_type: str, cursor: str | None, *, limit: int = 100) -> list[Change]:
        """Records of ``record_type`` modified after ``cursor``, oldest first, at most ``limit`` (queries.py).

        Only changes older than ``change_settle_seconds`` (and than the current second) are read, so a cursor never
        passes a second that may still get records. ``Change.modified`` reads SuiteQL's time as UTC, and so does
        that bound: set the integration role's time zone preference to UTC (the cursor itself is NetSuite's own
        text, so paging is right in any zone).
        """
        if not 1 <= limit <= SUITEQL_MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {SUITEQL_MAX_PAGE}")
        settled = datetime.now(timezone.utc) - timedelta(seconds=self.settings.change_settle_seconds)
        if record_type == queries.STOCK_MOVE:
            return self._stock_moves_since(cursor, limit, settled)
        query = queries.changes_query(record_type, cursor, limit, before=settled)
        rows = self.suiteql(query, page_size=limit)[:limit]
        changes = []
        for row in rows:
            modified = queries.parse_erp_timestamp(row.get("lastmodified"))
            if modified is None or row.get("id") is None:
                raise PermanentError(f"changes of {record_type}: a row without id or lastmodifieddate")
            changes.append(Change(
                record_type=record_type,
                internal_id=str(row["id"]),
                external_id=row.get("externalid"),
                modified=modified,
                cursor=queries.make_cursor(row["lastmodified"], row["id"]),
            ))
        return changes

    def _stock_moves_since(self, cursor: str | None, limit: int, settled: datetime) -> list[Change]:
        """``stockMove``: one ``inventoryItem`` change per (transaction, item) of the stock-moving transactions
        changed after ``cursor``, modified as the transaction was, its cause the transaction (queries.py)."""
        rows = self.suiteql(queries.stock_moves_query(cursor, limit, before=settled), page_size=limit)[:limit]
        changes = []
        for row in rows:
            modified = queries.parse_erp_timestamp(row.get("lastmodified"))
            if modified is None or row.get("transactionid") is None or row.get("item") is None:
                raise PermanentError("changes of stockMove: a row without transaction, item or lastmodifieddate")
            changes.append(Change(
                record_type=queries.NOTIFIED_AS[queries.STOCK_MOVE],
                internal_id=str(row["item"]),
                external_id=row.get("externalid"),
                modified=modified,
                cursor=queries.make_move_cursor(row["lastmodified"], row["transactionid"], row["item"]),
                fields={"cause": {"recordType": str(row.get("recordtype") or "transaction"),
                                  "id": str(row["transactionid"])}},
            ))
        return changes

    def notified_record_type(self, record_type: str) -> str:
        """The record type whose notices a read of ``record_type`` gives (``stockMove``: ``inventoryItem``)."""
        return queries.NOTIFIED_AS.get(record_type, record_type)

    def cursor_at(self, moment: datetime) -> str:
        """A cursor from which ``changes_since`` reads the changes of ``moment``'s second and later (queries.py)."""
        return queries.cursor_at(moment)

    # -- SuiteQL --

    def suiteql(
        self, query: str, params: list[Any] | None = None, page_size: int = SUITEQL_MAX_PAGE
    ) -> list[dict[str, Any]]:
        """All rows of a SuiteQL query, following ``hasMore`` page by page (values arrive as strings)."""
        if not 1 <= page_size <= SUITEQL_MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {SUITEQL_MAX_PAGE}")
        body: dict[str, Any] = {"q": query}
        if params:
            body["params"] = list(params)
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            describe = f"suiteql offset {offset}"
            response = self.retry.call(
                self._request,
                "POST",
                SUITEQL_PATH,
                what=describe,
                ok=(200,),
                params={"limit": page_size, "offset": offset},
                json=body,
                headers={"Prefer": "transient"},
                describe=describe,
            )
            page = _json_object(response, describe)
            items = page.get("items") or []
            rows.extend({key: value for key, value in item.items() if key != "links"} for item in items)
            if not page.get("hasMore") or not items:
                return rows
            offset += page_size

    # -- plumbing --

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        ok: tuple[int, ...],
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        request = {"json": json, "content": content, "params": params, "headers": headers}
        token = self._access_token()
        response = self._send(method, url, token, what, **request)
        if response.status_code == 401:
            # Tokens can die before their advertised expiry (revoked, role changed): renew once and repeat.
            token = self._access_token(stale=token)
            response = self._send(method, url, token, what, **request)
            if response.status_code == 401:
                parsed = parse_error_body(response.content)
                code = f" {parsed[0]}" if parsed else ""
                raise ErpAuthError(f"{what}: HTTP 401{code} even with a fresh access token")
        if response.status_code not in ok:
            raise classify_error(response.status_code, response.content, response.headers, describe=what)
        return response

    def _send(self, method: str, url: str, token: str, what: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **(kwargs.pop("headers") or {})}
        try:
            # Built (body encoded) before the slot is taken: the slot covers only the time on the wire, until the
            # answer is read. Retries wait outside it.
            request = self._http.build_request(method, url, headers=headers, **kwargs)
            with self.slots.hold():
                return self._http.send(request)
        except httpx.TransportError as error:
            raise classify_transport_error(error, what) from None

    def _access_token(self, stale: str | None = None) -> str:
        """The cached token, or a new one when it is about to expire or ``stale`` was refused."""
        with self._token_lock:
            fresh = self._token is not None and self._token != stale and self._clock() < self._token_expires_at
            if not fresh:
                self._token, lifetime = self._fetch_token()
                # Renew a little early so a token does not expire between our check and NetSuite's.
                self._token_expires_at = self._clock() + lifetime - min(60.0, lifetime * 0.1)
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        settings = self.settings
        form = {"grant_type": "client_credentials"}
        auth: httpx.Auth | None = None
        if self._private_key is not None:
            assert settings.certificate_id is not None
            form["client_assertion_type"] = JWT_BEARER_ASSERTION
            form["client_assertion"] = client_assertion(
                client_id=settings.client_id,
                certificate_id=settings.certificate_id,
                private_key=self._private_key,
                audience=settings.token_url,
            )
        else:
            assert settings.client_secret is not None
            auth = httpx.BasicAuth(settings.client_id, settings.client_secret.get_secret_value())
        what = "token request"
        try:
            response = self._http.post(settings.token_url, data=form, auth=auth)
        except httpx.TransportError as error:
            raise classify_transport_error(error, what) from None
        if response.status_code in (400, 401, 403):
            parsed = parse_error_body(response.content)
            code = f" {parsed[0]}" if parsed else ""
            raise ErpAuthError(f"{what}: HTTP {response.status_code}{code}: NetSuite refused the client credentials")
        if response.status_code != 200:
            raise classify_error(response.status_code, response.content, response.headers, describe=what)
        document = _json_object(response, what)
        token = document.get("access_token")
        if not isinstance(token, str) or not token:
            raise ErpAuthError(f"{what}: the answer holds no access_token")
        try:
            lifetime = float(document.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime


# --- sublist lines by key ---------------------------------------------------------------------------------

LINE_KEY = "custcol_erpsync_line_key"


def _sublists(body: Mapping[str, Any]) -> list[str]:
    return [key for key, value in body.items() if isinstance(value, Mapping) and isinstance(value.get("items"), list)]


def _lines(body: Mapping[str, Any], sublist: str) -> list[dict[str, Any]]:
    value = body.get(sublist)
    items = value.get("items") if isinstance(value, Mapping) else None
    return [line for line in items if isinstance(line, dict)] if isinstance(items, list) else []


def _number(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None and not isinstance(value, bool) else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


def keyed_to_existing(body: Mapping[str, Any], existing: Mapping[str, Any], sublists: list[str]) -> dict[str, Any]:
    """``body`` with each keyed line given the ``line`` of the existing line that has its key.

    Sent with ``?replace=``: a line whose key NetSuite has is updated in place, a new key is added, and an
    existing line whose key the source no longer has is removed — unless something was fulfilled of it, which
    NetSuite refuses to remove: that line is kept and closed. Lines without a key were added in NetSuite by a
    person; they are kept as they are.
    """
    result = dict(body)
    for name in sublists:
        by_key: dict[str, dict[str, Any]] = {}
        unkeyed: list[dict[str, Any]] = []
        for line in _lines(existing, name):
            if not isinstance(line.get("line"), int):
                continue
            key = line.get(LINE_KEY)
            if key is None or key == "":
                unkeyed.append(line)
            else:
                by_key.setdefault(str(key), line)
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, line in enumerate(_lines(body, name)):
            key = line.get(LINE_KEY)
            if key is None or key == "":
                lines.append(line)
                continue
            if str(key) in seen:
                raise MappingError("two lines carry the same line key; each source line needs its own",
                                   field=f"{name}.items[{index}].{LINE_KEY}")
            seen.add(str(key))
            match = by_key.get(str(key))
            lines.append({**line, "line": match["line"]} if match is not None else line)
        for key, line in by_key.items():
            if key in seen:
                continue
            if _number(line.get("quantityFulfilled")) > 0:
                lines.append({"line": line["line"], "isClosed": True})
        # A line the body names by its number itself (closing a record sends every line back) is not kept twice.
        named = {line.get("line") for line in lines if isinstance(line.get("line"), int)}
        lines.extend({"line": line["line"]} for line in unkeyed if line["line"] not in named)
        result[name] = {**body[name], "items": lines}
    return result


def order_lines_to_ship(shipped: list[dict[str, Any]], order_lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transform's ``item.items``: each shipped line by its order line, every other order line not received."""
    by_key = {str(line[LINE_KEY]): line for line in order_lines
              if line.get(LINE_KEY) not in (None, "") and isinstance(line.get("line"), int)}
    request: list[dict[str, Any]] = []
    shipping: set[int] = set()
    for index, line in enumerate(shipped):
        key = line.get(LINE_KEY)
        if key in (None, ""):
            raise MappingError("a fulfilled line needs the order line's key", field=f"item.items[{index}].{LINE_KEY}")
        order_line = by_key.get(str(key))
        if order_line is None:
            # The key is the shop's line id, not customer data.
            raise MappingError(f"no line of the sales order has the line key {key}",
                               field=f"item.items[{index}].{LINE_KEY}")
        number = order_line["line"]
        if number in shipping:
            raise MappingError("two fulfilled lines ship the same order line", field=f"item.items[{index}].{LINE_KEY}")
        shipping.add(number)
        values = {k: v for k, v in line.items() if k not in (LINE_KEY, "item", "line")}
        if line.get("itemReceive") is False:
            request.append({"orderLine": number, "itemReceive": False})
        else:
            request.append({**values, "orderLine": number, "itemReceive": True})
    # Only lines still to fulfil are on the transform's sublist: a closed or fully shipped one is left out.
    request.extend({"orderLine": line["line"], "itemReceive": False}
                   for line in order_lines if isinstance(line.get("line"), int) and line["line"] not in shipping
                   and line.get("isClosed") is not True
                   and _number(line.get("quantityFulfilled")) < _number(line.get("quantity")))
    return request


def _created_from(body: Mapping[str, Any]) -> str:
    source = body.get("createdFrom")
    if isinstance(source, Mapping):
        if isinstance(source.get("id"), (str, int)) and str(source["id"]).strip():
            return str(source["id"])
        if isinstance(source.get("externalId"), str) and source["externalId"].strip():
            return f"eid:{source['externalId']}"
    raise MappingError("an item fulfillment needs the sales order it ships ({id} or {externalId})",
                       field="createdFrom")


def _duplicate_external_id(error: ErpRejected) -> bool:
    return error.path == "externalId" or error.code in ("DUP_RCRD", "DUP_ENTITY") or (
        "same external id" in (error.detail or "").lower())


def record_json(body: Mapping[str, Any]) -> bytes:
    """A record body as JSON; decimals become numbers and dates ISO strings, anything else is a mapping bug."""

    def encode(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        raise MappingError(f"a value of type {type(value).__name__} cannot be sent to NetSuite", field="body")

    try:
        return json.dumps(dict(body), default=encode, allow_nan=False).encode()
    except ValueError:
        raise MappingError("a number is NaN or infinite; NetSuite's JSON cannot carry it", field="body") from None


def _json_object(response: httpx.Response, describe: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        summary = _body_summary(response.content, response.headers)
        raise PermanentError(f"{describe}: HTTP {response.status_code} {summary}, not a JSON object")
    return document
