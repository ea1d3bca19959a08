"""ProcessGroup as `make chaos` uses it: SIGKILL one part by name with everything it spawned, then restart it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from erpsync.errors import ConfigError
from erpsync_dev.processes import ProcessGroup

REPO = Path(__file__).resolve().parents[2]

# A parent that starts a child in a session of its own (as a worker's flow-run processes may be), writes the
# child's pid, and waits.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of an exited parent is reaped by init; until then it is a zombie, which counts as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_kill_takes_the_named_process_and_its_detached_children_and_restart_brings_it_back(tmp_path) -> None:
    group = ProcessGroup(log_dir=tmp_path / "logs", env=dict(os.environ), cwd=REPO)
    pid_file = tmp_path / "child.pid"
    try:
        group.start("worker-1", [sys.executable, "-c", PARENT, str(pid_file)])
        bystander = group.start("worker-2", [sys.executable, "-c", "import time; time.sleep(600)"])
        parent = group.get("worker-1").process
        child_pid = int(wait_for_file(pid_file))

        killed = group.kill("worker-1")

        assert killed >= 2
        assert parent.returncode == -9
        deadline = time.monotonic() + 10
        while alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child_pid), "the detached child survived the kill"
        assert bystander.process.poll() is None, "another process of the group was hit"

        pid_file.unlink()
        restarted = group.restart("worker-1")
        assert restarted.process.pid != parent.pid
        assert restarted.process.poll() is None
        int(wait_for_file(pid_file))  # the same command line ran again
        assert [c.name for c in group.children] == ["worker-2", "worker-1"]
    finally:
        group.stop()
    assert group.children == []


def test_names_are_unique_and_a_running_process_is_not_restarted(tmp_path) -> None:
    group = ProcessGroup(log_dir=tmp_path / "logs", env=dict(os.environ), cwd=REPO)
    try:
        group.start("receiver", [sys.executable, "-c", "import time; time.sleep(600)"])
        with pytest.raises(ConfigError, match="a process named 'receiver' is already running"):
            group.start("receiver", [sys.executable, "-c", "pass"])
        with pytest.raises(ConfigError, match="receiver is still running"):
            group.restart("receiver")
        with pytest.raises(ConfigError, match="no process named 'worker-9'; running: receiver"):
            group.kill("worker-9")
    finally:
        group.stop()
