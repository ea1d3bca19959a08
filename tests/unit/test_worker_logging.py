"""A forked flow-run process configures logging again from its run's environment; erpsync's logger must still
have one API handler, or every erpsync line reaches the run's log in the UI twice."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

CHILD = """
import logging
import prefect.main  # Prefect's own setup, as in the fork server before it forks
from prefect.logging.handlers import APILogHandler
from workers.forking import _configure_from_environment

def api_handlers():
    return sum(isinstance(h, APILogHandler) for h in logging.getLogger("erpsync").handlers)

assert api_handlers() == 1, api_handlers()
_configure_from_environment()  # what a forked run does when its environment changes Prefect's settings
_configure_from_environment()
print(api_handlers())
"""


def test_reconfiguring_a_forked_run_leaves_one_api_handler_on_the_erpsync_logger():
    env = {**os.environ, "PREFECT_LOGGING_EXTRA_LOGGERS": "erpsync", "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"
