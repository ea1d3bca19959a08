"""ProcessGroup as `make chaos` uses it (SIGKILL one part by name with everything it spawned, then restart it) and
as the tests use it (wait for a ready line, for an exit, send a signal)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from erpsync.errors import ConfigError
from erpsync_dev.processes import ProcessGroup, log_lines

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


# Prints a partial line first, so a reader that took an unfinished line would see a truncated address.
READY_LATER = """
import sys, time
print("starting", flush=True)
print("warming up", file=sys.stderr, flush=True)
sys.stdout.write("ready on http://127.0.0.1:"); sys.stdout.flush(); time.sleep(0.5)
print("8123", flush=True)
print('{"done": 1}', flush=True)
"""


def test_a_ready_line_is_read_from_the_log_whole_and_a_finished_child_leaves_its_exit_code(tmp_path) -> None:
    group = ProcessGroup(log_dir=tmp_path / "logs", env=dict(os.environ), cwd=REPO)
    try:
        child = group.start("server", [sys.executable, "-c", READY_LATER])
        assert group.wait_ready("server", timeout=30) == "http://127.0.0.1:8123"
        assert group.wait("server", timeout=30) == 0
        assert group.wait_line("server", '{"done"') == '{"done": 1}'  # read after the exit as well
        assert log_lines(child)[:2] == ["starting", "warming up"]
    finally:
        group.stop()


def test_waiting_for_a_line_fails_early_with_the_log_when_the_child_exits(tmp_path) -> None:
    group = ProcessGroup(log_dir=tmp_path / "logs", env=dict(os.environ), cwd=REPO)
    try:
        group.start("broken", [sys.executable, "-c", "import sys; sys.exit('no database')"])
        started = time.monotonic()
        with pytest.raises(ConfigError, match=r"(?s)broken exited with code 1 before printing 'ready on'.*no database"):
            group.wait_ready("broken", timeout=60)
        assert time.monotonic() - started < 30
    finally:
        group.stop()


def test_send_signal_reaches_the_child_alone_and_wait_times_out_with_the_log(tmp_path) -> None:
    group = ProcessGroup(log_dir=tmp_path / "logs", env=dict(os.environ), cwd=REPO)
    try:
        group.start("sleeper", [sys.executable, "-c", "print('sleeping', flush=True); import time; time.sleep(600)"])
        group.wait_line("sleeper", "sleeping", timeout=30)
        with pytest.raises(ConfigError, match=r"(?s)sleeper still running after 0s.*sleeping"):
            group.wait("sleeper", timeout=0.2)
        group.send_signal("sleeper", signal.SIGTERM)
        assert group.wait("sleeper", timeout=30) == -signal.SIGTERM
    finally:
        group.stop()
