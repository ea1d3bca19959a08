"""The command a forking worker gives each flow run: hands the run to the worker's fork server, relays its end.

Run as ``python -S workers/launch.py`` by `ForkingProcessWorker`: standard library only and no site import, so
it starts in milliseconds. It passes its environment, working directory and standard streams to the fork server
(``ERPSYNC_FORKSERVER``), which forks a flow-run process from its warm interpreter. This process stands in for
that flow-run process towards the Prefect worker: a signal it receives (a cancellation's SIGTERM) goes to the
flow-run process, and it exits with that process's exit code. If it is killed, the flow-run process sees its
socket close and terminates itself, as a process worker's child would with it.

Without a fork server to talk to, it becomes ``python -m prefect.engine``: the plain process worker's command.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

# 128 + signal number, as a shell reports a process killed by a signal.
_KILLED = 128 + signal.SIGKILL


def main() -> int:
    path = os.environ.get("ERPSYNC_FORKSERVER")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        if not path:
            raise OSError("ERPSYNC_FORKSERVER is not set")
        conn.connect(path)
        request = json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(conn, [request], [0, 1, 2])
        pid = json.loads(conn.recv(1024))["pid"]
    except OSError as exc:
        conn.close()
        print(f"erpsync: no fork server ({exc}); starting the flow run in a new interpreter", file=sys.stderr)
        executable = sys.executable
        os.execv(executable, [executable, "-m", "prefect.engine", *sys.argv[1:]])

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            message = conn.recv(1024)
        except InterruptedError:
            continue
        if not message:  # the flow-run process died without a word: killed
            return _KILLED
        return int(json.loads(message)["exit"])


if __name__ == "__main__":
    sys.exit(main())
