"""Starts the ERP sandbox as a separate process on a free port, for integration and end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ERP_CLIENT_ID = "sandbox"
ERP_CLIENT_SECRET = "sandbox-secret"


@contextlib.contextmanager
def start_erp_sandbox(directory: Path, *extra_args: str, timeout: float = 20.0) -> Iterator[str]:
    """Run ``python -m erpsync_dev.sandboxes.netsuite`` until the block ends; yield its base URL.

    The records go to a fresh SQLite file in ``directory`` and the server log to ``erp-sandbox-*.log``
    there; ``extra_args`` come last, so they can override ``--db`` or ``--port`` too.
    """
    run_id = uuid.uuid4().hex[:8]
    log_path = directory / f"erp-sandbox-{run_id}.log"
    command = [
        sys.executable, "-m", "erpsync_dev.sandboxes.netsuite",
        "--port", "0",
        "--db", str(directory / f"erp-sandbox-{run_id}.db"),
        *extra_args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read_stdout() -> None:
            # Keeps draining after the ready line so the server can never block on a full pipe.
            assert process.stdout is not None
            for raw in process.stdout:
                lines.put(raw.decode("utf-8", "replace").strip())
            lines.put(None)

        reader = threading.Thread(target=read_stdout, name="erp-sandbox-stdout", daemon=True)
        reader.start()
        try:
            yield _wait_until_ready(process, lines, timeout, log_path)
        finally:
            _stop(process)
            reader.join(timeout=5)
            if process.stdout is not None and not reader.is_alive():
                process.stdout.close()


def _wait_until_ready(
    process: subprocess.Popen[bytes], lines: queue.Queue[str | None], timeout: float, log_path: Path
) -> str:
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"ERP sandbox not ready after {timeout}s; log: {log_path}") from None
        if line is None:
            process.wait(timeout=5)
            log = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ERP sandbox exited with {process.returncode} before it was ready:\n{log}")
        if line.startswith("ready on "):
            return line.removeprefix("ready on ").strip()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
