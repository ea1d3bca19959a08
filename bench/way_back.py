"""The way back's figures (docs/BENCHMARKS.md, "The way back"): the delay from a change in the ERP to the shop by the
way it came in, and inventory updates per second against the shop's cost budget.

Each run starts the local stack as the demo does (SQLite, one `erpsync worker` running up to 4 runs at once, the
poll-netsuite flow scheduled every 60 s), gives the shop a catalogue of bench SKUs and orders of one line each (the
ERP gets their sales orders), then:

1. notice: changes one at a time, 2 s apart, alternating a shipment and a stock count, with the ERP sandbox posting
   the user-event script's notices; the delay is from the ERP's answer to the write until the shop shows it (the
   shop's /_sandbox views are read every 0.25 s);
2. reader: the same with notices off, spread over a minute: only the scheduled poll-netsuite run reads them (after
   ERPSYNC_NETSUITE_CHANGE_SETTLE_SECONDS), so the delay includes the wait for the next scheduled pass;
3. inventory burst: notices on, N items counted back to back, each by an inventory adjustment (2 locations each,
   so 2N inventory levels; an item new to the ERP is saved first, which adds its own and its price notice); levels set per second from the first save to the last level shown, the points
   the shop's cost bucket gave out over the restore rate times that time, and THROTTLED answers (erpsync is the
   shop's only client here, so every throttle is caused by us).

Prints each run and the median with the spread (min–max) over runs; writes JSON.

    .venv/bin/python bench/way_back.py                  # 3 runs (about 15 minutes on a 2-core VM)
    .venv/bin/python bench/way_back.py --runs 1 --changes 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

from erpsync.errors import ConfigError
from erpsync.ledger import Ledger
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.client import NetSuiteClient
from erpsync_dev.processes import free_port, interrupt_on_signals
from erpsync_dev.stack import LocalStack, StackConfig
from erpsync_dev.way_back import (
    NOTICE,
    READER,
    Change,
    Shipment,
    ShopView,
    ShopWatcher,
    StockCount,
    Warehouse,
    location_map,
    netsuite_events,
    percentile,
    safety_buffer,
    wait_for_events,
)

FIRST_ORDER = 7_700_000_001
FIRST_VARIANT = 4_770_000_001
CARRIER = ("913", "UPS")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/way_back.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs, each on a fresh stack (%(default)s)")
    p.add_argument("--changes", type=int, default=10, help="changes per way in and run (%(default)s)")
    p.add_argument("--burst", type=int, default=20, help="items counted at once in the inventory burst (%(default)s)")
    p.add_argument("--reader-spread", type=float, default=60.0,
                   help="seconds over which the reader's changes are spread (%(default)s)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each phase (%(default)s)")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--result", type=Path, default=PROJECT_DIR / ".erpsync" / "bench" / "way_back.json")
    args = p.parse_args(argv)
    if args.runs < 1 or args.changes < 2 or args.burst < 1:
        p.error("--runs at least 1, --changes at least 2, --burst at least 1")
    return args


def bench_catalogue(http: httpx.Client, erp: NetSuiteClient, shop_url: str, *, orders: int, skus: int
                    ) -> tuple[list[Shipment], list[dict]]:
    """Orders of one line each, in the shop and (as the way in writes them) in the ERP, and a catalogue of bench SKUs:
    what the ERP's changes will ship and count. No customer data: ids and SKUs only."""
    lines = []
    for n in range(max(orders, skus)):
        sku = f"BENCH-{n + 1:03d}"
        lines.append({"id": 9_100_000_000 + n, "variant_id": FIRST_VARIANT + n, "product_id": 3_770_000_000 + n,
                      "sku": sku, "title": sku, "quantity": 1, "price": "10.00"})
    shipments = []
    for n in range(orders):
        order_id = FIRST_ORDER + n
        line = lines[n]
        http.post(f"{shop_url}/_sandbox/orders", json={
            "id": order_id, "name": f"#B{n + 1}", "created_at": "2026-12-01T09:00:00+00:00",
            "updated_at": "2026-12-01T09:00:00+00:00", "line_items": [line]}).raise_for_status()
        sales_order = erp.upsert("salesOrder", f"shopify-order-{order_id}", {
            "entity": {"id": "110"}, "tranDate": "2026-12-01",
            "item": {"items": [{"item": {"id": str(100 + n % 700)}, "quantity": 1, "rate": 10,
                                "custcol_erpsync_line_key": str(line["id"])}]}})
        shipments.append(Shipment(kind="shipment", path="", label=f"bench order {n + 1}", order_id=order_id,
                                  sales_order=sales_order, lines=((str(line["id"]), 1),), carrier=CARRIER,
                                  tracking=(f"1ZBENCH{order_id}",), external_id=f"bench-shipment-{order_id}"))
    if skus > orders:  # SKUs with no order of their own: one more order holds them, so the shop sells them
        http.post(f"{shop_url}/_sandbox/orders", json={
            "id": FIRST_ORDER + orders, "name": "#B-catalogue", "created_at": "2026-12-01T09:00:00+00:00",
            "updated_at": "2026-12-01T09:00:00+00:00", "line_items": lines[orders:]}).raise_for_status()
    variants = [{"sku": line["sku"], "price": line["price"], "id": f"gid://shopify/ProductVariant/{line['variant_id']}"}
                for line in lines]
    return shipments, variants


def stock_count(variant: dict, path: str, rng: random.Random, *, buffer: int) -> StockCount:
    counts = {location: (rng.randrange(5, 90) + buffer, 0) for location in location_map()}
    return StockCount(kind="stock", path=path, label=f"{variant['sku']} stock", sku=variant["sku"],
                      variant_id=int(variant["id"].rsplit("/", 1)[1]), counts=counts, price=Decimal(variant["price"]))


def one_run(n: int, args, home: Path) -> dict:
    rng = random.Random(args.seed + n)
    config = StackConfig(home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
                         shop_port=free_port(), orders=3, seed=args.seed)
    stack = LocalStack(config, dict(os.environ), progress=lambda m: print(f"  · {m}", flush=True))
    buffer = safety_buffer()
    result: dict = {"run": n + 1}
    with stack:
        ledger = Ledger.connect(config.ledger_url)
        try:
            with httpx.Client(timeout=60) as http, NetSuiteClient.from_env(config.ledger_url, stack.env) as erp:
                shipments, variants = bench_catalogue(http, erp, config.shop_url, orders=args.changes,
                                                      skus=args.changes * 2 + args.burst)
                warehouse = Warehouse(erp, config.erp_url, http, receiver_url=config.receiver_url,
                                      secret=config.netsuite_secret)
                pool = iter(variants)
                half = args.changes // 2
                plan: dict[str, list[Change]] = {}
                for path, ships in ((NOTICE, shipments[:half]), (READER, shipments[half:args.changes])):
                    counts = [stock_count(next(pool), path, rng, buffer=buffer) for _ in range(args.changes - len(ships))]
                    for s in ships:
                        s.path = path
                    plan[path] = [c for pair in zip(ships, counts) for c in pair] + ships[len(counts):] \
                        + counts[len(ships):]
                burst = [stock_count(next(pool), NOTICE, rng, buffer=buffer) for _ in range(args.burst)]
                shop = ShopView(config.shop_url, httpx.Client(timeout=60))
                every = [*plan[NOTICE], *plan[READER], *burst]
                with ShopWatcher(shop, every, buffer=buffer) as watcher:
                    for path, gap in ((NOTICE, 2.0), (READER, args.reader_spread / args.changes)):
                        warehouse.notices(path)
                        print(f"  {path}: {len(plan[path])} changes, {gap:.1f} s apart", flush=True)
                        for change in plan[path]:
                            make(warehouse, change)
                            time.sleep(gap)
                        if not watcher.wait(plan[path], timeout=args.timeout):
                            raise RuntimeError(f"{path}: not in the shop after {args.timeout:.0f} s: "
                                               + ", ".join(c.label for c in plan[path] if c.seen_at is None))
                        delays = [c.delay for c in plan[path]]
                        result[path] = {"n": len(delays), "p50": percentile(delays, 0.5),
                                        "p99": percentile(delays, 0.99), "max": max(delays)}
                        print(f"  {path}: p50 {result[path]['p50']:.2f} s, p99 {result[path]['p99']:.2f} s", flush=True)
                    # The burst: every change of the phases above is done, so the bucket counts only the burst's calls.
                    wait_for_events(ledger, timeout=args.timeout)
                    warehouse.notices(NOTICE)
                    http.post(f"{config.shop_url}/_sandbox/graphql/throttle",
                              json={"resetCounts": True}).raise_for_status()
                    bucket = http.get(f"{config.shop_url}/_sandbox/graphql/throttle").json()
                    started = time.monotonic()
                    for change in burst:
                        make(warehouse, change)
                    if not watcher.wait(burst, timeout=args.timeout):
                        raise RuntimeError("burst: not every level in the shop in time")
                    elapsed = max(c.seen_at for c in burst) - started
                    wait_for_events(ledger, timeout=args.timeout)
                    after = http.get(f"{config.shop_url}/_sandbox/graphql/throttle").json()
                shop.http.close()
                levels = args.burst * len(location_map())
                result["burst"] = {
                    "items": args.burst, "levels": levels, "seconds": round(elapsed, 2),
                    "levels_per_second": round(levels / elapsed, 2),
                    "graphql_requests": after["requests"], "points_spent": round(after["pointsSpent"], 1),
                    "restore_rate": bucket["restoreRate"], "bucket": bucket["maximumAvailable"],
                    "budget_share": round(after["pointsSpent"] / (bucket["restoreRate"] * elapsed), 3),
                    "throttled": after["throttled"],
                }
                result["events"] = dict(netsuite_events(ledger))
                b = result["burst"]
                print(f"  burst: {levels} levels in {b['seconds']} s = {b['levels_per_second']}/s; "
                      f"{b['points_spent']} points over {b['restore_rate']:g}/s restore = {b['budget_share']:.0%} of "
                      f"the budget; {b['throttled']} throttled", flush=True)
        finally:
            ledger.close()
    return result


def make(warehouse: Warehouse, change: Change) -> None:
    if isinstance(change, Shipment):
        warehouse.ship(change)
    else:
        warehouse.count(change)


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_signals()
    runs = []
    started = time.monotonic()
    try:
        for n in range(args.runs):
            home = Path("/tmp") / f"erpsync-way-back-{uuid.uuid4().hex[:8]}"
            print(f"run {n + 1}/{args.runs} (state in {home})", flush=True)
            runs.append(one_run(n, args, home))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    except (ConfigError, RuntimeError) as exc:
        print(f"bench/way_back.py failed: {exc}", file=sys.stderr)
        return 1
    summary = {
        **{f"{path}_{q}": spread([r[path][q] for r in runs]) for path in (NOTICE, READER) for q in ("p50", "p99")},
        **{f"burst_{k}": spread([r["burst"][k] for r in runs])
           for k in ("levels_per_second", "budget_share", "throttled", "points_spent")},
    }
    document = {"command": "python bench/way_back.py " + " ".join(sys.argv[1:] if argv is None else argv),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
                "wall_seconds": round(time.monotonic() - started, 1), "settings": {
                    k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "runs": runs, "summary": summary}
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(document, indent=2))
    print("\n== the way back: median (min–max) over runs ==")
    for key, value in summary.items():
        print(f"  {key:<28} {value['median']} ({value['min']}–{value['max']})")
    print(f"figures in {args.result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
