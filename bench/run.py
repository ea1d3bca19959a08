"""`make bench`: baselines for intake, end-to-end sync, Prefect's cost per flow run and reconciliation.

Every part runs as its own process on loopback, as in `make demo`. Prints a Markdown report (paste it into
docs/BENCHMARKS.md with the date and machine) and writes the raw figures to .erpsync/bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import datetime

import httpx
from pydantic import SecretStr

from erpsync.ledger import Ledger
from erpsync.settings import PROJECT_DIR
from erpsync.summary import summarize
from erpsync_dev.processes import ProcessGroup, free_port, interrupt_on_signals, python_module
from erpsync_dev.sandboxes.netsuite.latency import LatencyProfileError, parse_latency_profile
from erpsync_dev.sandboxes.shopify.webhooks import send_phase
from erpsync_dev.scenarios.demo import DEMO_SKUS, build_demo_scenario
from erpsync_dev.stack import LocalStack, StackConfig

sys.path.insert(0, str(PROJECT_DIR))
from bench import profiles, throughput  # noqa: E402
from bench.reconcile import bench_reconcile  # noqa: E402
from bench.reconcile import markdown as reconcile_markdown  # noqa: E402

HOME = PROJECT_DIR / ".erpsync" / "bench"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_intake(deliveries: int, concurrency: int, database_url: str | None, *, verify: bool = True) -> dict:
    """The receiver alone (no dispatch): signed deliveries stored and answered, as fast as it can.

    ``verify=False`` runs bench/unverified_receiver.py instead, to show what signature verification costs.
    """
    home = HOME / ("intake" if verify else "intake-unverified")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    secret = "bench-secret"
    url = database_url or f"sqlite:///{home / 'ledger.db'}"
    port = free_port()
    env = {**os.environ, "ERPSYNC_HOME": str(home), "ERPSYNC_DATABASE_URL": url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": secret, "ERPSYNC_RATE_LIMIT_PER_SECOND": "0"}
    group = ProcessGroup(log_dir=home / "logs", env=env, cwd=PROJECT_DIR)
    argv = (python_module("erpsync", "serve", "--port", str(port), "--no-dispatch") if verify
            else [sys.executable, str(PROJECT_DIR / "bench" / "unverified_receiver.py"), str(port)])
    group.start("receiver", argv)
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz")
        scenario = build_demo_scenario(orders=deliveries, seed=1, skus=DEMO_SKUS)
        batch = [d for d in scenario.phases[0] if d.kind != "redelivery"][:deliveries]
        batch = [dataclasses.replace(d, after=()) for d in batch]  # intake only: no ordering waits
        started = time.perf_counter()
        results = asyncio.run(send_phase(batch, target=f"http://127.0.0.1:{port}/webhooks/shopify",
                                         secret=SecretStr(secret), concurrency=concurrency, timeout=30))
        elapsed = time.perf_counter() - started
    finally:
        group.stop()
    ok = [r["elapsed_ms"] for r in results if r["status"] and 200 <= r["status"] < 300]
    return {"backend": url.split(":", 1)[0], "verify": verify, "deliveries": len(batch), "accepted": len(ok),
            "concurrency": concurrency, "seconds": round(elapsed, 2),
            "per_second": round(len(ok) / elapsed, 1), "p50_ms": percentile(ok, 50), "p99_ms": percentile(ok, 99)}


def bench_mapping(records: int) -> dict:
    """The mapping engine alone: real-shaped order payloads through the shipped order mapping."""
    from erpsync.mapping import find_mapping

    mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/create")
    scenario = build_demo_scenario(orders=max(3, records), seed=2, skus=DEMO_SKUS[:5])
    payloads = [d.payload() for d in scenario.phases[0]
                if d.kind == "original" and "DISCONTINUED" not in d.body.decode()]
    payloads = (payloads * (records // len(payloads) + 1))[:records]
    started = time.perf_counter()
    for payload in payloads:
        mapping.apply(payload)
    elapsed = time.perf_counter() - started
    return {"records": len(payloads), "seconds": round(elapsed, 3),
            "records_per_second": round(len(payloads) / elapsed),
            "lines_per_record": round(statistics.mean(len(p["line_items"]) for p in payloads), 2)}


def bench_end_to_end(orders: int, latency_ms: int, erp_concurrency: int, worker_limit: int) -> dict:
    """Shop burst → receiver → one Prefect run per event → ERP sandbox with latency; first delivery to last ERP
    record. Batching is off here: this is the per-run baseline (bench/throughput.py measures batches)."""
    home = HOME / "e2e"
    shutil.rmtree(home, ignore_errors=True)
    config = StackConfig(home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
                         shop_port=free_port(), orders=orders, seed=3, erp_latency_ms=latency_ms,
                         erp_concurrency=erp_concurrency, worker_limit=worker_limit,
                         # One run per event, as before sync-batch: the baseline the throughput part compares to.
                         extra_env={"ERPSYNC_BATCH_THRESHOLD": "0"})
    with LocalStack(config, dict(os.environ), progress=lambda m: print(f"  · {m}", file=sys.stderr)) as stack, \
            httpx.Client(timeout=300) as http:
        ledger = Ledger.connect(config.ledger_url)
        scenario = http.get(f"{config.shop_url}/_sandbox/scenario").raise_for_status().json()
        expected = scenario["phases"][0]["unique_deliveries"]
        first_delivery = time.time()
        http.post(f"{config.shop_url}/_sandbox/phases/1/send").raise_for_status()
        deadline = time.monotonic() + 900
        while (s := summarize(ledger)).handled < expected:
            stack.group.check_alive()
            if time.monotonic() > deadline:
                raise SystemExit(f"end to end: {expected - s.handled} events unhandled after 900 s; "
                                 f"see {home / 'logs'}")
            time.sleep(0.5)
        records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
        last_record = max(datetime.fromisoformat(r["last_modified"]).timestamp() for r in records)
        runs = flow_run_costs(http, config.prefect_api)
        ledger.close()
    seconds = last_record - first_delivery
    return {"orders": orders, "events": expected, "erp_records": len(records), "synced": s.synced,
            "erp_latency_ms": latency_ms, "erp_concurrency": erp_concurrency, "worker_limit": worker_limit,
            "seconds": round(seconds, 1), "events_per_second": round(expected / seconds, 2), **runs}


def seconds_between(start: str, end: str) -> float:
    return datetime.fromisoformat(end).timestamp() - datetime.fromisoformat(start).timestamp()


def flow_run_costs(http: httpx.Client, api: str) -> dict:
    """Per sync-event run: wall time, time inside its tasks, and the rest (Prefect's own cost)."""
    deployment = http.get(f"{api}/deployments/name/sync-event/sync-event").json()["id"]
    runs = http.post(f"{api}/flow_runs/filter", json={
        "flow_runs": {"deployment_id": {"any_": [deployment]}, "state": {"type": {"any_": ["COMPLETED"]}}},
        "limit": 200}).json()
    walls, overheads, lags, transforms, starts = [], [], [], [], []
    for run in runs:
        start, end = (datetime.fromisoformat(run[k]).timestamp() for k in ("start_time", "end_time"))
        tasks = http.post(f"{api}/task_runs/filter",
                          json={"flow_runs": {"id": {"any_": [run["id"]]}}, "limit": 50}).json()
        # Task run names are "<task>-<suffix>", e.g. "transform-829".
        spans = {t["name"].rsplit("-", 1)[0]: seconds_between(t["start_time"], t["end_time"])
                 for t in tasks if t["start_time"] and t["end_time"]}
        in_tasks = sum(spans.values())
        transforms.append((spans.get("transform", 0.0), in_tasks, end - start))
        # PENDING (the worker took it) → RUNNING (the flow began): the process start a run pays.
        states = http.get(f"{api}/flow_run_states/", params={"flow_run_id": run["id"]}).json()
        pending = [st["timestamp"] for st in states if st["type"] == "PENDING"]
        if pending:
            starts.append(start - datetime.fromisoformat(min(pending)).timestamp())
        walls.append(end - start)
        overheads.append(end - start - in_tasks)
        lags.append(start - datetime.fromisoformat(run["created"]).timestamp())
    return {
        "runs_measured": len(runs),
        "run_wall_p50_s": round(statistics.median(walls), 2),
        "run_overhead_p50_s": round(statistics.median(overheads), 2),
        "run_overhead_p95_s": round(percentile(overheads, 95), 2),
        "process_start_p50_s": round(statistics.median(starts), 2) if starts else None,
        "process_start_p95_s": round(percentile(starts, 95), 2) if starts else None,
        "created_to_running_p50_s": round(statistics.median(lags), 2),
        "transform_ms_p50": round(statistics.median(t for t, _, _ in transforms) * 1000, 1),
        "transform_share_of_task_time_p50": round(
            statistics.median(t / tasks for t, tasks, _ in transforms if tasks), 3),
        "transform_share_of_run_time_p50": round(statistics.median(t / wall for t, _, wall in transforms), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000, help="signed deliveries for the intake run")
    parser.add_argument("--intake-concurrency", type=int, default=16)
    parser.add_argument("--orders", type=int, default=50, help="orders in the end-to-end burst")
    parser.add_argument("--erp-latency-ms", type=int, default=100)
    parser.add_argument("--erp-concurrency", type=int, default=5)
    parser.add_argument("--worker-limit", type=int, default=4)
    parser.add_argument("--postgres-url", default=os.environ.get("ERPSYNC_TEST_POSTGRES_URL"),
                        help="also measure intake with the ledger on this PostgreSQL database")
    parser.add_argument("--mapping-records", type=int, default=5000, help="payloads for the mapping engine run")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--reconcile-orders", type=int, action="append",
                        help="orders in a reconciliation run (repeatable; default 10000 and 100000)")
    parser.add_argument("--skip-reconcile", action="store_true", help="leave out the reconciliation runs")
    parser.add_argument("--only-reconcile", action="store_true", help="run the reconciliation part only")
    parser.add_argument("--only-throughput", action="store_true",
                        help="run the throughput part only (intake vs a bare endpoint, a burst, quiet latency)")
    parser.add_argument("--skip-throughput", action="store_true", help="leave out the throughput part")
    parser.add_argument("--only-intake", action="store_true",
                        help="run the intake part only (receiver vs a bare endpoint, SQLite and --postgres-url),"
                             " --intake-runs times each")
    parser.add_argument("--intake-runs", type=int, default=3, help="runs per ledger for --only-intake")
    parser.add_argument("--burst-orders", type=int, default=5000, help="orders in the throughput burst")
    parser.add_argument("--workers", type=int, default=2, help="Prefect workers in the throughput burst")
    parser.add_argument("--intake-deliveries", type=int, default=2000,
                        help="signed deliveries in the intake-vs-bare run")
    parser.add_argument("--intake-connections", type=int, default=32,
                        help="keep-alive connections sending them at once")
    parser.add_argument("--quiet-samples", type=int, default=10, help="single events for the quiet latency")
    parser.add_argument("--only-profiles", action="store_true",
                        help="run the ERP profiles part only: our burst and the peer's at each profile and C")
    parser.add_argument("--profile-postgres", action="store_true",
                        help="our side of the profiles on PostgreSQL (--postgres-url: the ledger's and Prefect's "
                             "databases) instead of SQLite")
    parser.add_argument("--skip-profiles", action="store_true", help="leave out the ERP profiles part")
    parser.add_argument("--profile", dest="profiles", action="append", metavar="PROFILE", type=latency_profile,
                        help="an ERP latency profile (repeatable; default " + " and ".join(profiles.DEFAULT_PROFILES)
                             + "), as the ERP sandbox's --latency-profile takes it")
    parser.add_argument("--profile-concurrency", dest="profile_concurrencies", type=int, action="append",
                        metavar="C", help="an ERP concurrency limit (repeatable; default "
                                          + ", ".join(map(str, profiles.DEFAULT_CONCURRENCIES)) + ")")
    parser.add_argument("--profile-runs", type=int, default=1, help="runs of every profile and C (default 1)")
    parser.add_argument("--profile-seconds", type=float, default=40.0,
                        help="burst size: orders for about this long at the profile's ceiling (default 40, "
                             "between 100 and 3,000 orders)")
    parser.add_argument("--peer", choices=("auto", "n8n", "none"), default="auto",
                        help="the peer run beside ours (auto: n8n when bench/peer_n8n_install.sh installed it)")
    args = parser.parse_args()
    interrupt_on_signals()  # an interrupted benchmark still stops every process it started

    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    results = {"machine": machine, "date": datetime.now().isoformat(timespec="seconds"), "intake": []}
    if args.only_reconcile:
        return report_reconcile(results, args.reconcile_orders or [10_000, 100_000])
    if args.only_throughput:
        return report_throughput(results, args)
    if args.only_intake:
        return report_intake(results, args)
    if args.only_profiles:
        return report_profiles(results, args)
    print("intake (SQLite ledger)…", file=sys.stderr)
    results["intake"].append(bench_intake(args.deliveries, args.intake_concurrency, None))
    print("intake (SQLite ledger, signature verification off)…", file=sys.stderr)
    results["intake"].append(bench_intake(args.deliveries, args.intake_concurrency, None, verify=False))
    if args.postgres_url:
        print("intake (PostgreSQL ledger)…", file=sys.stderr)
        results["intake"].append(bench_intake(args.deliveries, args.intake_concurrency, args.postgres_url))
    print("mapping engine…", file=sys.stderr)
    results["mapping"] = bench_mapping(args.mapping_records)
    if not args.skip_e2e:
        print("end to end…", file=sys.stderr)
        results["end_to_end"] = bench_end_to_end(args.orders, args.erp_latency_ms, args.erp_concurrency,
                                                 args.worker_limit)
    if not args.skip_reconcile:
        results["reconcile"] = run_reconcile_sizes(args.reconcile_orders or [10_000, 100_000])
    if not args.skip_throughput:
        results["throughput"] = throughput.run_all(args)
    if not args.skip_profiles:
        results["profiles"] = run_profiles(args)
    HOME.mkdir(parents=True, exist_ok=True)
    (HOME / "results.json").write_text(json.dumps(results, indent=2))
    print(f"## Results ({results['date']}, {machine})\n")
    print("| intake: ledger | verify | deliveries | concurrency | accepted/s | p50 ms | p99 ms |\n"
          "|---|---|---|---|---|---|---|")
    for r in results["intake"]:
        print(f"| {r['backend']} | {r['verify']} | {r['accepted']}/{r['deliveries']} | {r['concurrency']} "
              f"| {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} |")
    m = results["mapping"]
    print("\n| mapping engine (order mapping) | value |\n|---|---|")
    for key, value in m.items():
        print(f"| {key} | {value} |")
    if "end_to_end" in results:
        e = results["end_to_end"]
        print("\n| end to end | value |\n|---|---|")
        for key, value in e.items():
            print(f"| {key} | {value} |")
    if "reconcile" in results:
        print("\n" + reconcile_markdown(results["reconcile"]))
    if "throughput" in results:
        print("\n" + throughput.report(results["throughput"]))
    if "profiles" in results:
        print("\n" + profiles.report(results["profiles"]))
    return 0


def latency_profile(text: str) -> str:
    """A profile as the ERP sandbox takes it, checked here so that a typo fails before any stack starts."""
    try:
        return parse_latency_profile(text).spec()
    except LatencyProfileError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def run_profiles(args) -> dict:
    if args.profile_postgres and not args.postgres_url:
        raise SystemExit("--profile-postgres needs --postgres-url (or ERPSYNC_TEST_POSTGRES_URL)")
    return profiles.run_profiles(args.profiles or list(profiles.DEFAULT_PROFILES),
                                 args.profile_concurrencies or list(profiles.DEFAULT_CONCURRENCIES),
                                 args.profile_runs, args.profile_seconds, args.peer,
                                 postgres_url=args.postgres_url if args.profile_postgres else None)


def report_profiles(results: dict, args) -> int:
    results["profiles"] = run_profiles(args)
    HOME.mkdir(parents=True, exist_ok=True)
    (HOME / "results-profiles.json").write_text(json.dumps(results, indent=2))
    print(f"## ERP profiles ({results['date']}, {results['machine']})\n")
    print(profiles.report(results["profiles"]))
    return 0


def run_reconcile_sizes(sizes: list[int]) -> list[dict]:
    """bench/reconcile.py for each catalogue size: shop sandbox Admin API vs ERP sandbox SuiteQL, real HTTP."""
    out = []
    for orders in sizes:
        print(f"reconciliation of {orders} orders…", file=sys.stderr)
        out.append(bench_reconcile(orders))
    return out


def report_reconcile(results: dict, sizes: list[int]) -> int:
    results["reconcile"] = run_reconcile_sizes(sizes)
    HOME.mkdir(parents=True, exist_ok=True)
    (HOME / "results-reconcile.json").write_text(json.dumps(results, indent=2))
    print(f"## Reconciliation ({results['date']}, {results['machine']})\n")
    print(reconcile_markdown(results["reconcile"]))
    return 0


def report_intake(results: dict, args) -> int:
    results.update(throughput.run_intake(args))
    HOME.mkdir(parents=True, exist_ok=True)
    (HOME / "results-intake.json").write_text(json.dumps(results, indent=2))
    print(f"## Intake ({results['date']}, {results['machine']})\n")
    print(throughput.intake_report(results))
    return 0


def report_throughput(results: dict, args) -> int:
    results["throughput"] = throughput.run_all(args)
    HOME.mkdir(parents=True, exist_ok=True)
    (HOME / "results-throughput.json").write_text(json.dumps(results, indent=2))
    print(f"## Throughput ({results['date']}, {results['machine']})\n")
    print(throughput.report(results["throughput"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
