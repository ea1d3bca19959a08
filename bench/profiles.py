"""ERP profiles: our burst and a peer's, side by side, at each latency profile and concurrency limit (issue 18).

For each run, profile and concurrency C: erpsync's burst (bench/throughput.py `bench_burst`, with redeliveries)
and then the peer's (bench/peer_n8n.py) on an ERP sandbox of the same profile and limit, with the same number of
orders. Each is measured against the ceiling its own ERP sandbox set: C over the mean time one request held a
slot there (docs/BENCHMARKS.md). `make bench ARGS=--only-profiles` runs it; `--profile`, `--profile-concurrency`,
`--profile-runs`, `--profile-seconds` and `--peer none` select less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from bench import peer_n8n
from bench.throughput import HOME, bench_burst
from erpsync_dev.sandboxes.netsuite.latency import parse_latency_profile

# The stress test of our own overhead (as before), and a NetSuite-like account: a sales-order write in about a
# second with a long tail (median 800 ms, 1 in 100 over 4 s; mean 1,016 ms).
DEFAULT_PROFILES = ("fixed:100", "lognormal:median=800,p99=4000,seed=1")
DEFAULT_CONCURRENCIES = (5, 15, 50)
# The rows of the run under way, rewritten as each ends.
PARTIAL = HOME / "results-profiles.partial.json"


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def burst_size(profile: str, concurrency: int, seconds: float, *, smallest: int = 100, largest: int = 3000) -> int:
    """Orders enough for about ``seconds`` at the profile's nominal ceiling (C over its mean latency), within
    bounds: the slow profiles get small bursts, and the fast ones stop where our own side, not the ERP, limits."""
    nominal = concurrency / (parse_latency_profile(profile).mean_ms / 1000)
    return max(smallest, min(largest, round(nominal * seconds)))


def run_profiles(profiles: list[str], concurrencies: list[int], runs: int, seconds: float, peer: str,
                 postgres_url: str | None = None) -> dict:
    version = peer_n8n.installed() if peer in ("n8n", "auto") else None
    if peer == "n8n" and version is None:
        raise SystemExit("the n8n peer is not installed: run `sh bench/peer_n8n_install.sh` (or give --peer none)")
    if peer == "auto":
        peer = "n8n" if version else "none"
        if not version:
            log("no peer: n8n is not installed (sh bench/peer_n8n_install.sh installs it)")
    n8n = peer_n8n.prepared_n8n() if peer == "n8n" else None
    rows = []
    for run in range(1, runs + 1):
        for profile in profiles:
            for concurrency in concurrencies:
                orders = burst_size(profile, concurrency, seconds)
                redeliver, kill_orders = max(10, orders // 10), max(50, orders // 4)
                load = round(os.getloadavg()[0], 2)
                log(f"run {run}/{runs}, {profile}, C = {concurrency}: erpsync, {orders} orders")
                ours = bench_burst(orders, 0, concurrency, 2, postgres_url, profile=profile, redeliver=redeliver)
                row = {"run": run, "profile": profile, "concurrency": concurrency, "orders": orders,
                       "load_average": load, "ours": ours}
                if peer == "n8n":
                    log(f"run {run}/{runs}, {profile}, C = {concurrency}: n8n {version}, {orders} orders")
                    row["peer"] = peer_n8n.bench_peer(profile, concurrency, orders, redeliver=redeliver,
                                                      kill_orders=kill_orders, n8n=n8n)
                rows.append(row)
                # A full run takes most of an hour with the peer: each row is kept as it ends, so a run stopped
                # part way still has its figures (`python -m bench.profiles` prints them).
                PARTIAL.parent.mkdir(parents=True, exist_ok=True)
                PARTIAL.write_text(json.dumps({"profile_runs": rows, "peer": peer, "peer_version": version},
                                              indent=2))
    return {"profile_runs": rows, "peer": peer, "peer_version": version}


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:g}"
    return f"{statistics.median(values):g} ({min(values):g}–{max(values):g})"


def percent(values: list[float]) -> str:
    return spread([round(100 * v, 1) for v in values if v is not None]) + " %"


def report(results: dict) -> str:
    """One table per profile: a row per C, ours and the peer's figures from the same runs (median and range)."""
    rows = results["profile_runs"]
    peer = results.get("peer")
    out = []
    for profile in dict.fromkeys(r["profile"] for r in rows):
        mine = [r for r in rows if r["profile"] == profile]
        out += [f"#### {profile}", "",
                "| C | orders | runs | load avg | who | records/s | achievable/s (C / ERP ms per slot) | share of "
                "achievable | ERP slot time used | ERP calls per record | steady share | first write | 429 caused "
                "| peak in flight / offered | acknowledged, not in the ERP | duplicates after redelivery "
                "| lost when killed |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for concurrency in dict.fromkeys(r["concurrency"] for r in mine):
            at = [r for r in mine if r["concurrency"] == concurrency]
            load = spread([r["load_average"] for r in at])
            for who, key in (("erpsync", "ours"), (peer, "peer")):
                figures = [r[key] for r in at if key in r]
                if not figures:
                    continue
                peaks = "/".join(f"{f['peak_in_flight']}/{f['peak_offered']}" for f in figures)
                lost = ("see chaos (RELIABILITY.md)" if key == "ours"
                        else spread([f["lost_when_killed"] for f in figures])
                        + f" of {spread([f['kill_acknowledged'] for f in figures])}")
                out.append(
                    f"| {concurrency} | {at[0]['orders']} | {len(figures)} | {load} | {who} "
                    f"| {spread([f['records_per_second'] for f in figures])} "
                    f"| {spread([f['achievable_per_second'] for f in figures])} "
                    f"({spread([f['erp_ms_per_slot'] for f in figures])} ms) "
                    f"| {percent([f['share_of_achievable'] for f in figures])} "
                    f"| {percent([f['erp_busy_share'] for f in figures])} "
                    f"| {spread([f['erp_calls_per_record'] for f in figures])} "
                    f"| {percent([f['steady_share_of_achievable'] for f in figures])} "
                    f"| {spread([f['first_write_after_s'] for f in figures])} s "
                    f"| {spread([f['throttled_by_limit'] for f in figures])} | {peaks} "
                    f"| {spread([f['accepted'] - f['erp_records'] for f in figures])} "
                    f"| {spread([f.get('duplicate_records') for f in figures])} of "
                    f"{spread([f.get('redelivered') for f in figures])} | {lost} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the profiles table of a run's raw figures (the rows kept as "
                                     "each ended, or a finished run's results-profiles.json). Runs are started by "
                                     "`make bench ARGS=--only-profiles`.")
    parser.add_argument("--report", type=Path, default=PARTIAL, metavar="JSON",
                        help=f"the figures to print (default {PARTIAL})")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.report.read_text())
    except (OSError, ValueError) as problem:
        raise SystemExit(f"{args.report}: cannot read the figures: {problem}") from None
    print(report(data.get("profiles", data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
