"""The `erpsync` command: the receiver, the sandboxes, the demo, mapping tests and the ledger's status."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from erpsync.errors import ConfigError

DESCRIPTION = """\
erpsync keeps a commerce platform and an ERP in step. Every webhook is stored in the inbox, then synced by a
Prefect flow run (validate, dedupe, transform through a mapping file, push, confirm). Failed runs are the
dead-letter queue. Settings come from ERPSYNC_* environment variables (see the README)."""


def build_parser() -> argparse.ArgumentParser:
    from erpsync.systems import DEFAULT_TARGET

    parser = argparse.ArgumentParser(prog="erpsync", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the webhook receiver",
        description="Run the webhook receiver: POST /webhooks/{shopify,woocommerce,standard,netsuite}, GET /healthz, "
                    "GET /openapi.json. Each source's secret comes from ERPSYNC_<SOURCE>_WEBHOOK_SECRET "
                    "(comma-separated while rotating) or the Prefect Secret block <source>-webhook-secret.")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8600,
                       help="port the receiver listens on for /webhooks/<source> (default: %(default)s)")
    serve.add_argument("--no-dispatch", action="store_true",
                       help="only store events; leave dispatch to the sweep-inbox flow")
    serve.add_argument("--reuse-port", action="store_true",
                       help="listen with SO_REUSEPORT, so that several receivers (each started with it) share the "
                            "port and the kernel spreads connections across them (default: %(default)s, the port is "
                            "this receiver's alone)")
    serve.set_defaults(handler=_serve)

    mapping = commands.add_parser(
        "mapping", help="check, preview and test mapping files",
        description="Mappings are data: mappings/*.yaml turn a source payload into an ERP record. These commands "
                    "check them without a deployment; each exits 1 when something fails (CI-friendly).")
    actions = mapping.add_subparsers(dest="mapping_command", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="load and validate mapping files (default: all)")
    validate.add_argument("paths", nargs="*", help="mapping files or folders (default: the mappings folder)")
    validate.set_defaults(handler=_mapping_command("validate"))
    test = actions.add_parser("test", help="run each mapping's named cases (<name>_test.yaml)")
    test.add_argument("paths", nargs="*", help="mapping files or folders (default: the mappings folder)")
    test.add_argument("--accept", action="store_true",
                      help="rewrite each failed case's expected output from what the mapping now makes (read the "
                           "diff first)")
    test.set_defaults(handler=_mapping_test)
    preview = actions.add_parser("preview", help="show the ERP body a payload would become, rule by rule")
    preview.add_argument("mapping", help="the mapping file")
    preview.add_argument("payload", help="a JSON file holding one source payload")
    preview.set_defaults(handler=_mapping_preview)
    drift = actions.add_parser(
        "drift", help="list source fields seen in the inbox that no mapping reads",
        description="Read the inbox's newest events and list the source fields their mapping neither reads nor "
                    "names under ignore: (a new field is a platform change coming: map it or ignore it). Counts "
                    "first, then the fields grouped by mapping. Workers log each such field once, the first time "
                    "any of them meets it.")
    drift.add_argument("--topic", metavar="T", help="only events of this topic, e.g. orders/create (default: all)")
    drift.add_argument("--since", type=_duration, metavar="DURATION",
                       help="only events received within this long before now, e.g. 7d, 12h, 90m (default: any)")
    drift.add_argument("--new", action="store_true",
                       help="only fields this view has not listed before, then remember them as listed (kept in "
                            "the ledger, shared by everyone reading it): what changed since last time")
    drift.add_argument("--limit", type=_positive_int, default=1000, metavar="N",
                       help="read at most the newest N events (default: %(default)s)")
    drift.set_defaults(handler=_mapping_drift)

    new = commands.add_parser("new", help="scaffold new files")
    new_kinds = new.add_subparsers(dest="new_kind", required=True, metavar="KIND")
    new_mapping = new_kinds.add_parser(
        "mapping", help="scaffold a mapping and its test cases",
        description="Write mappings/<source>_<entity>_to_<target>_<record>.yaml and its _test.yaml, ready to edit. "
                    "Example: erpsync new mapping shopify orders/partially_fulfilled salesOrder")
    new_mapping.add_argument("source", help="the source, e.g. shopify")
    new_mapping.add_argument("topic", help="the webhook topic, e.g. customers/create")
    new_mapping.add_argument("record", help="the record type written, e.g. customer")
    new_mapping.add_argument("--to", dest="target", default=DEFAULT_TARGET,
                             help="the system the records are written to (default: %(default)s)")
    new_mapping.set_defaults(handler=_new_mapping)

    reconcile = commands.add_parser(
        "reconcile", help="compare the shop's orders with the ERP's over a window, and the way back's shipments "
                          "and stock; repair",
        description="Read both sides over [--since, --until) with an overlap, compare them through the order "
                    "mapping (the ERP is the one it writes to), queue repairs of missing or stale records through "
                    "the normal pipeline (inbox → sync-event), and report the rest, each row with its next step. "
                    "Where mappings take shipments and stock from the ERP to the shop, shipments not fulfilled in "
                    "the shop and stock that differs per location are found too and repaired as the ERP's change "
                    "notices. Needs "
                    "ERPSYNC_SHOPIFY_SHOP_URL, ERPSYNC_SHOPIFY_ACCESS_TOKEN and the ERPSYNC_NETSUITE_* settings "
                    "(on the demo: source .erpsync/demo/erpsync.env).",
        epilog="exit status: 0 nothing is left for a person; 1 the command failed (the shop, the ERP or the ledger "
               "did not answer); 2 a setting or argument is wrong; 3 drift is left for a person (ERP-only records, "
               "edits made in the ERP, dead letters): read the next step of each row.")
    reconcile.add_argument("--since", required=True, help="start, ISO 8601 (a date means its midnight)")
    reconcile.add_argument("--until", help="end, ISO 8601 (default: now)")
    reconcile.add_argument("--timezone", default="UTC", help="zone of dates without one (default: UTC)")
    reconcile.add_argument("--dry-run", action="store_true", help="report only; queue nothing")
    reconcile.add_argument("--authoritative", action="append", default=[], metavar="FIELD",
                           help="a field the source owns: an ERP-side edit of it is overwritten (repeatable)")
    reconcile.set_defaults(handler=_reconcile)

    purge = commands.add_parser(
        "purge", help="delete raw payloads past the retention period, keeping the audit log",
        description="Empty the raw webhook bodies (they hold customer data) of handled events older than the "
                    "retention period. Delivery ids, hashes, states and every outcome stay.")
    purge.add_argument("--older-than", required=True, type=_duration, metavar="AGE",
                       help="retention period, e.g. 30d, 12h, 90m")
    purge.add_argument("--include-failed", action="store_true",
                       help="also purge dead-lettered events (they can no longer be retried)")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be purged")
    purge.set_defaults(handler=_purge)

    _add_dlq(commands)
    from erpsync import db_commands, ownership_commands, poll_command, privacy_commands

    privacy_commands.add_commands(commands)
    db_commands.add_commands(commands)
    poll_command.add_commands(commands)
    ownership_commands.add_commands(commands)

    status = commands.add_parser(
        "status", help="counts of the inbox and ledger, and dead-lettered events; or one order's events",
        description="Without EVENT: counts of the inbox and ledger, and the dead-lettered events. With EVENT (an "
                    "event id, an entity such as order/820982911946154508, or an order code such as '#1042'): "
                    "every event of that entity, its state, its ERP record and where each event's trace is (its "
                    "own sync-event run, or the sync-batch run that handled it). Quote an order code: a shell "
                    "reads an unquoted #1042 as a comment.")
    status.add_argument("event", nargs="?", metavar="EVENT", help="an event id, an entity or an order code")
    status.add_argument("--all", action="store_true",
                        help="list every ERP record written (default: their count and the first few)")
    status.set_defaults(handler=_status)
    _add_sync(commands)
    _add_send(commands)
    _add_plugin_commands(commands)
    return parser


def _add_plugin_commands(commands) -> None:
    """Commands that other installed packages register (entry point group ``erpsync.commands``): the Prefect side
    (``worker``, ``alerts``) and the development package (``sandbox``, ``demo``), so the core imports neither."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group="erpsync.commands"), key=lambda e: e.name):
        entry.load()(commands)


SEND_DESCRIPTION = """\
Sign a payload as its source would, with the secret the receiver reads (ERPSYNC_<SOURCE>_WEBHOOK_SECRET, else the
Prefect Secret block <source>-webhook-secret), and POST it to a receiver; print the receiver's answer. The
receiver stores it and starts its sync-event run, so a new mapping can be tried end to end, Prefect included.
Exits 0 when the receiver accepts it, 1 when it refuses it, 2 on a usage error (a missing file or secret, an
unknown source, no receiver at --to).

SAMPLE_OR_FILE is a JSON file holding one webhook body, or one of the vendors' samples in tests/fixtures:
  erpsync send shopify/orders_create --source shopify --topic orders/create
  erpsync send order.json --source woocommerce --topic order.created --to http://127.0.0.1:8600
  erpsync send event.json --source standard          # the topic is the payload's "type"
The secret must be the receiver's: a receiver started with `erpsync serve` reads the same variables. (The demo
draws new secrets at each start and shows them nowhere, so it cannot be a target yet.)"""


def _add_send(commands) -> None:
    from erpsync.send_webhook import DEFAULT_RECEIVER

    send = commands.add_parser("send", help="sign a payload with the configured secret and post it to a receiver",
                               description=SEND_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    send.add_argument("payload", metavar="SAMPLE_OR_FILE",
                      help="a JSON file, or a sample such as shopify/orders_create")
    send.add_argument("--source", required=True, help="shopify, woocommerce or standard: how it is signed")
    send.add_argument("--topic", help="e.g. orders/create (Shopify), order.created (WooCommerce); "
                                      "Standard Webhooks take the payload's 'type'")
    send.add_argument("--to", default=DEFAULT_RECEIVER, metavar="URL",
                      help="the receiver's base URL, or its full /webhooks/<source> URL (default: %(default)s)")
    send.add_argument("--shop", help="the shop domain (Shopify) or site URL (WooCommerce) the delivery carries")
    send.set_defaults(handler=_send)


def _send(args: argparse.Namespace) -> int:
    from erpsync.receiver.secrets import secrets_from_env
    from erpsync.receiver.webhook_sources import SOURCES
    from erpsync.send_webhook import send

    secrets = secrets_from_env()
    if not secrets(args.source):  # the hooks' (Prefect Secret blocks) only when the environment has none
        secrets = webhook_secrets()
    answer = send(args.payload, source=args.source, topic=args.topic, to=args.to, secrets=secrets,
                  known_sources=list(SOURCES), shop=args.shop)
    print("\n".join(answer.lines()))
    return 0 if answer.ok else 1


SYNC_DESCRIPTION = """\
Run one payload through validate, dedupe, transform, push and confirm in this process, without Prefect, against
the ERP configured in the environment. The payload is stored in the inbox as a delivery of its own, so the
ledger records it like any other event (erpsync status, erpsync dlq show). Prints the outcome, the ERP id and the
totals the ERP computed; exits 1 with the reason when the event fails (a dead letter), 2 on a usage error.
Running it again with the same file is recognised as the same content (duplicate).

The ERP, e.g. the local sandbox (erpsync sandbox erp):
  ERPSYNC_NETSUITE_BASE_URL=http://127.0.0.1:8700 ERPSYNC_NETSUITE_CLIENT_ID=sandbox \\
  ERPSYNC_NETSUITE_CLIENT_SECRET=sandbox-secret erpsync sync order.json --source shopify --topic orders/create
or a NetSuite sandbox account (ERPSYNC_NETSUITE_ACCOUNT_ID=1234567_SB1 and its credentials, see README)."""


def _add_sync(commands) -> None:
    sync = commands.add_parser("sync", help="sync one payload file in this process, without Prefect (try a mapping)",
                               description=SYNC_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sync.add_argument("payload", type=Path, metavar="PAYLOAD.json", help="a webhook body as the source sends it")
    sync.add_argument("--source", required=True, help="the source that sent it: shopify, woocommerce, standard, …")
    sync.add_argument("--topic", required=True, help="its topic, e.g. orders/create or order.created")
    sync.add_argument("--shop", help="the shop domain the delivery would carry (optional)")
    sync.set_defaults(handler=_sync)


def _sync(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger
    from erpsync.settings import Settings
    from erpsync.sync_file import sync_file
    from erpsync.systems import open_writer

    settings = Settings.from_env()
    ledger = Ledger.connect(settings.database_url)
    try:
        result = sync_file(ledger, settings.mappings_dir, lambda name: open_writer(name, settings.database_url),
                           path=args.payload, source=args.source, topic=args.topic, shop=args.shop)
    finally:
        ledger.close()
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic announces its plugins and each connection at INFO, whoever imports it first (Prefect does too).
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except ConfigError as exc:
        print(f"erpsync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger
    from erpsync.receiver.app import create_app
    from erpsync.receiver.limits import IntakeLimits
    from erpsync.receiver.secrets import secret_env_name
    from erpsync.receiver.server import ServerLimits, serve
    from erpsync.receiver.webhook_sources import SOURCES
    from erpsync.run_control import load_run_control
    from erpsync.settings import Settings

    settings = Settings.from_env()
    server_limits = ServerLimits.from_env()
    # Before the secrets below (a hook may ask the orchestrator for them): a run control that cannot be made (no
    # PREFECT_API_URL) stops here, with nothing started.
    runs = None
    if not args.no_dispatch:
        try:
            runs = load_run_control(settings)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (or pass --no-dispatch)") from None
    secrets = webhook_secrets()
    if not any(secrets(name) for name in SOURCES):
        names = ", ".join(secret_env_name(name) for name in SOURCES)
        raise ConfigError(f"no webhook secret for any source: set one of {names}, or create a Prefect Secret "
                          f"block named <source>-webhook-secret (e.g. shopify-webhook-secret)")
    from erpsync.mapping import handled_topics

    if not handled_topics(settings.mappings_dir):
        raise ConfigError(f"ERPSYNC_MAPPINGS_DIR: no mapping in {settings.mappings_dir}; every delivery would "
                          f"be refused")
    ledger = Ledger.connect(settings.database_url)
    app = create_app(ledger=ledger, dispatcher=runs, secrets=secrets, mappings_dir=settings.mappings_dir,
                     limits=IntakeLimits.from_env(settings.max_body_bytes), batch_threshold=settings.batch_threshold,
                     batch_runs=settings.batch_runs)
    print(f"ready on http://{args.host}:{args.port}", flush=True)
    serve(app, host=args.host, port=args.port, limits=server_limits, reuse_port=args.reuse_port)
    return 0


WEBHOOK_SECRETS_GROUP = "erpsync.webhook_secrets"


def webhook_secrets():
    """Each source's secrets: ERPSYNC_<SOURCE>_WEBHOOK_SECRET (comma-separated), else what the installed hooks
    (entry point group ``erpsync.webhook_secrets``: ``hook(secrets) -> secrets``) put behind it, e.g. the
    orchestrator's Prefect Secret blocks. With no hook installed, the environment's alone."""
    from importlib.metadata import entry_points

    from erpsync.receiver.secrets import secrets_from_env

    secrets = secrets_from_env()
    for entry in sorted(entry_points(group=WEBHOOK_SECRETS_GROUP), key=lambda e: e.name):
        secrets = entry.load()(secrets)
    return secrets


def _mappings_dir():
    from erpsync.settings import Settings

    return Settings.from_env().mappings_dir


def _mapping_command(name: str):
    def handler(args: argparse.Namespace) -> int:
        from erpsync.mapping import commands

        return getattr(commands, name)(args.paths or [_mappings_dir()], sys.stdout)

    return handler


def _mapping_test(args: argparse.Namespace) -> int:
    from erpsync.mapping import commands

    return commands.test(args.paths or [_mappings_dir()], sys.stdout, accept=args.accept)


def _mapping_preview(args: argparse.Namespace) -> int:
    from erpsync.mapping import commands

    return commands.preview(args.mapping, args.payload, sys.stdout)


def _mapping_drift(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger
    from erpsync.mapping import commands

    ledger = Ledger.connect(_reading_settings().database_url)
    try:
        return commands.drift(ledger, _mappings_dir(), sys.stdout, topic=args.topic, since=args.since, new=args.new,
                              limit=args.limit)
    finally:
        ledger.close()


def _new_mapping(args: argparse.Namespace) -> int:
    from erpsync.mapping.scaffold import scaffold_mapping

    for path in scaffold_mapping(_mappings_dir(), args.source, args.topic, args.record, args.target):
        print(f"wrote {path}")
    print("next: edit the fields, add cases, then `erpsync mapping test` (see docs/authoring.md)")
    return 0


def _duration(text: str):
    from datetime import timedelta

    units = {"d": "days", "h": "hours", "m": "minutes"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number and a unit (d, h or m), e.g. 30d; got {text!r}")
    return timedelta(**{units[unit]: int(number)})


def _purge(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger
    from erpsync.settings import Settings

    ledger = Ledger.connect(Settings.from_env().database_url)
    try:
        count = ledger.purge_payloads(older_than=args.older_than, include_failed=args.include_failed,
                                      dry_run=args.dry_run)
    finally:
        ledger.close()
    print(f"{count} payloads {'would be' if args.dry_run else ''} purged".replace("  ", " "))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from erpsync.errors import TransientError
    from erpsync.ledger import Ledger
    from erpsync.reconcile.job import reconcile_order_window, reconcile_target
    from erpsync.reconcile.report import report_dir, save_html, text_summary
    from erpsync.reconcile.windows import Window, parse_moment
    from erpsync.settings import Settings
    from erpsync.systems import open_writer

    settings = Settings.from_env()
    # "Now" to the second: the window's end is printed in the report's title.
    window = Window(parse_moment(args.since, tz=args.timezone),
                    parse_moment(args.until, tz=args.timezone) if args.until
                    else datetime.now(UTC).replace(microsecond=0))
    ledger = Ledger.connect(settings.database_url)
    # Repairs are stored in the inbox; without a dispatcher here, sweep-inbox starts their runs.
    try:
        with open_writer(reconcile_target(settings.mappings_dir), settings.database_url) as erp:
            result = reconcile_order_window(window, ledger=ledger, erp_client=erp, mappings_dir=settings.mappings_dir,
                                            dry_run=args.dry_run, authoritative_fields=args.authoritative)
    except TransientError as exc:  # the shop or the ERP is away or throttling: say which, and let the operator retry
        print(f"erpsync: {exc}", file=sys.stderr)
        return 1
    finally:
        ledger.close()
    print(text_summary(result.summary, result.drift, steps=result.next_steps), end="")
    path = save_html(result.summary, result.drift, report_dir(settings.database_url, settings.home / "reports"),
                     steps=result.next_steps)
    print(f"\nreport: {path}")
    if result.exit_code:
        print(f"{result.summary.needs_attention} drift rows are left for a person: see each row's next step "
              f"(exit {result.exit_code})")
    return result.exit_code


def _reading_settings():
    """Settings for a command that only reads the ledger: refused (exit 2) when there is no ledger to read, rather
    than creating an empty one and printing zeros."""
    from erpsync.settings import Settings, missing_ledger

    settings = Settings.from_env()
    problem = missing_ledger(settings)
    if problem:
        raise ConfigError(problem)
    return settings


def _status(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger
    from erpsync.summary import RECORDS_SHOWN, empty_ledger_note, format_summary, summarize

    settings = _reading_settings()
    ledger = Ledger.connect(settings.database_url)
    try:
        if args.event is not None:
            from erpsync.summary import entity_report

            print(entity_report(ledger, args.event))
            return 0
        summary = summarize(ledger)
        print(format_summary(summary, max_records=None if args.all else RECORDS_SHOWN))
        if summary.deliveries == 0:
            print(empty_ledger_note(settings.database_url))
    finally:
        ledger.close()
    return 0


DLQ_DESCRIPTION = """\
Dead letters are the events whose sync-event run failed. Each keeps its reason in the ledger (the ERP's code and
detail, the field, the unknown SKU…) and its failed flow run in Prefect. `list` groups them by cause, `show` prints
one event's full reason, `replay` runs a chosen set again with the mapping as it is now: each event's failed run is
rescheduled, as Retry in the Prefect UI does. A replay that succeeds closes the dead letter. See
docs/operations.md."""

DLQ_FILTERS_HELP = """\
filters (all optional, combined with AND):
  --since/--until  an ISO 8601 date or time in UTC unless it says otherwise (2026-11-28, 2026-11-28T08:00Z,
                   2026-11-28T09:00+01:00) or an age (30m, 12h, 7d, 2w); applies to when events failed, or
                   with --time-of received to when they arrived; --until is exclusive
  --reason         an error class (ErpRejected, InvalidPayload, MappingError, ErpAuthError, ConfigError,
                   TransientError, EntityBusy) or a piece of the reason or its cause: an ERP error code
                   (INVALID_CONTENT), a lookup table (sku_to_item), a field (line_items[].sku)"""


def _dlq_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="WHEN", help="only dead letters at or after WHEN")
    parser.add_argument("--until", metavar="WHEN", help="only dead letters before WHEN")
    parser.add_argument("--time-of", choices=("failed", "received"), default="failed",
                        help="what --since/--until apply to (default: %(default)s)")
    parser.add_argument("--source", help="only this source (shopify, woocommerce, standard)")
    parser.add_argument("--topic", help="only this topic, e.g. orders/create")
    parser.add_argument("--reason", metavar="TEXT", help="an error class, or a piece of the reason or its cause")


def _add_dlq(commands) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    dlq = commands.add_parser("dlq", help="dead letters: list them by cause, show one, replay a set",
                              description=DLQ_DESCRIPTION, formatter_class=fmt)
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="dead letters grouped by cause, with counts",
                                 description="Dead letters grouped by cause: count, first and last failure, example "
                                             "event ids.", epilog=DLQ_FILTERS_HELP, formatter_class=fmt)
    _dlq_filters(listing)
    listing.add_argument("--events", action="store_true",
                         help="list each event: id, source, topic, received, flow run, cause")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=_dlq_command("list"))
    show = actions.add_parser("show", help="one event's full failure reason, the ERP's detail included",
                              description="Everything the ledger holds on one event's failures, the ERP's own detail "
                                          "text included (it may quote customer data: it stays out of Prefect).")
    show.add_argument("event", metavar="EVENT",
                      help="the inbox event id (its run is event-<id>), its entity (order/820982911946154508) or its "
                           "order code ('#1042', quoted: a shell reads #1042 as a comment); of an order's events, "
                           "its dead letter")
    show.set_defaults(handler=_dlq_command("show"))
    again = actions.add_parser(
        "replay", help="run the chosen dead letters again, at a bounded rate",
        description="Reschedule the failed sync-event run of each chosen dead letter (oldest first), as Retry in the "
                    "Prefect UI does; an event that never got a run is dispatched. Runs use the mapping as it is "
                    "now. Needs PREFECT_API_URL.", epilog=DLQ_FILTERS_HELP, formatter_class=fmt)
    _dlq_filters(again)
    again.add_argument("--rate", type=_positive_float, default=2.0, metavar="PER_SECOND",
                       help="at most this many replays per second (default: %(default)s)")
    again.add_argument("--limit", type=_positive_int, metavar="N", help="replay at most N dead letters")
    again.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    again.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    again.set_defaults(handler=_dlq_command("replay"))


def _dlq_command(name: str):
    def handler(args: argparse.Namespace) -> int:
        from erpsync import deadletter_commands
        from erpsync.errors import TransientError

        try:
            return getattr(deadletter_commands, f"{name}_command")(args, sys.stdout)
        except TransientError as exc:  # the ledger or Prefect is away: say which, and let the operator retry
            print(f"erpsync: {exc}", file=sys.stderr)
            return 1

    return handler


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
