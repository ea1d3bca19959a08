"""Starting and stopping erpsync's parts as separate processes on loopback — for the demo, the tests and the
benchmarks: the one place that starts them. Each process gets its own session, so one Ctrl-C or `stop()` ends
every child it spawned; each writes stdout and stderr to one log file, which is also where a ready line is read."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from erpsync.errors import ConfigError

# What a sandbox prints once it listens (``ready on http://HOST:PORT``): with ``--port 0`` it reports the port it got.
READY_PREFIX = "ready on "


def interrupt_on_signals() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt, so `finally` blocks stop every child process.

    SIGINT is set explicitly because a process started in the background by a non-interactive shell inherits
    it ignored; SIGTERM because its default kills without unwinding.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Managed:
    name: str
    process: subprocess.Popen
    log_path: Path
    argv: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class ProcessGroup:
    """Children started with a log file each; `stop()` terminates them in reverse order of start.

    Names are unique: `kill(name)` and `restart(name)` act on one child, as `make chaos` does to workers and the
    receiver.
    """

    log_dir: Path
    env: dict[str, str]
    cwd: Path
    children: list[Managed] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, extra_env: dict[str, str] | None = None) -> Managed:
        if any(child.name == name for child in self.children):
            raise ConfigError(f"a process named {name!r} is already running in this group")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "ab")
        process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env={**self.env, **(extra_env or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()
        child = Managed(name, process, log_path, list(argv), dict(extra_env or {}))
        self.children.append(child)
        return child

    def get(self, name: str) -> Managed:
        for child in self.children:
            if child.name == name:
                return child
        raise ConfigError(f"no process named {name!r}; running: {', '.join(c.name for c in self.children)}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the child and to everything it spawned, as a host crash would; wait for the child.

        Descendants that left the child's session (a worker's flow-run processes may) are found through /proc
        first, so none survives the "crash". Returns how many processes were signalled.
        """
        child = self.get(name)
        victims = [child.process.pid, *_descendants(child.process.pid)]
        _signal_group(child.process, sig)
        for pid in victims:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            child.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()
        return len(victims)

    def restart(self, name: str) -> Managed:
        """Start a killed (or exited) child again with the same command line, environment and log file."""
        child = self.get(name)
        if child.process.poll() is None:
            raise ConfigError(f"{name} is still running (pid {child.process.pid}); kill it first")
        self.children.remove(child)
        return self.start(name, child.argv, extra_env=child.extra_env)

    def check_alive(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise ConfigError(f"{child.name} exited with code {child.process.returncode}; "
                                  f"see {child.log_path}:\n{tail(child.log_path)}")

    def wait_http(self, name: str, url: str, *, timeout: float = 90.0) -> None:
        """Wait until ``url`` answers 200, failing early (with its log) if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise ConfigError(f"{name} did not answer {url} within {timeout:.0f}s")

    def wait_line(self, name: str, prefix: str, *, timeout: float = 30.0) -> str:
        """Wait until the child's log holds a line starting with ``prefix``; that whole line.

        Reading the log file rather than a pipe means the child can never block on a full pipe, and the line
        stays on disk for whoever reads the log later. Fails early, with the log's tail, if the child exits.
        """
        child = self.get(name)
        deadline = time.monotonic() + timeout
        while True:
            exited = child.process.poll() is not None  # read once more after an exit: the line may be its last
            for line in _lines(child.log_path, complete=not exited):
                if line.startswith(prefix):
                    return line
            if exited:
                raise ConfigError(f"{name} exited with code {child.process.returncode} before printing "
                                  f"{prefix.strip()!r}; see {child.log_path}:\n{tail(child.log_path)}")
            if time.monotonic() >= deadline:
                raise ConfigError(f"{name} printed no {prefix.strip()!r} line within {timeout:.0f}s; "
                                  f"see {child.log_path}:\n{tail(child.log_path)}")
            time.sleep(0.05)

    def wait_ready(self, name: str, *, timeout: float = 30.0) -> str:
        """The base URL a sandbox reports on its ready line (see READY_PREFIX), once it listens."""
        return self.wait_line(name, READY_PREFIX, timeout=timeout).removeprefix(READY_PREFIX).strip()

    def wait(self, name: str, *, timeout: float | None = None) -> int:
        """Wait for a child that runs to completion; its exit code. It stays in the group, its log readable."""
        child = self.get(name)
        try:
            return child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"{name} still running after {timeout:.0f}s; see {child.log_path}:\n"
                              f"{tail(child.log_path)}") from None

    def send_signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to the child alone, as ``kill`` from a shell would: how a test asks a server to stop."""
        self.get(name).process.send_signal(sig)

    def stop(self) -> None:
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        self.children.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, from /proc (Linux); an empty list where /proc is missing."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            # The command name in field 2 may hold spaces and parentheses: split after its closing one.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(_lines(path)[-lines:])


def log_lines(child: Managed) -> list[str]:
    """Every line the child has written so far (stdout and stderr, as they came)."""
    return _lines(child.log_path)


def _lines(path: Path, *, complete: bool = False) -> list[str]:
    """The file's lines; with ``complete``, without a last one still being written (no newline yet)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    if complete:
        text = text[: text.rfind("\n") + 1]
    return text.splitlines()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def venv_script(name: str) -> str:
    """A console script installed beside this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
