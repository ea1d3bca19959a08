"""The command a forking worker gives each flow run: hands the run to the worker's fork server, relays its end.

Run as ``python -S workers/launch.py`` by `ForkingProcessWorker`: standard library only and no site import, so
it starts in milliseconds. It passes its environment, working directory and standard streams to the fork server
(``ERPSYNC_FORKSERVER``), which forks a flow-run process from its warm interpreter. This process stands in for
that flow-run process towards the Prefect worker: a signal it receives (a cancellation's SIGTERM) goes to the
flow-run process's group, and it ends as that process ended (its exit code, or the signal that killed it). If
it is killed, the flow-run process sees its socket close and kills its group.

Without a fork server to talk to, it becomes ``python -m prefect.engine``: the plain process worker's command.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys


def main() -> int:
    path = os.environ.get("ERPSYNC_FORKSERVER")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        if not path:
            raise OSError("ERPSYNC_FORKSERVER is not set")
        conn.connect(path)
        request = json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(conn, [request], [0, 1, 2])
        pid = json.loads(conn.recv(1024) or b"{}").get("pid")
        if not pid:
            raise OSError("the fork server could not start the run")
    except (OSError, ValueError) as exc:  # nothing was forked: start the run the plain way
        conn.close()
        print(f"erpsync: no fork server ({exc}); starting the flow run in a new interpreter", file=sys.stderr)
        os.execv(sys.executable, [sys.executable, "-m", "prefect.engine", *sys.argv[1:]])

    def forward(signum, _frame):
        try:
            os.killpg(pid, signum)  # the run leads its own process group
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    reply = conn.recv(1024)
    # No reply: the fork server died (with its worker); the run went with it or will be killed as an orphan.
    code = json.loads(reply)["exit"] if reply else -signal.SIGKILL
    if code < 0:  # the run was killed by a signal: end the same way, so the worker reports it as such
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main())
