"""The peer: n8n 1.x, built the way its users build a shop-to-ERP flow, on the same burst and the same ERP sandbox.

The workflow (bench/peer_n8n_workflow.json) is a Webhook node answering at once ("Respond: Immediately") and an
HTTP Request node that POSTs each order as a sales order to the ERP sandbox's REST record API with a bearer
token, retried on failure with the longest settings n8n's editor offers (5 tries, 5 s apart). The order's id
is the sales order's external id, so the ERP refuses a second create of the same order (NetSuite's "A record
with the same external ID already exists"); without it every redelivery would be a second sales order.

One call of `bench_peer` starts an ERP sandbox on the given latency profile and concurrency limit and n8n, and
measures three phases on them:
- burst: ``orders`` deliveries at once (bench/loadgen.py), from the first delivery to the ERP's last write;
- redelivery: some of the same deliveries again, as a shop redelivers: ERP records afterwards, per order;
- kill: a fresh burst, n8n killed (SIGKILL) once the ERP has half of it, then started again: orders n8n
  acknowledged that never reach the ERP are lost.
n8n is installed by bench/peer_n8n_install.sh under .erpsync/peer-n8n, never into the repository.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

from bench.loadgen import send_all
from erpsync.settings import PROJECT_DIR
from erpsync_dev.processes import ProcessGroup, free_port, python_module
from erpsync_dev.stack import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

INSTALL_DIR = PROJECT_DIR / ".erpsync" / "peer-n8n"
N8N = INSTALL_DIR / "node_modules" / ".bin" / "n8n"
WORKFLOW = Path(__file__).with_name("peer_n8n_workflow.json")
WORKFLOW_ID = json.loads(WORKFLOW.read_text())["id"]
WEBHOOK_PATH = "/webhook/erpsync-bench-orders"
HOME = PROJECT_DIR / ".erpsync" / "bench" / "peer-n8n"
# n8n's retries are 5 s apart: no ERP call for this long means no execution is still retrying.
QUIET_SECONDS = 12.0


def log(message: str) -> None:
    print(f"  · n8n: {message}", file=sys.stderr, flush=True)


def installed() -> str | None:
    """n8n's version if bench/peer_n8n_install.sh installed it, else None."""
    if not N8N.exists():
        return None
    try:
        return subprocess.run([str(N8N), "--version"], capture_output=True, text=True, timeout=120,
                              cwd=INSTALL_DIR).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


class N8n:
    """One n8n user folder (its SQLite database, the imported and activated workflow) and the running server."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.env = {**os.environ, "N8N_USER_FOLDER": str(home), "N8N_PORT": str(self.port),
                    "N8N_LISTEN_ADDRESS": "127.0.0.1", "N8N_HOST": "127.0.0.1", "N8N_PROTOCOL": "http",
                    "N8N_ENCRYPTION_KEY": secrets.token_hex(24), "N8N_DIAGNOSTICS_ENABLED": "false",
                    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false", "N8N_TEMPLATES_ENABLED": "false",
                    "N8N_PERSONALIZATION_ENABLED": "false", "N8N_SECURE_COOKIE": "false",
                    # The workflow reads the ERP's URL and token from the environment ($env), so neither is in it.
                    "N8N_BLOCK_ENV_ACCESS_IN_NODE": "false", "EXECUTIONS_MODE": "regular",
                    "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true", "N8N_RUNNERS_ENABLED": "false"}

    def prepare(self) -> None:
        """Import the workflow and activate it, as a user does once in the editor."""
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        for argv in ([str(N8N), "import:workflow", f"--input={WORKFLOW}"],
                     [str(N8N), "update:workflow", f"--id={WORKFLOW_ID}", "--active=true"]):
            done = subprocess.run(argv, env=self.env, cwd=INSTALL_DIR, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise SystemExit(f"n8n: {' '.join(argv[1:])} failed ({done.returncode}):\n{done.stdout[-2000:]}"
                                 f"\n{done.stderr[-2000:]}")

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"


def start_n8n(group: ProcessGroup, n8n: N8n, erp_url: str, token: str) -> None:
    n8n.port = free_port()  # one user folder serves several runs; each server gets a port free now
    group.start("n8n", [str(N8N), "start"], extra_env={**n8n.env, "N8N_PORT": str(n8n.port),
                                                        "ERP_BASE_URL": erp_url, "ERP_ACCESS_TOKEN": token})
    wait_ready(group, n8n, 0)


READY = "Editor is now accessible"


def ready_lines(group: ProcessGroup) -> int:
    return group.get("n8n").log_path.read_text(errors="replace").count(READY)


def wait_ready(group: ProcessGroup, n8n: N8n, seen: int, timeout: float = 240) -> None:
    """Until n8n printed its ready line once more than ``seen`` times (a restart appends to the same log).

    /healthz answers before the active workflows' webhooks are registered; the ready line comes after them.
    """
    group.wait_http("n8n", f"http://127.0.0.1:{n8n.port}/healthz", timeout=timeout)
    deadline = time.monotonic() + timeout
    while ready_lines(group) <= seen:
        group.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"n8n printed no {READY!r} within {timeout:.0f} s; see {group.get('n8n').log_path}")
        time.sleep(0.2)


def erp_token(erp_url: str) -> str:
    answer = httpx.post(f"{erp_url}/services/rest/auth/oauth2/v1/token",
                        data={"grant_type": "client_credentials", "client_id": SANDBOX_CLIENT_ID,
                              "client_secret": SANDBOX_CLIENT_SECRET}, timeout=60)
    return answer.raise_for_status().json()["access_token"]


def erp_stats(http: httpx.Client, erp_url: str) -> dict:
    return http.get(f"{erp_url}/_sandbox/stats").json()


def erp_records(http: httpx.Client, erp_url: str) -> list[dict]:
    return http.get(f"{erp_url}/_sandbox/records", params={"type": "salesOrder"}).json()["records"]


def wait_quiet(http: httpx.Client, erp_url: str, group: ProcessGroup, *, limit: float = 1800) -> None:
    """Until the ERP saw no call for QUIET_SECONDS and none is in flight: every execution ended, retries included."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        group.check_alive()
        stats = erp_stats(http, erp_url)
        seen = (stats["requests"], stats["in_flight"])
        if seen != last:
            last, since = seen, time.monotonic()
        elif stats["in_flight"] == 0 and time.monotonic() - since >= QUIET_SECONDS:
            return
        time.sleep(1)
    raise SystemExit(f"n8n: the ERP was still being called after {limit:.0f} s")


def prepared_n8n() -> N8n:
    """A fresh n8n user folder with the workflow imported and active; one serves every run of a benchmark."""
    n8n = N8n(HOME / "n8n")
    n8n.prepare()
    return n8n


def bench_peer(profile: str, concurrency: int, orders: int, *, redeliver: int, kill_orders: int,
               n8n: N8n | None = None) -> dict:
    from bench.throughput import erp_figures, order_requests

    home = HOME / f"c{concurrency}"
    shutil.rmtree(home, ignore_errors=True)
    n8n = n8n or prepared_n8n()
    group = ProcessGroup(log_dir=home / "logs", env=dict(os.environ), cwd=PROJECT_DIR)
    erp_port = free_port()
    erp_url = f"http://127.0.0.1:{erp_port}"
    load_average = os.getloadavg()[0]
    try:
        group.start("erp-sandbox", python_module(
            "erpsync_dev.sandboxes.netsuite", "--port", str(erp_port), "--db", str(home / "erp-sandbox.db"),
            "--latency-profile", profile, "--concurrency", str(concurrency), "--client-id", SANDBOX_CLIENT_ID,
            "--client-secret", SANDBOX_CLIENT_SECRET, "--items", "1-999"))
        group.wait_http("erp-sandbox", f"{erp_url}/_sandbox/stats")
        start_n8n(group, n8n, erp_url, erp_token(erp_url))
        with httpx.Client(timeout=120) as http:
            result = _phases(group, n8n, http, erp_url, profile, concurrency, orders, redeliver, kill_orders,
                             erp_figures, order_requests)
    finally:
        group.stop()
    return {"peer": "n8n", "n8n_version": installed(), "load_average": round(load_average, 2), **result}


def _phases(group, n8n, http, erp_url, profile, concurrency, orders, redeliver, kill_orders, erp_figures,
            order_requests) -> dict:
    # burst
    requests = order_requests(n8n.webhook_url, "not-checked-by-n8n", orders, seed=99)
    cpu_before = _cpu_seconds(group.get("n8n").process.pid)
    started = time.time()
    answers, send_seconds = asyncio.run(send_all(n8n.webhook_url, requests, connections=50))
    accepted = sum(1 for a in answers if 200 <= a.status < 300)
    log(f"{accepted}/{orders} deliveries accepted in {send_seconds:.1f} s")
    wait_quiet(http, erp_url, group)
    n8n_cpu = _cpu_seconds(group.get("n8n").process.pid) - cpu_before
    stats = erp_stats(http, erp_url)
    records = erp_records(http, erp_url)
    writes = sorted(datetime.fromisoformat(r["last_modified"]).timestamp() for r in records)
    if not writes:
        raise SystemExit(f"n8n: no sales order reached the ERP; see {group.get('n8n').log_path}")
    seconds = writes[-1] - started
    rate = len(records) / seconds
    burst = {"profile": profile, "erp_concurrency": concurrency, "orders": orders, "accepted": accepted,
             "erp_records": len(records), "lost_in_burst": accepted - len(records), "seconds": round(seconds, 1),
             "records_per_second": round(rate, 2), "send_seconds": round(send_seconds, 1),
             "first_write_after_s": round(writes[0] - started, 2), "erp_requests": stats["requests"],
             "throttled_by_limit": stats["throttled_by_limit"], "peak_in_flight": stats["peak_in_flight"],
             "n8n_cpu_ms_per_event": round(n8n_cpu * 1000 / max(1, accepted), 1),
             **erp_figures(stats, concurrency, rate, writes, started)}
    # redelivery: the first `redeliver` deliveries again, byte for byte (the same webhook id), after the burst
    refused_before = stats["by_status"].get("400", 0)
    again, _ = asyncio.run(send_all(n8n.webhook_url, requests[:redeliver], connections=10))
    wait_quiet(http, erp_url, group)
    after = erp_records(http, erp_url)
    per_order = {}
    for record in after:
        per_order[record["external_id"]] = per_order.get(record["external_id"], 0) + 1
    redelivery = {"redelivered": redeliver, "redeliveries_accepted": sum(1 for a in again if 200 <= a.status < 300),
                  "duplicate_records": len(after) - len(per_order),
                  "refused_as_existing": erp_stats(http, erp_url)["by_status"].get("400", 0) - refused_before}
    # kill: a fresh burst; n8n killed once the ERP holds half of it, started again, then everything settles
    kill = _kill_phase(group, n8n, http, erp_url, kill_orders, len(after), order_requests)
    return {**burst, **redelivery, **kill}


def _kill_phase(group, n8n, http, erp_url, count, before, order_requests) -> dict:
    requests = order_requests(n8n.webhook_url, "not-checked-by-n8n", count, seed=98)

    async def send_and_kill() -> list:
        sending = asyncio.create_task(send_all(n8n.webhook_url, requests, connections=50))
        deadline = time.monotonic() + 600
        # Killed once the ERP holds half of the burst; or, if n8n gave up on so many (its retries spent on 429s)
        # that half never arrives, once every delivery is answered and the ERP has had no call for a while.
        last, quiet_since = None, time.monotonic()
        while time.monotonic() < deadline:
            if len(erp_records(http, erp_url)) - before >= count // 2:
                break
            stats = erp_stats(http, erp_url)
            if (stats["requests"], stats["in_flight"]) != last:
                last, quiet_since = (stats["requests"], stats["in_flight"]), time.monotonic()
            elif sending.done() and time.monotonic() - quiet_since >= QUIET_SECONDS:
                break
            await asyncio.sleep(0.2)
        group.kill("n8n")
        answers, _ = await sending
        return answers

    answers = asyncio.run(send_and_kill())
    acknowledged = sum(1 for a in answers if 200 <= a.status < 300)
    at_kill = len(erp_records(http, erp_url)) - before
    log(f"killed with {at_kill}/{count} in the ERP; starting it again")
    seen = ready_lines(group)
    group.restart("n8n")
    wait_ready(group, n8n, seen)
    wait_quiet(http, erp_url, group)
    reached = len(erp_records(http, erp_url)) - before
    return {"kill_orders": count, "kill_acknowledged": acknowledged, "kill_in_erp_at_kill": at_kill,
            "kill_in_erp_after_restart": reached, "lost_when_killed": acknowledged - reached}


def _cpu_seconds(pid: int) -> float:
    from bench.throughput import process_cpu_seconds

    return process_cpu_seconds(pid)
