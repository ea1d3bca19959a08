"""Starts the ERP and shop sandboxes as separate processes on free ports, for integration and end-to-end tests,
through erpsync_dev.processes (the one way the project starts processes)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from erpsync_dev.processes import ProcessGroup, python_module

REPO = Path(__file__).resolve().parents[1]
ERP_CLIENT_ID = "sandbox"
ERP_CLIENT_SECRET = "sandbox-secret"
SHOP_START_TIMEOUT = 30.0


@contextlib.contextmanager
def start_erp_sandbox(directory: Path, *extra_args: str, timeout: float = 20.0) -> Iterator[str]:
    """Run ``python -m erpsync_dev.sandboxes.netsuite`` until the block ends; yield its base URL.

    The records go to a fresh SQLite file in ``directory`` and the server log to ``erp-sandbox-*.log``
    there; ``extra_args`` come last, so they can override ``--db`` or ``--port`` too.
    """
    run_id = uuid.uuid4().hex[:8]
    argv = python_module("erpsync_dev.sandboxes.netsuite", "--port", "0",
                         "--db", str(directory / f"erp-sandbox-{run_id}.db"), *extra_args)
    with _running(directory, f"erp-sandbox-{run_id}", argv, {}, timeout) as base_url:
        yield base_url


@contextlib.contextmanager
def start_shop_sandbox(directory: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``python -m erpsync_dev.sandboxes.shopify serve ARGS`` until the block ends; yield its base URL.

    The port is 0 unless ARGS name one, so the sandbox binds a free port itself and reports it on its ready
    line (no window in which another process can take a port picked here). Its log goes to
    ``shop-sandbox-*.log`` in ``directory`` and is quoted if the process fails to start.
    """
    argv = python_module("erpsync_dev.sandboxes.shopify", "serve", *args)
    if "--port" not in args:
        argv += ["--port", "0"]
    with _running(directory, f"shop-sandbox-{uuid.uuid4().hex[:8]}", argv, env or {}, SHOP_START_TIMEOUT) as url:
        yield url


@contextlib.contextmanager
def _running(directory: Path, name: str, argv: list[str], env: dict[str, str], timeout: float) -> Iterator[str]:
    group = ProcessGroup(log_dir=directory, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, cwd=REPO)
    group.start(name, argv)
    try:
        yield group.wait_ready(name, timeout=timeout)
    finally:
        group.stop()
