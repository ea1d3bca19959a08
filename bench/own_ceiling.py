"""Our own ceiling: events per second through the whole path when the ERP costs nothing, and our CPU per event.

    .venv/bin/python bench/own_ceiling.py [--runs 3] [--orders 2000] [--postgres-url postgresql://…]

Each run starts a stack as `make demo` does (Prefect server, one `erpsync worker`, the receiver, the ERP and shop
sandboxes, each a process of its own), with the ERP sandbox at zero latency and no concurrency limit (and the
connector's shared ERP limit off). It measures the stack idle for 10 s, then sends ``--orders`` signed Shopify
orders at once (50 connections, bench/loadgen.py) and waits until every event is final in the inbox.

Reported per run and as the median (min–max) of the runs:
- events per second end to end: accepted events over first delivery → last ERP write;
- CPU milliseconds per event of each process tree (utime + stime from /proc, a worker's flow-run processes
  included), and with --postgres-url of the ledger's and Prefect's PostgreSQL backends;
- the same less each process's CPU at rest (measured for 10 s before the burst) over the burst's duration: what
  the events cost, apart from the cost per second of a running stack (polling, Prefect's services);
- ours: the receiver, the Prefect server (part of our deployment, so counted), the worker and its runs, and the
  databases; not ours: the ERP sandbox (NetSuite's side), the load generator (Shopify's) and the shop sandbox.
The target is ≤ 10 ms of CPU per event across ours. The raw figures go to .erpsync/bench/own_ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable (bench.*, erpsync.*)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu_burst import HOME, NOT_OURS, BurstSetup, fmt, log, run_burst, summarize  # noqa: E402

TARGET_MS = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a fresh stack (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=2000, help="orders in the burst (default: %(default)s)")
    parser.add_argument("--postgres-url", help="ledger and Prefect on PostgreSQL, in databases of their own that "
                                               "are created and dropped (default: SQLite files)")
    parser.add_argument("--result", type=Path, default=HOME / "own_ceiling.json", help="where the raw figures go")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.orders < 1:
        parser.error("--runs and --orders: at least 1")
    setup = BurstSetup(orders=args.orders, postgres_url=args.postgres_url)
    runs = []
    for n in range(args.runs):
        log(f"own ceiling ({setup.backend}), run {n + 1} of {args.runs}: {args.orders} orders")
        runs.append(run_burst(setup, seed=100 + n))
        log(f"{runs[-1]['events_per_second']} events/s, ours {runs[-1]['our_cpu_ms_per_event']} ms CPU/event")
        args.result.parent.mkdir(parents=True, exist_ok=True)
        args.result.write_text(json.dumps({"runs": runs}, indent=2))  # kept as it goes: a long job
    summary = summarize(runs)
    args.result.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    print(report(summary))
    return 0


def report(s: dict) -> str:
    lines = [f"{s['runs']} runs, {s['orders']} orders each, ledger and Prefect on {s['backend']}, "
             f"load average (1 min) at each start: {', '.join(f'{x:.1f}' for x in s['load_average_1min'])}; "
             f"every order synced: {'yes' if s['all_synced'] else 'NO'}",
             "",
             "| figure | median (min–max) |", "| --- | --- |",
             f"| events/s end to end | {fmt(s['events_per_second'])} |",
             f"| intake: deliveries/s accepted | {fmt(s['intake_per_second'])} |",
             f"| first ERP write after | {fmt(s['first_write_after_s'])} s |",
             f"| our CPU ms/event (target ≤ {TARGET_MS:g}) | {fmt(s['our_cpu_ms_per_event'])} |",
             f"| our CPU ms/event beyond the cost at rest | {fmt(s['our_marginal_cpu_ms_per_event'])} |",
             f"| our cores busy during the burst | {fmt(s['our_cores_busy'])} |",
             f"| burst: first delivery → last ERP write | {fmt(s['seconds'])} s |",
             "", "| process | ours | CPU ms/event | beyond the cost at rest | at rest, CPU ms/s |",
             "| --- | --- | --- | --- | --- |"]
    for part, figure in s["cpu_ms_per_event"].items():
        rest = s["idle_cpu_ms_per_second"].get(part)
        lines.append(f"| {part} | {'no' if part in NOT_OURS else 'yes'} | {fmt(figure)} "
                     f"| {fmt(s['marginal_cpu_ms_per_event'][part])} | {fmt(rest) if rest else '–'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
