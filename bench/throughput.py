"""Throughput benchmarks: how close erpsync gets to the ERP's ceiling C / L, how fast the door is, how long a
quiet event waits. `make bench ARGS=--only-throughput` runs them; bench/run.py includes them by default.

- intake: signed deliveries stored and answered by `erpsync serve`, against a bare ASGI endpoint that only
  answers 200, both on uvicorn in one process, from the same lean load generator (bench/loadgen.py);
- burst: N orders delivered at once through the receiver (batching on) to the ERP sandbox at concurrency C and
  latency L, two workers; records/s against C / L, 429s we caused, CPU spent on our side per event;
- quiet: single events, one at a time, from delivery to the ERP record.

Every part runs as separate processes on loopback, as in `make demo`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.loadgen import build_request, percentile, send_all
from erpsync.ledger import Ledger
from erpsync.settings import PROJECT_DIR
from erpsync.systems.shopify.webhooks import shopify_signature
from erpsync_dev.processes import ProcessGroup, free_port, python_module
from erpsync_dev.sandboxes.netsuite.latency import fixed, parse_latency_profile
from erpsync_dev.scenarios.demo import DEMO_SKUS, GeneratedOrders
from erpsync_dev.stack import LocalStack, StackConfig, fresh_postgres_databases

HOME = PROJECT_DIR / ".erpsync" / "bench"
FINAL = ("synced", "duplicate", "superseded", "failed")


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def order_requests(url: str, secret: str, count: int, *, seed: int, first: int = 0) -> list[bytes]:
    """``count`` distinct real-shaped orders/create deliveries, signed as Shopify signs them."""
    orders = GeneratedOrders(first + count, seed, start=datetime.now(UTC) - timedelta(days=1), skus=DEMO_SKUS[:5])
    requests = []
    for index in range(first, first + count):
        body = json.dumps(orders.order(index), separators=(",", ":")).encode()
        requests.append(build_request(url, body, {
            "Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": shopify_signature(secret, body),
            "X-Shopify-Shop-Domain": "erpsync-bench.myshopify.com", "X-Shopify-API-Version": "2025-01",
            "X-Shopify-Webhook-Id": f"bench-{seed}-{index}",
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat()}))
    return requests


# -- intake ------------------------------------------------------------------------------------------------------

def bench_intake(deliveries: int, connections: int, database_url: str | None) -> dict:
    """The receiver storing signed deliveries vs a bare endpoint answering 200, same load generator."""
    home = HOME / "intake-vs-bare"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with ExitStack() as cleanup:
        if database_url:  # a database of its own: the server's default one may hold other runs' rows
            database_url = cleanup.enter_context(fresh_postgres_databases(database_url, "ledger"))["ledger"]
        return _bench_intake(home, deliveries, connections, database_url)


def _bench_intake(home: Path, deliveries: int, connections: int, database_url: str | None) -> dict:
    load_average = os.getloadavg()[0]  # other work on the machine moves these figures: kept beside them
    secret = "bench-secret"
    url = database_url or f"sqlite:///{home / 'ledger.db'}"
    env = {**os.environ, "ERPSYNC_HOME": str(home), "ERPSYNC_DATABASE_URL": url,
           "ERPSYNC_SHOPIFY_WEBHOOK_SECRET": secret, "ERPSYNC_RATE_LIMIT_PER_SECOND": "0"}
    results = {}
    for name, argv in (("bare", [sys.executable, str(PROJECT_DIR / "bench" / "bare_asgi.py")]),
                       ("receiver", python_module("erpsync", "serve", "--no-dispatch"))):
        port = free_port()
        group = ProcessGroup(log_dir=home / "logs", env=env, cwd=PROJECT_DIR)
        group.start(name, [*argv, "--port", str(port)])
        try:
            group.wait_http(name, f"http://127.0.0.1:{port}/healthz")
            target = f"http://127.0.0.1:{port}/webhooks/shopify"
            requests = order_requests(target, secret, deliveries, seed=len(results) + 1)
            asyncio.run(send_all(target, requests[:50], connections=10))  # warm up (stored too)
            answers, seconds = asyncio.run(send_all(target, requests[50:], connections=connections))
        finally:
            group.stop()
        ok = [a.elapsed_ms for a in answers if 200 <= a.status < 300]
        results[name] = {"sent": len(answers), "accepted": len(ok), "seconds": round(seconds, 2),
                         "per_second": round(len(ok) / seconds), "p50_ms": percentile(ok, 50),
                         "p99_ms": percentile(ok, 99)}
    ledger = Ledger.connect(url)
    stored = ledger.inbox_counts()["events"]
    ledger.close()
    receiver = results["receiver"]
    return {"backend": url.split(":", 1)[0], "connections": connections, "bare": results["bare"], **receiver,
            "stored": stored, "ratio_to_bare": round(receiver["per_second"] / results["bare"]["per_second"], 2),
            "load_average": round(load_average, 2)}


# -- burst -------------------------------------------------------------------------------------------------------

def cpu_seconds_total() -> float:
    """Busy CPU seconds of the whole machine since boot (user + nice + system + irq + softirq)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
    return busy / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process (and its waited-for children)."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in parts[11:15]) / os.sysconf("SC_CLK_TCK")


@dataclass
class ProfiledStackConfig(StackConfig):
    """The local stack with the ERP sandbox on a latency profile (fixed:MS or lognormal:…) instead of a fixed ms."""

    erp_latency_profile: str | None = None

    def erp_sandbox_args(self) -> list[str]:
        args = super().erp_sandbox_args()
        # Given after --latency-ms, the profile wins (the sandbox takes the last of the two).
        return [*args, "--latency-profile", self.erp_latency_profile] if self.erp_latency_profile else args


def bench_burst(orders: int, latency_ms: int, concurrency: int, workers: int, postgres_url: str | None,
                batch_threshold: int = 20, forking: bool = True, profile: str | None = None,
                redeliver: int = 0) -> dict:
    """``orders`` deliveries at once; from the first delivery to the last ERP write. ``profile`` (a latency
    profile, erpsync_dev/sandboxes/netsuite/latency.py) replaces ``latency_ms`` when given. ``redeliver``: after
    the burst, that many of its deliveries are sent again byte for byte (as a shop redelivers), and the ERP's
    records counted per order afterwards."""
    backend = "postgresql" if postgres_url else "sqlite"
    home = HOME / f"burst-{backend}"
    shutil.rmtree(home, ignore_errors=True)
    with ExitStack() as cleanup:
        urls = cleanup.enter_context(fresh_postgres_databases(postgres_url, "ledger", "prefect")) \
            if postgres_url else {}
        config = ProfiledStackConfig(
            erp_latency_profile=profile, home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
            shop_port=free_port(), orders=3, seed=5, database_url=urls.get("ledger"),
            prefect_database_url=urls.get("prefect"), erp_latency_ms=latency_ms, erp_concurrency=concurrency,
            netsuite_concurrency=concurrency, workers=workers, forking_workers=forking,
            extra_env={"ERPSYNC_BATCH_THRESHOLD": str(batch_threshold), "ERPSYNC_RATE_LIMIT_PER_SECOND": "0"})
        stack = cleanup.enter_context(LocalStack(config, dict(os.environ), progress=log))
        http = cleanup.enter_context(httpx.Client(timeout=120))
        ledger = Ledger.connect(config.ledger_url)
        cleanup.callback(ledger.close)
        target = f"{config.receiver_url}/webhooks/shopify"
        requests = order_requests(target, config.webhook_secret, orders, seed=99)
        erp_pid = stack.group.get("erp-sandbox").process.pid
        parts = {child.name: child.process.pid for child in stack.group.children}
        parts_before = {name: process_cpu_seconds(pid) for name, pid in parts.items()}
        cpu_before, erp_before, own_before = cpu_seconds_total(), process_cpu_seconds(erp_pid), time.process_time()
        started = time.time()
        answers, send_seconds = asyncio.run(send_all(target, requests, connections=50))
        accepted = sum(1 for a in answers if 200 <= a.status < 300)
        log(f"{accepted}/{orders} deliveries accepted in {send_seconds:.1f} s")
        deadline = time.monotonic() + max(600, orders)
        while True:
            counts = ledger.inbox_counts()
            done = sum(counts.get(state, 0) for state in FINAL)
            if done >= accepted:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"burst: {accepted - done} events unhandled; see {home / 'logs'}")
            stack.group.check_alive()
            log(f"{done}/{accepted} events handled")
            time.sleep(5)
        time.sleep(1)  # the batch run's process has exited; its worker collects it (and its CPU time) within 0.5 s
        machine_cpu = cpu_seconds_total() - cpu_before
        our_cpu = machine_cpu - (process_cpu_seconds(erp_pid) - erp_before) - (time.process_time() - own_before)
        by_part = {name: process_cpu_seconds(pid) - parts_before[name] for name, pid in parts.items()}
        # Where our CPU went, in ms per event; "database and rest" is the machine's busy time nobody above spent.
        cpu_by_part = {name: round(seconds * 1000 / max(1, accepted), 1) for name, seconds in by_part.items()
                       if name != "erp-sandbox"}
        cpu_by_part["database and rest"] = round((our_cpu - sum(v for k, v in by_part.items() if k != "erp-sandbox"))
                                                 * 1000 / max(1, accepted), 1)
        stats = http.get(f"{config.erp_url}/_sandbox/stats").json()
        records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
        writes = sorted(datetime.fromisoformat(r["last_modified"]).timestamp() for r in records)
        redelivery = redeliver_burst(http, ledger, config, requests[:redeliver]) if redeliver else {}
        last_write = writes[-1]
        batch_runs = runs_of(http, config.prefect_api, "sync-batch")
        event_runs = runs_of(http, config.prefect_api, "sync-event")
    seconds = last_write - started
    latency = parse_latency_profile(profile) if profile else fixed(latency_ms)
    ceiling = concurrency / (latency.mean_ms / 1000)
    rate = len(records) / seconds
    return {"backend": backend, "orders": orders, "accepted": accepted, "erp_records": len(records),
            "synced": counts.get("synced", 0), "failed": counts.get("failed", 0), "workers": workers,
            "erp_concurrency": concurrency, "erp_latency_ms": latency_ms, "latency_profile": latency.spec(),
            "ceiling_per_second": ceiling, **erp_figures(stats, concurrency, rate, writes, started),
            "seconds": round(seconds, 1), "records_per_second": round(rate, 1),
            "share_of_ceiling": round(rate / ceiling, 3), "send_seconds": round(send_seconds, 1),
            "first_write_after_s": round(writes[0] - started, 2), "steady_share_of_ceiling": steady_share(writes, ceiling),
            "erp_busy_share": round(stats["busy_seconds"] / (concurrency * seconds), 3),
            "erp_ms_per_request": round(1000 * stats["busy_seconds"] / max(1, stats["api_requests"]), 1),
            "erp_requests": stats["requests"], "peak_in_flight": stats["peak_in_flight"],
            "throttled_by_limit": stats.get("throttled_by_limit"), "too_many_requests": stats["too_many_requests"],
            "our_cpu_ms_per_event": round(our_cpu * 1000 / max(1, accepted), 1), "cpu_ms_per_event_by_part": cpu_by_part,
            "erp_sandbox_cpu_ms_per_event": round(by_part["erp-sandbox"] * 1000 / max(1, accepted), 1),
            "machine_busy_share": round(machine_cpu / (os.cpu_count() * (time.time() - started)), 2),
            "sync_batch_runs": len(batch_runs), "sync_event_runs": len(event_runs), **redelivery}


def redeliver_burst(http: httpx.Client, ledger: Ledger, config: StackConfig, requests: list[bytes]) -> dict:
    """Send ``requests`` again, wait until the inbox has nothing left to do, and count the ERP's records per order."""
    target = f"{config.receiver_url}/webhooks/shopify"
    answers, _ = asyncio.run(send_all(target, requests, connections=10))
    deadline = time.monotonic() + 300
    while (counts := ledger.inbox_counts()).get("received"):  # a redelivery that made new work would wait here
        if time.monotonic() > deadline:
            raise SystemExit(f"redelivery: events still unhandled after 300 s: {counts}")
        time.sleep(1)
    time.sleep(2)  # a write started by a redelivery would land within this
    records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    return {"redelivered": len(requests), "redeliveries_accepted": sum(1 for a in answers if 200 <= a.status < 300),
            "duplicate_records": len(records) - len({r["external_id"] for r in records})}


def erp_figures(stats: dict, concurrency: int, rate: float, writes: list[float], started: float) -> dict:
    """What the ERP sandbox's own counters say of a burst: the time one request held a slot (its mean), so the
    ceiling any caller could reach (C over it), the share of it reached, and what the callers asked of the limit."""
    held_ms = 1000 * stats["busy_seconds"] / max(1, stats["slot_requests"])
    achievable = concurrency / (held_ms / 1000) if held_ms else float("inf")
    return {"erp_ms_per_slot": round(held_ms, 1), "achievable_per_second": round(achievable, 2),
            "share_of_achievable": round(rate / achievable, 3),
            "steady_share_of_achievable": steady_share(writes, achievable) if len(writes) >= 10 else None,
            "erp_calls_per_record": round(stats["slot_requests"] / max(1, len(writes)), 2),
            # The account's slot time the callers used: records/s can stay low while this is high, when a record
            # needs several calls (the order mapping's customer lookup and create, then the order).
            "erp_busy_share": round(stats["busy_seconds"] / (concurrency * max(writes[-1] - started, 1e-9)), 3),
            "peak_offered": stats["peak_offered"], "last_write_after_s": round(writes[-1] - started, 1)}


def steady_share(writes: list[float], ceiling: float) -> float:
    """The rate between the 10th and the 90th percentile write, against the ceiling: the start and tail left out."""
    low, high = writes[len(writes) // 10], writes[len(writes) * 9 // 10]
    return round((len(writes) * 8 // 10) / max(high - low, 1e-9) / ceiling, 3)


def runs_of(http: httpx.Client, api: str, deployment: str) -> list[dict]:
    found = http.get(f"{api}/deployments/name/{deployment}/{deployment}")
    if found.status_code != 200:
        return []
    return http.post(f"{api}/flow_runs/filter", json={
        "flow_runs": {"deployment_id": {"any_": [found.json()["id"]]}}, "limit": 200}).json()


# -- quiet -------------------------------------------------------------------------------------------------------

def bench_quiet(samples: int, gap_seconds: float, *, forking: bool = True) -> dict:
    """One event at a time, ``gap_seconds`` apart: delivery → ERP record written, and what each run cost in
    Prefect (process start, run wall, overhead beyond our tasks). ``forking``: `erpsync worker`, else Prefect's
    plain process worker — the before and after of the fork server."""
    from bench.run import flow_run_costs

    home = HOME / ("quiet" if forking else "quiet-process-worker")
    shutil.rmtree(home, ignore_errors=True)
    config = StackConfig(home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
                         shop_port=free_port(), orders=3, seed=5, erp_latency_ms=100, forking_workers=forking)
    waits = []
    with LocalStack(config, dict(os.environ), progress=log), httpx.Client(timeout=60) as http:
        target = f"{config.receiver_url}/webhooks/shopify"
        requests = order_requests(target, config.webhook_secret, samples, seed=7)
        orders = GeneratedOrders(samples, 7, start=datetime.now(UTC) - timedelta(days=1), skus=DEMO_SKUS[:5])
        for index, request in enumerate(requests):
            time.sleep(gap_seconds)
            sent = time.time()
            answers, _ = asyncio.run(send_all(target, [request], connections=1))
            assert answers[0].status == 202, answers[0]
            external_id = f"eid:shopify-order-{orders.order(index)['id']}"
            deadline = time.monotonic() + 120
            while (record := _record(http, config, external_id)) is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"quiet: order {index} not in the ERP after 120 s")
                time.sleep(0.05)
            waits.append(datetime.fromisoformat(record["last_modified"]).timestamp() - sent)
            log(f"event {index + 1}/{samples}: {waits[-1]:.2f} s")
        time.sleep(3)  # the last run reports Completed after its record is written
        costs = flow_run_costs(http, config.prefect_api)
    return {"worker": "erpsync worker" if forking else "prefect process worker", "samples": samples,
            "gap_seconds": gap_seconds, "p50_s": round(statistics.median(waits), 2),
            "min_s": round(min(waits), 2), "max_s": round(max(waits), 2),
            **{k: costs[k] for k in ("runs_measured", "process_start_p50_s", "run_wall_p50_s",
                                     "run_overhead_p50_s", "run_overhead_p95_s")}}


def _record(http: httpx.Client, config: StackConfig, external_id: str) -> dict | None:
    records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
    wanted = external_id.removeprefix("eid:")
    return next((r for r in records if r["external_id"] == wanted), None)


def run_all(args) -> dict:
    results: dict = {"intake_vs_bare": [], "burst": []}
    log("intake vs a bare endpoint (SQLite ledger)")
    results["intake_vs_bare"].append(bench_intake(args.intake_deliveries, args.intake_connections, None))
    if args.postgres_url:
        log("intake vs a bare endpoint (PostgreSQL ledger)")
        results["intake_vs_bare"].append(bench_intake(args.intake_deliveries, args.intake_connections,
                                                      args.postgres_url))
    for postgres in [None] + ([args.postgres_url] if args.postgres_url else []):
        log(f"burst of {args.burst_orders} orders ({'PostgreSQL' if postgres else 'SQLite'})")
        results["burst"].append(bench_burst(args.burst_orders, args.erp_latency_ms, args.erp_concurrency,
                                            args.workers, postgres))
    results["quiet"] = []
    for forking in (True, False):
        log(f"quiet latency ({'erpsync worker' if forking else 'prefect process worker'})")
        results["quiet"].append(bench_quiet(args.quiet_samples, 3.0, forking=forking))
    return results


def run_intake(args) -> dict:
    """The intake part alone, ``args.intake_runs`` times per ledger: each run's figures and their median and spread."""
    results: dict = {"intake_runs": [], "intake_summary": []}
    for database_url in [None] + ([args.postgres_url] if args.postgres_url else []):
        name = "PostgreSQL" if database_url else "SQLite"
        runs = []
        for n in range(args.intake_runs):
            log(f"intake vs a bare endpoint ({name} ledger), run {n + 1} of {args.intake_runs}")
            runs.append(bench_intake(args.intake_deliveries, args.intake_connections, database_url))
        results["intake_runs"] += runs
        results["intake_summary"].append(summarize_intake(runs))
    return results


def summarize_intake(runs: list[dict]) -> dict:
    """Median and range of each figure over runs of one ledger."""
    def spread(values: list[float]) -> dict:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {"backend": runs[0]["backend"], "runs": len(runs), "connections": runs[0]["connections"],
            "accepted": sum(r["accepted"] for r in runs), "sent": sum(r["sent"] for r in runs),
            "per_second": spread([r["per_second"] for r in runs]), "p50_ms": spread([r["p50_ms"] for r in runs]),
            "p99_ms": spread([r["p99_ms"] for r in runs]),
            "bare_per_second": spread([r["bare"]["per_second"] for r in runs]),
            "ratio_to_bare": spread([r["ratio_to_bare"] for r in runs]),
            "load_average": [r.get("load_average") for r in runs]}


def intake_report(results: dict) -> str:
    def fmt(figure: dict, unit: str = "") -> str:
        return f"{figure['median']:g}{unit} ({figure['min']:g}–{figure['max']:g})"

    lines = ["| intake: ledger | runs | accepted | accepted/s median (range) | p50 ms | p99 ms | bare/s | "
             "receiver / bare | load average (1 min) at each start |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in results["intake_summary"]:
        loads = ", ".join(f"{x:.1f}" for x in s["load_average"] if x is not None)
        lines.append(f"| {s['backend']} | {s['runs']} | {s['accepted']}/{s['sent']} | {fmt(s['per_second'])} "
                     f"| {fmt(s['p50_ms'])} | {fmt(s['p99_ms'])} | {fmt(s['bare_per_second'])} "
                     f"| {fmt(s['ratio_to_bare'])} | {loads} |")
    return "\n".join(lines)


def report(results: dict) -> str:
    lines = ["| intake: ledger | connections | accepted/s | p50 ms | p99 ms | bare endpoint/s | bare p99 ms | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results.get("intake_vs_bare", []):
        lines.append(f"| {r['backend']} | {r['connections']} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} "
                     f"| {r['bare']['per_second']} | {r['bare']['p99_ms']} | {r['ratio_to_bare']} |")
    lines += ["", "| burst: ledger + Prefect | orders | C / L | ceiling/s | records/s | share | first write "
                  "| steady share | ERP busy | ERP ms/request | peak in flight | 429 by limit | our CPU ms/event "
                  "| batch runs | event runs |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.get("burst", []):
        lines.append(f"| {r['backend']} | {r['erp_records']}/{r['orders']} | {r['erp_concurrency']} / "
                     f"{r['erp_latency_ms']} ms | {r['ceiling_per_second']:g} | {r['records_per_second']} "
                     f"| {r['share_of_ceiling']:.1%} | {r['first_write_after_s']} s | {r['steady_share_of_ceiling']:.1%} "
                     f"| {r['erp_busy_share']:.1%} | {r['erp_ms_per_request']} | {r['peak_in_flight']} "
                     f"| {r['throttled_by_limit']} | {r['our_cpu_ms_per_event']} | {r['sync_batch_runs']} "
                     f"| {r['sync_event_runs']} |")
        lines.append(f"|  CPU ms/event by process ({r['backend']}): "
                     + ", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_event_by_part"].items())
                     + f"; ERP sandbox {r['erp_sandbox_cpu_ms_per_event']}; machine busy {r['machine_busy_share']:.0%} |")
    if results.get("quiet"):
        lines += ["", "| quiet: worker | single events | delivery → ERP record p50 | min | max | process start p50 "
                      "| run wall p50 | Prefect overhead in the run p50 / p95 |",
                  "|---|---|---|---|---|---|---|---|"]
        for q in results["quiet"]:
            lines.append(f"| {q['worker']} | {q['samples']}, {q['gap_seconds']:g} s apart | {q['p50_s']} s "
                         f"| {q['min_s']} s | {q['max_s']} s | {q['process_start_p50_s']} s | {q['run_wall_p50_s']} s "
                         f"| {q['run_overhead_p50_s']} / {q['run_overhead_p95_s']} s |")
    return "\n".join(lines)
