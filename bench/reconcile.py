"""`make bench` reconciliation: records compared per second and peak memory for N orders, over real HTTP.

The shop sandbox serves a lazy catalogue of N generated orders through its Admin API (each page computed on
demand). The ERP sandbox is seeded in bulk (``POST /_sandbox/bulk/salesOrder``, a few thousand records per
request) with what the sync would have written for them, through the shipped order mapping, minus the
injected drift:

    deleted           every 997th order is not in the ERP (someone deleted it)
    never delivered   every 1013th order is not in the ERP (its webhook never arrived)
    edited by hand    every 1009th order has a changed quantity in the ERP, modified an hour later
    ERP-only          5 sales orders with our external-id prefix that the shop does not have

The reconciliation itself runs in a child process (``python bench/reconcile.py --child …``) that reports its
own peak RSS (``ru_maxrss``): the figure is the memory of the process doing the reconciliation, not of the
sandboxes or of this one. Its ledger is a fresh SQLite file; repairs are queued in its inbox, left for the
sweep (no Prefect here).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from erpsync.settings import PROJECT_DIR  # noqa: E402
from erpsync_dev.processes import ProcessGroup, free_port, python_module  # noqa: E402
from erpsync_dev.scenarios.demo import GeneratedOrders  # noqa: E402

HOME = PROJECT_DIR / ".erpsync" / "bench" / "reconcile"
SEED = 5
START = datetime(2026, 11, 26, tzinfo=UTC)
SPAN = timedelta(days=2)
ACCESS_TOKEN = "shpat_bench"
CLIENT_ID, CLIENT_SECRET = "sandbox", "sandbox-secret"
SEED_BATCH = 2000
DELETED, NEVER_DELIVERED, EDITED = 997, 1013, 1009
ERP_ONLY = 5


def injected(index: int) -> str | None:
    """The drift injected at this order index, if any (deleted and never-delivered look alike to the ERP)."""
    if index % DELETED == 1:
        return "deleted"
    if index % NEVER_DELIVERED == 3:
        return "never_delivered"
    if index % EDITED == 2:
        return "edited"
    return None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed_erp(http: httpx.Client, erp_url: str, orders: int) -> dict[str, int]:
    """What the sync would have written for every order, with the drift injected; counts of each kind."""
    from erpsync.mapping import find_mapping

    mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/updated")
    generated = GeneratedOrders(orders, SEED, start=START, span=SPAN)
    counts = {"seeded": 0, "deleted": 0, "never_delivered": 0, "edited": 0, "erp_only": ERP_ONLY}
    batch: list[dict] = []

    def flush() -> None:
        if batch:
            http.post(f"{erp_url}/_sandbox/bulk/salesOrder", json={"records": batch}).raise_for_status()
            counts["seeded"] += len(batch)
            batch.clear()

    for index in range(orders):
        kind = injected(index)
        if kind in ("deleted", "never_delivered"):
            counts[kind] += 1
            continue
        record = mapping.apply(generated.order(index))
        # Written a couple of seconds after the order changed, as the webhook path would.
        modified = generated.updated_at(index) + timedelta(seconds=2)
        if kind == "edited":
            counts["edited"] += 1
            record.body["item"]["items"][0]["quantity"] += 1
            modified += timedelta(hours=1)
        batch.append({"externalId": record.external_id, "body": record.body, "lastModified": _stamp(modified)})
        if len(batch) == SEED_BATCH:
            flush()
    for n in range(1, ERP_ONLY + 1):
        body = {"entity": {"id": "110"}, "item": {"items": [{"item": {"id": "98"}, "quantity": 1, "rate": 5.0}]}}
        batch.append({"externalId": f"shopify-order-{n}", "body": body, "lastModified": _stamp(START + SPAN)})
    flush()
    return counts


def child(args: argparse.Namespace) -> int:
    """Run one reconciliation against the sandboxes and print its figures as JSON (this process's peak RSS)."""
    from pydantic import SecretStr

    from erpsync.ledger import Ledger
    from erpsync.mapping import find_mapping
    from erpsync.reconcile import Window, run_reconciliation
    from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
    from erpsync.systems.netsuite.sales_orders import ErpSalesOrders
    from erpsync.systems.shopify.admin import ShopifyAdminClient

    home = Path(args.home)
    ledger = Ledger.connect(f"sqlite:///{home / 'ledger.db'}")
    mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/updated")
    settings = NetSuiteSettings(base_url=args.erp_url, client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET))
    window = Window(START, START + SPAN + timedelta(hours=2))
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with NetSuiteClient(settings) as erp_client, ShopifyAdminClient(args.shop_url, SecretStr(ACCESS_TOKEN)) as shop:
        erp = ErpSalesOrders(erp_client, external_id_prefix="shopify-order-")
        result = run_reconciliation(window, shop=shop, erp=erp, ledger=ledger, mapping=mapping,
                                    spool=home / "spool.sqlite", run_id="bench")
        seconds = time.perf_counter() - started
        calls = {"shop_calls": shop.calls, "suiteql_queries": erp.queries}
    ledger.close()
    stats = result.drift.stats
    print(json.dumps({
        "compared": stats.compared, "source_records": stats.source_records, "erp_records": stats.erp_records,
        "seconds": round(seconds, 1), "compared_per_second": round(stats.compared / seconds),
        "classify_seconds": round(stats.classify_seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_run_mib": round(baseline_kib / 1024, 1),
        "drift": result.summary.drift, "repairs_planned": result.summary.repairs_planned,
        "repairs_enqueued": result.summary.repairs_enqueued, **calls,
    }))
    return 0


def bench_reconcile(orders: int) -> dict:
    """Start both sandboxes, seed the ERP, run the reconciliation in a child process; its figures."""
    home = HOME / str(orders)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    erp_port, shop_port = free_port(), free_port()
    group = ProcessGroup(log_dir=home / "logs", env=dict(os.environ), cwd=PROJECT_DIR)
    group.start("erp-sandbox", python_module(
        "erpsync_dev.sandboxes.netsuite", "--port", str(erp_port), "--db", str(home / "erp-sandbox.db"),
        "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET))
    group.start("shop-sandbox", python_module(
        "erpsync_dev.sandboxes.shopify", "serve", "--port", str(shop_port), "--secret", "bench-secret",
        "--access-token", ACCESS_TOKEN, "--generated-orders", str(orders), "--generated-seed", str(SEED),
        "--generated-start", START.isoformat()))
    erp_url, shop_url = f"http://127.0.0.1:{erp_port}", f"http://127.0.0.1:{shop_port}"
    try:
        group.wait_http("ERP sandbox", f"{erp_url}/healthz")
        group.wait_http("shop sandbox", f"{shop_url}/healthz")
        with httpx.Client(timeout=600) as http:
            started = time.perf_counter()
            injected_counts = seed_erp(http, erp_url, orders)
            seed_seconds = time.perf_counter() - started
        run = subprocess.run([sys.executable, __file__, "--child", "--home", str(home), "--erp-url", erp_url,
                              "--shop-url", shop_url], capture_output=True, text=True, timeout=3600, cwd=PROJECT_DIR)
        if run.returncode != 0:
            raise SystemExit(f"reconciliation of {orders} orders failed:\n{run.stderr[-3000:]}")
        figures = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        group.stop()
    missing = injected_counts["deleted"] + injected_counts["never_delivered"]
    found = figures["drift"]
    figures["injected"] = injected_counts
    figures["seed_seconds"] = round(seed_seconds, 1)
    figures["all_injected_found"] = (found["missing_in_erp"] == missing and found["mismatch"] == injected_counts[
        "edited"] and found["erp_only"] == ERP_ONLY)
    return {"orders": orders, **figures}


def markdown(results: list[dict]) -> str:
    lines = ["| orders | compared | seconds | compared/s | peak RSS (MiB) | RSS before the run (MiB) | "
             "missing / mismatch / ERP-only found | all injected found |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        d = r["drift"]
        lines.append(f"| {r['orders']} | {r['compared']} | {r['seconds']} | {r['compared_per_second']} | "
                     f"{r['peak_rss_mib']} | {r['rss_before_run_mib']} | {d['missing_in_erp']} / {d['mismatch']} / "
                     f"{d['erp_only']} | {r['all_injected_found']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, action="append", help="catalogue sizes (default 10000 and 100000)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--erp-url", help=argparse.SUPPRESS)
    parser.add_argument("--shop-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    results = []
    for orders in args.orders or [10_000, 100_000]:
        print(f"reconciliation of {orders} orders…", file=sys.stderr)
        results.append(bench_reconcile(orders))
    print(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
