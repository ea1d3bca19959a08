"""The shop sandbox's server: Shopify's Admin API orders endpoints (pages, filters, counts) over what the store has
sent, and its own ``/_sandbox/...`` endpoints that send a scenario's phases and announce orders."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from erpsync_dev.sandboxes.shopify.api_versions import ApiVersionMiddleware
from erpsync_dev.sandboxes.shopify.graphql_api import graphql_routes
from erpsync_dev.sandboxes.shopify.graphql_faults import GraphQLFaultsMiddleware
from erpsync_dev.sandboxes.shopify.graphql_store import ShopState
from erpsync_dev.sandboxes.shopify.webhooks import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, send_phase, summarize
from erpsync_dev.scenarios.demo import DEFAULT_SHOP_DOMAIN, PHASE_NAMES, Delivery, GeneratedOrders, Scenario

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 250
ORDER_STATUSES = ("open", "closed", "cancelled", "any")
_INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
# With page_info the filters travel inside the cursor; Shopify refuses any other filter beside it.
_PAGE_INFO_COMPANIONS = {"page_info", "limit", "fields"}
_TIME_FILTERS = {
    "updated_at_min": ("updated_at", min),
    "updated_at_max": ("updated_at", max),
    "created_at_min": ("created_at", min),
    "created_at_max": ("created_at", max),
}



class Shop:
    """What the store has sent so far: the Admin API shows the newest version of each order it has announced."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.sent_phases: list[int] = []
        self._newest: dict[str, tuple[datetime, dict[str, Any]]] = {}

    def record(self, delivery: Delivery) -> None:
        known = self._newest.get(delivery.order_id)
        if known is None or delivery.version > known[0]:
            self._newest[delivery.order_id] = (delivery.version, delivery.payload())

    def announce(self, order: dict[str, Any]) -> None:
        """Show an order in the Admin API without sending its webhook (one the webhooks never delivered)."""
        version = datetime.fromisoformat(order["updated_at"])
        known = self._newest.get(str(order["id"]))
        if known is None or version >= known[0]:
            self._newest[str(order["id"])] = (version, order)

    def orders(self) -> list[dict[str, Any]]:
        return [order for _, order in self._newest.values()]

    def order(self, order_id: str) -> dict[str, Any] | None:
        known = self._newest.get(order_id)
        return known[1] if known else None


def _error(status: int, errors: Any) -> JSONResponse:
    # Shopify's REST error body: {"errors": "..."} or {"errors": {"field": ["..."]}}.
    return JSONResponse({"errors": errors}, status_code=status)


def _encode_cursor(cursor: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(page_info: str) -> dict[str, Any] | None:
    try:
        cursor = json.loads(base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(cursor, dict) or cursor.get("direction") not in ("next", "prev"):
        return None
    if not isinstance(cursor.get("last_id"), int) or not isinstance(cursor.get("filters"), dict):
        return None
    return cursor


def _parse_filters(params: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """The list filters in a request, or the message naming the one that is wrong."""
    filters: dict[str, Any] = {"status": params.get("status", "open")}
    if filters["status"] not in ORDER_STATUSES:
        return filters, f"status: must be one of {', '.join(ORDER_STATUSES)}"
    for name in _TIME_FILTERS:
        if name in params:
            try:
                moment = datetime.fromisoformat(params[name])
            except ValueError:
                return filters, f"{name}: not an ISO 8601 timestamp"
            if moment.tzinfo is None:
                return filters, f"{name}: needs a UTC offset"
            filters[name] = moment.isoformat()
    if "ids" in params:
        try:
            filters["ids"] = sorted({int(part) for part in params["ids"].split(",") if part.strip()})
        except ValueError:
            return filters, "ids: must be comma-separated order ids"
    return filters, None


def _matches(order: dict[str, Any], filters: dict[str, Any]) -> bool:
    status = filters["status"]
    if status == "open" and (order.get("closed_at") or order.get("cancelled_at")):
        return False
    if status == "closed" and not order.get("closed_at"):
        return False
    if status == "cancelled" and not order.get("cancelled_at"):
        return False
    for name, (key, bound) in _TIME_FILTERS.items():
        if name in filters:
            value, limit = datetime.fromisoformat(order[key]), datetime.fromisoformat(filters[name])
            if (bound is min and value < limit) or (bound is max and value > limit):
                return False
    return "ids" not in filters or order["id"] in filters["ids"]


def _project(order: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return order
    wanted = {f.strip() for f in fields.split(",")}
    return {k: v for k, v in order.items() if k in wanted}


def _generated_page(
    generated: GeneratedOrders, filters: dict[str, Any], cursor: dict[str, Any] | None, limit: int
) -> tuple[list[dict[str, Any]], bool, bool]:
    """(page newest first, has a previous page, has a next page) of the generated catalogue, by index arithmetic."""
    if filters["status"] in ("closed", "cancelled"):
        return [], False, False  # generated orders are all open
    bounds = {name: datetime.fromisoformat(filters[name]) for name in ("updated_at_min", "updated_at_max")
              if name in filters}
    span = generated.index_range(bounds.get("updated_at_min"), bounds.get("updated_at_max"))
    for name in ("created_at_min", "created_at_max"):
        if name in filters:  # created_at grows with the index as updated_at does
            moment = datetime.fromisoformat(filters[name])
            cut = next((i for i in (span if name.endswith("min") else reversed(span))
                        if (generated.created_at(i) >= moment if name.endswith("min")
                            else generated.created_at(i) <= moment)), None)
            span = range(0) if cut is None else (range(cut, span.stop) if name.endswith("min")
                                                 else range(span.start, cut + 1))
    if "ids" in filters:
        wanted = sorted({i for i in (generated.index_of(n) for n in filters["ids"]) if i is not None and i in span},
                        reverse=True)
    else:
        wanted = None
    if cursor is not None:
        at = generated.index_of(cursor["last_id"])
        at = (span.stop if cursor["direction"] == "next" else span.start - 1) if at is None else at
    if wanted is not None:
        if cursor is None:
            page = wanted[:limit]
        elif cursor["direction"] == "next":
            page = [i for i in wanted if i < at][:limit]
        else:
            page = [i for i in wanted if i > at][-limit:]
        first, last = (wanted[0], wanted[-1]) if wanted else (None, None)
    else:
        if cursor is None:
            top = span.stop - 1
        elif cursor["direction"] == "next":
            top = min(at - 1, span.stop - 1)
        else:
            top = min(at + limit, span.stop - 1)
        floor = at if cursor is not None and cursor["direction"] == "prev" else span.start - 1
        page = list(range(top, max(top - limit, floor), -1))
        first, last = (span.stop - 1, span.start) if len(span) else (None, None)
    has_prev = bool(page) and first is not None and page[0] < first
    has_next = bool(page) and last is not None and page[-1] > last
    return [generated.order(i) for i in page], has_prev, has_next


def create_app(
    scenario: Scenario,
    *,
    secret: SecretStr,
    access_token: SecretStr,
    target: str | None = None,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    generated: GeneratedOrders | None = None,
) -> Starlette:
    """The store. With ``generated`` its Admin API serves that lazy catalogue instead of the orders it sent."""
    shop = Shop(scenario)
    sending = asyncio.Lock()
    # The GraphQL Admin API's catalogue holds every variant the scenario's orders sell, sent yet or not.
    state = ShopState()
    state.add_order_lines(d.payload() for d in scenario.deliveries)

    def authorized(request: Request) -> bool:
        given = request.headers.get("x-shopify-access-token", "")
        return hmac.compare_digest(given.encode(), access_token.get_secret_value().encode())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def scenario_view(request: Request) -> Response:
        return JSONResponse({**scenario.expected(), "sent_phases": shop.sent_phases})

    async def send(request: Request) -> Response:
        number = request.path_params["phase"]
        if not 1 <= number <= len(scenario.phases):
            return JSONResponse({"error": f"phase: must be 1..{len(scenario.phases)}"}, status_code=404)
        url = request.query_params.get("target") or target
        if not url:
            return JSONResponse({"error": "target: start the sandbox with --target or pass ?target="}, status_code=409)
        # One phase at a time: phase 2 only means something once phase 1 has been answered.
        async with sending:
            results = await send_phase(
                scenario.phases[number - 1],
                target=url,
                secret=secret,
                shop_domain=shop_domain,
                concurrency=concurrency,
                timeout=timeout,
                on_send=shop.record,
            )
            shop.sent_phases.append(number)
        return JSONResponse(
            {
                "phase": number,
                "name": PHASE_NAMES[number - 1],
                "target": url,
                "deliveries": results,
                "totals": summarize(results),
            }
        )

    async def list_orders(request: Request) -> Response:
        if not authorized(request):
            return _error(401, _INVALID_TOKEN)
        params = dict(request.query_params)
        raw_limit = params.get("limit", str(DEFAULT_PAGE_SIZE))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
            return _error(400, {"limit": [f"must be between 1 and {MAX_PAGE_SIZE}"]})
        limit = int(raw_limit)
        if "page_info" in params:
            extra = sorted(set(params) - _PAGE_INFO_COMPANIONS)
            if extra:
                return _error(400, {"page_info": [f"cannot be combined with {', '.join(extra)}"]})
            cursor = _decode_cursor(params["page_info"])
            if cursor is None:
                return _error(400, {"page_info": ["Invalid value."]})
            filters = cursor["filters"]
        else:
            cursor = None
            filters, problem = _parse_filters(params)
            if problem:
                field, _, message = problem.partition(": ")
                return _error(400, {field: [message]})

        # Newest first by id, as Shopify lists orders.
        if generated is not None:
            page, has_prev, has_next = _generated_page(generated, filters, cursor, limit)
        else:
            matching = sorted((o for o in shop.orders() if _matches(o, filters)), key=lambda o: o["id"],
                              reverse=True)
            if cursor is None:
                page = matching[:limit]
            elif cursor["direction"] == "next":
                page = [o for o in matching if o["id"] < cursor["last_id"]][:limit]
            else:
                page = [o for o in matching if o["id"] > cursor["last_id"]][-limit:]
            has_prev = bool(page) and matching[0]["id"] > page[0]["id"]
            has_next = bool(page) and matching[-1]["id"] < page[-1]["id"]

        links = []
        if page:
            link_params: dict[str, Any] = {"limit": limit}
            if params.get("fields"):
                link_params["fields"] = params["fields"]
            first_id, last_id = page[0]["id"], page[-1]["id"]
            if has_prev:
                prev = _encode_cursor({"direction": "prev", "last_id": first_id, "filters": filters})
                links.append(f'<{request.url.replace_query_params(**link_params, page_info=prev)}>; rel="previous"')
            if has_next:
                nxt = _encode_cursor({"direction": "next", "last_id": last_id, "filters": filters})
                links.append(f'<{request.url.replace_query_params(**link_params, page_info=nxt)}>; rel="next"')
        headers = {"Link": ", ".join(links)} if links else {}
        return JSONResponse({"orders": [_project(o, params.get("fields")) for o in page]}, headers=headers)

    async def count_orders(request: Request) -> Response:
        if not authorized(request):
            return _error(401, _INVALID_TOKEN)
        filters, problem = _parse_filters(dict(request.query_params))
        if problem:
            field, _, message = problem.partition(": ")
            return _error(400, {field: [message]})
        if generated is not None and not ({"ids", "created_at_min", "created_at_max"} & set(filters)):
            span = generated.index_range(*(datetime.fromisoformat(filters[name]) if name in filters else None
                                           for name in ("updated_at_min", "updated_at_max")))
            return JSONResponse({"count": 0 if filters["status"] in ("closed", "cancelled") else len(span)})
        if generated is not None:
            return _error(400, {"count": ["with a generated catalogue, filter by updated_at only"]})
        return JSONResponse({"count": sum(1 for o in shop.orders() if _matches(o, filters))})

    async def get_order(request: Request) -> Response:
        if not authorized(request):
            return _error(401, _INVALID_TOKEN)
        if generated is not None:
            index = generated.index_of(request.path_params["order_id"])
            order = None if index is None else generated.order(index)
        else:
            order = shop.order(str(request.path_params["order_id"]))
        if order is None:
            return _error(404, "Not Found")
        return JSONResponse({"order": _project(order, request.query_params.get("fields"))})

    async def announce(request: Request) -> Response:
        try:
            order = json.loads(await request.body())
        except ValueError:
            order = None
        problems = []
        if not isinstance(order, dict):
            problems.append("body: must be a JSON order object")
        else:
            if not isinstance(order.get("id"), int) or isinstance(order.get("id"), bool):
                problems.append("id: must be an integer")
            for name in ("created_at", "updated_at"):
                try:
                    if datetime.fromisoformat(str(order.get(name))).tzinfo is None:
                        problems.append(f"{name}: needs a UTC offset")
                except ValueError:
                    problems.append(f"{name}: not an ISO 8601 timestamp")
        if problems:
            return JSONResponse({"error": "; ".join(problems)}, status_code=400)
        if generated is not None:
            return JSONResponse({"error": "this store serves a generated catalogue"}, status_code=409)
        shop.announce(order)
        return JSONResponse({"announced": order["id"]})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/_sandbox/orders", announce, methods=["POST"]),
            Route("/_sandbox/scenario", scenario_view),
            Route("/_sandbox/phases/{phase:int}/send", send, methods=["POST"]),
            Route("/admin/api/{version}/orders.json", list_orders),
            Route("/admin/api/{version}/orders/count.json", count_orders),
            Route("/admin/api/{version}/orders/{order_id:int}.json", get_order),
            *graphql_routes(shop.orders, authorized, state, lambda: _error(401, _INVALID_TOKEN)),
        ],
        # The API version a request names, answered as Shopify answers it (api_versions.py); server errors and lost
        # answers of the GraphQL API on demand (POST /_sandbox/graphql/faults), for chaos.
        middleware=[Middleware(ApiVersionMiddleware), Middleware(GraphQLFaultsMiddleware)],
    )

