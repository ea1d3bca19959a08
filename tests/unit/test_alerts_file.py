"""alerts.yaml: the declared automations load, a broken file is refused naming the path, the block fits the URL."""

from __future__ import annotations

import re

import pytest
import yaml

from erpsync.errors import ConfigError
from orchestration.automations import DEFAULT_FILE, automation, load_alerts, notification_block


def test_the_shipped_file_declares_the_four_alerts_as_valid_prefect_automations():
    alerts = load_alerts()
    by_name = {a.name: a for a in alerts.alerts}
    assert set(by_name) == {"erpsync-sync-event-failed", "erpsync-dead-letter-backlog", "erpsync-inbox-stale",
                            "erpsync-reconcile-drift"}
    made = {name: automation(a, "00000000-0000-0000-0000-000000000000") for name, a in by_name.items()}
    assert made["erpsync-sync-event-failed"].trigger.threshold == 1
    assert made["erpsync-dead-letter-backlog"].trigger.threshold > 1
    assert made["erpsync-inbox-stale"].trigger.expect == {"erpsync.inbox.stale"}
    assert made["erpsync-reconcile-drift"].trigger.expect == {"erpsync.reconcile.drift-exceeded"}


def test_notifications_read_no_payload_or_parameter_values():
    for alert in load_alerts().alerts:
        names = set(re.findall(r"\{\{\s*([\w.]+)", alert.subject + alert.body))
        allowed = {"flow_run.name", "flow_run.state.message", "flow_run", "automation.trigger.threshold",
                   "automation.trigger.within.total_seconds", "event.payload.count",
                   "event.payload.oldest_age_seconds", "event.resource.id"}
        assert names <= allowed, (alert.name, names - allowed)


BROKEN = [
    ({"alerts": [{"name": "x", "trigger": {"expect": ["a"]}, "subject": "s", "body": "b", "colour": "red"}]},
     "alerts[0].colour: Extra inputs are not permitted"),
    ({"alerts": [{"name": "x", "trigger": {"expect": ["a"], "within": -5}, "subject": "s", "body": "b"}]},
     "alerts[0].trigger.within: Input should be greater than or equal to 0 seconds"),
    ({"alerts": [{"name": "x", "trigger": {"type": "compound"}, "subject": "s", "body": "b"}]},
     "alerts[0].trigger: only event triggers are supported"),
    ({"alerts": [{"name": "x", "trigger": {}, "subject": "s", "body": "b"}] * 2},
     "alerts: names must be unique: x appear more than once"),
    ({"alerts": []}, "alerts: List should have at least 1 item"),
]


@pytest.mark.parametrize(("content", "message"), BROKEN, ids=[m for _, m in BROKEN])
def test_a_broken_file_is_refused_naming_file_and_path(tmp_path, content, message):
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError) as refused:
        load_alerts(path)
    assert str(refused.value).startswith(f"{path}: ") and message in str(refused.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_alerts(tmp_path / "nope.yaml")
    assert DEFAULT_FILE.name == "alerts.yaml" and DEFAULT_FILE.exists()


def test_the_block_fits_the_url_and_keeps_it_secret():
    slack = notification_block("https://hooks.slack.com/services/T000/B000/XXXX")
    assert type(slack).__name__ == "SlackWebhook"
    custom = notification_block("https://alerts.example.com/hook?token=abc")
    assert type(custom).__name__ == "CustomWebhookNotificationBlock"
    assert "abc" not in custom.url and custom.json_data == {"text": "{{subject}}\n{{body}}"}
    assert custom.secrets.get_secret_value() == {"webhook_url": "https://alerts.example.com/hook?token=abc"}
    with pytest.raises(ConfigError, match="webhook URL: expected an http"):
        notification_block("mailto:ops@example.com")
