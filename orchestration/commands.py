"""`erpsync worker` and `erpsync alerts`: the commands the Prefect side adds to `erpsync` (entry point group
``erpsync.commands``), so the core command line imports neither the worker nor the automations."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands) -> None:
    _add_alerts(commands)
    _add_worker(commands)


def _add_worker(commands) -> None:
    worker = commands.add_parser(
        "worker", help="run a Prefect worker that forks each flow run from a warm interpreter",
        description="A Prefect process worker (one process per flow run) whose run processes are forked from a "
                    "fork server that imported Prefect and the flows once: a run starts in milliseconds "
                    "instead of about 2 s. Polls the pool every second unless PREFECT_WORKER_QUERY_SECONDS "
                    "says otherwise. Stops when the worker stops (SIGTERM, Ctrl-C).")
    from workers import forking  # standard library only at import; Prefect loads when the worker starts

    forking.add_arguments(worker)
    worker.set_defaults(handler=forking.run)


def _add_alerts(commands) -> None:
    alerts = commands.add_parser(
        "alerts", help="create the Prefect automations declared in alerts.yaml",
        description="Alerts are Prefect automations declared in alerts.yaml (failed sync-event runs, a backlog of "
                    "failures, a stale inbox, reconciliation drift). They notify through a webhook block: Slack's "
                    "own for a Slack URL, else a Custom Webhook posting Slack-compatible JSON. Needs PREFECT_API_URL.")
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    apply = actions.add_parser(
        "apply", help="save the notification block and create or update every declared automation",
        description="Create each automation of the alerts file, or update the one of the same name: running it "
                    "again never duplicates. The webhook URL is a credential: give it by environment variable "
                    "(ERPSYNC_ALERT_WEBHOOK_URL, or the file's url_env) or --webhook-url, never in a file.")
    apply.add_argument("--file", type=Path, help="the alerts file (default: alerts.yaml of the checkout)")
    apply.add_argument("--webhook-url", metavar="URL", help="where notifications go (default: from the environment)")
    apply.add_argument("--dry-run", action="store_true", help="print what would be created or updated")
    apply.set_defaults(handler=_alerts_apply)


def _alerts_apply(args: argparse.Namespace) -> int:
    import os

    from orchestration.automations import DEFAULT_FILE, apply, load_alerts

    alerts = load_alerts(args.file or DEFAULT_FILE)
    url = args.webhook_url or os.environ.get(alerts.notification.url_env) or None
    apply(alerts, url=url, dry_run=args.dry_run)
    return 0
