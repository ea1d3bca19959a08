"""Prefect automations: the alerts declared in alerts.yaml (and the block they notify through), and crash detection.

`erpsync alerts apply` calls ``apply``: it saves the block (a SlackWebhook for a Slack URL, else a Custom Webhook
posting Slack-compatible JSON), then creates each automation or updates the one of the same name, so running it
again changes nothing but what the file changed. The webhook URL is a credential: it comes from the environment or
an argument, is stored as a secret field of the block, and never appears in a file or in the output.

``ensure_crash_detection`` installs the automation that marks runs whose worker died Crashed (plain HTTP, so the
local stack can call it without Prefect's client); the sweep's recovery (erpsync/recovery.py) re-runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from erpsync.errors import ConfigError, ErpsyncError, TransientError
from erpsync.retry import RetryPolicy
from erpsync.settings import PROJECT_DIR
from orchestration import events

DEFAULT_FILE = PROJECT_DIR / "alerts.yaml"
SLACK_HOSTS = ("hooks.slack.com",)


class NotificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    block: str = Field("erpsync-alerts", description="Name of the notification block the automations send through.")
    url_env: str = Field("ERPSYNC_ALERT_WEBHOOK_URL", description="Environment variable holding the webhook URL.")


class AlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The automation's name; apply matches existing automations by it.")
    description: str = Field("", description="Shown with the automation in the Prefect UI.")
    enabled: bool = True
    trigger: dict[str, Any] = Field(description="A Prefect event trigger: match, match_related, expect, threshold, "
                                                "within (seconds), posture.")
    subject: str = Field(min_length=1, description="Jinja template of the notification's subject.")
    body: str = Field(min_length=1, description="Jinja template of the notification's text.")

    @field_validator("trigger")
    @classmethod
    def _event_trigger(cls, trigger: dict[str, Any]) -> dict[str, Any]:
        from prefect.events.schemas.automations import EventTrigger

        if trigger.get("type", "event") != "event":
            raise ValueError("only event triggers are supported (type: event)")
        EventTrigger.model_validate({"type": "event", **trigger})
        return trigger


class AlertsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notification: NotificationConfig = NotificationConfig()
    alerts: list[AlertConfig] = Field(min_length=1)

    @field_validator("alerts")
    @classmethod
    def _unique_names(cls, alerts: list[AlertConfig]) -> list[AlertConfig]:
        names = [a.name for a in alerts]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"names must be unique: {', '.join(doubled)} appear more than once")
        return alerts


def load_alerts(path: Path = DEFAULT_FILE) -> AlertsFile:
    """The alerts file, validated; ConfigError names the file and the path in it."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    try:
        return AlertsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                        for i, p in enumerate(first["loc"]))
        raise ConfigError(f"{path}: {where or '(top)'}: {first['msg'].removeprefix('Value error, ')}") from None


def is_slack_url(url: str) -> bool:
    return urlsplit(url).hostname in SLACK_HOSTS


def notification_block(url: str):
    """The block for this URL: Slack's own for a Slack incoming webhook, else a Custom Webhook with Slack's JSON."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("webhook URL: expected an http(s) URL")
    if is_slack_url(url):
        from prefect.blocks.notifications import SlackWebhook

        return SlackWebhook(url=url)
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    # The URL sits in the block's secrets and is filled in when sending, so the API shows it masked.
    return CustomWebhookNotificationBlock(name="erpsync", url="{{webhook_url}}", method="POST",
                                          json_data={"text": "{{subject}}\n{{body}}"},
                                          secrets={"webhook_url": url})


def automation(alert: AlertConfig, block_document_id):
    """The Prefect automation for one declared alert, sending through the block."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    return AutomationCore(name=alert.name, description=alert.description, enabled=alert.enabled,
                          tags=["erpsync"], trigger=EventTrigger.model_validate({"type": "event", **alert.trigger}),
                          actions=[SendNotification(block_document_id=block_document_id, subject=alert.subject,
                                                    body=alert.body)])


def apply(alerts: AlertsFile, *, url: str | None, dry_run: bool = False,
          out: Callable[[str], None] = print) -> dict[str, str]:
    """Save the notification block and create or update every declared automation; {name: created|updated}.

    A dry run changes nothing; it asks Prefect which automations exist when the API answers, and prints the plan.
    Prefect's refusals become a ConfigError naming what it refused.
    """
    from httpx import HTTPError
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        return _apply(alerts, url=url, dry_run=dry_run, out=out)
    except PrefectHTTPStatusError as exc:
        # Only an automation's refusal is quoted (it names the field); a block's could echo the webhook URL.
        request = exc.response.request.url.path
        said = f": {exc.response.text[:300]}" if "/automations" in request else ""
        raise ConfigError(f"Prefect API answered HTTP {exc.response.status_code} to {request}{said}") from None
    except HTTPError as exc:
        raise ConfigError(f"Prefect API (PREFECT_API_URL) unreachable: {type(exc).__name__}") from None


def _apply(alerts: AlertsFile, *, url: str | None, dry_run: bool, out: Callable[[str], None]) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if url is None and not dry_run:
        raise ConfigError(f"no webhook URL: set {alerts.notification.url_env} or pass --webhook-url")
    block = notification_block(url) if url is not None else None
    if not PREFECT_API_URL.value():
        if not dry_run:
            raise ConfigError("PREFECT_API_URL: not set; it names the Prefect API the automations are created in")
        return _plan(alerts, block, out, note="PREFECT_API_URL not set: cannot tell which automations exist")
    done: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        unreachable = client.api_healthcheck()
        if unreachable is not None and dry_run:
            return _plan(alerts, block, out, note=f"Prefect API unreachable ({type(unreachable).__name__}): "
                                                  f"cannot tell which automations exist")
        if unreachable is not None and not dry_run:
            raise ConfigError(f"Prefect API (PREFECT_API_URL) unreachable: {type(unreachable).__name__}")
        if dry_run:
            _plan_block(alerts, block, out)
            block_id = NO_BLOCK
        else:
            block_id = block.save(alerts.notification.block, overwrite=True, _sync=True)
            out(f"saved notification block {alerts.notification.block} ({type(block).__name__})")
        for alert in alerts.alerts:
            wanted = automation(alert, block_id)
            existing = client.read_automations_by_name(alert.name)
            action = "update" if existing else "create"
            if dry_run:
                out(f"would {action} automation {alert.name}: {_describe(wanted)}")
                done[alert.name] = f"would {action}"
                continue
            if existing:
                keep, *extra = existing
                # Not client.update_automation: it leaves out fields at their defaults (posture), which the
                # server's PUT requires; the whole automation replaces the old one.
                client.request("PUT", "/automations/{id}", path_params={"id": keep.id},
                               json=wanted.model_dump(mode="json", exclude={"owner_resource"})).raise_for_status()
                for twin in extra:  # copies made by hand or by an older tool: one automation per name
                    client.delete_automation(twin.id)
            else:
                client.create_automation(wanted)
            done[alert.name] = f"{action}d"
            out(f"{action}d automation {alert.name}: {_describe(wanted)}")
    # Not an alert but part of the same setup: runs whose worker died are marked Crashed, so the sweep re-runs them.
    crash_name = CRASH_DETECTION_AUTOMATION["name"]
    if dry_run:
        out(f"would create or update automation {crash_name}: runs without heartbeats for 90 s are marked Crashed")
        done[crash_name] = "would create or update"
    else:
        from prefect.settings import PREFECT_API_KEY

        try:
            done[crash_name] = ensure_crash_detection(PREFECT_API_URL.value(), api_key=PREFECT_API_KEY.value() or None)
        except ErpsyncError as exc:
            raise ConfigError(str(exc)) from None
        out(f"{done[crash_name]} automation {crash_name}: runs without heartbeats for 90 s are marked Crashed "
            f"(workers need PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30)")
    return done


NO_BLOCK = "00000000-0000-0000-0000-000000000000"  # what a dry run's automations point at: nothing is saved


def _plan_block(alerts: AlertsFile, block, out: Callable[[str], None]) -> None:
    kind = type(block).__name__ if block is not None else "its type decided by the URL"
    out(f"would save notification block {alerts.notification.block} ({kind})")


def _plan(alerts: AlertsFile, block, out: Callable[[str], None], *, note: str) -> dict[str, str]:
    """A dry run without Prefect: what the file declares."""
    out(note)
    _plan_block(alerts, block, out)
    for alert in alerts.alerts:
        out(f"would create or update automation {alert.name}: {_describe(automation(alert, NO_BLOCK))}")
    return {alert.name: "would create or update" for alert in alerts.alerts}


def _describe(automation) -> str:
    trigger = automation.trigger
    expect = ", ".join(sorted(trigger.expect))
    within = int(trigger.within.total_seconds())
    return f"on {expect}" + (f", {trigger.threshold} within {within} s" if within else
                             f", {trigger.threshold} at a time" if trigger.threshold > 1 else "")



# -- crash detection ---------------------------------------------------------------------------------------------

# Prefect's documented zombie-run detection: a run whose heartbeats stop without a final state (its worker or
# host died with it) is marked Crashed, and the sweep's recovery re-runs its event. Workers must send
# heartbeats: PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 in their environment; `within` is three of them.
CRASH_DETECTION_AUTOMATION = {
    "name": "erpsync-crash-zombie-runs",
    "description": "A flow run that stopped sending heartbeats (its worker or host died) is marked Crashed, so "
                   "the sweep's recovery re-runs its event.",
    "enabled": True,
    "tags": ["erpsync"],
    "trigger": {
        "type": "event",
        "posture": "Proactive",
        "match": {"prefect.resource.id": events.FLOW_RUN_RESOURCE},
        # Running too: a run killed before its first heartbeat must not escape (it would stay Running forever).
        "after": [events.FLOW_RUN_HEARTBEAT, events.FLOW_RUN_RUNNING],
        "expect": [events.FLOW_RUN_HEARTBEAT, *events.FLOW_RUN_FINAL],
        "for_each": ["prefect.resource.id"],
        "threshold": 1,
        "within": 90,
    },
    "actions": [{"type": "change-flow-run-state", "state": "CRASHED",
                 "message": "No heartbeat for 90 s: the process running this flow run is gone."}],
}


def ensure_crash_detection(api_url: str, *, api_key: str | None = None, timeout: float = 30.0,
                           retry: RetryPolicy | None = None, transport: Any = None) -> str:
    """Create (or replace, matched by name) the crash-detection automation; returns "created" or "updated".

    A busy Prefect server answers 503 now and then (its database is shared with every run): the exchange is
    retried on Prefect's transient answers (api.request sorts them), and safe to repeat, being matched by name.
    """
    from orchestration import api

    name = CRASH_DETECTION_AUTOMATION["name"]

    def exchange() -> str:
        with api.client(api_url, api_key=api_key, timeout=timeout, transport=transport) as client:
            found = api.request(client, "POST", "automations/filter",
                                json={"automations": {"name": {"any_": [name]}}})
            existing = [automation["id"] for automation in found.json()]
            if existing:
                keep, *twins = existing
                api.request(client, "PUT", f"automations/{keep}", json=CRASH_DETECTION_AUTOMATION)
                for twin in twins:
                    api.request(client, "DELETE", f"automations/{twin}")
                return "updated"
            api.request(client, "POST", "automations/", json=CRASH_DETECTION_AUTOMATION)
            return "created"

    try:
        return (retry or RetryPolicy(max_attempts=5, base=1.0)).call(exchange, describe="crash-detection automation")
    except TransientError as exc:
        raise ErpsyncError(f"Prefect API did not take the crash-detection automation: {exc}") from None
    except ConfigError as exc:
        raise ErpsyncError(f"Prefect API refused the crash-detection automation: {exc}") from None
