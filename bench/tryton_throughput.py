"""Orders per second into a real Tryton by writer count, and the cost of a confirm with and without Tryton's queue
worker (docs/tryton.md, "Figures").

    .venv/bin/python bench/tryton_throughput.py throughput [--writers 1,2,4] [--orders 30] [--runs 3] [--postgres URL]
    .venv/bin/python bench/tryton_throughput.py confirm [--sales 15] [--runs 3] [--postgres URL]

throughput: the demo's real-shaped orders (erpsync_dev/scenarios/demo.py), mapped with mappings/tryton beforehand,
written by N writers at once, each with a TrytonClient of its own, as N erpsync workers would (``upsert`` of a
``processing`` sale: find or create the party, create the sale, quote, confirm, read it back). Prefect and the ledger
are left out: this measures what Tryton takes, not the pipeline in front of it. Every run starts a fresh trytond on
a fresh copy of the seed. On SQLite only one writer is measured: trytond's threads share one SQLite connection, so
erpsync keeps one call in flight there (ERPSYNC_TRYTON_CONCURRENCY_LIMIT=1, docs/tryton.md); more writers need
--postgres (the template's first build takes minutes: erpsync_dev/tryton_server.py).

confirm: draft sales are made, then each is quoted and confirmed in turn; it times the ``confirm`` call,
and the time until the sale reads ``processing`` (Tryton made its shipment and invoice). With the queue worker
(``[queue] worker = True`` and one ``trytond-worker``) Tryton answers the confirm before that processing, which the
worker does afterwards. trytond-worker needs PostgreSQL (it waits for work by LISTEN): on SQLite only the confirm
without it is measured.

Each figure is the median of ``--runs`` runs with min–max; the load average is printed with it (a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from erpsync.mapping.loader import load_mapping  # noqa: E402
from erpsync.systems.tryton.client import SALE, TrytonClient  # noqa: E402
from erpsync.systems.tryton.settings import TrytonSettings  # noqa: E402
from erpsync_dev.processes import interrupt_on_signals  # noqa: E402
from erpsync_dev.scenarios.demo import ORIGINAL, build_demo_scenario  # noqa: E402
from erpsync_dev.tryton_server import RunningTryton, seed_database, seed_postgres, tryton_server  # noqa: E402

MAPPING = Path(__file__).resolve().parents[1] / "mappings" / "tryton" / "shopify_order_to_tryton_sale.yaml"


def mapped_orders(count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """(external id, sale body) of ``count`` of the demo's orders, each order's create (the unknown SKU left out)."""
    mapping = load_mapping(MAPPING)
    scenario = build_demo_scenario(orders=count + 1, seed=seed)
    dead = {o.order_id for o in scenario.orders if o.outcome != "synced"}
    records = []
    for delivery in scenario.phases[0]:
        if delivery.kind == ORIGINAL and delivery.topic == "orders/create" and delivery.order_id not in dead:
            record = mapping.apply(delivery.payload())
            records.append((record.external_id, record.body))
    return records[:count]


@contextmanager
def fresh_tryton(postgres_url: str | None, *, queue_worker: bool = False) -> Iterator[RunningTryton]:
    with tempfile.TemporaryDirectory(prefix="erpsync-tryton-bench-") as directory, \
            tryton_server(Path(directory), postgres_url=postgres_url, queue_worker=queue_worker) as running:
        yield running


def client_for(running: RunningTryton) -> TrytonClient:
    return TrytonClient(TrytonSettings(url=running.url, database=running.database, login=running.login,
                                       password=running.password, timeout_seconds=120))


def throughput_run(running: RunningTryton, records: list[tuple[str, dict[str, Any]]], writers: int) -> float:
    """Orders per second: ``records`` upserted as processing sales by ``writers`` at once, after one order written
    alone (a fresh trytond loads its caches on the first sale: seconds, which a running server has paid)."""
    warm, records = records[0], records[1:]
    local = threading.local()
    clients: list[TrytonClient] = []
    lock = threading.Lock()

    def client() -> TrytonClient:
        if not hasattr(local, "client"):
            local.client = client_for(running)
            local.client.rpc.context()  # log in before the clock starts, as a running worker has
            with lock:
                clients.append(local.client)
        return local.client

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(lambda _: client(), range(writers * 4)))  # warm every thread's session
        client().upsert(SALE, warm[0], warm[1])
        started = time.monotonic()
        list(pool.map(lambda r: client().upsert(SALE, r[0], r[1]), records))
        elapsed = time.monotonic() - started
    for made in clients:
        made.close()
    with client_for(running) as check:
        states = check.rpc.model(SALE, "search_read", [], 0, None, None, ["state"])
    if len(states) != len(records) + 1 or any(s["state"] != "processing" for s in states):
        raise SystemExit(f"throughput run: {len(states)} sales for {len(records)} orders, states "
                         f"{sorted({s['state'] for s in states})}")
    return len(records) / elapsed


def confirm_run(running: RunningTryton, records: list[tuple[str, dict[str, Any]]]) -> dict[str, list[float]]:
    """Per sale: seconds of the confirm call, and until the sale reads processing (the first sale, which loads the
    server's caches, not counted)."""
    times: dict[str, list[float]] = {"confirm": [], "processing": []}
    with client_for(running) as tryton:
        for n, (external_id, body) in enumerate(records):
            sale_id = int(tryton.upsert(SALE, external_id, {**body, "state": "draft"}))
            tryton.rpc.model(SALE, "quote", [sale_id])
            started = time.monotonic()
            tryton.rpc.model(SALE, "confirm", [sale_id])
            times["confirm"].append(time.monotonic() - started)
            deadline = started + 120
            while tryton.rpc.model(SALE, "read", [sale_id], ["state"])[0]["state"] != "processing":
                if time.monotonic() > deadline:
                    raise SystemExit(f"sale {sale_id} not processing 120 s after its confirm")
                time.sleep(0.02)
            times["processing"].append(time.monotonic() - started)
            if n == 0:
                times = {"confirm": [], "processing": []}
    return times


def spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    return (f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}–{max(values):.{digits}f}), "
            f"{len(values)} runs")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    records = mapped_orders(args.orders + 1, args.seed)
    results: dict[str, Any] = {}
    for writers in args.writers:
        backends = ([("sqlite", None)] if writers == 1 else []) + ([("postgresql", args.postgres)]
                                                                    if args.postgres else [])
        if not backends:
            print(f"{writers} writers: skipped (SQLite serves one call at a time; pass --postgres)", flush=True)
        for backend, url in backends:
            rates, loads = [], []
            for run in range(args.runs):
                with fresh_tryton(url) as running:
                    loads.append(load())
                    rates.append(throughput_run(running, records, writers))
                print(f"  {backend}, {writers} writer(s), run {run + 1}: {rates[-1]:.2f} orders/s [load {loads[-1]}]",
                      flush=True)
            key = f"{backend}/{writers}"
            results[key] = {"orders_per_second": rates, "load": loads}
            print(f"{key}: {spread(rates, ' orders/s')} of {len(records) - 1} orders", flush=True)
    return results


def confirm(args: argparse.Namespace) -> dict[str, Any]:
    records = mapped_orders(args.sales + 1, args.seed)
    results: dict[str, Any] = {}
    backends = ([] if args.postgres_only else [("sqlite", None)]) + ([("postgresql", args.postgres)]
                                                                     if args.postgres else [])
    for backend, url in backends:
        # trytond-worker waits for work by LISTEN on the database connection: on SQLite it exits at once
        # ("Invalid file object: SQLiteConnection"), so the queue worker is measured on PostgreSQL only.
        for queue_worker in (False, True) if url else (False,):
            medians: dict[str, list[float]] = {"confirm": [], "processing": []}
            loads = []
            for run in range(args.runs):
                with fresh_tryton(url, queue_worker=queue_worker) as running:
                    loads.append(load())
                    times = confirm_run(running, records)
                for kind in medians:
                    medians[kind].append(statistics.median(times[kind]) * 1000)
                print(f"  {backend}, queue worker {'on' if queue_worker else 'off'}, run {run + 1}: confirm "
                      f"{medians['confirm'][-1]:.0f} ms, processing after {medians['processing'][-1]:.0f} ms "
                      f"[load {loads[-1]}]", flush=True)
            key = f"{backend}/queue-{'on' if queue_worker else 'off'}"
            results[key] = {**{f"{k}_ms": v for k, v in medians.items()}, "load": loads}
            print(f"{key}: confirm {spread(medians['confirm'], ' ms', 0)}; processing after "
                  f"{spread(medians['processing'], ' ms', 0)} (each run the median of {len(records) - 1} sales)",
                  flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("throughput", "confirm"):
        command = commands.add_parser(name)
        command.add_argument("--runs", type=int, default=3)
        command.add_argument("--seed", type=int, default=7, help="seed of the demo's orders")
        command.add_argument("--postgres", metavar="URL",
                             help="also on PostgreSQL (postgresql://user@host:port/db): a template there, copied "
                                  "per run")
        command.add_argument("--json", type=Path, help="also write the results to this file")
    commands.choices["throughput"].add_argument(
        "--writers", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2, 4],
        help="writer counts, comma-separated (default: 1,2,4)")
    commands.choices["throughput"].add_argument("--orders", type=int, default=30, help="orders per run")
    commands.choices["confirm"].add_argument("--sales", type=int, default=15, help="sales confirmed per run")
    commands.choices["confirm"].add_argument("--postgres-only", action="store_true", help="leave SQLite out")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: at least 1")
    interrupt_on_signals()
    started = time.monotonic()
    seed_database()  # built before any clock starts
    if args.postgres:
        seed_postgres(args.postgres)
    print(f"{args.command} on {os.cpu_count()} cores, load {load()}", flush=True)
    results = throughput(args) if args.command == "throughput" else confirm(args)
    print(f"wall time {time.monotonic() - started:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
