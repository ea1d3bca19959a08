"""`erpsync poll`: one pass of the ERP's change reader by hand, what the `poll-netsuite` and `poll-tryton` flows run
every minute."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from erpsync.change_intake import DEFAULT_MAX_PAGES, DEFAULT_OVERLAP, DEFAULT_PAGE_SIZE

POLL_DESCRIPTION = """\
Read the ERP's changes since the cursor the ledger keeps for each record type, and store each one in the inbox as
a change notice (topic <recordType>.changed, delivery id <erp>:<recordType>:<internal id>:<last modified>): the same
change read again, or already posted by NetSuite's user-event script, stays one event. Then start the sync runs of
the new events, as the receiver does (or leave them to the sweep-inbox flow with --no-dispatch).

A record type whose <recordType>.changed no mapping handles is not read. A record type read for the first time
starts at --from, else --overlap before now: history from before erpsync read the ERP is not replayed unless asked.
Each pass reads again the changes of the last --overlap (a change committed late is not missed; a change already in
the inbox only counts a redelivery). Prints per record type the changes read, the new ones and the newest change's
time; never a record's content. Exits 0, 1 when the ERP or the ledger is away (try again), 2 on a usage error.

  erpsync poll                                   # every default record type of the default ERP
  erpsync poll --type itemFulfillment --from 2026-11-27T00:00:00Z --no-dispatch
  ERPSYNC_MAPPINGS_DIR=mappings/tryton erpsync poll --erp tryton
The ERP's settings come from its ERPSYNC_<ERP>_* variables (see README). Default record types, per ERP:
{defaults}"""


def add_commands(commands) -> None:
    from erpsync.change_intake import default_record_types
    from erpsync.systems import DEFAULT_TARGET, erps

    defaults = "\n".join(f"  {erp.name}: {', '.join(default_record_types(erp.name))}" for erp in erps())
    poll = commands.add_parser("poll", help="read the ERP's changes since the ledger's cursors into the inbox",
                               description=POLL_DESCRIPTION.format(defaults=defaults), formatter_class=argparse.RawDescriptionHelpFormatter)
    poll.add_argument("--erp", default=DEFAULT_TARGET, metavar="NAME",
                      help="the ERP whose changes are read (default: %(default)s)")
    poll.add_argument("--type", dest="record_types", action="append", metavar="RECORD_TYPE",
                      help="a record type to read, in the ERP's names, repeatable (default: the ERP's, listed above)")
    poll.add_argument("--from", dest="start", metavar="TIME",
                      help="where a record type read for the first time starts: ISO 8601, UTC unless it names a zone "
                           "(default: --overlap before now); a record type with a cursor goes on from its cursor")
    poll.add_argument("--overlap", type=_seconds, default=int(DEFAULT_OVERLAP.total_seconds()), metavar="SECONDS",
                      help="changes of the last SECONDS are read again at each pass (default: %(default)s)")
    poll.add_argument("--page-size", type=_page_size, default=DEFAULT_PAGE_SIZE, metavar="N",
                      help="changes asked of the ERP per request, 1 to 1000 (default: %(default)s)")
    poll.add_argument("--max-pages", type=_whole, default=DEFAULT_MAX_PAGES, metavar="N",
                      help="pages per record type and pass; the next pass goes on from there (default: %(default)s)")
    poll.add_argument("--no-dispatch", action="store_true",
                      help="only store the events; the sweep-inbox flow starts their runs")
    poll.set_defaults(handler=_poll)


def _poll(args: argparse.Namespace) -> int:
    from erpsync.change_intake import ChangeIntake, default_record_types, dispatch_new
    from erpsync.errors import ConfigError, TransientError
    from erpsync.ledger import Ledger
    from erpsync.mapping import handled_topics
    from erpsync.reconcile.windows import parse_moment
    from erpsync.run_control import load_run_control
    from erpsync.settings import Settings
    from erpsync.systems import open_writer, system

    if system(args.erp).kind != "erp":
        raise ConfigError(f"--erp: {args.erp!r} is a shop; changes are read of an ERP")
    try:
        start = parse_moment(args.start) if args.start else None
    except ConfigError:
        raise ConfigError(f"--from: {args.start!r} is not an ISO 8601 time, e.g. 2026-11-27T00:00:00Z") from None
    record_types = args.record_types or default_record_types(args.erp)
    settings = Settings.from_env()
    runs = None
    if not args.no_dispatch:
        try:
            runs = load_run_control(settings)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (or pass --no-dispatch)") from None
    ledger = Ledger.connect(settings.database_url)
    try:
        with open_writer(args.erp, settings.database_url) as erp:
            result = ChangeIntake(ledger, erp, system=args.erp, record_types=record_types,
                                  handled=handled_topics(settings.mappings_dir), start=start,
                                  overlap=timedelta(seconds=args.overlap), page_size=args.page_size,
                                  max_pages=args.max_pages).run()
        print("\n".join(result.lines()))
        if runs is None:
            print(f"{len(result.new_event_ids)} new events, left to the sweep-inbox flow")
        else:
            sent = dispatch_new(ledger, runs, result.new_event_ids, batch_threshold=settings.batch_threshold,
                                batch_runs=settings.batch_runs)
            print(f"{len(result.new_event_ids)} new events: {sent['dispatched']} runs started, "
                  f"{sent['left_to_batch']} left to a sync-batch run, {sent['failed']} left to the sweep")
    except TransientError as exc:
        print(f"erpsync: {exc}", file=sys.stderr)
        return 1
    finally:
        if runs is not None:
            runs.close()
        ledger.close()
    return 0


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds (0 or more), got {text!r}")
    return int(text)


def _whole(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _page_size(text: str) -> int:
    # 1000: the most rows one SuiteQL request answers (NetSuite's REST query service).
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1000, got {text!r}")
    return int(text)
