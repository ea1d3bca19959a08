"""The NetSuite sandbox's front door: the bearer check, the account-wide concurrency limit (429), latency,
injected faults, timeouts and rejections, and the counters that show what callers asked of the account."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from erpsync_dev.sandboxes.netsuite.auth import TokenIssuer
from erpsync_dev.sandboxes.netsuite.error_bodies import (
    concurrency_error,
    invalid_login,
    netsuite_error,
    not_found,
    retry_after_header,
)
from erpsync_dev.sandboxes.netsuite.options import SandboxOptions


@dataclass
class Fault:
    status: int | None
    retry_after: float | None
    delay_ms: float
    # Seconds the answer is held after the request was carried out: the client times out, the write stands.
    hold_seconds: float = 0.0
    # Applies to the next call whose URL path contains this text (None: the next call of any kind). A test that
    # holds one record write must not lose its fault to a scheduled change poll's SuiteQL query.
    path: str | None = None


class FrontDoor:
    """Counters, queued faults and the in-flight gauge of the account; wraps the API endpoints that go through it."""

    def __init__(self, options: SandboxOptions, auth: TokenIssuer) -> None:
        self.options = options
        self.auth = auth
        self.faults: list[Fault] = []
        self.random = random.Random(options.seed)
        self.in_flight = 0
        self.latency = options.latency.sampler()
        self.reset_stats()

    def reset_stats(self) -> None:
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.peak_in_flight = 0
        self.peak_offered = 0
        self.api_requests = 0
        self.slot_requests = 0
        self.auth.tokens_issued = 0
        self.faults_injected = 0
        self.throttled_by_limit = 0
        self.throttled_injected = 0
        self.timeouts_injected = 0
        self.rejections_injected = 0
        self.busy_seconds = 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(status): count for status, count in sorted(self.by_status.items())},
            "too_many_requests": self.by_status[429],
            "unauthorized": self.by_status[401],
            # 429s split by cause: the account's concurrency limit (the callers' doing) or injected at random.
            "api_requests": self.api_requests,  # record and query calls, authorised: where faults are drawn
            "throttled_by_limit": self.throttled_by_limit,
            "throttled_injected": self.throttled_injected,
            "timeouts_injected": self.timeouts_injected,
            "rejections_injected": self.rejections_injected,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            # Requests at the door at once, the refused ones included: what the callers asked of the limit.
            "peak_offered": self.peak_offered,
            # Seconds requests spent counted against the limit, summed: over concurrency × time, how busy the
            # callers kept the account.
            "busy_seconds": round(self.busy_seconds, 3),
            # Requests that took a slot (not refused by the limit): busy_seconds over these is the mean time one
            # request holds a slot here, which sets the ceiling any caller can reach: concurrency / that time.
            "slot_requests": self.slot_requests,
            "latency_profile": self.options.latency.spec(),
            "tokens_issued": self.auth.tokens_issued,
            "faults_injected": self.faults_injected,
        }

    # -- request plumbing --

    def counted(self, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def count(request: Request) -> Response:
            self.requests += 1
            response = await endpoint(request)
            self.by_status[response.status_code] += 1
            return response

        return count

    def governed(self, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Bearer check, then the account-wide concurrency limit, latency and faults, like NetSuite's front door."""

        async def govern(request: Request) -> Response:
            if not self.auth.authorized(request):
                return invalid_login()
            limit = self.options.concurrency
            self.api_requests += 1
            self.peak_offered = max(self.peak_offered, self.in_flight + 1)
            if limit and self.in_flight >= limit:
                self.throttled_by_limit += 1
                return concurrency_error(self.options.retry_after)
            self.in_flight += 1
            self.slot_requests += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            entered = time.monotonic()
            hold = 0.0
            try:
                # Read the whole request first: like NetSuite, a request that arrived is carried out
                # even if the caller stops waiting for the answer.
                await request.body()
                if delay := self.latency():
                    await asyncio.sleep(delay)
                if (rejected := self._injected_rejection(request)) is not None:
                    return rejected
                fault = self._next_fault(request.url.path)
                if fault is not None:
                    self.faults_injected += 1
                    if fault.delay_ms:
                        await asyncio.sleep(fault.delay_ms / 1000)
                    if fault.status is not None:
                        if fault.status == 429:
                            self.throttled_injected += 1
                        return self._fault_response(fault)
                    if fault.hold_seconds:
                        self.timeouts_injected += 1
                        hold = fault.hold_seconds
                response = await endpoint(request)
            finally:
                self.in_flight -= 1
                self.busy_seconds += time.monotonic() - entered
            if hold:
                # The work is done and no longer counts against the limit; only the answer is late.
                await asyncio.sleep(hold)
            return response

        return self.counted(govern)

    def _next_fault(self, path: str) -> Fault | None:
        for i, queued in enumerate(self.faults):
            if queued.path is None or queued.path in path:
                return self.faults.pop(i)
        o = self.options
        if not (o.fault_rate or o.throttle_rate or o.timeout_rate):
            return None
        # One draw decides between the kinds, so their rates add up and never overlap.
        draw = self.random.random()
        if draw < o.fault_rate:
            status = self.random.choice(o.fault_statuses)
            return Fault(status, o.retry_after if status in (429, 503) else None, 0)
        if draw < o.fault_rate + o.throttle_rate:
            return Fault(429, o.retry_after, 0)
        if draw < o.fault_rate + o.throttle_rate + o.timeout_rate:
            return Fault(None, None, 0, hold_seconds=o.timeout_hold_seconds)
        return None

    def _injected_rejection(self, request: Request) -> Response | None:
        """A write to an external id marked as rejected: refused for good, as NetSuite refuses a bad record."""
        if request.method not in ("PUT", "POST") or not self.options.reject_external_ids:
            return None
        ref = request.path_params.get("ref", "")
        external_id = ref[4:] if ref.startswith("eid:") else None
        if external_id not in self.options.reject_external_ids:
            return None
        self.rejections_injected += 1
        detail = f"The sandbox refuses record {external_id} (an injected permanent rejection)."
        return netsuite_error(400, "USER_ERROR", detail, "externalId")

    def _fault_response(self, fault: Fault) -> Response:
        assert fault.status is not None
        if fault.status == 429:
            return concurrency_error(fault.retry_after)
        headers = retry_after_header(fault.retry_after)
        if fault.status == 401:
            return invalid_login()
        if fault.status == 404:
            return not_found()
        if fault.status == 500:
            detail = f"An unexpected error occurred. Error ID: {secrets.token_hex(10)}"
            return netsuite_error(500, "UNEXPECTED_ERROR", detail, headers=headers)
        code = "USER_ERROR" if fault.status < 500 else "SERVICE_UNAVAILABLE"
        return netsuite_error(fault.status, code, "The sandbox injected this fault.", headers=headers)

    def queue_faults(self, spec: Any) -> JSONResponse:
        """``POST /_sandbox/faults``: queue ``count`` faults for the next API calls; 400 names what is wrong.

        With ``path``, a fault waits for a call whose URL path contains it and other calls pass untouched.
        """
        if not isinstance(spec, dict):
            return JSONResponse({"error": "expected a JSON object"}, 400)
        status, count = spec.get("status"), spec.get("count", 1)
        retry_after, delay_ms = spec.get("retry_after"), spec.get("delay_ms", 0)
        hold_seconds, path = spec.get("hold_seconds", 0), spec.get("path")
        problems = []
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            problems.append("status must be an HTTP error status (400-599)")
        if status is None and not delay_ms and not hold_seconds:
            problems.append("give status, delay_ms, hold_seconds or status with delay_ms")
        if status is not None and hold_seconds:
            problems.append("hold_seconds holds the answer of a request that is carried out: give it without status")
        if not isinstance(hold_seconds, (int, float)) or hold_seconds < 0:
            problems.append("hold_seconds must be a non-negative number")
        if not isinstance(count, int) or count < 1:
            problems.append("count must be a positive integer")
        if retry_after is not None and not (isinstance(retry_after, (int, float)) and retry_after >= 0):
            problems.append("retry_after must be a non-negative number")
        if not isinstance(delay_ms, (int, float)) or delay_ms < 0:
            problems.append("delay_ms must be a non-negative number")
        if path is not None and not (isinstance(path, str) and path):
            problems.append("path must be a non-empty string (part of the URL path the fault applies to)")
        if problems:
            return JSONResponse({"error": "; ".join(problems)}, 400)
        if retry_after is None and status in (429, 503):
            retry_after = self.options.retry_after
        self.faults.extend(Fault(status, retry_after, delay_ms, hold_seconds, path) for _ in range(count))
        return JSONResponse({"queued": len(self.faults)})
