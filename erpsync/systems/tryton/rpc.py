"""Tryton's JSON-RPC: a session login, calls with the company in the context, and its errors in the one tree.

Why JSON-RPC and not 8.0's REST API: every model method and button (``quote``, ``confirm``, shipments'
``pick``/``pack``/``do``) is one call of the same shape; business errors arrive as structured JSON
(``["UserError", [message, description, …]]``, ``["ConcurrencyException", …]``) where REST answers some refusals as
HTML; and a login needs only a user and password, where a REST key must be validated in Tryton's client first.

What the server answers, and what erpsync does with it (docs/tryton.md, "Errors"):

    HTTP 200 {"result": …}                          the call's value
    HTTP 200 {"error": ["UserError", [msg, …]]}     ErpRejected(400, "UserError", path named from msg): permanent
    HTTP 200 {"error": ["ConcurrencyException", …]} TrytonConcurrency, a TransientError: the record changed since
    HTTP 200 {"error": [text, ""]}                  a server-side failure (a database constraint among them):
                                                    TrytonServerError, a TransientError the writer may inspect
    HTTP 401                                        the session is gone: log in again, once; twice is ErpAuthError
    HTTP 403                                        ErpAuthError: the method is not exposed to this user
    HTTP 429, 5xx, timeouts, refused connections    TransientError (429 with Retry-After when given)
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx

from erpsync.erp_slots import ErpSlots
from erpsync.errors import ErpAuthError, ErpRejected, PermanentError, TransientError
from erpsync.retry import RetryPolicy
from erpsync.systems.tryton.settings import TrytonSettings

# Tryton's messages quote the field's label and the model's: 'A value is required for field "Unit Price" in
# "Sale Line".', 'The value "…" for field "Party" in "Sale" is not valid according to its domain.'
_FIELD_IN_MODEL = re.compile(r'field "(?P<field>[^"]+)" (?:in|of) (?:record "[^"]*" of )?"(?P<model>[^"]+)"')
_FIELD_IN_RECORD = re.compile(r'field "(?P<field>[^"]+)" in record "[^"]*" of "(?P<model>[^"]+)"')


class TrytonServerError(TransientError):
    """The server failed the call without a business error (a traceback's text): retried, and shown to the writer,
    which recognises its own unique index in it (``is_unique_violation``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.text = message

    def is_unique_violation(self, index_or_column: str) -> bool:
        text = self.text.lower()
        return ("unique" in text or "duplicate key" in text) and index_or_column.lower() in text


class TrytonConcurrency(TransientError):
    """Another transaction changed the record since it was read (Tryton's ConcurrencyException, raised when a call
    carries the ``_timestamp`` it read): read it again and decide again."""


def encode(value: Any) -> Any:
    """A value as Tryton's JSON carries it: Decimals, dates and datetimes as tagged objects."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, datetime):
        return {"__class__": "datetime", "year": value.year, "month": value.month, "day": value.day,
                "hour": value.hour, "minute": value.minute, "second": value.second,
                "microsecond": value.microsecond}
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of ``encode`` over a whole answer (datetimes are Tryton's: naive, in UTC)."""
    if isinstance(value, dict):
        kind = value.get("__class__")
        if kind == "Decimal":
            return Decimal(value["decimal"])
        if kind == "datetime":
            return datetime(value["year"], value["month"], value["day"], value.get("hour", 0),
                            value.get("minute", 0), value.get("second", 0), value.get("microsecond", 0))
        if kind == "date":
            return date(value["year"], value["month"], value["day"])
        if kind == "time":
            return time(value.get("hour", 0), value.get("minute", 0), value.get("second", 0))
        if kind == "timedelta":
            return timedelta(seconds=value["seconds"])
        if kind == "bytes":
            return base64.b64decode(value["base64"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class TrytonRpc:
    """Calls ``model.<name>.<method>`` on one database, logged in as the settings' user, under the ERP slots.

    The session (``Authorization: Session base64(login:user id:token)``) is made on first use and again, once,
    when the server answers 401. ``transport`` is the httpx seam the contract suite uses to add faults.
    """

    def __init__(self, settings: TrytonSettings, *, retry: RetryPolicy | None = None, slots: ErpSlots | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.retry = retry if retry is not None else RetryPolicy()
        if slots is None:
            slots = ErpSlots.in_process(settings.concurrency_limit, linger=settings.timeout_seconds)
        self.slots = slots
        self.http = httpx.Client(base_url=settings.rpc_url, timeout=settings.timeout_seconds, transport=transport)
        self._lock = threading.Lock()
        self._session: str | None = None
        self._context: dict[str, Any] | None = None
        self._labels: dict[str, dict[str, str]] = {}
        self._request_id = 0

    def close(self) -> None:
        self.http.close()
        self.slots.close()

    # -- calls --

    def model(self, model: str, method: str, *args: Any, context: Mapping[str, Any] | None = None) -> Any:
        """``model.<model>.<method>(*args, context)``, retried on transient failures; its decoded result."""
        return self.retry.call(self._model_once, model, method, args, context,
                               describe=f"Tryton {model}.{method}")

    def model_once(self, model: str, method: str, *args: Any, context: Mapping[str, Any] | None = None) -> Any:
        """The same call, made once: for a create whose refusal by a unique index the caller reads as an answer."""
        return self._model_once(model, method, args, context)

    def _model_once(self, model: str, method: str, args: tuple[Any, ...], context: Mapping[str, Any] | None) -> Any:
        base = self.context()
        full = {**base, **(context or {})}
        try:
            return self._authenticated(f"model.{model}.{method}", [*args, full])
        except _UserError as refused:
            raise self._rejected(model, refused.message) from None

    def context(self) -> dict[str, Any]:
        """The user's preferences as a call's context: the company every record is made in, the language."""
        if self._context is None:
            preferences = self._authenticated("model.res.user.get_preferences", [True, {}])
            if not preferences.get("company"):
                raise PermanentError("the Tryton user has no company: set one in its preferences")
            self._context = {k: preferences[k] for k in ("company", "language") if preferences.get(k) is not None}
        return dict(self._context)

    def _authenticated(self, method: str, params: list[Any]) -> Any:
        session = self._current_session()
        try:
            return self._post(method, params, session)
        except _Unauthorized:
            fresh = self._current_session(stale=session)
            try:
                return self._post(method, params, fresh)
            except _Unauthorized:
                raise ErpAuthError("Tryton refused the session again right after a fresh login") from None

    def _current_session(self, stale: str | None = None) -> str:
        with self._lock:
            if self._session is None or self._session == stale:
                self._session = self._login()
            return self._session

    def _login(self) -> str:
        settings = self.settings
        try:
            answer = self._post("common.db.login", [settings.login, {"password": settings.password.get_secret_value()},
                                                    "en"], None)
        except _Unauthorized:
            raise ErpAuthError("Tryton refused the login") from None
        except _UserError:
            raise ErpAuthError("Tryton refused the login") from None
        if not isinstance(answer, list) or len(answer) < 2:
            raise ErpAuthError("Tryton refused the login (wrong login or password)")
        user_id, token = answer[0], answer[1]
        return "Session " + base64.b64encode(f"{settings.login}:{user_id}:{token}".encode()).decode()

    def _post(self, method: str, params: list[Any], session: str | None) -> Any:
        self._request_id += 1
        headers = {"Authorization": session} if session else {}
        body = {"method": method, "params": encode(params), "id": self._request_id}
        try:
            with self.slots.hold():
                response = self.http.post("", json=body, headers=headers)
        except httpx.TimeoutException as error:
            raise TransientError(f"Tryton {method}: timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            raise TransientError(f"Tryton {method}: {type(error).__name__}") from None
        status = response.status_code
        if status == 401:
            raise _Unauthorized()
        if status == 403:
            raise ErpAuthError(f"Tryton {method}: HTTP 403, the method is not allowed to this user")
        if status == 429 or status >= 500:
            raise TransientError(f"Tryton {method}: HTTP {status}", status=status,
                                 retry_after=_retry_after(response.headers.get("Retry-After")))
        if status != 200:
            raise ErpRejected(status, f"HTTP{status}", f"Tryton {method} answered HTTP {status}")
        try:
            answer = response.json()
        except ValueError:
            raise TransientError(f"Tryton {method}: an answer that is not JSON", status=status) from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if error:
            raise _classify(method, error)
        return decode(answer.get("result"))

    # -- refusals --

    def _rejected(self, model: str, message: str) -> ErpRejected:
        return ErpRejected(400, "UserError", message, self.field_path(model, message))

    def field_path(self, model: str, message: str) -> str | None:
        """The field a UserError names, as erpsync writes it: ``party`` on the sale, ``lines.unit_price`` on a line.

        Tryton's message gives the field's and the model's labels; the labels are mapped back to names through
        ``fields_get`` of the sale and its line (the only models erpsync writes nested).
        """
        found = _FIELD_IN_RECORD.search(message) or _FIELD_IN_MODEL.search(message)
        if not found:
            return None
        label, model_label = found["field"], found["model"]
        for prefix, candidate in (("", model), ("lines.", "sale.line")):
            if prefix and not model.startswith("sale.sale"):
                continue
            labels = self._field_labels(candidate)
            if labels.get("__model__") == model_label and label in labels:
                return prefix + labels[label]
        return label

    def _field_labels(self, model: str) -> dict[str, str]:
        if model not in self._labels:
            try:
                described = self._authenticated(f"model.{model}.fields_get", [[], self.context()])
                names = self._authenticated("model.ir.model.search_read",
                                            [[["name", "=", model]], 0, 1, None, ["string"], self.context()])
            except (TransientError, _UserError):
                return {}
            labels = {spec.get("string"): name for name, spec in described.items() if isinstance(spec, dict)}
            labels["__model__"] = names[0]["string"] if names else model
            self._labels[model] = labels
        return self._labels[model]


class _Unauthorized(Exception):
    pass


class _UserError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _classify(method: str, error: Any) -> Exception:
    kind = error[0] if isinstance(error, list) and error else str(error)
    detail = error[1] if isinstance(error, list) and len(error) > 1 else None
    if kind in ("UserError", "UserWarning", "AccessError", "DomainValidationError", "RequiredValidationError",
                "SizeValidationError", "DigitsValidationError", "SelectionValidationError", "ForeignKeyError",
                "SQLConstraintError", "RecursionError"):
        message = detail[0] if isinstance(detail, list) and detail else str(detail or kind)
        return _UserError(str(message))
    if kind == "ConcurrencyException":
        return TrytonConcurrency(f"Tryton {method}: ConcurrencyException (the record was changed meanwhile)")
    if kind == "RateLimitException":
        return TransientError(f"Tryton {method}: rate limited", status=429)
    # [text, ""]: a server-side failure whose text is an exception's (no record data in Tryton's own).
    return TrytonServerError(f"Tryton {method}: server error: {str(kind)[:300]}")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
