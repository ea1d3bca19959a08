"""orchestration/: Prefect's states map onto the core's, the drift event's resource, and the entry points the core
finds the run control, the webhook-secrets hook and the commands through."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from erpsync.errors import ConfigError, ErpsyncError
from erpsync.reconcile.alert import DriftAlert
from erpsync.retry import RetryPolicy
from erpsync.run_control import FINISHED, IN_FLIGHT, RunState, load_run_control
from erpsync.settings import Settings
from orchestration import events, states
from orchestration.automations import ensure_crash_detection
from orchestration.runs import PrefectRunControl


def test_every_prefect_state_type_has_a_core_state_and_an_unknown_one_is_unknown():
    from prefect.client.schemas.objects import StateType

    assert {states.to_core(t.value) for t in StateType} == set(RunState) - {RunState.UNKNOWN}
    assert states.to_core("SOMETHING_NEW") is RunState.UNKNOWN and states.to_core(None) is RunState.UNKNOWN
    assert not IN_FLIGHT & FINISHED


def test_the_drift_event_is_on_the_window_start_resource():
    alert = DriftAlert(date(2026, 11, 27), {"needs_attention": 3})
    assert events.drift_resource(alert) == {"prefect.resource.id": "erpsync.reconcile.2026-11-27",
                                            "prefect.resource.name": "reconcile"}


def test_the_core_finds_the_prefect_run_control_through_its_entry_point():
    runs = load_run_control(Settings.from_env({"PREFECT_API_URL": "http://127.0.0.1:4200/api"}))
    try:
        assert isinstance(runs, PrefectRunControl)
    finally:
        runs.close()
    with pytest.raises(ConfigError, match="PREFECT_API_URL: not set"):
        load_run_control(Settings.from_env({}))


def test_without_a_prefect_api_the_webhook_secrets_are_the_environments_alone(monkeypatch):
    from erpsync.cli import webhook_secrets

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("ERPSYNC_SHOPIFY_WEBHOOK_SECRET", "old,new")
    secrets = webhook_secrets()
    assert secrets("shopify") == ["old", "new"] and secrets("woocommerce") == []


def test_the_worker_and_alerts_commands_come_from_the_orchestration_package():
    from erpsync.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["alerts", "apply", "--dry-run"]).handler.__module__ == "orchestration.commands"
    assert parser.parse_args(["worker"]).handler.__module__ == "workers.forking"


def _prefect(answers: list[tuple[int, object]], asked: list[str]) -> httpx.MockTransport:
    """A Prefect API that gives ``answers`` in turn, recording what it was asked."""
    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)
    return httpx.MockTransport(handle)


def test_the_crash_detection_automation_is_retried_through_a_busy_server():
    asked: list[str] = []
    transport = _prefect([(503, {"exception_message": "Service Unavailable"}), (200, []), (201, {"id": "a1"})], asked)
    quick = RetryPolicy(max_attempts=3, base=0.0)
    assert ensure_crash_detection("http://prefect/api", retry=quick, transport=transport) == "created"
    assert asked == ["POST /api/automations/filter", "POST /api/automations/filter", "POST /api/automations/"]


def test_a_refused_crash_detection_automation_says_so_without_retrying():
    asked: list[str] = []
    transport = _prefect([(422, {"detail": "bad trigger"})], asked)
    with pytest.raises(ErpsyncError, match="refused the crash-detection automation: Prefect API answered 422"):
        ensure_crash_detection("http://prefect/api", retry=RetryPolicy(max_attempts=3, base=0.0), transport=transport)
    assert len(asked) == 1
