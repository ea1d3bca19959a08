"""Faults the shop sandbox's GraphQL Admin API can inject, for `make chaos`: server errors before a call runs, and
answers lost after it ran.

Shopify's API answers 5xx for its own trouble (https://shopify.dev/docs/api/usage/response-codes: 500 Internal
Server Error, 502 Bad Gateway, 503 Service Unavailable, 504 Gateway Timeout — "the request couldn't complete in
time"). A client cannot tell from a 504 whether the mutation took effect, so the sandbox injects both: ``rate`` of
the calls answered with one of ``statuses`` without running, ``lost_rate`` of them run and then answered 504, so
the writer's guard against fulfilling one shipment twice is exercised. Off unless configured
(``POST /_sandbox/graphql/faults``; ``GET`` shows the settings and counts). An ASGI middleware around the store's
app, so the API's own code is untouched: a fault is what a proxy in front of it would do.
"""

from __future__ import annotations

import json
import random
import re
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

GRAPHQL_PATH = re.compile(r"^/admin/api/[^/]+/graphql\.json$")
FAULTS_PATH = "/_sandbox/graphql/faults"

DEFAULT_STATUSES = (500, 502, 503)
KNOWN = {"rate", "lost_rate", "statuses", "seed"}


class GraphQLFaults:
    def __init__(self) -> None:
        self.rate = 0.0
        self.lost_rate = 0.0
        self.statuses: tuple[int, ...] = DEFAULT_STATUSES
        self._random = random.Random()
        self._lock = threading.Lock()
        self.counts = {"calls": 0, "failed": 0, "lost": 0}

    def configure(self, settings: Any) -> list[str]:
        """Apply ``{"rate", "lost_rate", "statuses", "seed"}``; the problems, naming each bad setting, else []."""
        if not isinstance(settings, dict):
            return ["body: must be a JSON object, e.g. {\"rate\": 0.05, \"lost_rate\": 0.02}"]
        problems = [f"{name}: unknown setting (known: {', '.join(sorted(KNOWN))})" for name in settings
                    if name not in KNOWN]
        for name in ("rate", "lost_rate"):
            value = settings.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                problems.append(f"{name}: a share of the calls, between 0 and 1")
        statuses = settings.get("statuses", list(DEFAULT_STATUSES))
        if (not isinstance(statuses, list) or not statuses
                or not all(isinstance(s, int) and not isinstance(s, bool) and 500 <= s <= 599 for s in statuses)):
            problems.append("statuses: a list of 5xx status codes, e.g. [500, 502, 503]")
        seed = settings.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            problems.append("seed: an integer")
        if problems:
            return problems
        with self._lock:
            self.rate, self.lost_rate = float(settings.get("rate", 0)), float(settings.get("lost_rate", 0))
            self.statuses = tuple(statuses)
            self._random = random.Random(seed)
            self.counts = {"calls": 0, "failed": 0, "lost": 0}
        return []

    def before(self) -> int | None:
        """The status to answer instead of running this call, or None to run it."""
        with self._lock:
            self.counts["calls"] += 1
            if self.rate and self._random.random() < self.rate:
                self.counts["failed"] += 1
                return self._random.choice(self.statuses)
        return None

    def lose_answer(self) -> bool:
        """Whether the answer of a call that ran is lost (504 instead)."""
        with self._lock:
            if self.lost_rate and self._random.random() < self.lost_rate:
                self.counts["lost"] += 1
                return True
        return False

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"rate": self.rate, "lost_rate": self.lost_rate, "statuses": list(self.statuses), **self.counts}


class GraphQLFaultsMiddleware:
    """Injects ``GraphQLFaults`` into ``POST /admin/api/<version>/graphql.json`` and serves their settings."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.faults = GraphQLFaults()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == FAULTS_PATH:
            response = await self._settings(Request(scope, receive))
            await response(scope, receive, send)
            return
        if scope.get("method") != "POST" or not GRAPHQL_PATH.match(path):
            await self.app(scope, receive, send)
            return
        status = self.faults.before()
        if status is not None:
            await JSONResponse({"errors": "Internal Server Error" if status == 500 else "Service Unavailable"},
                               status_code=status)(scope, receive, send)
            return
        if not self.faults.lost_rate:
            await self.app(scope, receive, send)
            return
        # Run the call to its end, then decide whether its answer reaches the client.
        held: list[dict] = []

        async def keep(message: dict) -> None:
            held.append(message)

        await self.app(scope, receive, keep)
        if self.faults.lose_answer():
            await JSONResponse({"errors": "Gateway Timeout"}, status_code=504)(scope, receive, send)
            return
        for message in held:
            await send(message)

    async def _settings(self, request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                settings = json.loads(await request.body() or b"{}")
            except ValueError:
                settings = None
            problems = self.faults.configure(settings)
            if problems:
                return JSONResponse({"error": "; ".join(problems)}, status_code=400)
        elif request.method != "GET":
            return JSONResponse({"error": "GET or POST"}, status_code=405)
        return JSONResponse(self.faults.state())
