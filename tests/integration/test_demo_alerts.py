"""The demo's alert sink and its hints for the CLI: the webhook sink as the process the stack starts, the settings
file an operator sources, and what the demo prints about alerts and reconciliation (no Prefect needed here; the
notifications Prefect really sends are tests/e2e/test_sync_alerts.py's)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import httpx

from erpsync_dev import demo
from erpsync_dev.processes import free_port
from erpsync_dev.stack import StackConfig
from erpsync_dev.webhook_sink import WebhookSink, notification_text, read_received
from tests.conftest import REPO


def test_the_sink_process_records_each_notification_and_serves_them_back(tmp_path):
    port, record = free_port(), tmp_path / "alerts" / "received.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "erpsync_dev.webhook_sink", "--port", str(port),
                                "--record", str(record)], cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the sink never answered"
                time.sleep(0.1)
        for text in ("erpsync: sync-event run event-35 failed\nFlow run event-35 …", "second"):
            httpx.post(f"http://127.0.0.1:{port}/alerts", json={"text": text}, timeout=5).raise_for_status()
        served = httpx.get(f"http://127.0.0.1:{port}/received", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)
    received = read_received(record)
    assert served == received and [r["path"] for r in received] == ["/alerts", "/alerts"]
    assert notification_text(received[0]).startswith("erpsync: sync-event run event-35 failed\n")
    assert notification_text({"body": "not json"}) == "not json"


def test_the_stack_with_an_alert_sink_tells_its_processes_where_alerts_go_and_sends_heartbeats(tmp_path):
    env = StackConfig(home=tmp_path, alerts_port=8900).environment({})
    assert env["ERPSYNC_ALERT_WEBHOOK_URL"] == "http://127.0.0.1:8900/alerts"
    # alerts apply installs crash detection as well: without heartbeats a long run would be marked Crashed.
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
    assert "ERPSYNC_ALERT_WEBHOOK_URL" not in StackConfig(home=tmp_path).environment({})


def test_the_cli_settings_file_is_owner_only_and_a_shell_can_source_it(tmp_path):
    config = StackConfig(home=tmp_path / "demo home", alerts_port=8900)
    path = config.write_cli_env()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "it holds the stack's webhook secrets"
    names = ("ERPSYNC_DATABASE_URL", "ERPSYNC_SHOPIFY_SHOP_URL", "ERPSYNC_ALERT_WEBHOOK_URL", "PREFECT_API_URL")
    script = f"source '{path}' && printf '%s\\n' " + " ".join(f'"${name}"' for name in names)
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
                           check=True)
    assert shell.stdout.splitlines() == [config.ledger_url, config.shop_url, config.alerts_url, config.prefect_api]


class FakeStack:
    def __init__(self, config: StackConfig, sink: WebhookSink):
        self.config, self.sink = config, sink

    def notifications(self):
        return self.sink.received


def test_the_demo_shows_each_notification_as_a_chat_would_and_how_to_reconcile(tmp_path, capsys):
    config = StackConfig(home=tmp_path, alerts_port=free_port())
    with WebhookSink(config.alerts_record) as sink:
        text = "erpsync: sync-event run event-35 failed\nFlow run event-35 of sync-event failed: dead-lettered"
        httpx.post(sink.url, json={"text": text}, timeout=5).raise_for_status()
        demo.print_alerts(FakeStack(config, sink), wait=0)
    out = capsys.readouterr().out
    assert "the local webhook sink received 1 notification;" in out
    assert "  │ erpsync: sync-event run event-35 failed\n  │ Flow run event-35 of sync-event failed" in out
    assert str(config.alerts_record.name) in out

    demo.print_reconcile_hint(config, keep_running=False)
    hint = capsys.readouterr().out
    assert f"source {config.cli_env_file}" in hint and "erpsync reconcile --since 20" in hint
    assert "make demo ARGS=--keep-running" in hint and "exits 3" in hint
    assert config.cli_env_file.is_file()


def test_no_notification_is_said_plainly(tmp_path, capsys):
    config = StackConfig(home=tmp_path, alerts_port=free_port())
    with WebhookSink(config.alerts_record) as sink:
        demo.print_alerts(FakeStack(config, sink), wait=0)
    assert "no notification reached the webhook sink" in capsys.readouterr().out
    assert json.loads("[]") == read_received(tmp_path / "missing.jsonl")
