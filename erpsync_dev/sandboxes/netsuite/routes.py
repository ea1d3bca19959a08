"""The NetSuite sandbox as a Starlette app: the REST record API, SuiteQL, the token endpoint and the sandbox's own
test and operations endpoints (``/_sandbox/...``)."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from erpsync_dev.sandboxes.netsuite import stock
from erpsync_dev.sandboxes.netsuite.auth import TOKEN_PATH, TokenIssuer
from erpsync_dev.sandboxes.netsuite.error_bodies import malformed, netsuite_error, not_found, search_error
from erpsync_dev.sandboxes.netsuite.faults import FrontDoor
from erpsync_dev.sandboxes.netsuite.notices import NoticeSender, NoticeTarget
from erpsync_dev.sandboxes.netsuite.options import SandboxOptions
from erpsync_dev.sandboxes.netsuite.records import ITEM_RECORD_TYPES, TRANSACTION_TYPES, Rejection
from erpsync_dev.sandboxes.netsuite.records import field as _field
from erpsync_dev.sandboxes.netsuite.store import RecordStore, to_sqlite
from erpsync_dev.sandboxes.netsuite.totals import json_number, totals

RECORD_ROOT = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"

EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]+")
_RECORD_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class ErpSandbox:
    """The state behind the app: the records (store), the issued tokens (auth), the account's front door (faults)."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.store = RecordStore(options.db_path, options.items, options.customers, options.lists)
        self.auth = TokenIssuer(options)
        self.door = FrontDoor(options, self.auth)
        target = (NoticeTarget(options.notify_url, options.notify_secret, options.notify_types)
                  if options.notify_url and options.notify_secret else None)
        self.notices = NoticeSender(target)

    def _notify(self, record_type: str, internal_id: int | str) -> None:
        """The saved record's change notices, as the user-event script's afterSubmit posts them (notices.py)."""
        row = self.store.find(record_type, str(internal_id))
        if row is None:
            return
        self.notices.changed(record_type, row["internal_id"], row["external_id"], row["last_modified"])
        if record_type in stock.MOVED_RECORD_TYPES:
            # The script deployed on a stock-moving transaction posts a notice of each item it moved.
            self.notices.moved(record_type, row["internal_id"], row["last_modified"],
                               self.store.moved_items(int(row["internal_id"])))

    # -- record API --

    def _record_url(self, request: Request, record_type: str, internal_id: int | str) -> str:
        return f"{str(request.base_url).rstrip('/')}{RECORD_ROOT}/{record_type}/{internal_id}"

    async def upsert(self, request: Request) -> Response:
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        if not ref.startswith("eid:"):
            return netsuite_error(
                400, "USER_ERROR", "The upsert operation needs an external ID in the request URL (eid:...)."
            )
        body = await _json_body(request)
        if not isinstance(body, dict):
            return malformed()
        written = self.store.upsert(record_type, ref[4:], body, _replace(request))
        if isinstance(written, Rejection):
            return _rejected(written)
        internal_id, _ = written
        self._notify(record_type, internal_id)
        return Response(status_code=204, headers={"Location": self._record_url(request, record_type, internal_id)})

    async def patch(self, request: Request) -> Response:
        """Update an existing record: Oracle, "Updating a Record Instance" (PATCH, sublists per sublists)."""
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        body = await _json_body(request)
        if not isinstance(body, dict):
            return malformed()
        written = self.store.patch(record_type, ref, body, _replace(request))
        if written is None:
            return not_found()
        if isinstance(written, Rejection):
            return _rejected(written)
        self._notify(record_type, written)
        return Response(status_code=204, headers={"Location": self._record_url(request, record_type, written)})

    async def create(self, request: Request) -> Response:
        record_type = request.path_params["type"]
        if not _RECORD_TYPE.fullmatch(record_type):
            return not_found()
        body = await _json_body(request)
        if not isinstance(body, dict):
            return malformed()
        external_id = _field(body, "externalId")
        if external_id is not None and not (isinstance(external_id, str) and EXTERNAL_ID.fullmatch(external_id)):
            return netsuite_error(400, "INVALID_CONTENT", "Invalid external ID.", "externalId")
        created = self.store.create(record_type, external_id, body)
        if created is None:
            return netsuite_error(400, "USER_ERROR", "A record with the same external ID already exists.", "externalId")
        if isinstance(created, Rejection):
            return _rejected(created)
        self._notify(record_type, created)
        return Response(status_code=204, headers={"Location": self._record_url(request, record_type, created)})

    async def transform(self, request: Request) -> Response:
        """``POST salesOrder/{ref}/!transform/itemFulfillment`` (fulfillments): 204, the new record's Location."""
        record_type, ref, target = (request.path_params[name] for name in ("type", "ref", "target"))
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        if (record_type, target) != ("salesOrder", "itemFulfillment"):
            # The one transformation this sandbox models; NetSuite supports more (record.transform's list).
            detail = f"The transformation from {record_type} to {target} is not supported by this sandbox."
            return netsuite_error(400, "INVALID_PARAMETER", detail)
        body = await _json_body(request)
        if not isinstance(body, dict):
            return malformed()
        external_id = _field(body, "externalId")
        if external_id is not None and not (isinstance(external_id, str) and EXTERNAL_ID.fullmatch(external_id)):
            return netsuite_error(400, "INVALID_CONTENT", "Invalid external ID.", "externalId")
        created = self.store.transform(ref, external_id, body)
        if created is None:
            return not_found()
        if isinstance(created, Rejection):
            return _rejected(created)
        internal_id, _ = created
        self._notify("itemFulfillment", internal_id)
        return Response(status_code=204,
                        headers={"Location": self._record_url(request, "itemFulfillment", internal_id)})

    async def get(self, request: Request) -> Response:
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        row = self.store.find(record_type, ref)
        if row is None:
            return self._seeded_customer(request, record_type, ref)
        self_url = self._record_url(request, record_type, row["internal_id"])
        expand = request.query_params.get("expandSubResources", "").lower() == "true"
        stored = json.loads(row["body"])
        if record_type in TRANSACTION_TYPES and record_type != "inventoryAdjustment":
            stored = self._with_totals(record_type, row["internal_id"], stored)
        if record_type in ITEM_RECORD_TYPES:
            # Computed from the item's transactions at each read, never stored on the item (stock.py).
            on_hand, open_orders = self.store.stock(int(row["internal_id"]))
            stored = {**stored, "locations": {**(stored.get("locations") or {}), "items": stock.location_lines(
                stored.get("locations"), on_hand, open_orders)}}
        body: dict[str, Any] = {"links": [{"rel": "self", "href": self_url}]}
        for key, value in stored.items():
            if not expand and isinstance(value, dict) and isinstance(value.get("items"), list):
                # NetSuite answers sublists as links unless asked to expand them.
                value = {"links": [{"rel": "self", "href": f"{self_url}/{key}"}]}
            body[key] = value
        body["id"] = str(row["internal_id"])
        if row["external_id"] is not None:
            body["externalId"] = row["external_id"]
        body["lastModifiedDate"] = row["last_modified"]
        return JSONResponse(body)

    def _with_totals(self, record_type: str, internal_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """The body as NetSuite answers it: each line's amount, what was shipped of it, and the header totals."""
        money = totals(body)
        shipped = self.store.fulfilled(internal_id) if record_type == "salesOrder" else {}
        lines = _field(_field(body, "item"), "items")
        answered = {**body, **money.as_fields()}
        if isinstance(lines, list):
            items = []
            for line, amount in zip(lines, money.line_amounts):
                line = dict(line) if isinstance(line, dict) else line
                if isinstance(line, dict):
                    if amount is not None:
                        line["amount"] = json_number(amount)
                    if record_type == "salesOrder":
                        line["quantityFulfilled"] = json_number(shipped.get(line.get("line"), Decimal(0)))
                items.append(line)
            answered["item"] = {**body["item"], "items": items}
        return answered

    def _seeded_customer(self, request: Request, record_type: str, ref: str) -> Response:
        # Customers that exist before any write (--customers) are readable like the others.
        if record_type != "customer" or not ref.isdigit() or int(ref) not in self.store.seed_customers:
            return not_found()
        name = self.store.seed_customers[int(ref)]
        return JSONResponse({"links": [{"rel": "self", "href": self._record_url(request, record_type, ref)}],
                             "id": ref, "companyName": name, "entityId": name, "isPerson": False})

    async def delete(self, request: Request) -> Response:
        record_type, ref = request.path_params["type"], request.path_params["ref"]
        if (problem := _bad_reference(record_type, ref)) is not None:
            return problem
        return Response(status_code=204) if self.store.delete(record_type, ref) else not_found()

    async def collection(self, request: Request) -> Response:
        record_type = request.path_params["type"]
        if not _RECORD_TYPE.fullmatch(record_type):
            return not_found()
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        ids, total = self.store.page(record_type, limit, offset)
        base = f"{str(request.base_url).rstrip('/')}{RECORD_ROOT}/{record_type}"
        document = _collection(base, limit, offset, total, [
            {"links": [{"rel": "self", "href": f"{base}/{internal_id}"}], "id": str(internal_id)} for internal_id in ids
        ])
        return JSONResponse(document)

    # -- SuiteQL --

    async def suiteql(self, request: Request) -> Response:
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        body = await _json_body(request)
        query = _field(body, "q")
        params = _field(body, "params") or []
        if not isinstance(query, str) or not query.strip() or not isinstance(params, list):
            detail = 'Invalid search query: give the query as "q" and bound values as "params".'
            return netsuite_error(400, "INVALID_PARAMETER", detail)
        if not re.match(r"(?is)\s*(select|with)\b", query):
            return search_error("only SELECT queries can be run.")
        try:
            rows, total = self.store.query(to_sqlite(query), params, limit, offset)
        except (sqlite3.Error, sqlite3.Warning) as error:
            return search_error(str(error))
        url = f"{str(request.base_url).rstrip('/')}{SUITEQL_PATH}"
        return JSONResponse(_collection(url, limit, offset, total, [{"links": [], **row} for row in rows]))

    # -- test and operations endpoints --

    async def sandbox_records(self, request: Request) -> Response:
        return JSONResponse({"records": self.store.dump(request.query_params.get("type"))})

    async def sandbox_bulk(self, request: Request) -> Response:
        """``{"records": [{"externalId", "body", "lastModified"?}, …]}`` seeded at once (RecordStore.bulk_upsert)."""
        record_type = request.path_params["type"]
        document = await _json_body(request)
        records = document.get("records") if isinstance(document, dict) else None
        if not _RECORD_TYPE.fullmatch(record_type) or not isinstance(records, list):
            return JSONResponse({"error": 'expected {"records": [...]} for a record type'}, 400)
        seeded = []
        for index, record in enumerate(records):
            external_id = record.get("externalId") if isinstance(record, dict) else None
            body, modified = ((record.get("body"), record.get("lastModified")) if isinstance(record, dict)
                              else (None, None))
            if not (isinstance(external_id, str) and EXTERNAL_ID.fullmatch(external_id)):
                return JSONResponse({"error": f"records[{index}].externalId: letters, digits, _ and - only"}, 400)
            if not isinstance(body, dict):
                return JSONResponse({"error": f"records[{index}].body: must be an object"}, 400)
            if modified is not None and not _is_stamp(modified):
                return JSONResponse({"error": f"records[{index}].lastModified: ISO 8601 UTC, e.g. "
                                              "2026-11-27T10:00:00.000Z"}, 400)
            seeded.append((external_id, body, modified))
        return JSONResponse({"seeded": self.store.bulk_upsert(record_type, seeded)})

    async def sandbox_stats(self, request: Request) -> Response:
        return JSONResponse(self.door.stats())

    async def sandbox_faults(self, request: Request) -> Response:
        return self.door.queue_faults(await _json_body(request))

    async def sandbox_reset(self, request: Request) -> Response:
        self.store.reset()
        self.door.faults.clear()
        self.door.reset_stats()
        return JSONResponse({"reset": True})

    async def sandbox_revoke_tokens(self, request: Request) -> Response:
        return JSONResponse({"revoked": self.auth.revoke()})

    async def sandbox_notices(self, request: Request) -> Response:
        """GET: where notices go and how many were sent; POST ``{"url", "secret", "types"}``: (re)configure them."""
        if request.method == "GET":
            return JSONResponse(self.notices.state())
        try:
            return JSONResponse(self.notices.configure(await _json_body(request)))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _is_stamp(value: Any) -> bool:
    # The stored form sorts in time order as text, so nothing else may be stored.
    return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", value) is not None


def _bad_reference(record_type: str, ref: str) -> Response | None:
    if not _RECORD_TYPE.fullmatch(record_type):
        return not_found()
    if ref.startswith("eid:"):
        if not EXTERNAL_ID.fullmatch(ref[4:]):
            return netsuite_error(400, "INVALID_PARAMETER", "Invalid external ID: use letters, digits, _ and - only.")
        return None
    if not re.fullmatch(r"-?\d+", ref):
        return netsuite_error(400, "INVALID_PARAMETER", "Invalid record ID.")
    return None


def _replace(request: Request) -> frozenset[str]:
    """``?replace=item,package``: the sublists whose lines the request replaces (Oracle, "Replacing a Sublist")."""
    return frozenset(name.strip() for name in request.query_params.get("replace", "").split(",") if name.strip())


def _rejected(rejection: Rejection) -> JSONResponse:
    return netsuite_error(rejection.status, rejection.code, rejection.detail, rejection.path)


def _paging(request: Request) -> tuple[int, int] | Response:
    try:
        limit = int(request.query_params.get("limit", "1000"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        limit, offset = -1, -1
    if not 1 <= limit <= 1000 or offset < 0:
        detail = "Invalid value for limit or offset: limit 1-1000, offset 0 or more."
        return netsuite_error(400, "INVALID_PARAMETER", detail)
    return limit, offset


def _collection(base: str, limit: int, offset: int, total: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    links = []
    if offset > 0:
        links.append({"rel": "prev", "href": f"{base}?limit={limit}&offset={max(0, offset - limit)}"})
        links.append({"rel": "first", "href": f"{base}?limit={limit}&offset=0"})
    if offset + len(items) < total:
        links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
        links.append({"rel": "last", "href": f"{base}?limit={limit}&offset={((total - 1) // limit) * limit}"})
    links.append({"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"})
    return {
        "links": links,
        "count": len(items),
        "hasMore": offset + len(items) < total,
        "items": items,
        "offset": offset,
        "totalResults": total,
    }


def create_app(options: SandboxOptions | None = None) -> Starlette:
    """The sandbox as an ASGI app; its SQLite file closes when the app's lifespan ends."""
    sandbox = ErpSandbox(options or SandboxOptions())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            sandbox.notices.close()
            sandbox.store.close()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    record = f"{RECORD_ROOT}/{{type}}"
    governed, counted = sandbox.door.governed, sandbox.door.counted
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(TOKEN_PATH, counted(sandbox.auth.token), methods=["POST"]),
            Route(record, governed(sandbox.collection), methods=["GET"]),
            Route(record, governed(sandbox.create), methods=["POST"]),
            Route(f"{record}/{{ref}}", governed(sandbox.get), methods=["GET"]),
            Route(f"{record}/{{ref}}", governed(sandbox.upsert), methods=["PUT"]),
            Route(f"{record}/{{ref}}", governed(sandbox.patch), methods=["PATCH"]),
            Route(f"{record}/{{ref}}/!transform/{{target}}", governed(sandbox.transform), methods=["POST"]),
            Route(f"{record}/{{ref}}", governed(sandbox.delete), methods=["DELETE"]),
            Route(SUITEQL_PATH, governed(sandbox.suiteql), methods=["POST"]),
            Route("/_sandbox/records", sandbox.sandbox_records, methods=["GET"]),
            Route("/_sandbox/stats", sandbox.sandbox_stats, methods=["GET"]),
            Route("/_sandbox/bulk/{type}", sandbox.sandbox_bulk, methods=["POST"]),
            Route("/_sandbox/faults", sandbox.sandbox_faults, methods=["POST"]),
            Route("/_sandbox/reset", sandbox.sandbox_reset, methods=["POST"]),
            Route("/_sandbox/revoke-tokens", sandbox.sandbox_revoke_tokens, methods=["POST"]),
            Route("/_sandbox/notices", sandbox.sandbox_notices, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app
