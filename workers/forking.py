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
import time
import warnings
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launch.py")
# Modules every flow run imports: the fork server imports them once so that no run has to.
WARM_MODULES = ("prefect.flow_engine", "prefect.task_engine", "prefect.deployments.steps",
                "flows.sync_event", "flows.sync_batch", "flows.sweep", "flows.replay", "flows.reconcile")


# -- the fork server ------------------------------------------------------------------------------------------

_BLOCKED = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


def serve(listener: socket.socket, worker: subprocess.Popen) -> int:
    """Fork a flow-run process per launcher request until the Prefect worker exits; returns its exit code.

    Each run's launcher stays connected: when the run's process ends, the server sends it the exit status
    (a signal included), so the Prefect worker sees what it would have seen of a child of its own.
    """
    launchers: dict[int, socket.socket] = {}
    stops = 0

    def stop(_signum, _frame):
        # As `prefect worker start` does: the first signal asks the worker to stop gracefully, a second kills it.
        nonlocal stops
        stops += 1
        worker.send_signal(signal.SIGINT if stops == 1 else signal.SIGKILL)

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)  # a finished run (SIGCHLD) wakes the loop at once to report it
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while worker.poll() is None:
        _reap(worker, launchers)
        ready, _, _ = select.select([listener, wake_r], [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 512)
        if listener in ready:
            _accept(listener, launchers)
    for conn in launchers.values():
        conn.close()
    return worker.returncode if worker.returncode >= 0 else 128 - worker.returncode


def _accept(listener: socket.socket, launchers: dict[int, socket.socket]) -> None:
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    fds: list[int] = []
    try:
        request, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        if len(fds) != 3:
            raise OSError(f"expected 3 file descriptors, got {len(fds)}")
        sys.stdout.flush()
        sys.stderr.flush()
        # No signal handler of the server may run in the child before it has set its own.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            raise
        if pid == 0:  # never returns; unblocks the signals once it is ready
            _become_flow_run(listener, [*launchers.values()], conn, fds, request, old_mask)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        conn.sendall(json.dumps({"pid": pid}).encode())
        launchers[pid] = conn
    except OSError as exc:  # a bad request, or no fork possible (memory): the launcher starts the run itself
        print(f"erpsync worker: cannot fork a flow run ({exc}); its launcher starts it", file=sys.stderr, flush=True)
        conn.close()
    finally:
        for fd in fds:
            os.close(fd)


def _reap(worker: subprocess.Popen, launchers: dict[int, socket.socket]) -> None:
    """Collect finished flow-run processes and tell their launchers how each ended. Their CPU time then counts
    towards this process's children, as a process worker's runs count towards it."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)  # negative: killed by that signal
        if pid == worker.pid:
            worker.returncode = code
            continue
        conn = launchers.pop(pid, None)
        if conn is not None:
            try:
                conn.sendall(json.dumps({"exit": code}).encode())
            except OSError:
                pass  # the launcher is gone already
            conn.close()


def _become_flow_run(listener: socket.socket, others: list[socket.socket], conn: socket.socket, fds: list[int],
                     request: bytes, old_mask) -> None:
    """In the forked child: take the launcher's place and run the engine as `python -m prefect.engine` would."""
    code = 1
    try:
        listener.close()
        for other in others:  # other runs' connections are theirs alone
            other.close()
        os.setsid()  # a group of its own, as the process worker isolates a run: signals go to it and its children
        for signum in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        fds.clear()
        payload = json.loads(request)
        random.seed()
        settings_before = _settings_in(os.environ)
        os.environ.clear()
        os.environ.update(payload["env"])
        os.chdir(payload["cwd"])
        time.tzset()
        _name_process(os.environ.get("PREFECT__FLOW_RUN_ID", ""))
        if _settings_in(os.environ) != settings_before:  # usually equal: then re-reading would only cost ~110 ms
            _configure_from_environment()
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
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        except BaseException:
            import traceback

            traceback.print_exc()
        # What interpreter exit does, in its order: threads' exit hooks first (Prefect drains its event and log
        # queues there: task-run states travel as events), then atexit functions.
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # never back into the server's frames; the server reports the status to the launcher


def _name_process(flow_run_id: str) -> None:
    """Name the process after its run (``ps -o pid,comm`` shows ``run-1a2b3c4d``): every forked run shares the
    server's command line, and an operator looking at a stuck process needs to know which run it is."""
    if flow_run_id:
        try:
            Path("/proc/self/comm").write_text(f"run-{flow_run_id[:8]}")  # Linux keeps 15 bytes
        except OSError:
            pass  # not Linux, or /proc is not mounted: the name is a convenience, never a reason to fail a run


def _settings_in(environ) -> dict[str, str]:
    """The variables that configure Prefect and erpsync. PREFECT__* (two underscores) are per-run plumbing."""
    return {k: v for k, v in environ.items()
            if (k.startswith("PREFECT_") and not k.startswith("PREFECT__"))
            or (k.startswith("ERPSYNC_") and k != "ERPSYNC_FORKSERVER")}


def _configure_from_environment() -> None:
    """What a new interpreter would have read from the run's environment, read again in the fork."""
    import logging

    import prefect.context
    from prefect.logging.configuration import setup_logging
    from prefect.settings import PREFECT_LOGGING_EXTRA_LOGGERS

    from erpsync import failpoints

    # setup_logging adds the API handler to each extra logger (PREFECT_LOGGING_EXTRA_LOGGERS=erpsync) without
    # removing the one the fork server's own setup added: every erpsync line would reach the run's log twice.
    extra_handlers = logging.getLogger("prefect.extra").handlers
    for name in PREFECT_LOGGING_EXTRA_LOGGERS.value():
        for handler in extra_handlers:
            logging.getLogger(name).removeHandler(handler)
    prefect.context.refresh_global_settings_context()
    setup_logging(incremental=False)
    failpoints.reload()


def _die_with_launcher(conn: socket.socket) -> None:
    """The launcher stands for this run towards the Prefect worker, which kills it last of all (SIGKILL after
    the grace period): when it goes, the run and everything it started go too."""
    try:
        conn.recv(1)
    except OSError:
        pass
    os.killpg(os.getpid(), signal.SIGKILL)


def run_fork_server(worker_argv: list[str]) -> int:
    """Import what flow runs need, listen, start the Prefect worker beside us, and serve it."""
    import importlib

    # Set before Prefect is imported, so that this process and the runs it forks read the same settings.
    # Poll every second unless told otherwise (Prefect's default is 10 s): a run that starts in milliseconds
    # should not wait seconds to be noticed; one cheap query a second per worker.
    os.environ.setdefault("PREFECT_WORKER_QUERY_SECONDS", "1")
    # A batch run logs per event on its own threads, outside any Prefect run context: those lines stay on the
    # worker's output (the ledger keeps each outcome) instead of costing a warning each.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
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
    worker: subprocess.Popen | None = None
    try:
        listener.bind(str(path))
        listener.listen(64)
        worker = subprocess.Popen([sys.executable, "-m", "workers.forking", "--prefect-worker", *worker_argv],
                                  env={**os.environ, "ERPSYNC_FORKSERVER": str(path)})
        return serve(listener, worker)
    finally:
        if worker is not None and worker.poll() is None:  # the server failed: the worker must not go on alone
            worker.kill()
            worker.wait()
        listener.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


# -- the Prefect worker ---------------------------------------------------------------------------------------

def run_prefect_worker(pool: str, name: str | None, limit: int | None) -> None:
    import asyncio

    from prefect.utilities.processutils import command_to_string, setup_signal_handlers_worker
    from prefect.workers.process import ProcessWorker

    # Same type as the process worker, so it serves the same pools; Prefect warns that the subclass now answers
    # to "process" in this process, which is the point.
    warnings.filterwarnings("ignore", message=".*has key 'process' that matches existing registered type")

    class ForkingProcessWorker(ProcessWorker):
        """A ProcessWorker whose flow-run command is the launcher, unless a deployment set a command itself."""

        async def run(self, flow_run, configuration, task_status=None):
            # The launcher as the run's command. Prefect then starts it as any configured command (its
            # EngineCommandStarter), not through its workspace starter; the forked run isolates its own
            # process group (setsid) as that starter would. `_command_configured` is how ProcessWorker.run
            # (Prefect 3.9) tells the two apart; tests/e2e/test_sync_worker.py fails if that changes.
            if not configuration._command_configured:
                configuration.command = command_to_string([sys.executable, "-S", str(LAUNCHER)])
                configuration._command_configured = True
            return await super().run(flow_run, configuration, task_status)

    async def main() -> None:
        async with ForkingProcessWorker(work_pool_name=pool, name=name, limit=limit) as worker:
            await worker.start()

    # As `prefect worker start`: SIGTERM stops the worker gracefully (as SIGINT), a second one kills it.
    setup_signal_handlers_worker(os.getpid(), "the erpsync worker", print)
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
