"""workers/launch.py without a fork server is the process worker's own command: it becomes `python -m
prefect.engine`, so a deployment that names it still runs under a plain `prefect worker start`."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_without_a_fork_server_the_launcher_runs_the_engine_itself(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ERPSYNC_FORKSERVER"}
    env.update(PREFECT__FLOW_RUN_ID="not-a-flow-run-id", PREFECT_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-S", str(REPO / "workers" / "launch.py")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "no fork server" in done.stderr
    assert "Invalid flow run id" in done.stdout + done.stderr  # prefect.engine's own answer to the id
    assert done.returncode == 1


def test_a_fork_server_that_is_gone_is_the_same_as_none(tmp_path):
    env = {**os.environ, "ERPSYNC_FORKSERVER": str(tmp_path / "gone.sock"),
           "PREFECT__FLOW_RUN_ID": "not-a-flow-run-id", "PREFECT_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-S", str(REPO / "workers" / "launch.py")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "no fork server" in done.stderr and done.returncode == 1
