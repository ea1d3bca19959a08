"""Starts the receiver (`python -m erpsync serve --no-dispatch`) as a separate process for tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from erpsync_dev.processes import ProcessGroup, free_port

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def running_receiver(tmp_path: Path, database_url: str, env: dict[str, str]) -> Iterator[tuple[httpx.Client, Path]]:
    """A client on the receiver's base URL, and the receiver's log file (for tests that grep it)."""
    port = free_port()
    full_env = {**os.environ, "ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url, **env}
    group = ProcessGroup(log_dir=tmp_path / "logs", env=full_env, cwd=REPO)
    child = group.start("receiver", [sys.executable, "-m", "erpsync", "serve", "--port", str(port), "--no-dispatch"])
    try:
        group.wait_http("receiver", f"http://127.0.0.1:{port}/healthz", timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client, child.log_path
    finally:
        group.stop()
