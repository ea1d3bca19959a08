"""Reading one window of a shop's orders on the GraphQL Admin API, page by page against one bulk operation.

The shop sandbox (a process, its scenario of N orders sent to a target nobody listens on, so the store keeps what it
"sent") throttles by calculated query cost at a standard plan's rate (a bucket of 2,000 points refilled at 100 a
second, erpsync_dev/sandboxes/shopify/graphql_store.py). The reader (erpsync/systems/shopify/orders_graphql.py)
reads the whole window each way, several times, each run with a full bucket (reset between runs); the figures are the
median seconds, their spread, the calls made, the points the shop charged and the throttles our calls caused.

    .venv/bin/python bench/shop_order_reads.py --orders 60 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from erpsync.settings import PROJECT_DIR  # noqa: E402
from erpsync.systems.shopify.graphql import ShopifyGraphQL  # noqa: E402
from erpsync.systems.shopify.orders_graphql import ShopifyOrderReader  # noqa: E402
from erpsync_dev.processes import ProcessGroup, free_port, python_module  # noqa: E402

HOME = PROJECT_DIR / ".erpsync" / "bench" / "shop-order-reads"
TOKEN = "shpat_bench_reads"


def read_once(shop_url: str, threshold: int) -> dict:
    httpx.post(f"{shop_url}/_sandbox/graphql/throttle", json={"plan": "standard", "resetCounts": True},
               timeout=30).raise_for_status()
    now = datetime.now(UTC)
    with ShopifyOrderReader(ShopifyGraphQL(shop_url, SecretStr(TOKEN)), bulk_threshold=threshold) as reader:
        started = time.perf_counter()
        orders = sum(len(page) for page in reader.order_pages(updated_at_min=now - timedelta(days=2),
                                                              updated_at_max=now + timedelta(days=1)))
        seconds = time.perf_counter() - started
        calls, throttled, path = reader.calls, reader.graphql.throttled, reader.last_path
    bucket = httpx.get(f"{shop_url}/_sandbox/graphql/throttle", timeout=30).json()
    return {"path": path, "orders": orders, "seconds": seconds, "calls": calls, "throttled_by_shop": bucket["throttled"],
            "throttled_seen": throttled, "points": bucket["pointsSpent"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=60, help="orders in the shop's window (default 60)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each way (default 3)")
    args = parser.parse_args(argv)
    HOME.mkdir(parents=True, exist_ok=True)
    port = free_port()
    group = ProcessGroup(log_dir=HOME / "logs", env=dict(os.environ), cwd=PROJECT_DIR)
    group.start("shop-sandbox", python_module(
        "erpsync_dev.sandboxes.shopify", "serve", "--port", str(port), "--secret", "bench-secret",
        "--access-token", TOKEN, "--orders", str(args.orders), "--seed", "3",
        "--target", "http://127.0.0.1:9/webhooks/shopify", "--timeout", "0.2"))
    url = f"http://127.0.0.1:{port}"
    results: dict[str, list[dict]] = {"pages": [], "bulk": []}
    try:
        group.wait_http("shop sandbox", f"{url}/healthz")
        for phase in (1, 2):
            httpx.post(f"{url}/_sandbox/phases/{phase}/send", timeout=120).raise_for_status()
        for _ in range(args.runs):
            results["pages"].append(read_once(url, threshold=10**9))
            results["bulk"].append(read_once(url, threshold=0))
    finally:
        group.stop()
    summary = {}
    for way, runs in results.items():
        times = [r["seconds"] for r in runs]
        summary[way] = {"orders": runs[0]["orders"], "median_seconds": round(statistics.median(times), 2),
                        "min_seconds": round(min(times), 2), "max_seconds": round(max(times), 2),
                        "calls": runs[0]["calls"], "points": round(statistics.median(r["points"] for r in runs)),
                        "throttled_by_shop": sum(r["throttled_by_shop"] for r in runs)}
    summary["pages_over_bulk"] = round(summary["pages"]["median_seconds"] / summary["bulk"]["median_seconds"], 1)
    print(json.dumps({"runs": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
