"""The shop sandbox's command line: ``python -m erpsync_dev.sandboxes.shopify`` and ``erpsync sandbox shop``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from datetime import datetime
from typing import Any

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from erpsync.errors import ConfigError
from erpsync_dev.sandboxes.shopify.admin_api import create_app
from erpsync_dev.sandboxes.shopify.webhooks import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, send_phase, summarize
from erpsync_dev.scenarios.demo import (
    DEFAULT_SHOP_DOMAIN,
    DEMO_SKUS,
    PHASE_NAMES,
    UNKNOWN_SKU,
    GeneratedOrders,
    Scenario,
    build_demo_scenario,
)

DEFAULT_PORT = 8800
DEFAULT_ACCESS_TOKEN = "shpat_sandbox"
SECRET_ENV = "ERPSYNC_SHOPIFY_WEBHOOK_SECRET"
ACCESS_TOKEN_ENV = "ERPSYNC_SHOPIFY_ACCESS_TOKEN"
DESCRIPTION = ("The shop sandbox: a Shopify-like store that sends the demo's signed order webhooks and serves its "
               "Admin API.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "send"),
        default="serve",
        help="serve: run the store (webhook sender + Admin API) until stopped; send: deliver the phases once and exit",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (serve)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="port to listen on; 0 picks a free one (serve; default: %(default)s)")
    parser.add_argument(
        "--target", help="URL of the receiver's Shopify webhook endpoint, e.g. http://127.0.0.1:8600/webhooks/shopify"
    )
    parser.add_argument("--secret", help=f"webhook signing secret (default: ${SECRET_ENV}); prefer the environment")
    parser.add_argument("--orders", type=int, default=50, help="number of orders in the scenario")
    parser.add_argument("--seed", type=int, help="scenario seed; a random one is drawn and shown in /_sandbox/scenario")
    parser.add_argument("--shop-domain", default=DEFAULT_SHOP_DOMAIN, help="sent as X-Shopify-Shop-Domain")
    parser.add_argument(
        "--access-token",
        help=f"Admin API token the store accepts (default: ${ACCESS_TOKEN_ENV} or {DEFAULT_ACCESS_TOKEN})",
    )
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="deliveries in flight at once")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each answer")
    parser.add_argument("--skus", help=f"comma-separated SKU catalogue (default: {','.join(DEMO_SKUS)})")
    parser.add_argument("--unknown-sku", default=UNKNOWN_SKU, help="SKU of the one order that must dead-letter")
    parser.add_argument("--phase", type=int, action="append", help="send: only this phase (repeatable); default all")
    parser.add_argument(
        "--generated-orders", type=int, default=0, metavar="N",
        help="serve a lazy catalogue of N generated orders in the Admin API instead of the orders sent (benchmarks)",
    )
    parser.add_argument("--generated-seed", type=int, default=1, help="seed of the generated catalogue")
    parser.add_argument(
        "--generated-start", default="2026-11-26T00:00:00+00:00",
        help="created_at of the first generated order (ISO 8601 with offset); they spread over two days",
    )


def run(args: argparse.Namespace) -> int:
    secret_value = args.secret or os.environ.get(SECRET_ENV)
    if not secret_value:
        print(f"shop sandbox: a webhook secret is required (--secret or ${SECRET_ENV})", file=sys.stderr)
        return 2
    secret = SecretStr(secret_value)
    access_token = SecretStr(args.access_token or os.environ.get(ACCESS_TOKEN_ENV) or DEFAULT_ACCESS_TOKEN)
    if args.concurrency < 1:
        print("shop sandbox: --concurrency must be at least 1", file=sys.stderr)
        return 2
    skus = [s.strip() for s in args.skus.split(",") if s.strip()] if args.skus else list(DEMO_SKUS)
    try:
        scenario = build_demo_scenario(
            args.orders, args.seed, skus=skus, unknown_sku=args.unknown_sku, shop_domain=args.shop_domain
        )
    except ConfigError as exc:
        print(f"shop sandbox: {exc}", file=sys.stderr)
        return 2

    if args.command == "send":
        if not args.target:
            print("shop sandbox: send needs --target", file=sys.stderr)
            return 2
        return asyncio.run(_send_once(scenario, args, secret))

    generated = None
    if args.generated_orders:
        try:
            start = datetime.fromisoformat(args.generated_start)
            generated = GeneratedOrders(args.generated_orders, args.generated_seed, start=start,
                                        shop_domain=args.shop_domain)
        except (ValueError, ConfigError) as exc:
            print(f"shop sandbox: --generated-*: {exc}", file=sys.stderr)
            return 2
    app = create_app(
        scenario,
        secret=secret,
        access_token=access_token,
        target=args.target,
        shop_domain=args.shop_domain,
        concurrency=args.concurrency,
        timeout=args.timeout,
        generated=generated,
    )
    # Bound here rather than by uvicorn, so a busy port is a plain error message and --port 0 can be reported.
    try:
        listener = socket.create_server(
            (args.host, args.port), family=socket.AF_INET6 if ":" in args.host else socket.AF_INET
        )
    except OSError as exc:
        print(f"shop sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    with listener:
        return asyncio.run(_serve(app, listener))


async def _send_once(scenario: Scenario, args: argparse.Namespace, secret: SecretStr) -> int:
    numbers = args.phase or list(range(1, len(scenario.phases) + 1))
    for number in numbers:
        if not 1 <= number <= len(scenario.phases):
            print(f"shop sandbox: --phase must be 1..{len(scenario.phases)}", file=sys.stderr)
            return 2
    report: dict[str, Any] = {"seed": scenario.seed, "expected": scenario.counts(), "phases": []}
    for number in numbers:
        results = await send_phase(
            scenario.phases[number - 1],
            target=args.target,
            secret=secret,
            shop_domain=args.shop_domain,
            concurrency=args.concurrency,
            timeout=args.timeout,
        )
        failures = [r for r in results if r["status"] is None or not 200 <= r["status"] < 300]
        report["phases"].append(
            {"phase": number, "name": PHASE_NAMES[number - 1], "totals": summarize(results), "failures": failures}
        )
    print(json.dumps(report, indent=2), flush=True)
    return 0 if all(not p["failures"] for p in report["phases"]) else 1


async def _serve(app: Starlette, listener: socket.socket) -> int:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    # uvicorn installs its own handlers while serving and afterwards re-raises the signal it caught through
    # the handler that was there before; these make that (and a signal during startup) a clean stop, exit 0.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            await serving
            return 1
        await asyncio.sleep(0.02)
    host, port = listener.getsockname()[:2]
    print(f"ready on http://{f'[{host}]' if ':' in host else host}:{port}", flush=True)
    await serving
    return 0




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erpsync_dev.sandboxes.shopify", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
