"""`erpsync conflicts` (fields both sides changed, as their owner settled them) and `erpsync ownership` (the
field-ownership table, checked)."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

CONFLICTS_DESCRIPTION = """\
Fields both sides changed since the last sync, newest first: when erpsync wrote a field and found it changed in the
target since it set it (a count made in the shop while the ERP's stock changed, a price changed on both sides), the
field's owner (mappings/ownership/fields.yaml) won, and the change it replaced is listed here: what erpsync had set,
what the target held, what was written, and the event. Values are prices and quantities, never customer data.
A field nobody owns is not overwritten: that event is a dead letter (erpsync dlq) naming both values.

  erpsync conflicts                      # the last 50
  erpsync conflicts --since 24h --json   # one JSON object per line"""

OWNERSHIP_DESCRIPTION = """\
Load and check the field-ownership table (mappings/ownership/fields.yaml, or --mappings DIR): every system and owner
registered, every field one the record type takes. Prints one line per field and its owner; exits 2 naming the file
and the path of what is wrong."""


def add_commands(commands) -> None:
    conflicts = commands.add_parser("conflicts", help="fields both sides changed, as their owner settled them",
                                    description=CONFLICTS_DESCRIPTION,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    conflicts.add_argument("--since", type=_age, metavar="AGE", help="only those of the last AGE, e.g. 24h, 7d, 90m")
    conflicts.add_argument("--limit", type=_whole, default=50, metavar="N", help="at most N (default: %(default)s)")
    conflicts.add_argument("--json", action="store_true", help="one JSON object per conflict and line")
    conflicts.set_defaults(handler=_conflicts)
    ownership = commands.add_parser("ownership", help="check and show the field-ownership table",
                                    description=OWNERSHIP_DESCRIPTION)
    ownership.add_argument("--mappings", metavar="DIR", help="the mappings folder (default: ERPSYNC_MAPPINGS_DIR's)")
    ownership.set_defaults(handler=_ownership)


def _conflicts(args: argparse.Namespace) -> int:
    from erpsync.ledger import Ledger, utcnow
    from erpsync.settings import Settings

    ledger = Ledger.connect(Settings.from_env().database_url, create=False)
    try:
        found = ledger.conflicts(since=utcnow() - args.since if args.since else None, limit=args.limit)
    finally:
        ledger.close()
    for c in found:
        if args.json:
            print(json.dumps({"at": c.at.isoformat(), "event_id": c.event_id,
                              "entity": f"{c.from_system}/{c.entity_type}/{c.entity_id}", "to_system": c.to_system,
                              "record": f"{c.record_type} {c.record_id}", "field": c.field_name, "owner": c.owner,
                              "erpsync_set": c.last_value, "target_held": c.target_value,
                              "written": c.written_value}))
        else:
            print(f"{c.at:%Y-%m-%d %H:%M:%S}Z event {c.event_id} {c.from_system}/{c.entity_type}/{c.entity_id} → "
                  f"{c.to_system} {c.record_type} {c.record_id}: {c.field_name}: {c.resolution}")
    if not args.json:
        print(f"{len(found)} conflict{'s' if len(found) != 1 else ''}" + (" (the newest)" if len(found) == args.limit
                                                                          else ""))
    return 0


def _ownership(args: argparse.Namespace) -> int:
    from pathlib import Path

    from erpsync.field_ownership import FILE_NAME, load_ownership
    from erpsync.settings import Settings

    folder = Path(args.mappings) if args.mappings else Settings.from_env().mappings_dir
    table = load_ownership(folder)  # a ConfigError names the file and the path
    if not table.owners:
        print(f"{folder / FILE_NAME}: no ownership table; no field is owned (a change in the target is never "
              f"overwritten)")
        return 0
    for (system, record_type, field_name), owner in sorted(table.owners.items()):
        print(f"{system} {record_type}.{field_name}: owned by {owner}")
    print(f"{folder / FILE_NAME}: {len(table.owners)} fields owned")
    return 0


def _age(text: str) -> timedelta:
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise argparse.ArgumentTypeError(f"expected an age such as 90m, 24h or 7d, got {text!r}")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def _whole(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)
