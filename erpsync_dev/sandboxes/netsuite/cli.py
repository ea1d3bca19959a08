"""The NetSuite sandbox's command line: ``python -m erpsync_dev.sandboxes.netsuite`` and ``erpsync sandbox erp``."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import uvicorn

from erpsync_dev.sandboxes.netsuite.latency import (
    NO_LATENCY,
    LatencyProfile,
    LatencyProfileError,
    fixed,
    parse_latency_profile,
)
from erpsync_dev.sandboxes.netsuite.options import (
    DEFAULT_DB,
    DEFAULT_LISTS,
    SandboxOptions,
    parse_items,
    parse_list,
)
from erpsync_dev.sandboxes.netsuite.routes import EXTERNAL_ID, create_app

DEFAULT_PORT = 8700
DESCRIPTION = ("A local stand-in for NetSuite's REST record, SuiteQL and token APIs, run as its own process for demos "
               "and tests.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help=f"port of the REST and token endpoints (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"SQLite file of the records (default {DEFAULT_DB})"
    )
    parser.add_argument("--client-id", default="sandbox", help="client id the token endpoint accepts")
    parser.add_argument("--client-secret", default="sandbox-secret", help="client secret the token endpoint accepts")
    parser.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds an access token is valid")
    # One setting, two spellings: --latency-ms N is fixed:N; the last one given wins, so a caller can append a
    # profile to a command line that already names a fixed latency.
    parser.add_argument("--latency-ms", dest="latency", type=_fixed_latency, default=NO_LATENCY, metavar="MS",
                        help="the same latency for every API and token request (short for --latency-profile fixed:MS)")
    parser.add_argument("--latency-profile", dest="latency", type=_latency_profile, metavar="PROFILE",
                        help="latency of every API and token request: fixed:MS, or lognormal:median=MS,p99=MS[,seed=N]"
                             " (long-tailed, seeded: default seed 1); the last of --latency-ms and this wins")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=5,
        help="account-wide limit of requests in flight; beyond it 429 (0: no limit)",
    )
    parser.add_argument("--fault-rate", type=_rate, default=0.0, help="share of record/query calls that fail at random")
    parser.add_argument(
        "--fault-statuses", type=_statuses, default=(500, 503), help="statuses of random faults, e.g. 500,503"
    )
    parser.add_argument("--throttle-rate", type=_rate, default=0.0,
                        help="share of record/query calls answered 429 at random (counted apart from the limit's)")
    parser.add_argument("--timeout-rate", type=_rate, default=0.0,
                        help="share of record/query calls carried out but answered only after --timeout-hold-seconds")
    parser.add_argument("--timeout-hold-seconds", type=float, default=35.0,
                        help="how long a timed-out answer is held: longer than the client's timeout (default 35)")
    parser.add_argument("--reject-external-ids", type=_external_ids, default=frozenset(),
                        help="comma-separated external ids whose writes are refused for good (400 USER_ERROR)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random faults")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429 and 503")
    parser.add_argument(
        "--items",
        type=parse_items,
        default="1-999",
        help="known item ids: ranges, ids or id=itemid, e.g. 1-999,5000=GIFT",
    )
    parser.add_argument(
        "--customers",
        type=parse_items,
        default="110=Web Store",
        help="customers that exist from the start: id=name, comma separated (default 110=Web Store)",
    )
    parser.add_argument(
        "--list",
        dest="lists",
        type=parse_list,
        action="append",
        default=[],
        help="ids of a list select fields point into, e.g. location=1-9 (repeatable; kinds: "
             + ", ".join(DEFAULT_LISTS) + "; defaults: " + ", ".join(
                 f"{kind} {_ranges(ids)}" for kind, ids in DEFAULT_LISTS.items()) + ")",
    )
    parser.add_argument("--notify-url", metavar="URL",
                        help="post a signed change notice of each saved watched record here, as erpsync's user-event "
                             "script does, e.g. http://127.0.0.1:8600/webhooks/netsuite (default: none)")
    parser.add_argument("--notify-secret", metavar="WHSEC", default=os.environ.get("ERPSYNC_NETSUITE_WEBHOOK_SECRET"),
                        help="Standard Webhooks secret (whsec_...) the notices are signed with (default: "
                             "ERPSYNC_NETSUITE_WEBHOOK_SECRET)")
    parser.add_argument("--notify-types", type=_record_types, default=frozenset({"itemFulfillment", "inventoryItem"}),
                        metavar="TYPES", help="record types whose saves are notified, comma separated (default: "
                                              "itemFulfillment,inventoryItem; an item's notice also covers its prices)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")


def _ranges(ids: frozenset[int]) -> str:
    spans: list[list[int]] = []
    for number in sorted(ids):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(f"{low}-{high}" if low != high else str(low) for low, high in spans)


def _latency_profile(text: str) -> LatencyProfile:
    try:
        return parse_latency_profile(text)
    except LatencyProfileError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def _fixed_latency(text: str) -> LatencyProfile:
    try:
        return fixed(float(text))
    except (ValueError, LatencyProfileError):
        raise argparse.ArgumentTypeError(f"give milliseconds, a non-negative number (got {text!r})") from None


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"give a share between 0 and 1, e.g. 0.05 (got {text!r})")
    return rate


def _external_ids(text: str) -> frozenset[str]:
    ids = frozenset(part.strip() for part in text.split(",") if part.strip())
    if bad := sorted(i for i in ids if not EXTERNAL_ID.fullmatch(i)):
        raise argparse.ArgumentTypeError(f"not external ids (letters, digits, _ and - only): {', '.join(bad)}")
    return ids


def _record_types(text: str) -> frozenset[str]:
    types = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not types or any(not re.fullmatch(r"[a-z][A-Za-z0-9]*", t) for t in types):
        raise argparse.ArgumentTypeError(f"give record types as the REST API names them, e.g. itemFulfillment "
                                         f"(got {text!r})")
    return types


def _statuses(text: str) -> tuple[int, ...]:
    statuses = tuple(int(part) for part in text.split(",") if part.strip())
    if not statuses or any(not 400 <= status <= 599 for status in statuses):
        raise argparse.ArgumentTypeError("give HTTP error statuses, e.g. 500,503")
    return statuses


def options_from_args(args: argparse.Namespace) -> SandboxOptions:
    return SandboxOptions(
        db_path=args.db,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        latency=args.latency,
        concurrency=args.concurrency,
        fault_rate=args.fault_rate,
        fault_statuses=tuple(args.fault_statuses),
        throttle_rate=args.throttle_rate,
        timeout_rate=args.timeout_rate,
        timeout_hold_seconds=args.timeout_hold_seconds,
        reject_external_ids=frozenset(args.reject_external_ids),
        seed=args.seed,
        retry_after=args.retry_after,
        items=args.items,
        customers=args.customers,
        lists={**DEFAULT_LISTS, **dict(args.lists)},
        notify_url=args.notify_url,
        notify_secret=args.notify_secret,
        notify_types=args.notify_types,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; print ``ready on http://HOST:PORT`` once listening."""
    if args.notify_url and not args.notify_secret:
        raise SystemExit("--notify-url needs --notify-secret (or ERPSYNC_NETSUITE_WEBHOOK_SECRET)")
    app = create_app(options_from_args(args))
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: Any) -> None:
        # Before uvicorn installs its handlers this stops the start-up; after it has re-raised the
        # signal on its way out this keeps the exit status 0 for a requested shutdown.
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(_serve(server, args.host))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


async def _serve(server: uvicorn.Server, host: str) -> None:
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"ready on http://{host}:{port}", flush=True)
    await serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erpsync_dev.sandboxes.netsuite", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
