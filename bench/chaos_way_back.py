"""The way back under `make chaos`: while the burst of orders runs, the warehouse ships some of them (one in two
parts) and counts stock in the ERP sandbox, half by the user-event script's notices (each posted twice more, as a
retrying script would) and half left to the change reader, whose first commanded pass is SIGKILLed mid-run; the shop
sandbox throttles by a small cost bucket and fails or loses the answers of some GraphQL calls. Then: every shipment
in the shop once, none twice, each item's last count and its prices right, and no event out of the ERP dead.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from erpsync.ledger import Ledger
from erpsync.mapping import find_mapping
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.client import NetSuiteClient
from erpsync_dev.processes import python_module
from erpsync_dev.scenarios.chaos import ChaosScenario
from erpsync_dev.stack import LocalStack
from erpsync_dev.way_back import (
    NOTICE,
    PATHS,
    READER,
    Change,
    Shipment,
    ShopView,
    ShopWatcher,
    StockCount,
    Warehouse,
    check_shop,
    final_changes,
    netsuite_events,
    percentile,
    plan_shipments,
    plan_stock,
    run_poll,
    safety_buffer,
    settle_seconds,
    shippable_orders,
    wait_for_events,
)


@dataclass
class WayBackSettings:
    orders: int = 6  # orders shipped (one of them in two parts)
    counts: int = 6  # stock counts, each of another SKU; one also changes the price
    recounts: int = 2  # SKUs counted again a little later: the shop must end with the last count
    renotify: int = 2  # extra copies of each notice posted to the receiver
    shop_fault_rate: float = 0.05  # GraphQL calls answered 5xx without running
    shop_lost_rate: float = 0.0  # GraphQL calls run and then answered 504
    # The shop's cost bucket, half a standard plan's (2,000 points restoring 100 a second), so that several workers
    # writing at once meet THROTTLED; it holds the 1,000 points a single query may ask (the writer's order query
    # asks about 600).
    shop_bucket: float = 1000.0
    shop_restore_rate: float = 50.0
    timeout: float = 600.0


@dataclass
class WayBackRun:
    """The way back's part of a chaos run: started with the burst, finished before the checks."""

    settings: WayBackSettings
    scenario: ChaosScenario
    stack: LocalStack
    seed: int
    log: Any
    kill: Any = None  # kill(process name, why): SIGKILL and restart a part of the stack, counted with chaos's kills
    changes: list[Change] = field(default_factory=list)
    renotified: Counter = field(default_factory=Counter)
    reader_kills: int = 0
    worker_kills: int = 0
    drains: int = 0
    polls: list[str] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    thread: threading.Thread | None = None
    watcher: ShopWatcher | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="chaos-way-back", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.drive()
        except BaseException as exc:  # reported by the checks
            self.error = exc
            self.log(f"way back: stopped by {type(exc).__name__}: {exc}")
        finally:
            self.done = True

    # -- the orders the warehouse ships: early ones of the burst, sent once (no later version to race with) --

    def chosen_orders(self) -> list[int]:
        sent_once = {o.order_id for o in self.scenario.orders if o.rejected is None and o.versions == 1
                     and any(sku for sku, _, _ in o.newest_lines)}
        chosen: list[int] = []
        for delivery in self.scenario.deliveries:
            if delivery.order_id in sent_once and int(delivery.order_id) not in chosen:
                chosen.append(int(delivery.order_id))
            if len(chosen) == self.settings.orders:
                break
        return chosen

    def announce(self, http: httpx.Client, shop_url: str, order_ids: list[int]) -> None:
        """The shop holds the orders the burst's webhooks came from: their bodies, so it has their lines."""
        wanted = {str(o) for o in order_ids}
        for delivery in self.scenario.deliveries:
            if delivery.order_id in wanted:
                http.post(f"{shop_url}/_sandbox/orders", content=delivery.body,
                          headers={"Content-Type": "application/json"}).raise_for_status()
                wanted.discard(delivery.order_id)

    def drive(self) -> None:
        config, s = self.stack.config, self.settings
        rng = random.Random(self.seed)
        buffer = safety_buffer()
        order_ids = self.chosen_orders()
        # The warehouse's calls count against the ERP account's concurrency limit as erpsync's do (the same slots),
        # so a 429 from that limit still means erpsync overran it.
        with httpx.Client(timeout=60) as http, NetSuiteClient.from_env(config.ledger_url, self.stack.env) as erp:
            shop = ShopView(config.shop_url, http)
            http.post(f"{config.shop_url}/_sandbox/graphql/throttle",
                      json={"maximumAvailable": s.shop_bucket, "restoreRate": s.shop_restore_rate,
                            "currentlyAvailable": s.shop_bucket, "resetCounts": True}).raise_for_status()
            http.post(f"{config.shop_url}/_sandbox/graphql/faults",
                      json={"rate": s.shop_fault_rate, "lost_rate": s.shop_lost_rate,
                            "seed": self.seed}).raise_for_status()
            self.log(f"way back: shop bucket {s.shop_bucket:g} points restoring {s.shop_restore_rate:g}/s, "
                     f"{s.shop_fault_rate:.0%} GraphQL calls 5xx, {s.shop_lost_rate:.0%} answers lost; waiting for "
                     f"{len(order_ids)} orders to reach the ERP")
            deadline = time.monotonic() + s.timeout
            ledger = Ledger.connect(config.ledger_url)
            try:
                # Synced means in the ledger: a sales order in the ERP whose run was killed before its commit is
                # written again by the re-run, and an order shipped meanwhile refuses that (its lines are fulfilled).
                while True:
                    synced = {state.external_id for state in ledger.entities()}
                    ready = [o for o in order_ids if f"shopify-order-{o}" in synced]
                    if len(ready) == len(order_ids) or time.monotonic() > deadline:
                        break
                    time.sleep(2)
            finally:
                ledger.close()
            orders = shippable_orders(config.erp_url, http, erp, ready)
            self.announce(http, config.shop_url, list(orders))
            warehouse = Warehouse(erp, config.erp_url, http, receiver_url=config.receiver_url,
                                  secret=config.netsuite_secret)
            half = (len(orders) + 1) // 2
            shipments = plan_shipments(orders, [NOTICE] * half + [READER] * (len(orders) - half), rng)
            known = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/create").tables["sku_to_item"].rows
            counts_half = (s.counts + 1) // 2
            stock = plan_stock(shop.variants(), known, [NOTICE] * counts_half + [READER] * (s.counts - counts_half),
                               rng, buffer=buffer)
            self.changes = [*shipments, *stock]
            # Watches the shop from before the first change to the checks, on a client of its own.
            self.watcher = ShopWatcher(ShopView(config.shop_url, httpx.Client(timeout=60)), self.changes,
                                       buffer=buffer, interval=0.5).__enter__()
            for path in (READER, NOTICE):
                warehouse.notices(path)
                for change in (c for c in self.changes if c.path == path):
                    if isinstance(change, Shipment):
                        warehouse.ship(change)
                    else:
                        warehouse.count(change)
                    if path == NOTICE:
                        for _ in range(s.renotify):
                            self.renotified.update(str(a) for a in warehouse.renotify(change, http))
                if path == READER:
                    self.kill_a_poll()
            drainer = threading.Thread(target=self.drain_the_bucket, args=(config.shop_url,), daemon=True,
                                       name="chaos-shop-drain")
            drainer.start()
            if self.kill is not None:
                # The notices' events are being synced now: a worker dies with some of their runs.
                self.kill(self.stack.config.worker_names[-1], "during the way back's notices")
                self.worker_kills += 1
            self.log(f"way back: {len(shipments)} shipments and {len(stock)} counts made "
                     f"({sum(c.path == NOTICE for c in self.changes)} by notice, the rest left to the reader)")
            # Later counts of some SKUs, a second on (NetSuite stamps changes to the second), by either way.
            time.sleep(1.1)
            for n, earlier in enumerate(stock[: s.recounts]):
                path = PATHS[n % 2]
                warehouse.notices(path)
                again = plan_stock([{"sku": earlier.sku, "price": str(earlier.price),
                                     "id": f"gid://shopify/ProductVariant/{earlier.variant_id}"}],
                                   [earlier.sku], [path], rng, buffer=buffer, price_changes=0)[0]
                again.price, again.msrp, again.label = earlier.price, earlier.msrp, f"{earlier.sku} recount"
                warehouse.count(again)
                self.changes.append(again)
            warehouse.notices(READER)
            last = max(c.made_at for c in self.changes)
            time.sleep(max(0.0, last + settle_seconds(self.stack.env) + 1 - time.monotonic()))
            for attempt in range(1, 4):  # exit 1: the ERP or the ledger was away (faults, kills); again, as a person would
                code, output, errors = run_poll(self.stack.env)
                self.polls.append(output)
                said = output.splitlines() or errors.splitlines()[-1:]
                self.log(f"way back: erpsync poll exited {code}: {' | '.join(said)}")
                if code != 1:
                    break

    def drain_the_bucket(self, shop_url: str, *, every: float = 1.0, longest: float = 300.0) -> None:
        """Empty the shop's cost bucket every second while the way back's runs write, as another process spending
        the same app's budget would, until the shop has answered THROTTLED twice (the client must wait those out):
        the runs start when the workers get to them, so a fixed number of drains could miss them all."""
        deadline = time.monotonic() + longest
        with httpx.Client(timeout=30) as http:
            url = f"{shop_url}/_sandbox/graphql/throttle"
            before = http.get(url).raise_for_status().json()["throttled"]
            while time.monotonic() < deadline:
                answer = http.post(url, json={"currentlyAvailable": 0}).raise_for_status().json()
                self.drains += 1
                if answer["throttled"] - before >= 2:
                    break
                time.sleep(every)

    def kill_a_poll(self) -> None:
        """Start a pass of the change reader and SIGKILL it while it runs: the next pass must miss nothing."""
        process = subprocess.Popen(python_module("erpsync", "poll"), cwd=self.stack.config.project_dir,
                                   env=self.stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # Its log says when it has read the first record type: killed then, the others are still to read.
            for line in process.stderr:  # type: ignore[union-attr]
                if "poll netsuite" in line and "changes read" in line:
                    process.send_signal(signal.SIGKILL)
                    self.reader_kills += 1
                    self.log("way back: SIGKILL erpsync poll after its first record type, mid-pass")
                    break
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)

    # -- the checks --

    def check(self, ledger: Ledger) -> tuple[dict, list[tuple[str, bool, str]]]:
        config = self.stack.config
        if self.thread is not None:
            self.thread.join(timeout=5)
        buffer = safety_buffer()
        final = final_changes(self.changes)
        with httpx.Client(timeout=60) as http:
            shop = ShopView(config.shop_url, http)
            shown = False
            if self.watcher is not None:
                shown = bool(final) and self.watcher.wait(final, timeout=self.settings.timeout)
                self.watcher.__exit__(None, None, None)
                self.watcher.shop.http.close()
            wait_for_events(ledger, timeout=60)
            problems = check_shop(shop, final, buffer=buffer) if final else ["no change was made"]
            throttle = http.get(f"{config.shop_url}/_sandbox/graphql/throttle").raise_for_status().json()
            faults = http.get(f"{config.shop_url}/_sandbox/graphql/faults").raise_for_status().json()
        states = netsuite_events(ledger)
        # Skipped is finished: a shipment's stock move of an item the ERP sandbox seeded by id alone (no record to
        # read), or with no stock at a mapped location, has no level to set.
        not_synced = {k: v for k, v in states.items() if k not in ("synced", "duplicate", "superseded", "skipped")}
        delays = {path: [c.delay for c in final if c.path == path and c.delay is not None] for path in PATHS}
        shipments = [c for c in final if isinstance(c, Shipment)]
        figures = {
            "way_back_shipments": len(shipments),
            "way_back_orders_shipped": len({c.order_id for c in shipments}),
            "way_back_stock_counts": sum(isinstance(c, StockCount) for c in self.changes),
            "way_back_events": dict(sorted(states.items())),
            "way_back_notices_reposted": dict(sorted(self.renotified.items())),
            "way_back_reader_kills": self.reader_kills,
            "way_back_worker_kills": self.worker_kills,
            "shop_bucket_drains": self.drains,
            "way_back_shop_problems": problems[:10],
            "shop_graphql_requests": throttle.get("requests"),
            "shop_throttled": throttle.get("throttled"),
            "shop_5xx_injected": faults.get("failed"),
            "shop_graphql_calls_seen_by_faults": faults.get("calls"),
            "shop_answers_lost": faults.get("lost"),
            "way_back_delay_seconds": {path: {"p50": round(percentile(d, 0.5), 1), "p99": round(percentile(d, 0.99), 1),
                                              "n": len(d)} for path, d in delays.items() if d},
        }
        checks = [
            ("the way back ran", self.error is None and bool(self.changes),
             f"{type(self.error).__name__}: {self.error}" if self.error else "no change made"),
            ("every ERP change reached the shop", shown,
             ", ".join(c.label for c in final if c.seen_at is None)[:300]),
            ("shipments lost = 0, fulfilled twice = 0, final quantities and prices right", not problems,
             "; ".join(problems[:4])),
            ("every event out of the ERP synced (no dead letter)", not not_synced, json.dumps(not_synced)),
            # A repeated delivery id is answered 2xx and stored once; 0: the receiver was down (chaos kills it).
            ("duplicate notices answered 2xx (each delivery id one event)",
             any(a.startswith("2") for a in self.renotified)
             and all(a.startswith("2") or a == "0" for a in self.renotified), json.dumps(dict(self.renotified))),
            ("the change reader was killed mid-pass and the next pass missed nothing", self.reader_kills >= 1 and shown,
             f"{self.reader_kills} kills"),
            ("the shop throttled (its bucket emptied under the writes) and failed calls, and all landed",
             bool(throttle.get("throttled")) and bool(faults.get("failed")) and shown,
             f"{throttle.get('throttled')} throttled, {faults.get('failed')} 5xx injected"),
        ]
        return figures, checks
