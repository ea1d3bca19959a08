"""The batch steps' own CPU per event: `run_chunk` in this process, without Prefect, against the ERP sandbox.

    .venv/bin/python bench/batch_steps.py [--runs 3] [--orders 600] [--postgres-url postgresql://…]

The worker's `sync-batch` run is most of our CPU per event (docs/BENCHMARKS.md, "Our own ceiling"); this measures
that part alone, so a change to the steps can be judged in a minute, apart from Prefect's start-up and polling. Each
run stores ``--orders`` new signed-shape Shopify orders in a fresh ledger (SQLite by default) and runs them through
`erpsync.batch.run_chunk` in chunks of 50 on 5 threads, three chunks at once, as `sync-batch` does, against the ERP
sandbox at zero latency as a process of its own (every order a new customer, as in the bench burst). Reported: this
process's CPU (utime + stime) per event and events per second. The raw figures go to .erpsync/bench/batch_steps.json.

Where the time goes: the steps run on threads, which cProfile does not follow; sample them all with py-spy,
``py-spy record --rate 200 --format speedscope -o steps.json -- .venv/bin/python bench/batch_steps.py --runs 1``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable (bench.*, erpsync.*)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from erpsync.batch import run_chunk
from erpsync.ledger import InboxDelivery, Ledger
from erpsync.pipeline import SyncPipeline
from erpsync.settings import PROJECT_DIR, Settings
from erpsync.systems import open_writer
from erpsync_dev.processes import ProcessGroup, free_port, python_module
from erpsync_dev.scenarios.demo import DEMO_SKUS, GeneratedOrders
from erpsync_dev.stack import StackConfig, fresh_postgres_databases

# flows/sync_batch.py's: three chunks in flight (not imported: that module needs Prefect, this measures without it)
CHUNKS_IN_FLIGHT = 3
HOME = PROJECT_DIR / ".erpsync" / "bench" / "batch-steps"
CHUNK, THREADS = 50, 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--runs", type=int, default=3, help="runs, each with new orders (default 3)")
    p.add_argument("--orders", type=int, default=600, help="orders per run (default 600)")
    p.add_argument("--chunks-in-flight", type=int, default=CHUNKS_IN_FLIGHT,
                   help=f"chunks at once (default {CHUNKS_IN_FLIGHT}, as sync-batch)")
    p.add_argument("--threads", type=int, default=THREADS,
                   help=f"threads per chunk (default {THREADS}, the ERP's concurrency); 1 with --chunks-in-flight 1 "
                        f"runs the events one after another, the steadiest figure for comparing two versions")
    p.add_argument("--log", action="store_true",
                   help="log to stderr at INFO, as `erpsync worker` sets up its runs (its cost per event)")
    p.add_argument("--postgres-url", help="a PostgreSQL server for the ledger (a database of its own is made)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.orders < 1:
        p.error("--runs and --orders: 1 or more")
    return args


def store_orders(ledger: Ledger, count: int, *, seed: int) -> list[int]:
    """``count`` new orders/create deliveries in the inbox, as the receiver stores them; their event ids."""
    orders = GeneratedOrders(count, seed, start=datetime.now(UTC) - timedelta(days=1), skus=DEMO_SKUS[:5])
    deliveries = []
    for index in range(count):
        body = json.dumps(orders.order(index), separators=(",", ":")).encode()
        deliveries.append(InboxDelivery("shopify", f"batch-steps-{seed}-{index}", "orders/create",
                                        "erpsync-bench.myshopify.com", None, body, hashlib.sha256(body).hexdigest()))
    return [intake.event_id for intake in ledger.record_deliveries(deliveries)]


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def one_run(pipeline: SyncPipeline, event_ids: list[int], *, run_id: str, in_flight: int,
            threads: int) -> dict:
    started, cpu_before = time.perf_counter(), cpu_seconds()
    outcomes: Counter[str] = Counter()
    chunks = [event_ids[start:start + CHUNK] for start in range(0, len(event_ids), CHUNK)]
    # As `sync-batch` does: ``in_flight`` chunks at once, each on ``threads`` threads.
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        for result in pool.map(lambda ids: run_chunk(pipeline, ids, run_id=run_id, threads=threads), chunks):
            outcomes.update(result.outcomes)
            outcomes["handed_off"] += len(result.handed_off)
    cpu, seconds = cpu_seconds() - cpu_before, time.perf_counter() - started
    return {"events": len(event_ids), "outcomes": {k: v for k, v in outcomes.items() if v},
            "cpu_ms_per_event": round(1000 * cpu / len(event_ids), 2),
            "events_per_second": round(len(event_ids) / seconds, 1), "load_average": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.log:  # erpsync/cli.py's set-up, which the worker's forked runs inherit
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    with ExitStack() as cleanup:
        ledger_url = (cleanup.enter_context(fresh_postgres_databases(args.postgres_url, "ledger"))["ledger"]
                      if args.postgres_url else f"sqlite:///{HOME / 'ledger.db'}")
        config = StackConfig(home=HOME, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
                             shop_port=free_port(), database_url=ledger_url, erp_latency_ms=0, erp_concurrency=0,
                             netsuite_concurrency=0)
        env = config.environment(dict(os.environ))
        os.environ.update(env)
        group = ProcessGroup(HOME / "logs", env, PROJECT_DIR)
        cleanup.callback(group.stop)
        group.start("erp-sandbox", python_module("erpsync_dev.sandboxes.netsuite", *config.erp_sandbox_args()))
        group.wait_http("ERP sandbox", f"{config.erp_url}/healthz")
        settings = Settings.from_env()
        ledger = Ledger.connect(settings.database_url)
        cleanup.callback(ledger.close)
        pipeline = SyncPipeline(ledger, settings.mappings_dir,
                                writers=lambda target: open_writer(target, settings.database_url))
        # A warm-up chunk: imports, the mapping cache, connections; a running batch run has these already.
        one_run(pipeline, store_orders(ledger, CHUNK, seed=1000), run_id="batch-steps-warm-up",
                in_flight=args.chunks_in_flight, threads=args.threads)
        runs = []
        for n in range(args.runs):
            ids = store_orders(ledger, args.orders, seed=2000 + n)
            run = one_run(pipeline, ids, run_id=f"batch-steps-{n}", in_flight=args.chunks_in_flight,
                          threads=args.threads)
            runs.append(run)
            print(f"run {n + 1}/{args.runs}: {run['cpu_ms_per_event']} ms CPU/event, {run['events_per_second']} "
                  f"events/s, outcomes {run['outcomes']}, load average {run['load_average']}", flush=True)
    figures = [r["cpu_ms_per_event"] for r in runs]
    summary = {"backend": "postgresql" if args.postgres_url else "sqlite", "orders": args.orders, "log": args.log,
               "runs": runs,
               "cpu_ms_per_event_median": statistics.median(figures), "min": min(figures), "max": max(figures)}
    out = HOME.parent / "batch_steps.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"batch steps ({summary['backend']}): {summary['cpu_ms_per_event_median']} ms CPU/event, median of "
          f"{args.runs} ({min(figures)}–{max(figures)}); figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
