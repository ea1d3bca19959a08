"""The demo's start-up prints each step with the seconds since the start."""

from __future__ import annotations

from erpsync_dev.demo import StepClock


def test_each_step_carries_the_seconds_since_the_start() -> None:
    times = iter([100.0, 100.0, 112.34, 175.0])
    lines: list[str] = []
    steps = StepClock(clock=lambda: next(times), out=lambda line, flush=False: lines.append(line))
    steps("starting Prefect server")
    steps("starting ERP sandbox")
    steps("everything is up")
    assert lines == ["· [  0.0s] starting Prefect server", "· [ 12.3s] starting ERP sandbox",
                     "· [ 75.0s] everything is up"]
