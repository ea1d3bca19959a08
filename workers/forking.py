"""`erpsync worker`: a Prefect process worker whose flow-run processes are forked from a warm interpreter.

A process worker starts every flow run as ``python -m prefect.engine``: a new interpreter that imports Prefect
and the flow's code before it does anything, about 1.8 s of CPU on the 2-core VM (docs/BENCHMARKS.md). For an
event that then spends 0.1 s in the ERP, that start is most of its latency, and under a burst it is CPU the
runs need. This worker keeps one run per process — isolation, cancellation, crash detection and the UI's
Retry work as with the process worker — but forks each run's process from a *fork server* that imported all
of that once:

    erpsync worker (fork server: Prefect, flows/, tasks/, erpsync imported; one thread, never touches the API)
    ├── Prefect worker (a ProcessWorker; its flow-run command is workers/launch.py)
    │     └── launch.py per run  ──unix socket──▶  fork server forks ──▶ flow-run process (runs prefect.engine)
    └── flow-run processes

The fork server stays single-threaded and opens no connection or client, so a forked child starts clean: it
takes the launcher's environment, working directory and standard streams, reseeds its random generators, and
runs ``prefect.engine`` as the process worker's child would. It exits when the Prefect worker does.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import random
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).with_name("launch.py")
# Modules every flow run imports: the fork server imports them once so that no run has to.
WARM_MODULES = ("prefect.flow_engine", "prefect.task_engine", "prefect.deployments.steps",
                "flows.sync_event", "flows.sync_batch", "flows.sweep", "flows.replay", "flows.reconcile")


# -- the fork server ------------------------------------------------------------------------------------------

def serve(listener: socket.socket, worker: subprocess.Popen) -> int:
    """Fork a flow-run process per launcher request until the Prefect worker exits; returns its exit code."""
    def stop(signum, _frame):
        worker.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while worker.poll() is None:
        _reap(worker)
        try:
            ready, _, _ = select.select([listener], [], [], 0.5)
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        try:
            request, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            if len(fds) != 3:
                raise OSError(f"expected 3 file descriptors, got {len(fds)}")
        except OSError as exc:
            print(f"erpsync worker: bad launch request: {exc}", file=sys.stderr, flush=True)
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            listener.close()
            _run_flow_run(conn, fds, json.loads(request))  # never returns
        conn.close()
        for fd in fds:
            os.close(fd)
    return worker.returncode


def _reap(worker: subprocess.Popen) -> None:
    """Collect finished flow-run processes (their launchers relayed the exit codes): no zombies, and their CPU
    time counts towards this process's children, as it would for the process worker's."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == worker.pid:
            worker.returncode = os.waitstatus_to_exitcode(status)


def _run_flow_run(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """In the forked child: become the launcher's flow-run process, run the engine, report the exit code."""
    code = 1
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        random.seed()  # the parent's generator state is shared by every fork: jitter would be identical
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        import prefect.context

        prefect.context.refresh_global_settings_context()  # settings from this run's environment
        conn.sendall(json.dumps({"pid": os.getpid()}).encode())
        threading.Thread(target=_die_with_launcher, args=(conn,), name="launcher-watch", daemon=True).start()
        sys.argv = [sys.argv[0]]
        # prefect.engine is imported already (flow_engine imports it); running it as __main__ beside that copy
        # is what `python -m prefect.engine` ends up with too, so runpy's warning about it says nothing here.
        warnings.filterwarnings("ignore", message="'prefect.engine' found in sys.modules", category=RuntimeWarning)
        try:
            runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()  # what interpreter exit would run: Prefect drains its log and event queues
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(json.dumps({"exit": code}).encode())
        finally:
            os._exit(code)


def _die_with_launcher(conn: socket.socket) -> None:
    """The launcher stands for this process towards the worker: if it goes, the run is being killed with it."""
    try:
        conn.recv(1)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def run_fork_server(worker_argv: list[str]) -> int:
    """Import what flow runs need, listen, start the Prefect worker beside us, and serve it."""
    import importlib

    for module in WARM_MODULES:
        importlib.import_module(module)
    # Everything imported so far lives as long as the process: out of the collector's reach, full collections
    # in a run stay short (a run's first one took 154 ms over these objects), and the pages the children share
    # with this process are not written to by the collector's bookkeeping.
    gc.collect()
    gc.freeze()
    extra = threading.active_count() - 1
    if extra:  # forking a process with other threads can copy a held lock into every child
        raise SystemExit(f"erpsync worker: {extra} thread(s) started while importing flows; cannot fork safely")
    directory = Path(tempfile.mkdtemp(prefix="erpsync-worker-"))
    path = directory / "forkserver.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(str(path))
        listener.listen(64)
        # Poll every second unless told otherwise (Prefect's default is 10 s): a run that starts in milliseconds
        # should not wait seconds to be noticed. One cheap query a second per worker.
        env = {"PREFECT_WORKER_QUERY_SECONDS": "1", **os.environ, "ERPSYNC_FORKSERVER": str(path)}
        worker = subprocess.Popen([sys.executable, "-m", "workers.forking", "--prefect-worker", *worker_argv],
                                  env=env)
        return serve(listener, worker)
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


# -- the Prefect worker ---------------------------------------------------------------------------------------

def run_prefect_worker(pool: str, name: str | None, limit: int | None) -> None:
    import asyncio

    from prefect.workers.process import ProcessWorker

    # Same type as the process worker, so it serves the same pools; Prefect warns that the subclass now answers
    # to "process" in this process, which is the point.
    warnings.filterwarnings("ignore", message=".*has key 'process' that matches existing registered type")

    class ForkingProcessWorker(ProcessWorker):
        """A ProcessWorker whose flow-run command is the launcher, unless a deployment set a command itself."""

        async def run(self, flow_run, configuration, task_status=None):
            if not configuration._command_configured:
                configuration.command = f"{sys.executable} -S {LAUNCHER}"
                configuration._command_configured = True
            return await super().run(flow_run, configuration, task_status)

    async def main() -> None:
        async with ForkingProcessWorker(work_pool_name=pool, name=name, limit=limit) as worker:
            await worker.start()

    asyncio.run(main())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", default="erpsync", help="work pool to take runs from (default: %(default)s)")
    parser.add_argument("--name", help="worker name shown in the UI (default: one Prefect generates)")
    parser.add_argument("--limit", type=int, help="flow runs at once (default: no limit)")
    parser.add_argument("--prefect-worker", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.prefect_worker:
        run_prefect_worker(args.pool, args.name, args.limit)
        return 0
    passed = ["--pool", args.pool, *(["--name", args.name] if args.name else []),
              *(["--limit", str(args.limit)] if args.limit else [])]
    return run_fork_server(passed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="erpsync worker", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
