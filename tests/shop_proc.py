"""Starts the shop sandbox as a separate process for tests and yields its base URL."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

READY_PREFIX = "ready on "
START_TIMEOUT = 30.0


@contextmanager
def start_shop_sandbox(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``python -m erpsync_dev.sandboxes.shopify serve ARGS`` on a free port until the block ends.

    The port is 0 unless ARGS name one, so the sandbox binds a free port itself and reports it on its ready
    line (no window in which another process can take a port picked here). stderr goes to a log file in
    ``tmp_path`` that is quoted if the process fails to start.
    """
    command = [sys.executable, "-m", "erpsync_dev.sandboxes.shopify", "serve", *args]
    if "--port" not in args:
        command += ["--port", "0"]
    log_path = tmp_path / "shop-sandbox.stderr.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, **(env or {})},
            text=True,
        )
        try:
            yield _wait_ready(process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()


def _wait_ready(process: subprocess.Popen[str], log_path: Path) -> str:
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout

    def read_first_line() -> None:
        lines.put(stdout.readline())

    threading.Thread(target=read_first_line, daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        line = ""
    if not line.startswith(READY_PREFIX):
        process.kill()
        process.wait()
        raise RuntimeError(
            f"shop sandbox did not start (exit {process.returncode}, stdout {line!r}):\n{log_path.read_text()}"
        )
    return line[len(READY_PREFIX) :].strip()
