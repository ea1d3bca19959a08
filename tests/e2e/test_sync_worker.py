"""`erpsync worker` forks each flow run from its warm interpreter, and the run behaves as a process worker's.

The stack's worker is `erpsync worker`: its main process is the fork server, its first child the Prefect worker,
and every other child a flow-run process. A run held in the ERP is cancelled from Prefect, as from the UI, and
another loses its launcher (the process the Prefect worker watches): both end, and nothing is left running.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import send_event
from tests.e2e.test_sync_crash import an_order, run_of

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def held_run(stack_, http, order_id: int) -> tuple[dict, int, int]:
    """An event whose run is waiting on a held ERP call: (its flow run, its forked process, its launcher)."""
    config = stack_.config
    # The fault waits for the order's write: a scheduled change poll's query must not take it.
    faults_before = http.get(f"{config.erp_url}/_sandbox/stats").json()["faults_injected"]
    http.post(f"{config.erp_url}/_sandbox/faults",
              json={"delay_ms": 20000, "count": 1, "path": "/record/v1/salesOrder"}).raise_for_status()
    event_id = send_event(http, config, an_order(order_id))
    run = run_of(http, config, event_id, ("RUNNING",))
    deadline = time.monotonic() + 60
    while http.get(f"{config.erp_url}/_sandbox/stats").json()["faults_injected"] == faults_before:
        assert time.monotonic() < deadline, "the run never reached the ERP"
        time.sleep(0.2)
    server = stack_.group.get("worker").process.pid
    worker = [pid for pid in children(server) if b"--prefect-worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(worker) == 1, "the fork server should have started one Prefect worker"
    # Scheduled runs (the sweep, the change poll) may be under the fork server too: each names itself after its run.
    name = f"run-{run['id'][:8]}"
    runs = [pid for pid in children(server) if pid != worker[0] and alive(pid) and comm(pid) == name]
    assert len(runs) == 1, f"expected one flow-run process named {name} under the fork server, found {runs}"
    launchers = [pid for pid in children(worker[0]) if environment(pid).get("PREFECT__FLOW_RUN_ID") == run["id"]]
    assert len(launchers) == 1, "the Prefect worker should watch one launcher for the run"
    return run, runs[0], launchers[0]


def wait_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.2)


def test_a_forked_run_is_cancelled_from_prefect(stack, http):
    stack_, _ = stack
    run, process, launcher = held_run(stack_, http, 950000000001)
    http.post(f"{stack_.config.prefect_api}/flow_runs/{run['id']}/set_state",
              json={"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True}).raise_for_status()
    cancelled = run_of(http, stack_.config, int(run["parameters"]["event_id"]), ("CANCELLED",), timeout=120)
    assert cancelled["state_name"] == "Cancelled"
    wait_gone(process)
    wait_gone(launcher)


def test_a_forked_run_ends_when_its_launcher_is_killed(stack, http):
    stack_, _ = stack
    run, process, launcher = held_run(stack_, http, 950000000002)
    os.kill(launcher, signal.SIGKILL)  # what the worker's host does to its children when it dies
    wait_gone(process)
    ended = run_of(http, stack_.config, int(run["parameters"]["event_id"]), ("CRASHED", "FAILED", "CANCELLED"),
                   timeout=120)
    assert ended["state_type"] in ("CRASHED", "FAILED", "CANCELLED")
