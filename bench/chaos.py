"""`make chaos`: the proof that no event is lost and none applied twice, under load and injected faults.

Starts the scaled-out stack: the ledger and Prefect's database on PostgreSQL (fresh databases, dropped at the end),
two workers on one pool, the receiver, and the ERP sandbox with latency, its concurrency limit and random faults
(5% 5xx, 2% 429, 1% timeouts whose write is carried out). Sends N signed order webhooks (20% redeliveries, 20% of
the orders updated 2–5 times out of order, a few orders refused for good on purpose), SIGKILLs a worker three
times and the receiver once mid-run, re-sends what got no 2xx (as Shopify does), waits until the inbox is
drained, then prints and asserts the figures. Exits 1 on any failed assertion or on the timeout; the figures go
to a JSON file too.

The way back runs during the burst (bench/chaos_way_back.py): the warehouse ships some of the orders (one in two
parts) and counts stock in the ERP, half by notices posted twice more and half left to the change reader, whose
first pass is SIGKILLed; the shop sandbox throttles by a small cost bucket and fails some GraphQL calls. Checked:
no shipment lost, none fulfilled twice, each item's last count and prices in the shop, no event out of the ERP dead.

    make chaos                          # 1,000 webhooks (15–25 minutes on a 2-core VM)
    make chaos ARGS="--webhooks 120"    # the CI size
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import httpx
from sqlmodel import select

from erpsync.errors import ConfigError
from erpsync.ledger import DONE_STATES, InboxEvent, Ledger, Outcome
from erpsync.mapping import find_mapping
from erpsync.settings import PROJECT_DIR
from erpsync_dev.processes import free_port, interrupt_on_signals
from erpsync_dev.scenarios.chaos import MIN_WEBHOOKS, ChaosScenario, build_chaos_scenario
from erpsync_dev.scenarios.demo import Delivery, sign
from erpsync_dev.stack import LocalStack, StackConfig, fresh_postgres_databases

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling modules
from chaos_way_back import WayBackRun, WayBackSettings  # noqa: E402

TERMINAL = (*DONE_STATES, "failed")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/chaos.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--webhooks", type=int, default=1000, help="deliveries to send, redeliveries included (%(default)s)")
    p.add_argument("--seed", type=int, default=None, help="seed of the scenario and the faults (default: random)")
    p.add_argument("--workers", type=int, default=2, help="separate worker processes on the pool (%(default)s)")
    p.add_argument("--worker-limit", type=int, default=4, help="runs at once per worker (%(default)s)")
    p.add_argument("--erp-latency-ms", type=int, default=100, help="latency of every ERP call (%(default)s)")
    p.add_argument("--erp-limit", type=int, default=5,
                   help="the ERP's concurrency limit, and the connector's shared limit (%(default)s)")
    p.add_argument("--fault-rate", type=float, default=0.05, help="share of ERP calls failing with 5xx (%(default)s)")
    p.add_argument("--throttle-rate", type=float, default=0.02, help="share answered 429 at random (%(default)s)")
    p.add_argument("--timeout-rate", type=float, default=0.01,
                   help="share carried out but answered too late (%(default)s)")
    p.add_argument("--client-timeout", type=float, default=10.0,
                   help="the connector's timeout per ERP call, seconds (%(default)s); late answers come 2 s after")
    p.add_argument("--worker-kills", type=int, default=3, help="SIGKILLs of a worker, spread over the run")
    p.add_argument("--receiver-kills", type=int, default=1, help="SIGKILLs of the receiver while sending")
    p.add_argument("--restart-after", type=float, default=3.0, help="seconds a killed process stays down")
    p.add_argument("--send-concurrency", type=int, default=8, help="deliveries in flight at once (%(default)s)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait for the inbox to drain (default: 600 + 3 per webhook)")
    p.add_argument("--postgres-url", default=os.environ.get("ERPSYNC_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
                   help="a database on the PostgreSQL server to create the run's databases from")
    p.add_argument("--home", type=Path, default=None, help="state and logs (default: a new /tmp/erpsync-chaos-*)")
    p.add_argument("--result", type=Path, default=PROJECT_DIR / ".erpsync" / "chaos" / "result.json",
                   help="where the JSON figures go (%(default)s)")
    p.add_argument("--keep-databases", action="store_true", help="leave the run's PostgreSQL databases in place")
    p.add_argument("--way-back-orders", type=int, default=WayBackSettings.orders,
                   help="orders the ERP ships back to the shop during the burst, one in two parts (%(default)s)")
    p.add_argument("--stock-counts", type=int, default=WayBackSettings.counts,
                   help="stock counts in the ERP during the burst, each of another SKU (%(default)s)")
    p.add_argument("--shop-fault-rate", type=float, default=WayBackSettings.shop_fault_rate,
                   help="share of the shop's GraphQL calls answered 5xx without running (%(default)s)")
    p.add_argument("--shop-lost-rate", type=float, default=WayBackSettings.shop_lost_rate,
                   help="share of the shop's GraphQL calls run and then answered 504 (%(default)s)")
    args = p.parse_args(argv)
    problems = []
    if args.webhooks < MIN_WEBHOOKS:
        problems.append(f"--webhooks: at least {MIN_WEBHOOKS}, got {args.webhooks}")
    if args.workers < 2:
        problems.append("--workers: at least 2 (the point is several workers on one pool)")
    if args.erp_limit < 1:
        problems.append("--erp-limit: at least 1")
    if args.way_back_orders < 2 or args.stock_counts < 2:
        problems.append("--way-back-orders and --stock-counts: at least 2 (one by notice, one by the reader)")
    for name in ("fault_rate", "throttle_rate", "timeout_rate", "shop_fault_rate", "shop_lost_rate"):
        if not 0 <= getattr(args, name) <= 1:
            problems.append(f"--{name.replace('_', '-')}: a share between 0 and 1")
    if args.worker_kills < 0 or args.receiver_kills < 0:
        problems.append("--worker-kills and --receiver-kills: 0 or more")
    if problems:
        p.error("; ".join(problems))
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    if args.timeout is None:
        args.timeout = 600 + 3 * args.webhooks
    return args


# --- sending, as Shopify does: retry until a 2xx -------------------------------------------------------------


@dataclass
class SendState:
    acknowledged: list[Delivery] = field(default_factory=list)
    refused: list[tuple[Delivery, int, str]] = field(default_factory=list)  # 4xx other than 429: never retried
    gave_up: list[Delivery] = field(default_factory=list)
    attempts: int = 0
    answers: Counter = field(default_factory=Counter)  # status (or error class) of every attempt
    done: bool = False
    error: BaseException | None = None


async def send_all(scenario: ChaosScenario, *, target: str, secret: str, concurrency: int, state: SendState,
                   on_ack, give_up_after: float) -> None:
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=5.0) as client:

        async def deliver(delivery: Delivery) -> None:
            async with slots:
                headers = sign(delivery, secret)
                deadline = time.monotonic() + give_up_after
                delay = 0.5
                while True:
                    state.attempts += 1
                    try:
                        response = await client.post(target, content=delivery.body, headers=headers)
                        status, answer = response.status_code, str(response.status_code)
                    except httpx.HTTPError as exc:
                        status, answer = None, type(exc).__name__
                    state.answers[answer] += 1
                    if status is not None and 200 <= status < 300:
                        state.acknowledged.append(delivery)
                        on_ack(len(state.acknowledged))
                        return
                    if status is not None and 400 <= status < 500 and status != 429:
                        state.refused.append((delivery, status, response.text[:200]))
                        return
                    if time.monotonic() > deadline:
                        state.gave_up.append(delivery)
                        return
                    # Shopify retries a failed delivery later; here sooner, with jitter, to keep the run short.
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 4.0)

        await asyncio.gather(*(deliver(d) for d in scenario.deliveries))


def start_sender(scenario, config: StackConfig, args, state: SendState, on_ack) -> threading.Thread:
    def run() -> None:
        try:
            asyncio.run(send_all(scenario, target=f"{config.receiver_url}/webhooks/shopify",
                                 secret=config.webhook_secret, concurrency=args.send_concurrency, state=state,
                                 on_ack=on_ack, give_up_after=300))
        except BaseException as exc:  # reported by the main thread
            state.error = exc
        finally:
            state.done = True

    thread = threading.Thread(target=run, name="chaos-sender", daemon=True)
    thread.start()
    return thread


# --- the run ------------------------------------------------------------------------------------------------


class Chaos:
    def __init__(self, args, scenario: ChaosScenario, stack: LocalStack, ledger: Ledger):
        self.args, self.scenario, self.stack, self.ledger = args, scenario, stack, ledger
        self.config = stack.config
        self.kills: list[dict] = []
        self.kill_lock = threading.Lock()
        self.started = time.monotonic()
        self.way_back = WayBackRun(
            WayBackSettings(orders=args.way_back_orders, counts=args.stock_counts,
                            shop_fault_rate=args.shop_fault_rate, shop_lost_rate=args.shop_lost_rate),
            scenario, stack, args.seed, self.log, kill=self.kill_and_restart)

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {message}", flush=True)

    def kill_and_restart(self, name: str, why: str) -> None:
        with self.kill_lock:
            victims = self.stack.kill(name)
            self.log(f"SIGKILL {name} ({why}; {victims} process(es) killed)")
            self.kills.append({"process": name, "why": why, "processes_killed": victims,
                               "at_seconds": round(time.monotonic() - self.started, 1)})
            time.sleep(self.args.restart_after)
            self.stack.restart(name)
            self.log(f"restarted {name}")

    def run(self) -> dict:
        args, scenario = self.args, self.scenario
        unique = len(scenario.unique)
        receiver_kill_at = {max(1, round(len(scenario.deliveries) * (k + 1) / (args.receiver_kills + 1)))
                            for k in range(args.receiver_kills)}
        worker_names = self.config.worker_names
        worker_kill_at = [0.1 + 0.6 * k / max(1, args.worker_kills - 1) for k in range(args.worker_kills)]
        killers: list[threading.Thread] = []

        def on_ack(acknowledged: int) -> None:
            # The receiver dies while the burst is in full swing: requests in flight get no answer.
            if acknowledged in receiver_kill_at:
                killer = threading.Thread(target=self.kill_and_restart,
                                          args=("receiver", f"after {acknowledged} acknowledged deliveries"),
                                          daemon=True)
                killers.append(killer)
                killer.start()

        state = SendState()
        self.log(f"sending {len(scenario.deliveries)} webhooks ({unique} unique) to {self.config.receiver_url}")
        sender = start_sender(scenario, self.config, args, state, on_ack)
        self.way_back.start()
        deadline = time.monotonic() + args.timeout
        last_line, last_print = "", 0.0
        worker_kills_done = 0
        while True:
            counts = self.ledger.inbox_counts()
            handled = sum(counts.get(s, 0) for s in TERMINAL)
            while (worker_kills_done < len(worker_kill_at) and handled >= worker_kill_at[worker_kills_done] * unique
                   and not any(k.is_alive() for k in killers)):
                name = worker_names[worker_kills_done % len(worker_names)]
                self.kill_and_restart(name, f"with {handled}/{unique} events handled")
                worker_kills_done += 1
            line = (f"sent {len(state.acknowledged)}/{len(scenario.deliveries)} acknowledged; inbox "
                    f"{counts.get('events', 0)} events: {handled} handled ({counts.get('synced', 0)} synced, "
                    f"{counts.get('duplicate', 0)} duplicate, {counts.get('superseded', 0)} superseded, "
                    f"{counts.get('failed', 0)} failed), {counts.get('events', 0) - handled} to go"
                    + _waiting(counts))
            now = time.monotonic()
            if line != last_line and now - last_print >= 5 or now - last_print >= 30:
                self.log(line)
                last_line, last_print = line, now
            if state.error is not None:
                raise state.error
            sending_over = state.done and not any(k.is_alive() for k in killers)
            if sending_over and (state.refused or state.gave_up):
                break  # the checks below report them
            if (sending_over and worker_kills_done == len(worker_kill_at) and counts.get("events", 0) >= unique
                    and handled >= counts.get("events", 0) and self.way_back.done):
                self.log(line)
                break
            if now > deadline:
                self.log(f"! TIMED OUT after {args.timeout:.0f}s: {line}")
                break
            if not any(k.is_alive() for k in killers) and not self.kill_lock.locked():
                self.stack.group.check_alive()
            time.sleep(1)
        sender.join(timeout=5)
        for killer in killers:
            killer.join(timeout=60)
        return self.check(state, timed_out=time.monotonic() > deadline)

    # --- the figures and the assertions ---------------------------------------------------------------------

    def check(self, state: SendState, *, timed_out: bool) -> dict:
        scenario, config = self.scenario, self.config
        with httpx.Client(timeout=60) as http:
            erp_records = http.get(f"{config.erp_url}/_sandbox/records",
                                   params={"type": "salesOrder"}).raise_for_status().json()["records"]
            erp_stats = http.get(f"{config.erp_url}/_sandbox/stats").raise_for_status().json()
        with self.ledger.session() as session:
            inbox = {row.delivery_id: row for row in session.exec(
                select(InboxEvent).where(InboxEvent.source == "shopify")).all()}
            failed_reasons = {}
            for row in inbox.values():
                if row.state == "failed":
                    last = session.exec(select(Outcome).where(Outcome.event_id == row.id, Outcome.outcome == "failed")
                                        .order_by(Outcome.id.desc()).limit(1)).first()
                    failed_reasons[row.delivery_id] = last.reason if last else "no reason recorded"
        xref = {s.external_id: s.to_id for s in self.ledger.entities()}

        injected_orders = {o.order_id for o in scenario.orders if o.rejected}
        acked_ids = {d.webhook_id for d in state.acknowledged}
        unique_by_id = {d.webhook_id: d for d in scenario.unique}
        lost = sorted(w for w in acked_ids if w not in inbox)
        unfinished = sorted(w for w in acked_ids if w in inbox and inbox[w].state not in TERMINAL)
        states = Counter(inbox[w].state for w in acked_ids if w in inbox)
        dead = failed_reasons
        unexpected_dead = {w: r for w, r in dead.items() if unique_by_id[w].order_id not in injected_orders}
        expected_dead = {w for w, d in unique_by_id.items() if d.order_id in injected_orders}
        injected_not_dead = sorted(expected_dead - set(dead))
        dead_reasons = Counter(_reason_kind(r) for r in dead.values())

        order_mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/create")
        skus = order_mapping.tables["sku_to_item"]
        # A line without a SKU (a custom line) goes to the mapping's fallback item.
        custom_item = order_mapping.config.money.items.custom if order_mapping.config.money else None
        by_external_id: dict[str, list[dict]] = {}
        for record in erp_records:
            by_external_id.setdefault(record["external_id"], []).append(record)
        names = Counter(r["body"].get("otherRefNum") for r in erp_records)
        duplicates = sum(n - 1 for n in names.values() if n > 1) + sum(r["external_id"] is None for r in erp_records)
        wanted = {o.external_id: o for o in scenario.orders if o.rejected is None}
        unexpected_records = sorted(set(by_external_id) - set(wanted))
        newest, stale, missing, ledger_disagrees = 0, [], [], []
        for external_id, order in wanted.items():
            records = by_external_id.get(external_id)
            if not records:
                missing.append(external_id)
                continue
            record = records[0]
            got = [(str(li["item"]["id"]), int(li["quantity"]), Decimal(str(li["rate"])))
                   for li in record["body"]["item"]["items"]]
            want = [(str(skus.get(sku)) if sku else custom_item, qty, Decimal(price))
                    for sku, qty, price in order.newest_lines]
            if got == want:
                newest += 1
            else:
                stale.append(f"{external_id}: ERP lines {got}, newest version {want}")
            if xref.get(external_id) != record["internal_id"]:
                ledger_disagrees.append(f"{external_id}: ledger {xref.get(external_id)}, ERP {record['internal_id']}")

        limit = self.args.erp_limit
        receiver_kills = sum(k["process"] == "receiver" for k in self.kills)
        worker_kills = len(self.kills) - receiver_kills
        # The way back kills a worker of its own while its notices' events run.
        expected_worker_kills = self.args.worker_kills + self.way_back.worker_kills
        figures = {
            "webhooks_sent": len(scenario.deliveries),
            "acknowledged_deliveries": len(state.acknowledged),
            "delivery_attempts": state.attempts,
            "attempt_answers": dict(sorted(state.answers.items())),
            "unique_events_in_inbox": len(inbox),
            "event_states": dict(sorted(states.items())),
            "orders": len(scenario.orders),
            "orders_to_sync": len(wanted),
            "erp_records": len(erp_records),
            "erp_records_at_newest_version": newest,
            "erp_duplicates": duplicates,
            "events_lost": len(lost) + len(unfinished),
            "dead_letters": len(dead),
            "dead_letters_injected": len(expected_dead),
            "dead_letter_reasons": dict(sorted(dead_reasons.items())),
            "erp_limit": limit,
            "peak_concurrent_erp_calls": erp_stats.get("peak_offered", erp_stats["peak_in_flight"]),
            "peak_admitted_erp_calls": erp_stats["peak_in_flight"],
            "erp_429_caused_by_us": erp_stats.get("throttled_by_limit"),
            "erp_429_injected": erp_stats.get("throttled_injected"),
            "erp_5xx_injected": sum(v for k, v in erp_stats["by_status"].items() if k.startswith("5")),
            "erp_timeouts_injected": erp_stats.get("timeouts_injected"),
            "erp_rejections_injected": erp_stats.get("rejections_injected"),
            "erp_requests": erp_stats.get("api_requests", erp_stats["requests"]),
            "kills": self.kills,
        }
        checks = [
            ("every webhook acknowledged (2xx) in the end", len(state.acknowledged) == len(scenario.deliveries),
             f"{len(state.gave_up)} gave up, {len(state.refused)} refused: "
             + "; ".join(f"{s} {t}" for _, s, t in state.refused[:3])),
            ("the inbox drained within the timeout", not timed_out and not unfinished,
             f"{len(unfinished)} acknowledged events not finished: states "
             f"{dict(Counter(inbox[w].state for w in unfinished))}; "
             + _stuck_runs(config.prefect_api, [inbox[w] for w in unfinished])),
            ("events lost = 0 (every acknowledged delivery is in the inbox, finished)",
             not lost and not unfinished, f"{len(lost)} not in the inbox, {len(unfinished)} unfinished"),
            ("duplicates created in the ERP = 0", duplicates == 0, f"{duplicates} duplicate sales orders"),
            ("no ERP record for an order refused on purpose", not unexpected_records,
             ", ".join(unexpected_records[:5])),
            ("every order to sync is in the ERP at its newest version",
             newest == len(wanted), f"{len(missing)} missing, {len(stale)} stale: {(missing + stale)[:3]}"),
            ("the ledger's cross-reference matches the ERP", not ledger_disagrees, "; ".join(ledger_disagrees[:3])),
            ("dead letters are exactly the injected permanent failures",
             not unexpected_dead and not injected_not_dead,
             f"{len(unexpected_dead)} unexpected "
             f"({'; '.join(list(unexpected_dead.values())[:3])}), {len(injected_not_dead)} injected not dead-lettered"),
            (f"peak concurrent ERP calls ≤ the limit ({limit})", figures["peak_concurrent_erp_calls"] <= limit,
             f"peak {figures['peak_concurrent_erp_calls']}"),
            ("429s caused by us = 0", figures["erp_429_caused_by_us"] == 0,
             f"{figures['erp_429_caused_by_us']} requests refused by the ERP's concurrency limit"),
            (f"worker SIGKILLs = {expected_worker_kills} ({self.way_back.worker_kills} in the way back), "
             f"receiver SIGKILLs = {self.args.receiver_kills}",
             (worker_kills, receiver_kills) == (expected_worker_kills, self.args.receiver_kills),
             f"done: {[k['process'] for k in self.kills]}"),
        ]
        way_back_figures, way_back_checks = self.way_back.check(self.ledger)
        figures.update(way_back_figures)
        checks += way_back_checks
        failed = [(name, detail) for name, ok, detail in checks if not ok]
        return {"figures": figures, "checks": [{"check": n, "passed": ok, **({} if ok else {"detail": d})}
                                               for n, ok, d in checks],
                "passed": not failed}


def _waiting(counts: dict[str, int]) -> str:
    waiting = {state: n for state, n in sorted(counts.items())
               if state not in (*TERMINAL, "events", "redeliveries") and n}
    return f" {waiting}" if waiting else ""


def _stuck_runs(api: str, rows: list) -> str:
    """Prefect's view of a few unfinished events, to say where they hang (no run, or a run in which state)."""
    described = []
    with httpx.Client(timeout=30) as http:
        for row in rows[:5]:
            state = "no flow run"
            if row.flow_run_id:
                try:
                    run = http.get(f"{api}/flow_runs/{row.flow_run_id}").json()
                    state = f"run {row.flow_run_id[:8]} {run.get('state_type')}/{run.get('state_name')}"
                except (httpx.HTTPError, ValueError) as exc:
                    state = f"run {row.flow_run_id[:8]} unknown ({type(exc).__name__})"
            described.append(f"event {row.id} {row.state}: {state}")
        if any(not row.flow_run_id for row in rows):
            described.append(_runs_of(http, api, "sync-batch") + "; " + _runs_of(http, api, "sweep-inbox"))
    return "; ".join(described)


def _runs_of(http: httpx.Client, api: str, flow: str) -> str:
    """The last runs of one flow and their states: events without a run wait for a batch run or the sweep."""
    try:
        runs = http.post(f"{api}/flow_runs/filter", json={"flows": {"name": {"any_": [flow]}},
                                                            "sort": "EXPECTED_START_TIME_DESC", "limit": 6}).json()
        states = [f"{run['id'][:8]} {run.get('state_type')}/{run.get('state_name')}" for run in runs]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return f"{flow} runs unknown ({type(exc).__name__})"
    return f"last {flow} runs: {', '.join(states) or 'none'}"


def _reason_kind(reason: str) -> str:
    """A short, data-free label of a dead letter's reason: the error class and ERP code, without the detail."""
    head = reason.split(":", 1)[0]
    for code in ("USER_ERROR", "INVALID_CONTENT", "NONEXISTENT_ID", "INVALID_PARAMETER"):
        if code in reason:
            return f"{head} {code}"
    if "not found in lookup table" in reason:
        return f"{head} unknown SKU"
    return head


def print_report(args, result: dict, elapsed: float) -> None:
    f = result["figures"]
    print("\n== chaos result ==")
    rows = [
        ("webhooks sent", f"{f['webhooks_sent']} ({f['delivery_attempts']} attempts: {f['attempt_answers']})"),
        ("acknowledged deliveries", f["acknowledged_deliveries"]),
        ("unique events in the inbox", f"{f['unique_events_in_inbox']} {f['event_states']}"),
        ("ERP records", f"{f['erp_records']} (orders to sync: {f['orders_to_sync']} of {f['orders']})"),
        ("records at the newest source version", f["erp_records_at_newest_version"]),
        ("duplicates created in the ERP", f["erp_duplicates"]),
        ("events lost", f["events_lost"]),
        ("dead letters", f"{f['dead_letters']} (injected: {f['dead_letters_injected']}) {f['dead_letter_reasons']}"),
        ("peak concurrent ERP calls", f"{f['peak_concurrent_erp_calls']} (limit {f['erp_limit']}; "
                                      f"admitted peak {f['peak_admitted_erp_calls']})"),
        ("429s caused by us", f["erp_429_caused_by_us"]),
        ("faults injected by the ERP", f"{f['erp_5xx_injected']} 5xx, {f['erp_429_injected']} 429, "
                                       f"{f['erp_timeouts_injected']} timeouts, {f['erp_rejections_injected']} "
                                       f"rejections, of {f['erp_requests']} requests"),
        ("SIGKILLs", ", ".join(f"{k['process']} at {k['at_seconds']}s" for k in f["kills"]) or "none"),
        ("way back: shipments (orders)", f"{f['way_back_shipments']} ({f['way_back_orders_shipped']}), "
                                         f"{f['way_back_stock_counts']} stock counts"),
        ("way back: events out of the ERP", f["way_back_events"]),
        ("way back: duplicate notices posted", f["way_back_notices_reposted"]),
        ("way back: SIGKILLs", f"erpsync poll {f['way_back_reader_kills']}, worker {f['way_back_worker_kills']}; "
                               f"shop bucket emptied {f['shop_bucket_drains']} times"),
        ("shop: GraphQL calls", f"{f['shop_graphql_requests']} ({f['shop_throttled']} throttled, "
                                f"{f['shop_5xx_injected']} 5xx injected, {f['shop_answers_lost']} answers lost)"),
        ("way back: delay ERP → shop (s)", f["way_back_delay_seconds"]),
        ("wall time", f"{elapsed / 60:.1f} min"),
    ]
    for name, value in rows:
        print(f"  {name:<38} {value}")
    print()
    for check in result["checks"]:
        mark = "PASS" if check["passed"] else "FAIL"
        print(f"  {mark}  {check['check']}" + (f" — {check['detail']}" if not check["passed"] else ""))
    print(f"\nchaos {'PASSED' if result['passed'] else 'FAILED'}; figures in {args.result}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_signals()  # Ctrl-C and SIGTERM stop every process and drop the databases
    home = (args.home or Path("/tmp") / f"erpsync-chaos-{uuid.uuid4().hex[:8]}").resolve()
    scenario = build_chaos_scenario(args.webhooks, args.seed)
    print(f"· scenario (seed {args.seed}): {scenario.counts()}", flush=True)
    print(f"· state and logs in {home}", flush=True)
    started = time.monotonic()
    try:
        with fresh_postgres_databases(args.postgres_url, "ledger", "prefect", keep=args.keep_databases) as dbs:
            config = StackConfig(
                home=home, prefect_port=free_port(), receiver_port=free_port(), erp_port=free_port(),
                shop_port=free_port(), orders=3, seed=args.seed,
                database_url=dbs["ledger"], prefect_database_url=dbs["prefect"],
                workers=args.workers, worker_limit=args.worker_limit,
                erp_latency_ms=args.erp_latency_ms, erp_concurrency=args.erp_limit,
                erp_fault_rate=args.fault_rate, erp_fault_statuses="500,502,503",
                erp_throttle_rate=args.throttle_rate, erp_timeout_rate=args.timeout_rate,
                erp_timeout_hold_seconds=args.client_timeout + 2, erp_retry_after=1.0,
                erp_reject_external_ids=scenario.erp_rejected_external_ids, erp_fault_seed=args.seed,
                netsuite_timeout_seconds=args.client_timeout, netsuite_concurrency=args.erp_limit,
                crash_detection=True,
                # The receiver's own rate limit would only slow the burst down; its 429s are retried anyway.
                extra_env={"ERPSYNC_RATE_LIMIT_PER_SECOND": "0"},
            )
            stack = LocalStack(config, dict(os.environ), progress=lambda m: print(f"· {m}", flush=True))
            try:
                stack.start()
                ledger = Ledger.connect(config.ledger_url)
                try:
                    result = Chaos(args, scenario, stack, ledger).run()
                finally:
                    ledger.close()
            finally:
                print("· stopping every process", flush=True)
                stack.stop()
    except KeyboardInterrupt:
        print("\ninterrupted: every process stopped, the run's databases dropped", flush=True)
        return 130
    except ConfigError as exc:
        print(f"chaos could not run: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    result.update({
        "command": "make chaos ARGS=\"" + " ".join(sys.argv[1:] if argv is None else argv) + "\"",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "seed": args.seed, "scenario": scenario.counts(), "wall_seconds": round(elapsed, 1), "home": str(home),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("postgres_url",)},
    })
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2))
    print_report(args, result, elapsed)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
