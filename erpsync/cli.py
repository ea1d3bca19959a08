"""The `erpsync` command: the receiver, the sandboxes, the demo, mapping tests and the ledger's status."""

from __future__ import annotations

import argparse
import logging
import sys

from erpsync.errors import ConfigError

DESCRIPTION = """\
erpsync keeps a commerce platform and an ERP in step. Every webhook is stored in the inbox, then synced by a
Prefect flow run (validate, dedupe, transform through a mapping file, push, confirm). Failed runs are the
dead-letter queue. Settings come from ERPSYNC_* environment variables (see the README)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="erpsync", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the webhook receiver",
        description="Run the webhook receiver: POST /webhooks/{shopify,woocommerce,standard}, GET /healthz, "
                    "GET /openapi.json. Each source's secret comes from ERPSYNC_<SOURCE>_WEBHOOK_SECRET "
                    "(comma-separated while rotating) or the Prefect Secret block <source>-webhook-secret.")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8600, help="port (default: %(default)s)")
    serve.add_argument("--no-dispatch", action="store_true",
                       help="only store events; leave dispatch to the sweep-inbox flow")
    serve.set_defaults(handler=_serve)

    sandbox = commands.add_parser("sandbox", help="run a local stand-in for an external system")
    kinds = sandbox.add_subparsers(dest="kind", required=True, metavar="KIND")
    erp = kinds.add_parser("erp", help="NetSuite-compatible ERP sandbox (REST record API subset, SuiteQL)")
    shop = kinds.add_parser("shop", help="Shopify-like shop sandbox: signed webhooks and the Admin API")
    from erpsync.sandboxes import erp as erp_sandbox
    from erpsync.sandboxes import shop as shop_sandbox

    erp_sandbox.add_arguments(erp)
    erp.set_defaults(handler=erp_sandbox.run)
    shop_sandbox.add_arguments(shop)
    shop.set_defaults(handler=shop_sandbox.run)

    demo = commands.add_parser(
        "demo", help="start everything locally and sync a burst of sample orders",
        description="Start a Prefect server, a worker, the receiver and both sandboxes on loopback; send a burst "
                    "of signed order webhooks (with duplicates, updates, late old versions and an unknown SKU); "
                    "wait until all are handled; print a summary; check the ERP holds exactly the right records.")
    from erpsync import demo as demo_module

    demo_module.add_arguments(demo)
    demo.set_defaults(handler=demo_module.run)

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
    test.set_defaults(handler=_mapping_command("test"))
    preview = actions.add_parser("preview", help="show the ERP body a payload would become, rule by rule")
    preview.add_argument("mapping", help="the mapping file")
    preview.add_argument("payload", help="a JSON file holding one source payload")
    preview.set_defaults(handler=_mapping_preview)
    drift = actions.add_parser("drift", help="list source fields seen in the inbox that no mapping reads")
    drift.set_defaults(handler=_mapping_drift)

    new = commands.add_parser("new", help="scaffold new files")
    new_kinds = new.add_subparsers(dest="new_kind", required=True, metavar="KIND")
    new_mapping = new_kinds.add_parser(
        "mapping", help="scaffold a mapping and its test cases",
        description="Write mappings/<source>_<entity>_to_netsuite_<record>.yaml and its _test.yaml, ready to edit. "
                    "Example: erpsync new mapping shopify orders/partially_fulfilled salesOrder")
    new_mapping.add_argument("source", help="the source, e.g. shopify")
    new_mapping.add_argument("topic", help="the webhook topic, e.g. customers/create")
    new_mapping.add_argument("record", help="the ERP record type, e.g. customer")
    new_mapping.set_defaults(handler=_new_mapping)

    reconcile = commands.add_parser(
        "reconcile", help="compare Shopify orders with NetSuite sales orders over a window, and repair",
        description="Read both sides over [--since, --until) with an overlap, compare them through the order "
                    "mapping, queue repairs of missing or stale records through the normal pipeline (inbox → "
                    "sync-event), and report the rest. Needs ERPSYNC_SHOPIFY_SHOP_URL, "
                    "ERPSYNC_SHOPIFY_ACCESS_TOKEN and the ERPSYNC_NETSUITE_* settings.")
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

    status = commands.add_parser("status", help="counts of the inbox and ledger, and dead-lettered events")
    status.set_defaults(handler=_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except ConfigError as exc:
        print(f"erpsync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from erpsync.dispatch import PrefectDispatcher
    from erpsync.ledger import Ledger
    from erpsync.receiver.app import create_app
    from erpsync.receiver.limits import IntakeLimits
    from erpsync.receiver.secrets import secret_env_name
    from erpsync.receiver.sources import SOURCES
    from erpsync.settings import Settings

    settings = Settings.from_env()
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
    api_key = settings.prefect_api_key.get_secret_value() if settings.prefect_api_key else None
    dispatcher = None if args.no_dispatch else PrefectDispatcher(settings.prefect_api_url or "", api_key=api_key)
    app = create_app(ledger=ledger, dispatcher=dispatcher, secrets=secrets, mappings_dir=settings.mappings_dir,
                     limits=IntakeLimits.from_env(settings.max_body_bytes))
    print(f"ready on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def webhook_secrets():
    """Each source's secrets: ERPSYNC_<SOURCE>_WEBHOOK_SECRET (comma-separated), else its Prefect Secret block."""
    from erpsync.receiver.secrets import secrets_from_env

    from_env = secrets_from_env()
    try:
        from blocks.secrets import with_block_fallback
    except ImportError:  # the core alone, without the Prefect adapters
        return from_env
    return with_block_fallback(from_env)


def _mappings_dir():
    from erpsync.settings import Settings

    return Settings.from_env().mappings_dir


def _mapping_command(name: str):
    def handler(args: argparse.Namespace) -> int:
        from erpsync.mapping import commands

        return getattr(commands, name)(args.paths or [_mappings_dir()], sys.stdout)

    return handler


def _mapping_preview(args: argparse.Namespace) -> int:
    from erpsync.mapping import commands

    return commands.preview(args.mapping, args.payload, sys.stdout)


def _mapping_drift(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger
    from erpsync.mapping import commands
    from erpsync.settings import Settings

    ledger = Ledger.connect(Settings.from_env().database_url)
    try:
        return commands.drift(ledger, _mappings_dir(), sys.stdout)
    finally:
        ledger.close()


def _new_mapping(args: argparse.Namespace) -> int:
    from erpsync.mapping.scaffold import scaffold_mapping

    for path in scaffold_mapping(_mappings_dir(), args.source, args.topic, args.record):
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

    from erpsync.connectors.netsuite import NetSuiteClient, NetSuiteSettings
    from erpsync.ledger import Ledger
    from erpsync.reconcile.job import reconcile_order_window
    from erpsync.reconcile.report import markdown_summary, report_dir, save_html
    from erpsync.reconcile.windows import Window, parse_moment
    from erpsync.settings import Settings

    settings = Settings.from_env()
    window = Window(parse_moment(args.since, tz=args.timezone),
                    parse_moment(args.until, tz=args.timezone) if args.until else datetime.now(UTC))
    ledger = Ledger.connect(settings.database_url)
    # Repairs are stored in the inbox; without a dispatcher here, sweep-inbox starts their runs.
    try:
        with NetSuiteClient(NetSuiteSettings.from_env()) as erp:
            result = reconcile_order_window(window, ledger=ledger, erp_client=erp, mappings_dir=settings.mappings_dir,
                                            dry_run=args.dry_run, authoritative_fields=args.authoritative)
    finally:
        ledger.close()
    print(markdown_summary(result.summary, result.drift))
    path = save_html(result.summary, result.drift, report_dir(settings.database_url, settings.home / "reports"))
    print(f"\nreport: {path}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger
    from erpsync.settings import Settings
    from erpsync.summary import format_summary, summarize

    ledger = Ledger.connect(Settings.from_env().database_url)
    try:
        print(format_summary(summarize(ledger)))
    finally:
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
