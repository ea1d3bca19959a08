"""`erpsync demo`: the whole system on loopback, both ways: a burst of real-shaped orders into the ERP, then the
warehouse's shipments, stock counts and a price change back to the shop.

Exits 0 only if the ERP sandbox holds exactly the records the shop's orders call for (one sales order per order
that should sync, with the lines of its newest version, and nothing for the dead-lettered order), and then the shop
sandbox holds exactly the fulfillments, quantities and prices the ERP's changes call for (erpsync_dev/way_back.py).
With ``--erp tryton`` the ERP is a real trytond and the check reads it back (erpsync_dev/tryton_demo.py).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

from erpsync.errors import ConfigError
from erpsync.ledger import Ledger
from erpsync.mapping import find_mapping
from erpsync.settings import PROJECT_DIR, Settings
from erpsync.summary import Summary, format_summary, summarize
from erpsync.systems.netsuite.client import NetSuiteClient
from erpsync.systems.tryton.client import TrytonClient
from erpsync_dev.processes import interrupt_on_signals, port_in_use
from erpsync_dev.stack import ERPS, LocalStack, StackConfig
from erpsync_dev.tryton_demo import NOT_DRAFT, check_tryton
from erpsync_dev.tryton_way_back import drive_tryton_way_back
from erpsync_dev.way_back import (
    NOTICE,
    PATHS,
    READER,
    Shipment,
    ShopView,
    ShopWatcher,
    Warehouse,
    check_shop,
    plan_shipments,
    plan_stock,
    run_poll,
    safety_buffer,
    settle_seconds,
    shippable_orders,
    wait_for_events,
)
from erpsync_dev.webhook_sink import notification_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-running", action="store_true",
                        help="leave everything up after the check, to click through the Prefect UI; Ctrl-C stops it")
    parser.add_argument("--orders", type=int, default=50, help="orders in the burst (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated orders (default: %(default)s)")
    parser.add_argument("--home", type=Path, default=None,
                        help="state folder, wiped at start (default: .erpsync/demo in the project)")
    parser.add_argument("--prefect-port", type=int, default=4200,
                        help="port of the Prefect server and its UI (default: %(default)s)")
    parser.add_argument("--receiver-port", type=int, default=8600,
                        help="port of the webhook receiver, erpsync serve (default: %(default)s)")
    parser.add_argument("--erp", choices=ERPS, default="netsuite",
                        help="the ERP the orders go to: the NetSuite sandbox, or a real Tryton server (trytond, "
                             "mappings/tryton; docs/tryton.md) (default: %(default)s)")
    parser.add_argument("--tryton-postgres", metavar="URL", default=None,
                        help="with --erp tryton: serve Tryton's database from this PostgreSQL server "
                             "(postgresql://user@host:port/db) instead of SQLite; the first use builds a template "
                             "there (minutes)")
    parser.add_argument("--erp-port", type=int, default=8700,
                        help="port of the ERP the records are written to: the NetSuite sandbox or trytond "
                             "(default: %(default)s)")
    parser.add_argument("--shop-port", type=int, default=8800,
                        help="port of the Shopify sandbox that sends the webhooks (default: %(default)s)")
    parser.add_argument("--alerts-port", type=int, default=8900,
                        help="port of the local webhook sink the alerts of alerts.yaml notify (default: %(default)s)")
    parser.add_argument("--no-alerts", action="store_true", help="apply no alerts and start no webhook sink")
    parser.add_argument("--erp-latency-ms", type=int, default=0,
                        help="latency the ERP sandbox adds per request (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for all events (default: 900)")


def run(args: argparse.Namespace) -> int:
    home = (args.home or PROJECT_DIR / ".erpsync" / "demo").resolve()
    if args.tryton_postgres and args.erp != "tryton":
        raise ConfigError("--tryton-postgres: only with --erp tryton")
    if args.erp_latency_ms and args.erp != "netsuite":
        raise ConfigError("--erp-latency-ms: only the NetSuite sandbox adds latency; Tryton is a real server")
    config = StackConfig(home=home, prefect_port=args.prefect_port, receiver_port=args.receiver_port,
                         erp_port=args.erp_port, shop_port=args.shop_port, orders=args.orders, seed=args.seed,
                         erp_latency_ms=args.erp_latency_ms, alerts_port=None if args.no_alerts else args.alerts_port,
                         erp=args.erp, tryton_postgres_url=args.tryton_postgres)
    busy = [f"{name} port {port}" for name, port in (
        ("--prefect-port", config.prefect_port), ("--receiver-port", config.receiver_port),
        ("--erp-port", config.erp_port), ("--shop-port", config.shop_port),
        *((("--alerts-port", config.alerts_port),) if config.alerts_port else ())) if port_in_use(port)]
    if busy:
        raise ConfigError(f"already in use: {', '.join(busy)}; stop what holds it or pass another port "
                          f"(make demo ARGS='--prefect-port 4300')")
    # A fresh start each time: the check below compares the ERP with this run's orders only.
    shutil.rmtree(home, ignore_errors=True)
    steps = StepClock()
    stack = LocalStack(config, dict(os.environ), progress=steps)
    interrupt_on_signals()  # Ctrl-C and SIGTERM both stop every process the demo started
    try:
        stack.start()
        steps("everything is up; sending the shop's orders")
        ok = drive(config, stack, timeout=args.timeout)
        print(f"\nPrefect UI: {config.prefect_ui}  (flow runs of 'sync-event'; failed runs are the dead-letter queue)")
        print(f"logs: {config.home / 'logs'}")
        # The CLI reads .erpsync/erpsync.db unless told otherwise; the demo's ledger is in its own folder.
        print(f"CLI on the demo's ledger: ERPSYNC_HOME={config.home} erpsync status   (or erpsync dlq list, …)")
        if config.erp == "netsuite":
            print_reconcile_hint(config, keep_running=args.keep_running)
        if config.alerts_port:
            print_alerts(stack)
        if args.keep_running:
            print("everything keeps running; Ctrl-C stops it", flush=True)
            while True:
                stack.group.check_alive()
                time.sleep(1)
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 130
    finally:
        stack.stop()


def print_reconcile_hint(config: StackConfig, *, keep_running: bool) -> None:
    """Write the CLI's settings for this stack to a file and say how to reconcile the shop with the ERP by hand."""
    env_file = _shown(config.write_cli_env())
    when = "now, in another shell" if keep_running else "with make demo ARGS=--keep-running, in another shell"
    print(f"\nReconcile the shop with the ERP by hand ({when}):\n"
          f"  source {env_file}\n"
          f"  erpsync reconcile --since {datetime.now(UTC).date()} --dry-run\n"
          f"  It lists the dead-lettered order as drift left for a person, with its next step (erpsync dlq show "
          f"<event>), writes an HTML report and exits 3.")


# How long the way-back check waits for the events out of the ERP once the shop shows every change.
EVENTS_WAIT_SECONDS = 150


def print_alerts(stack: LocalStack, *, wait: float = 30, shown: int = 5) -> None:
    """The notifications the local webhook sink received: what the alerts of alerts.yaml look like in a chat."""
    config = stack.config
    ledger = Ledger.connect(config.ledger_url)
    try:
        expected = len(summarize(ledger).dead_lettered)  # each failed sync-event run notifies once
    finally:
        ledger.close()
    # The automation sends a few seconds after the run failed; the last phase may have ended just now.
    deadline = time.monotonic() + wait
    while len(stack.notifications()) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    received = stack.notifications()
    if not received:
        print(f"\nAlerts: no notification reached the webhook sink ({config.alerts_url}) within {wait:.0f} s; see "
              f"{config.home / 'logs' / 'setup.log'} (erpsync alerts apply) and Automations in the Prefect UI")
        return
    print(f"\nAlerts (alerts.yaml, applied by erpsync alerts apply): the local webhook sink received "
          f"{len(received)} notification{'s' if len(received) != 1 else ''}; in production they go to Slack or "
          f"another chat (ERPSYNC_ALERT_WEBHOOK_URL). What it shows:")
    for record in received[:shown]:
        print(f"  ── {record['at'].replace('T', ' ').replace('+00:00', ' UTC')}")
        for line in notification_text(record).strip().splitlines():
            print(f"  │ {line}")
    more = f"{len(received) - shown} more, and " if len(received) > shown else ""
    print(f"  ({more}each as received: {_shown(config.alerts_record)})")


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it: shorter to read and to paste."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class StepClock:
    """Start-up progress, one line per step with the seconds since the start: about a minute passes before the
    first order is sent, and the stamps show which step it goes to."""

    def __init__(self, clock=time.monotonic, out=print) -> None:
        self.clock, self.out = clock, out
        self.started = clock()

    def __call__(self, message: str) -> None:
        self.out(f"· [{self.clock() - self.started:5.1f}s] {message}", flush=True)


def drive(config: StackConfig, stack: LocalStack, *, timeout: float) -> bool:
    """Send each phase of the shop's scenario, wait for it to be handled, then check the ERP."""
    ledger = Ledger.connect(config.ledger_url)
    try:
        with httpx.Client(timeout=120) as http:
            scenario = http.get(f"{config.shop_url}/_sandbox/scenario").raise_for_status().json()
            expected_events = 0
            for phase in scenario["phases"]:
                print(f"· shop sandbox sends phase {phase['phase']} ({phase['name']}): "
                      f"{phase['deliveries']} webhooks", flush=True)
                sent = http.post(f"{config.shop_url}/_sandbox/phases/{phase['phase']}/send").raise_for_status().json()
                refused = [d for d in sent["deliveries"] if d["status"] is None or not 200 <= d["status"] < 300]
                if refused:
                    print(f"! the receiver refused {len(refused)} deliveries: {refused[:3]}")
                    return False
                expected_events += phase["unique_deliveries"]
                if not wait_until_handled(ledger, stack, expected_events, timeout=timeout):
                    return False
            summary = summarize(ledger)
            print("\n" + format_summary(summary))
            if config.erp == "tryton":
                return check_in_tryton(config, stack, scenario, ledger, timeout=timeout)
            records = http.get(f"{config.erp_url}/_sandbox/records").raise_for_status()
            with NetSuiteClient(config.erp_settings()) as erp:
                problems = check_erp(scenario, records.json(), summary, erp)
    finally:
        ledger.close()
    if problems:
        print("\nERP check FAILED:\n" + "\n".join(f"  - {p}" for p in problems))
        return False
    print(f"\nERP check passed: the ERP sandbox holds exactly the {scenario['counts']['synced_orders']} "
          f"sales orders it should, each with its newest lines, its customer (or the guest customer) and "
          f"NetSuite's total equal to Shopify's to the cent.")
    return drive_way_back(config, stack, scenario, timeout=min(timeout, WAY_BACK_TIMEOUT))


WAY_BACK_TIMEOUT = 180.0


def check_in_tryton(config: StackConfig, stack: LocalStack, scenario: dict, ledger: Ledger, *,
                    timeout: float) -> bool:
    """The ERP check against the real Tryton (erpsync_dev/tryton_demo.py), then its way back."""
    # Under the ERP slots the workers share (ERPSYNC_TRYTON_CONCURRENCY_LIMIT): on SQLite one call at a time.
    with TrytonClient.from_env(config.ledger_url, stack.env) as tryton:
        check = check_tryton(scenario, ledger, tryton)
    if check.problems:
        print("\nTryton check FAILED:\n" + "\n".join(f"  - {p}" for p in check.problems))
        return False
    synced = scenario["counts"]["synced_orders"]
    print(f"\nTryton check passed: Tryton holds exactly the {synced} sales it should ({check.sales} in all), each "
          f"processing, with its customer's party (or the guest party), every line by product, quantity and amount, "
          f"and Tryton's total_amount equal to Shopify's total_price to the cent.")
    if check.kept_first:
        kept = ", ".join(f"{code} ({n})" for code, n in check.kept_first)
        print(f"  Tryton confirms a sale when erpsync writes it and erpsync rewrites drafts only: the later versions "
              f"of {kept} came after their sale was confirmed and are dead letters {NOT_DRAFT}; each sale matches "
              f"the version it was confirmed with (docs/tryton.md, \"Drafts only\").")
    return drive_tryton_way_back(config, stack, scenario, timeout=min(timeout, WAY_BACK_TIMEOUT))


def make_changes(warehouse: Warehouse, changes: list) -> None:
    """The warehouse's changes, the reader's first: it reads only changes older than the ERP client's settle time
    (SuiteQL gives times to the second), which passes while the notices' changes are made."""
    for path in (READER, NOTICE):
        warehouse.notices(path)
        how = ("notices ON: the sandbox posts each change's signed notice to the receiver" if path == NOTICE
               else "notices OFF: only the change reader can find these")
        print(f"  {how}", flush=True)
        for change in (c for c in changes if c.path == path):
            if isinstance(change, Shipment):
                warehouse.ship(change)
                print(f"    shipped {change.label}: {len(change.lines)} line(s), {change.carrier[1]}, "
                      f"{len(change.tracking)} tracking number(s)", flush=True)
            else:
                warehouse.count(change)
                where = ", ".join(f"location {loc}: {on} on hand, {com} committed"
                                  for loc, (on, com) in sorted(change.counts.items()))
                price = f"; price {change.price}, MSRP {change.msrp}" if change.msrp is not None else ""
                print(f"    counted {change.sku}: {where}{price}", flush=True)


def drive_way_back(config: StackConfig, stack: LocalStack, scenario: dict, *, timeout: float) -> bool:
    """The way back: the warehouse ships orders (one in two parts) and counts stock, one count with a new price, in
    the ERP sandbox; some changes are posted to the receiver as the user-event script's notices, the others are left
    to the change reader (`erpsync poll`); then the shop sandbox must hold exactly those fulfillments, quantities
    and prices."""
    print("\n· the way back: the warehouse ships orders and counts stock in the ERP sandbox (NetSuite's REST API)",
          flush=True)
    rng = random.Random(config.seed)
    buffer = safety_buffer()
    ledger = Ledger.connect(config.ledger_url)
    try:
        # The warehouse's calls take the ERP account's concurrency slots as erpsync's own calls do.
        with httpx.Client(timeout=60) as http, NetSuiteClient.from_env(config.ledger_url, stack.env) as erp:
            warehouse = Warehouse(erp, config.erp_url, http, receiver_url=config.receiver_url,
                                  secret=config.netsuite_secret)
            shop = ShopView(config.shop_url, http)
            synced = [int(o["order_id"]) for o in scenario["orders"] if o["outcome"] == "synced"]
            orders = shippable_orders(config.erp_url, http, erp, synced)
            shipments = plan_shipments(orders, [NOTICE, NOTICE, READER], rng)
            order_mapping = find_mapping(Settings.from_env().mappings_dir, "shopify", "orders/create")
            known = order_mapping.tables["sku_to_item"].rows
            stock = plan_stock(shop.variants(), known, [NOTICE, NOTICE, READER], rng, buffer=buffer)
            changes = [*shipments, *stock]
            before = warehouse.notice_counts()
            with ShopWatcher(shop, changes, buffer=buffer) as watcher:
                make_changes(warehouse, changes)
                settle = settle_seconds(stack.env)
                last_read = max(c.made_at for c in changes if c.path == READER)
                print(f"  the change reader, by command (`erpsync poll`; the poll-netsuite flow runs it every minute "
                      f"too), once the changes are {settle:g} s old (ERPSYNC_NETSUITE_CHANGE_SETTLE_SECONDS):",
                      flush=True)
                time.sleep(max(0.0, last_read + settle + 1 - time.monotonic()))
                code, output, errors = run_poll(stack.env)
                for line in output.splitlines():
                    print(f"    {line}", flush=True)
                if code != 0:
                    print(f"! erpsync poll exited {code}:\n{errors}")
                    return False
                print("· waiting for the shop sandbox to show each change", flush=True)
                shown = watcher.wait(timeout=timeout, progress=lambda line: print(line, flush=True),
                                     alive=stack.group.check_alive)
            # The shop shows each change before the last events (a shipment's stock moves, a re-read) finish; one
            # whose run was lost on a busy machine is dispatched again by sweep-inbox (every 60 s, after a 30 s
            # grace), so wait past a sweep.
            states = wait_for_events(ledger, timeout=EVENTS_WAIT_SECONDS if shown else 1,
                                     alive=stack.group.check_alive)
            sent = {k: v - before[k] for k, v in warehouse.notice_counts().items()}
            problems = check_shop(shop, changes, buffer=buffer)
    finally:
        ledger.close()
    notices_expected = sum(c.notices for c in changes if c.path == NOTICE)
    if sent["sent"] != notices_expected or sent["refused"] or sent["failed"]:
        problems.append(f"notices: {sent['sent']} accepted by the receiver, {sent['refused']} refused, "
                        f"{sent['failed']} undelivered; {notices_expected} expected (per shipment: its own and one per "
                        f"item it moves; per count: one of its adjustment, and two when the item was saved: the "
                        f"item and its prices)")
    # Skipped is finished too, with its reason in the ledger: a shipment's stock move of an item the ERP sandbox
    # seeded by id alone (--items, no record to read), or with no stock at a mapped location, has no level to set.
    unfinished = {s: n for s, n in states.items() if s not in ("synced", "duplicate", "superseded", "skipped")}
    if unfinished:
        problems.append(f"events out of the ERP not synced: {dict(unfinished)} (erpsync dlq list names them)")
    if not shown:
        late = [c.label for c in changes if c.seen_at is None]
        problems.append(f"not in the shop after {timeout:.0f} s: {', '.join(late)}")
    if problems:
        print("\nWay-back check FAILED:\n" + "\n".join(f"  - {p}" for p in problems))
        return False
    split = len({c.order_id for c in shipments if not c.label.endswith(" 1/1")})
    print(f"\nWay-back check passed: the shop sandbox holds exactly the {len(shipments)} fulfillments the warehouse "
          f"shipped ({split} {'order' if split == 1 else 'orders'} in two parts), each once, with its lines, carrier and tracking numbers, and no "
          f"fulfillment of an order not shipped; each counted item's available quantity per location (on hand − "
          f"committed − buffer {buffer}) and its prices. {sum(states.values())} events out of the ERP: "
          f"{dict(sorted(states.items()))}; {sent['sent']} came as notices, the rest by the change reader.")
    for path in PATHS:
        delays = sorted(c.delay for c in changes if c.path == path and c.delay is not None)
        print(f"  from the ERP's answer to the shop, by {path}: {len(delays)} change(s), "
              f"{', '.join(f'{d:.1f}' for d in delays)} s")
    return True


def wait_until_handled(ledger: Ledger, stack: LocalStack, expected: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    last_line = ""
    while time.monotonic() < deadline:
        stack.group.check_alive()
        s = summarize(ledger)
        line = (f"  handled {s.handled}/{max(expected, s.events)}: {s.synced} synced, {s.duplicates} duplicate, "
                f"{s.superseded} superseded, {len(s.dead_lettered)} dead-lettered")
        if line != last_line:
            print(line, flush=True)
            last_line = line
        if s.events >= expected and s.handled >= s.events:
            return True
        time.sleep(1)
    print(f"! timed out after {timeout:.0f}s with {expected - summarize(ledger).handled} events unhandled; "
          f"see the logs in {stack.config.home / 'logs'} and the Prefect UI")
    return False


def check_erp(scenario: dict, erp_records: dict, summary: Summary, erp: NetSuiteClient | None = None) -> list[str]:
    """Differences between the ERP sandbox's sales orders and the scenario's newest versions.

    Each synced order must be in the ERP once, as the accountant sees it: the total NetSuite computed (read back
    through the REST API when ``erp`` is given) equal to Shopify's ``total_price`` to the cent; the customer
    created from the order's customer (``shopify-customer-<id>``), or the default customer for a guest; and
    every line, custom lines on their fallback item, with the newest version's quantities and prices.
    """
    mapping = find_mapping(Settings.from_env().mappings_dir, "shopify", "orders/create")
    custom_item = mapping.config.money.items.custom if mapping.config.money else None
    default_customer = _default_customer(mapping)
    problems = []
    by_external_id = {r["external_id"]: r for r in erp_records["records"] if r["record_type"] == "salesOrder"}
    customers = {r["external_id"]: r["internal_id"] for r in erp_records["records"] if r["record_type"] == "customer"}
    wanted = {mapping.config.external_id.render({"id": int(o["order_id"])}): o
              for o in scenario["orders"] if o["outcome"] == "synced"}
    for external_id in sorted(set(by_external_id) - set(wanted)):
        problems.append(f"unexpected ERP record {external_id}")
    for external_id, order in wanted.items():
        record = by_external_id.get(external_id)
        if record is None:
            problems.append(f"missing ERP record {external_id}")
            continue
        body = record["body"]
        got = [(str(line["item"]["id"]), int(line["quantity"]), Decimal(str(line["rate"])))
               for line in body["item"]["items"]]
        want = [(str(mapping.tables["sku_to_item"].get(li["sku"])) if li["sku"] else custom_item, li["quantity"],
                 Decimal(li["price"])) for li in order["line_items"]]
        if got != want:
            problems.append(f"{external_id}: lines {got} != newest version's {want}")
        customer = str((body.get("entity") or {}).get("id"))
        if order.get("guest"):
            if customer != default_customer:
                problems.append(f"{external_id}: a guest order's customer is {customer}, not {default_customer}")
        else:
            own = customers.get(f"shopify-customer-{order['customer_id']}")
            if own is None or customer != own:
                problems.append(f"{external_id}: customer {customer}, not the order's own customer ({own})")
        if erp is not None:
            total = (erp.get("salesOrder", record["internal_id"]) or {}).get("total")
            if total is None or Decimal(str(total)) != Decimal(order["total"]):
                problems.append(f"{external_id}: the ERP's total is {total}, Shopify's is {order['total']}")
    ledger_ids = {external_id: erp_id for _, external_id, erp_id in summary.records}
    for external_id, record in by_external_id.items():
        if external_id in wanted and ledger_ids.get(external_id) != record["internal_id"]:
            problems.append(f"{external_id}: ledger says ERP id {ledger_ids.get(external_id)}, "
                            f"ERP has {record['internal_id']}")
    return problems


def _default_customer(mapping) -> str | None:
    """The constant the mapping gives ``entity.id`` when the order has no customer (a guest checkout)."""
    for rule in mapping.config.fields:
        if rule.target_field.text == "entity.id" and rule.value is not None:
            return str(rule.value)
    return None
