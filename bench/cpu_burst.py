"""One burst through the whole path with the ERP out of the way, and the CPU each process spent on it.

The stack is `make demo`'s (erpsync_dev/stack.py): Prefect server, `erpsync worker`(s), receiver(s), ERP and shop
sandboxes, each its own process. The ERP sandbox answers at zero latency with no concurrency limit, and the
connector's shared limit is off too, so what bounds the rate is our own work on this machine's cores. Used by
bench/own_ceiling.py (one worker, one receiver) and bench/scale_out.py (several of each).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from bench.loadgen import send_all
from bench.process_cpu import CpuMeter
from bench.throughput import FINAL, order_requests, runs_of
from erpsync.errors import ConfigError
from erpsync.ledger import Ledger
from erpsync.settings import PROJECT_DIR
from erpsync_dev.processes import free_port, python_module
from erpsync_dev.stack import LocalStack, StackConfig, fresh_postgres_databases

HOME = PROJECT_DIR / ".erpsync" / "bench"
# Our deployment: what an operator runs to use erpsync, Prefect's server and databases included. The ERP sandbox
# stands for NetSuite and the load generator for Shopify; the shop sandbox idles (it serves reconciliation only).
NOT_OURS = ("erp-sandbox", "load generator", "shop-sandbox")


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BurstSetup:
    orders: int = 2000
    workers: int = 1
    receivers: int = 1
    postgres_url: str | None = None  # None: ledger and Prefect on SQLite files
    worker_limit: int = 4  # runs at once per worker
    batch_threshold: int = 20
    connections: int = 50
    idle_seconds: float = 10.0  # the stack's CPU at rest, measured before the burst
    settle_seconds: float = 5.0

    @property
    def backend(self) -> str:
        return "postgresql" if self.postgres_url else "sqlite"


def run_burst(setup: BurstSetup, *, seed: int = 99, name: str = "own-ceiling", attempts: int = 2) -> dict:
    """``_run_burst``, starting the stack again when it failed to start: on a loaded machine `prefect deploy` can
    outlast the stack's timeout, which says nothing of the burst."""
    for attempt in range(1, attempts + 1):
        try:
            return _run_burst(setup, seed=seed, name=name)
        except (subprocess.TimeoutExpired, ConfigError) as exc:
            if attempt == attempts:
                raise
            log(f"the stack did not start ({str(exc).splitlines()[0][:160]}); starting it again")
    raise AssertionError("unreachable")


def _run_burst(setup: BurstSetup, *, seed: int, name: str) -> dict:
    """Start a stack, measure it idle, send ``setup.orders`` at once, wait until every event is final; figures."""
    home = HOME / f"{name}-{setup.backend}"
    shutil.rmtree(home, ignore_errors=True)
    with ExitStack() as cleanup:
        urls = cleanup.enter_context(fresh_postgres_databases(setup.postgres_url, "ledger", "prefect")) \
            if setup.postgres_url else {}
        config = StackConfig(
            home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(), shop_port=free_port(),
            orders=3, seed=5, database_url=urls.get("ledger"), prefect_database_url=urls.get("prefect"),
            erp_latency_ms=0, erp_concurrency=0, netsuite_concurrency=0, workers=setup.workers,
            worker_limit=setup.worker_limit,
            extra_env={"ERPSYNC_BATCH_THRESHOLD": str(setup.batch_threshold), "ERPSYNC_RATE_LIMIT_PER_SECOND": "0"})
        stack = cleanup.enter_context(LocalStack(config, dict(os.environ), progress=log))
        if setup.receivers > 1:
            share_receiver_port(stack, setup.receivers)
        ledger = Ledger.connect(config.ledger_url)
        cleanup.callback(ledger.close)
        http = cleanup.enter_context(httpx.Client(timeout=120))
        databases = {"ledger database": urls["ledger"].rsplit("/", 1)[1],
                     "Prefect database": urls["prefect"].rsplit("/", 1)[1]} if urls else {}
        trees = {child.name: child.process.pid for child in stack.group.children}

        time.sleep(setup.settle_seconds)  # the workers' and servers' own start-up is not their cost at rest
        idle = CpuMeter(trees, databases)
        idle.start()
        time.sleep(setup.idle_seconds)
        idle_cpu = idle.stop()

        target = f"{config.receiver_url}/webhooks/shopify"
        requests = order_requests(target, config.webhook_secret, setup.orders, seed=seed)
        meter = CpuMeter(trees, databases)
        load_before = os.getloadavg()
        meter.start()
        started, sender_before = time.time(), time.process_time()
        answers, send_seconds = asyncio.run(send_all(target, requests, connections=setup.connections))
        sender_cpu = time.process_time() - sender_before
        accepted = sum(1 for a in answers if 200 <= a.status < 300)
        log(f"{accepted}/{setup.orders} deliveries accepted in {send_seconds:.1f} s")
        counts = wait_final(ledger, stack, accepted, home)
        time.sleep(1.5)  # a finished batch run's process is waited for (its CPU moves to its worker) within ~0.5 s
        spent = meter.stop()
        load_after = os.getloadavg()
        spent["load generator"] = sender_cpu
        records = http.get(f"{config.erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]
        writes = sorted(datetime.fromisoformat(r["last_modified"]).timestamp() for r in records)
        batch_runs = runs_of(http, config.prefect_api, "sync-batch")
        event_runs = runs_of(http, config.prefect_api, "sync-event")
    seconds = writes[-1] - started
    per_event = {part: round(1000 * cpu / max(1, accepted), 2) for part, cpu in sorted(spent.items())}
    ours = sum(v for part, v in per_event.items() if part not in NOT_OURS)
    # What the events themselves cost: the burst's CPU less what each process spends at rest (polling, Prefect's
    # services, heartbeats) over the burst's duration. The rest is a cost per second, not per event: it weighs
    # more per event the slower a loaded machine makes the burst.
    at_rest = {part: idle_cpu.get(part, 0.0) / setup.idle_seconds * seconds for part in spent}
    marginal = {part: round(1000 * (spent[part] - at_rest[part]) / max(1, accepted), 2) for part in sorted(spent)}
    marginal["load generator"] = per_event["load generator"]  # it did not exist at rest
    ours_marginal = sum(v for part, v in marginal.items() if part not in NOT_OURS)
    return {
        "backend": setup.backend, "orders": setup.orders, "workers": setup.workers, "receivers": setup.receivers,
        "accepted": accepted, "erp_records": len(records), "synced": counts.get("synced", 0),
        "failed": counts.get("failed", 0), "seconds": round(seconds, 2),
        "events_per_second": round(accepted / seconds, 1), "send_seconds": round(send_seconds, 2),
        "intake_per_second": round(accepted / send_seconds, 1), "first_write_after_s": round(writes[0] - started, 2),
        "cpu_ms_per_event": per_event, "our_cpu_ms_per_event": round(ours, 2),
        "marginal_cpu_ms_per_event": marginal, "our_marginal_cpu_ms_per_event": round(ours_marginal, 2),
        "our_cores_busy": round(ours * accepted / 1000 / seconds, 2),
        "idle_cpu_ms_per_second": {part: round(1000 * cpu / setup.idle_seconds, 1) for part, cpu in idle_cpu.items()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "sync_batch_runs": len(batch_runs), "sync_event_runs": len(event_runs),
    }


def share_receiver_port(stack: LocalStack, receivers: int) -> None:
    """Replace the stack's receiver by ``receivers`` processes on its port (`erpsync serve --reuse-port`)."""
    port = stack.config.receiver_port
    stack.group.kill("receiver")
    stack.group.children.remove(stack.group.get("receiver"))
    for n in range(1, receivers + 1):
        name = f"receiver-{n}"
        stack.group.start(name, python_module("erpsync", "serve", "--port", str(port), "--reuse-port"))
        deadline = time.monotonic() + 90
        while not listens_on(stack.group.get(name).process.pid, port):
            stack.group.check_alive()
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not listen on {port} within 90 s; see {stack.config.home / 'logs'}")
            time.sleep(0.2)
    log(f"{receivers} receivers share port {port}")


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port`` (/proc/net/tcp state 0A, by inode)."""
    inodes = {row[9] for row in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
              if row[3] == "0A" and int(row[1].split(":")[1], 16) == port}
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                return True
        except OSError:
            continue
    return False


def wait_final(ledger: Ledger, stack: LocalStack, accepted: int, home: Path) -> dict:
    deadline = time.monotonic() + max(600, accepted)
    while True:
        counts = ledger.inbox_counts()
        done = sum(counts.get(state, 0) for state in FINAL)
        if done >= accepted:
            return counts
        if time.monotonic() > deadline:
            raise SystemExit(f"burst: {accepted - done} events unhandled; see {home / 'logs'}")
        stack.group.check_alive()
        log(f"{done}/{accepted} events handled")
        time.sleep(2)


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def summarize(runs: list[dict]) -> dict:
    """Median and range over runs of one setup, per figure and per process."""
    parts = sorted({part for run in runs for part in run["cpu_ms_per_event"]})
    return {"runs": len(runs), "backend": runs[0]["backend"], "workers": runs[0]["workers"],
            "receivers": runs[0]["receivers"], "orders": runs[0]["orders"],
            "all_synced": all(r["synced"] == r["accepted"] == r["orders"] == r["erp_records"] for r in runs),
            "events_per_second": spread([r["events_per_second"] for r in runs]),
            "intake_per_second": spread([r["intake_per_second"] for r in runs]),
            "first_write_after_s": spread([r["first_write_after_s"] for r in runs]),
            "our_cpu_ms_per_event": spread([r["our_cpu_ms_per_event"] for r in runs]),
            "our_cores_busy": spread([r["our_cores_busy"] for r in runs]),
            "cpu_ms_per_event": {p: spread([r["cpu_ms_per_event"].get(p, 0.0) for r in runs]) for p in parts},
            "our_marginal_cpu_ms_per_event": spread([r["our_marginal_cpu_ms_per_event"] for r in runs]),
            "marginal_cpu_ms_per_event": {p: spread([r["marginal_cpu_ms_per_event"].get(p, 0.0) for r in runs])
                                          for p in parts},
            "idle_cpu_ms_per_second": {p: spread([r["idle_cpu_ms_per_second"].get(p, 0.0) for r in runs])
                                       for p in parts if p != "load generator"},
            "seconds": spread([r["seconds"] for r in runs]),
            "load_average_1min": [r["load_average_before"][0] for r in runs],
            "sync_batch_runs": [r["sync_batch_runs"] for r in runs]}


def fmt(figure: dict) -> str:
    return f"{figure['median']:g} ({figure['min']:g}–{figure['max']:g})"
