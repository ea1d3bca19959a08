"""`erpsync privacy export | requests` and `erpsync lifecycle close-order`: what an operator runs after the receiver
recorded a data request, or left a deleted order's sales order for a person."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from erpsync.ledger import Ledger
from erpsync.settings import Settings

PRIVACY_DESCRIPTION = """\
Shopify's compliance topics are answered by the receiver itself: customers/redact and shop/redact erase the stored
payloads at once; customers/data_request is recorded, and the shop owner must be sent what erpsync holds about the
customer. `requests` lists the recorded requests; `export` writes that customer's data as JSON (stdout, or --output,
created readable by its owner only). See docs/operations.md."""


def add_commands(commands) -> None:
    privacy = commands.add_parser("privacy", help="compliance requests: list them, export a customer's data",
                                  description=PRIVACY_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="what the ledger holds about a Shopify customer, as JSON")
    export.add_argument("--customer", required=True, metavar="ID", help="the Shopify customer id")
    export.add_argument("--email", action="append", default=[], metavar="EMAIL",
                        help="also events that name this email (a guest checkout has no customer id; repeatable)")
    export.add_argument("--shop", metavar="DOMAIN", help="only events of this shop (xxx.myshopify.com)")
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    export.set_defaults(handler=_export)
    requests = actions.add_parser("requests", help="the compliance requests received, newest last")
    requests.set_defaults(handler=_requests)

    lifecycle = commands.add_parser(
        "lifecycle", help="act on a deleted order the receiver left for a person",
        description="Shopify's orders/delete is reported as a dead letter unless ERPSYNC_SHOPIFY_ORDER_DELETE=close. "
                    "`close-order EVENT_ID` closes every line of that order's NetSuite sales order and records the "
                    "event as done. Needs the ERPSYNC_NETSUITE_* settings.")
    lifecycle_actions = lifecycle.add_subparsers(dest="lifecycle_command", required=True, metavar="ACTION")
    close = lifecycle_actions.add_parser("close-order", help="close the sales order of a deleted Shopify order")
    close.add_argument("event_id", type=int, help="the inbox event of the orders/delete (erpsync dlq list)")
    close.set_defaults(handler=_close_order)


def _ledger() -> Ledger:
    return Ledger.connect(Settings.from_env().database_url)


def _intake_offering(method: str) -> list:
    """The registered sources' intake handlers that offer ``method`` to the command line (erpsync.ports)."""
    from erpsync.systems import SYSTEMS

    found = []
    for system in SYSTEMS.values():
        for handler in system.intake.values():
            if callable(getattr(handler, method, None)) and handler not in found:
                found.append(handler)
    return found


def _export(args: argparse.Namespace) -> int:
    from erpsync.errors import ConfigError

    exporters = _intake_offering("export")
    if len(exporters) != 1:  # one source answers data requests today; a second one will need --source
        raise ConfigError(f"{len(exporters)} sources export a customer's data; expected one")
    ledger = _ledger()
    try:
        document = exporters[0].export(ledger, args.customer, emails=args.email, shop=args.shop)
    finally:
        ledger.close()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if args.output:
        path = Path(args.output)
        # Customer data: readable by the operator who exported it, nobody else.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"{len(document['events'])} events, {len(document['erp_records'])} ERP records, "
              f"{len(document['outcomes'])} outcomes written to {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _requests(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from erpsync import privacy
    from erpsync.ledger import Outcome

    ledger = _ledger()
    try:
        with ledger.session() as session:
            rows = session.exec(select(Outcome).where(Outcome.outcome.in_((privacy.REDACTED,
                                                                          privacy.REQUEST_RECORDED)))
                                .order_by(Outcome.id)).all()
    finally:
        ledger.close()
    if not rows:
        print("no compliance requests received")
    for row in rows:  # ids and counts only
        print(f"{row.at:%Y-%m-%d %H:%M:%S}  event {row.event_id}  {row.outcome:<16}  {row.reason}")
    return 0


def _close_order(args: argparse.Namespace) -> int:
    from erpsync import lifecycle
    from erpsync.errors import ConfigError
    from erpsync.systems import SYSTEMS

    ledger = _ledger()
    try:
        event = ledger.get_event(args.event_id)
        source = SYSTEMS.get(event.source) if event is not None else None
        handler = source.intake.get(event.topic) if source is not None else None
        if handler is None or not callable(getattr(handler, "close_order", None)):
            raise ConfigError(f"event {args.event_id} is not a stored order deletion (a Shopify orders/delete)")
        outcome = handler.close_order(ledger, args.event_id, os.environ)  # the ERP's client, from the registry
        print(ledger.outcomes(args.event_id)[-1].reason)
    finally:
        ledger.close()
    return 0 if outcome == lifecycle.CLOSED else 1
