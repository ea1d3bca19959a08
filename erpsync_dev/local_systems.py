"""Each registered system's local server for the contract suites (tests/contract/): how it starts, and its faults.

This table is the only per-system part of the ERP contract suite: for every ERP the registry lists
(``erpsync.systems.erps()``), ``LOCAL_ERPS`` names a context manager that starts the system's local server,
yields a :class:`LocalErp` (a writer configured for it, a :class:`Faults` handle, and :class:`ErpSamples`: the
few bodies the suite writes, in the system's own terms) and stops the server at the end. Adding an ERP means
adding its line here and making ``tests/contract/test_erp_contract.py`` pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from erpsync.retry import RetryPolicy
from erpsync_dev.processes import ProcessGroup, free_port, python_module

# The attempts a contract writer makes before giving up: a fault queued this many times reaches the caller.
ATTEMPTS = 3
# Retries without waiting: the suite checks behaviour, not timing; a server's Retry-After is capped to this.
QUICK_RETRIES = RetryPolicy(max_attempts=ATTEMPTS, base=0.01, cap=0.05, max_retry_after=0.05)


class Faults(Protocol):
    """What the contract suite makes a local server do; each method acts on the next requests only."""

    def reset(self) -> None:
        """Forget every record, queued fault and counter (tokens already issued stay valid)."""

    def throttle(self, times: int, retry_after: float) -> None:
        """Answer the next ``times`` API requests 429 with ``Retry-After: retry_after`` seconds."""

    def unauthorized(self, times: int) -> None:
        """Answer the next ``times`` API requests 401, as to a token the server no longer accepts."""

    def expire_tokens(self) -> None:
        """Make every access token issued so far invalid (an expired or revoked token)."""

    def tokens_issued(self) -> int:
        """Access tokens the server has issued since the last ``reset``."""

    def write_at(self, record_type: str, records: list[tuple[str, dict[str, Any]]], modified: datetime) -> None:
        """Store ``(external id, body)`` records, in order, all last modified at ``modified`` (ties in time)."""


@dataclass(frozen=True)
class ErpSamples:
    """The records the contract suite writes, in the system's own terms."""

    # A record type that is written by upsert, read back, deleted and whose changes and windows can be read.
    record_type: str
    # body(tag) → a body the system accepts; ``tag`` makes two versions differ.
    body: Callable[[str], dict[str, Any]]
    # A body the system refuses with a 4xx, and the code and field path it names.
    rejected_body: dict[str, Any]
    rejected_code: str
    rejected_path: str
    # transform: a ``transform_to`` record is made from a ``record_type`` one with transform_body(writer, from_id).
    transform_to: str
    transform_body: Callable[[Any, str], dict[str, Any]]
    # find_id: ``key_record_type`` records are found by ``key_field``; key_body(value) → a body carrying it.
    key_record_type: str
    key_field: str
    key_body: Callable[[str], dict[str, Any]]


@dataclass
class LocalErp:
    writer: Any  # RecordWriter, IdResolver and ChangeReader (erpsync/ports.py)
    faults: Faults
    samples: ErpSamples
    attempts: int = ATTEMPTS
    # Seconds after a write before changes_since may show it (a reader holds back changes still settling).
    settle_seconds: float = 0.0


# --- NetSuite: the ERP sandbox (erpsync_dev/sandboxes/netsuite) ---------------------------------------------

NETSUITE_SANDBOX = "erpsync_dev.sandboxes.netsuite"
SANDBOX_CLIENT_ID = "sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"


class NetSuiteSandboxFaults:
    """The sandbox's own endpoints (``/_sandbox/...``)."""

    def __init__(self, ops: httpx.Client):
        self.ops = ops

    def reset(self) -> None:
        self.ops.post("/_sandbox/reset").raise_for_status()

    def throttle(self, times: int, retry_after: float) -> None:
        self._fault({"status": 429, "count": times, "retry_after": retry_after})

    def unauthorized(self, times: int) -> None:
        self._fault({"status": 401, "count": times})

    def expire_tokens(self) -> None:
        self.ops.post("/_sandbox/revoke-tokens").raise_for_status()

    def tokens_issued(self) -> int:
        return int(self.ops.get("/_sandbox/stats").json()["tokens_issued"])

    def write_at(self, record_type: str, records: list[tuple[str, dict[str, Any]]], modified: datetime) -> None:
        stamp = modified.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        seeded = [{"externalId": external_id, "body": body, "lastModified": stamp} for external_id, body in records]
        self.ops.post(f"/_sandbox/bulk/{record_type}", json={"records": seeded}).raise_for_status()

    def _fault(self, spec: Mapping[str, Any]) -> None:
        self.ops.post("/_sandbox/faults", json=dict(spec)).raise_for_status()


def _netsuite_sales_order(tag: str) -> dict[str, Any]:
    return {"entity": {"id": "110"}, "memo": tag, "item": {"items": [{"item": {"id": 98}, "quantity": 2}]}}


def _netsuite_ship_all(writer: Any, order_id: str) -> dict[str, Any]:
    order = writer.get("salesOrder", order_id, expand_sub_resources=True)
    return {"item": {"items": [{"orderLine": line["line"], "itemReceive": True, "quantity": line["quantity"]}
                               for line in order["item"]["items"]]}}


NETSUITE_SAMPLES = ErpSamples(
    record_type="salesOrder",
    body=_netsuite_sales_order,
    rejected_body={"entity": {"id": "110"}, "item": {"items": [{"item": {"id": 9999}, "quantity": 1}]}},
    rejected_code="INVALID_CONTENT",
    rejected_path="item.items[0].item",
    transform_to="itemFulfillment",
    transform_body=_netsuite_ship_all,
    key_record_type="customer",
    key_field="email",
    key_body=lambda email: {"isPerson": True, "firstName": "Contract", "lastName": "Suite", "email": email},
)


@contextlib.contextmanager
def local_netsuite(directory: Path) -> Iterator[LocalErp]:
    from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings

    port = free_port()
    group = ProcessGroup(directory, dict(os.environ), Path(__file__).resolve().parents[1])
    try:
        group.start("netsuite-sandbox", python_module(
            NETSUITE_SANDBOX, "--port", str(port), "--db", str(directory / "netsuite-sandbox.db"),
            "--client-id", SANDBOX_CLIENT_ID, "--client-secret", SANDBOX_CLIENT_SECRET,
            "--items", "1-999", "--customers", "110=Web Store",
        ))
        base_url = f"http://127.0.0.1:{port}"
        group.wait_http("netsuite-sandbox", f"{base_url}/healthz", timeout=30)
        # No settling beyond the second under way: one machine, one clock.
        settings = NetSuiteSettings(base_url=base_url, client_id=SANDBOX_CLIENT_ID,
                                    client_secret=SANDBOX_CLIENT_SECRET, change_settle_seconds=0)
        with httpx.Client(base_url=base_url) as ops, NetSuiteClient(settings, retry=QUICK_RETRIES) as writer:
            yield LocalErp(writer, NetSuiteSandboxFaults(ops), NETSUITE_SAMPLES, settle_seconds=1.05)
    finally:
        group.stop()


# name → (directory for its files and logs) → a context manager giving the running local ERP.
LOCAL_ERPS: dict[str, Callable[[Path], contextlib.AbstractContextManager[LocalErp]]] = {
    "netsuite": local_netsuite,
}


@contextlib.contextmanager
def local_erp(name: str, directory: Path | None = None) -> Iterator[LocalErp]:
    """The local server of the ERP ``name``; a LookupError saying what to add when the table has none."""
    if name not in LOCAL_ERPS:
        raise LookupError(
            f"the ERP {name!r} is registered (erpsync/systems/) but has no local server: add a line for it to "
            "LOCAL_ERPS in erpsync_dev/local_systems.py (a context manager that starts its server and yields a "
            "LocalErp: a writer, a Faults handle and ErpSamples), then make tests/contract/test_erp_contract.py pass"
        )
    if directory is not None:
        with LOCAL_ERPS[name](directory) as local:
            yield local
        return
    with tempfile.TemporaryDirectory(prefix=f"erpsync-{name}-") as temporary, LOCAL_ERPS[name](Path(temporary)) as local:
        yield local


# --- Tryton: a real trytond (erpsync_dev/tryton_server.py) --------------------------------------------------------

# Tables whose rows outlive a reset: the sessions (tokens already issued stay valid, as Faults.reset says).
_TRYTON_KEPT_TABLES = frozenset({"ir_session", "res_user_login_attempt"})


class TrytonFaults:
    """Faults for a real Tryton: 429 and 401 added by an httpx transport in front of the writer (Tryton answers 429
    only to logins it rate-limits, and 401 only to a session it no longer knows), everything else done to the
    server's own database: a reset deletes every row made since the seed, an expiry deletes the sessions."""

    def __init__(self, database_file: Path, writer_factory: Callable[[], Any]):
        self.database_file = database_file
        self.transport = _TrytonFaultTransport()
        self._seed_ids = self._max_ids()
        self._writer_factory = writer_factory

    def reset(self) -> None:
        self.transport.queued.clear()
        self.transport.logins = 0
        with contextlib.closing(sqlite3.connect(self.database_file, timeout=30)) as db:
            db.execute("PRAGMA foreign_keys = OFF")
            for table, seed_max in self._seed_ids.items():
                if table not in _TRYTON_KEPT_TABLES:
                    db.execute(f'DELETE FROM "{table}" WHERE id > ?', (seed_max,))
            db.commit()

    def throttle(self, times: int, retry_after: float) -> None:
        self.transport.queued.extend([(429, retry_after)] * times)

    def unauthorized(self, times: int) -> None:
        self.transport.queued.extend([(401, None)] * times)

    def expire_tokens(self) -> None:
        with contextlib.closing(sqlite3.connect(self.database_file, timeout=30)) as db:
            db.execute("DELETE FROM ir_session")
            db.commit()

    def tokens_issued(self) -> int:
        return self.transport.logins

    def write_at(self, record_type: str, records: list[tuple[str, dict[str, Any]]], modified: datetime) -> None:
        from erpsync.systems.tryton.client import EXTERNAL_ID_FIELD

        writer = self._writer_factory()
        for external_id, body in records:
            writer.upsert(record_type, external_id, body)
        table, column = record_type.replace(".", "_"), EXTERNAL_ID_FIELD[record_type]
        stamp = modified.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        with contextlib.closing(sqlite3.connect(self.database_file, timeout=30)) as db:
            db.executemany(f'UPDATE "{table}" SET create_date = ?, write_date = NULL WHERE "{column}" = ?',
                           [(stamp, external_id) for external_id, _ in records])
            db.commit()

    def _max_ids(self) -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(self.database_file, timeout=30)) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            found = {}
            for table in tables:
                columns = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
                if "id" in columns:
                    found[table] = db.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"').fetchone()[0]
            return found


class _TrytonFaultTransport(httpx.HTTPTransport):
    """Answers queued faults to API calls instead of forwarding them; counts the logins the server granted."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[tuple[int, float | None]] = []
        self.logins = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content or b"{}").get("method", "")
        is_login = method == "common.db.login"
        if self.queued and not is_login:
            status, retry_after = self.queued.pop(0)
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return httpx.Response(status, headers=headers, request=request)
        response = super().handle_request(request)
        if is_login and response.status_code == 200:
            response.read()
            if isinstance(json.loads(response.content).get("result"), list):
                self.logins += 1
        return response


def _tryton_sale(tag: str) -> dict[str, Any]:
    return {"party": {"code": "erpsync-guest"}, "description": tag,
            "lines": [{"product": "CABLE-USBC-1M", "quantity": 2, "unit_price": "12.50"}]}


def _tryton_confirm(writer: Any, sale_id: str) -> dict[str, Any]:
    # What a person does in Tryton before a shipment exists: quote and confirm the sale.
    writer.rpc.model("sale.sale", "quote", [int(sale_id)])
    writer.rpc.model("sale.sale", "confirm", [int(sale_id)])
    return {}


TRYTON_SAMPLES = ErpSamples(
    record_type="sale.sale",
    body=_tryton_sale,
    rejected_body={"party": {"code": "erpsync-guest"}, "lines": [{"product": "NO-SUCH-SKU", "quantity": 1,
                                                                  "unit_price": "1.00"}]},
    rejected_code="UNKNOWN_PRODUCT",
    rejected_path="lines[0].product",
    transform_to="stock.shipment.out",
    transform_body=_tryton_confirm,
    key_record_type="party.party",
    key_field="email",
    key_body=lambda email: {"name": "Contract Suite", "email": email},
)


@contextlib.contextmanager
def local_tryton(directory: Path) -> Iterator[LocalErp]:
    from erpsync.systems.tryton.client import TrytonClient
    from erpsync.systems.tryton.settings import TrytonSettings
    from erpsync_dev.tryton_server import tryton_server

    with tryton_server(directory) as running:
        settings = TrytonSettings(url=running.url, database=running.database, login=running.login,
                                  password=running.password, change_settle_seconds=0)
        writers: list[Any] = []

        def plain_writer() -> Any:
            if not writers:
                writers.append(TrytonClient(settings, retry=QUICK_RETRIES))
            return writers[0]

        faults = TrytonFaults(running.database_file, plain_writer)
        try:
            with TrytonClient(settings, retry=QUICK_RETRIES, transport=faults.transport) as writer:
                # Tryton's times have microseconds and its reader orders by the whole second: a second's wait
                # puts a write behind the reader's settle bound, as on NetSuite.
                yield LocalErp(writer, faults, TRYTON_SAMPLES, settle_seconds=1.05)
        finally:
            for extra in writers:
                extra.close()


LOCAL_ERPS["tryton"] = local_tryton
