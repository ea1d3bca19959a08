"""Scale out: the same burst with 1, 2 and 4 workers, one Prefect server, a shared PostgreSQL ledger, and the
receiver as 2 processes behind one port.

    .venv/bin/python bench/scale_out.py --postgres-url postgresql://postgres@127.0.0.1:5432/test \\
        [--workers 1,2,4] [--receivers 2] [--runs 3] [--orders 2000]

Each run is bench/own_ceiling.py's burst (ERP sandbox at zero latency, no concurrency limit, so the rate is ours)
on a stack of its own: the ledger and Prefect's database are fresh PostgreSQL databases on the server of
--postgres-url, created and dropped by the run; the receivers are `erpsync serve --reuse-port` on one port, the
kernel spreading the load generator's 50 connections across them. Runs go round the configurations (1, 2, 4,
1, 2, 4, …), so that the machine's load falls on each alike.

Reported per configuration, as the median (min–max) of the runs: events per second end to end, CPU ms per event
of each process (every worker, the Prefect server, each receiver, the ledger's and Prefect's PostgreSQL
backends), how many cores our processes kept busy, how the workers' CPU was shared, and how many sync-batch runs
the burst was given. The raw figures go to .erpsync/bench/scale_out.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable (bench.*, erpsync.*)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu_burst import HOME, NOT_OURS, BurstSetup, fmt, log, run_burst, spread, summarize  # noqa: E402


def worker_shares(run: dict) -> dict:
    """The workers' CPU per event together, and the busiest one's share of it."""
    workers = {p: v for p, v in run["cpu_ms_per_event"].items() if p.startswith("worker")}
    total = sum(workers.values())
    return {"workers_cpu_ms_per_event": round(total, 2),
            "busiest_worker_share": round(max(workers.values()) / total, 2) if total else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", required=True,
                        help="a PostgreSQL server's admin URL; the runs create and drop databases of their own on it")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to compare (default: %(default)s)")
    parser.add_argument("--receivers", type=int, default=2, help="receiver processes on the one port (default: 2)")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=2000, help="orders in each burst (default: %(default)s)")
    parser.add_argument("--result", type=Path, default=HOME / "scale_out.json", help="where the raw figures go")
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers: comma-separated whole numbers, got {args.workers!r}")
    if min(counts) < 1 or args.receivers < 1 or args.runs < 1 or args.orders < 1:
        parser.error("--workers, --receivers, --runs and --orders: at least 1 each")
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for round_ in range(args.runs):
        for n in counts:
            log(f"scale out: {n} worker(s), {args.receivers} receivers, run {round_ + 1} of {args.runs}")
            setup = BurstSetup(orders=args.orders, workers=n, receivers=args.receivers, postgres_url=args.postgres_url)
            run = run_burst(setup, seed=200 + round_, name=f"scale-out-{n}")
            run.update(worker_shares(run))
            runs[n].append(run)
            log(f"{run['events_per_second']} events/s, ours {run['our_cpu_ms_per_event']} ms CPU/event")
            args.result.parent.mkdir(parents=True, exist_ok=True)
            args.result.write_text(json.dumps({"runs": runs}, indent=2))  # kept as it goes: a long job
    summaries = []
    for n in counts:
        summary = summarize(runs[n])
        summary["workers_cpu_ms_per_event"] = spread([r["workers_cpu_ms_per_event"] for r in runs[n]])
        summary["busiest_worker_share"] = spread([r["busiest_worker_share"] for r in runs[n]])
        summaries.append(summary)
    args.result.write_text(json.dumps({"runs": runs, "summary": summaries}, indent=2))
    print(report(summaries))
    return 0


def report(summaries: list[dict]) -> str:
    lines = ["| workers | receivers | events/s | first ERP write | our CPU ms/event | beyond the cost at rest "
             "| our cores busy | workers' CPU ms/event | busiest worker's share | sync-batch runs | load average |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summaries:
        lines.append(f"| {s['workers']} | {s['receivers']} | {fmt(s['events_per_second'])} "
                     f"| {fmt(s['first_write_after_s'])} s | {fmt(s['our_cpu_ms_per_event'])} "
                     f"| {fmt(s['our_marginal_cpu_ms_per_event'])} | {fmt(s['our_cores_busy'])} "
                     f"| {fmt(s['workers_cpu_ms_per_event'])} | {fmt(s['busiest_worker_share'])} "
                     f"| {', '.join(map(str, s['sync_batch_runs']))} "
                     f"| {', '.join(f'{x:.1f}' for x in s['load_average_1min'])} |")
    parts = sorted({p for s in summaries for p in s["cpu_ms_per_event"]})
    lines += ["", "| process | ours | " + " | ".join(f"{s['workers']} worker(s): CPU ms/event" for s in summaries)
              + " |", "| --- | --- | " + " | ".join("---" for _ in summaries) + " |"]
    for part in parts:
        cells = [fmt(s["cpu_ms_per_event"][part]) if part in s["cpu_ms_per_event"] else "–" for s in summaries]
        lines.append(f"| {part} | {'no' if part in NOT_OURS else 'yes'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
