"""`erpsync dlq list | show | replay`: the dead-letter view and its replay, for an operator at a terminal."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TextIO

from erpsync.deadletters import (
    DEAD_LETTER_STATES,
    DeadLetterFilter,
    FailedEvent,
    group_dead_letters,
    parse_reason,
    select_dead_letters,
)
from erpsync.deadletters import (
    replay as replay_events,
)
from erpsync.errors import ConfigError
from erpsync.event_refs import describe, event_run_name, one_event, order_code_text, trace_of
from erpsync.ledger import Ledger
from erpsync.settings import Settings, settings_to_read


def _filter(args: argparse.Namespace) -> DeadLetterFilter:
    return DeadLetterFilter.parse(since=args.since, until=args.until, time_of=args.time_of, source=args.source,
                                  topic=args.topic, reason=args.reason, prefix="--")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        out.write("  ".join(cells).rstrip() + "\n")


def list_command(args: argparse.Namespace, out: TextIO) -> int:
    where = _filter(args)
    ledger = Ledger.connect(settings_to_read().database_url)  # a missing ledger is refused, not created
    try:
        events = select_dead_letters(ledger, where)
    finally:
        ledger.close()
    groups = group_dead_letters(events)
    if args.json:
        document = {"filter": where.describe(), "dead_letters": len(events),
                    "groups": [g.as_json() for g in groups]}
        if args.events:
            document["events"] = [e.as_json() for e in events]
        out.write(json.dumps(document, indent=2) + "\n")
        return 0
    if not events:
        out.write(f"no dead letters ({where.describe()})\n")
        return 0
    out.write(f"{len(events)} dead letters in {len(groups)} groups ({where.describe()}); times in UTC\n\n")
    rows = [["COUNT", "FIRST FAILED", "LAST FAILED", "EVENTS (ORDER CODE)", "CAUSE"]]
    for g in groups:
        rows.append([str(g.count), _when(g.oldest), _when(g.newest), g.examples_text, g.group])
    _table(rows, out)
    if args.events:
        out.write("\n")
        rows = [["EVENT", "ENTITY", "ORDER CODE", "SOURCE", "TOPIC", "RECEIVED", "FLOW RUN", "CAUSE"]]
        rows += [[str(e.event_id), e.entity or "-", order_code_text(e.label), e.source, e.topic,
                  _when(e.received_at), e.flow_run_id or "(none)", e.reason.group] for e in events]
        _table(rows, out)
    out.write("\nFull reason of one event: erpsync dlq show EVENT (its id, entity or order code, e.g. 42, "
              "order/820982911946154508, '#1042'). Replay: erpsync dlq replay [filters].\n")
    return 0


def show_command(args: argparse.Namespace, out: TextIO) -> int:
    ledger = Ledger.connect(settings_to_read().database_url)
    try:
        # An order has several events (created, paid, updated): among them, its dead letter is the one meant.
        event = one_event(ledger, str(args.event), prefer=lambda e: e.state in DEAD_LETTER_STATES,
                          what="dead letters or events", hint=": erpsync dlq show ID")
        outcomes = ledger.outcomes(event.id)
        trace = trace_of(ledger, event)
    finally:
        ledger.close()
    lines = [
        f"event        {describe(event.id, event.entity, event.entity_label)}",
        f"entity       {event.entity or '(not read yet: no run has validated it)'}",
        f"order code   {order_code_text(event.entity_label)}",
        f"state        {event.state}" + ("  (dead letter)" if event.state == "failed" else ""),
        f"source       {event.source}",
        f"topic        {event.topic}",
        f"delivery id  {event.delivery_id}",
        f"received     {_when(event.received_at)} UTC" + (f" ({event.redeliveries} redeliveries)"
                                                          if event.redeliveries else ""),
        f"trace        {trace}",
    ]
    failures = [o for o in outcomes if o.outcome == "failed"]
    if failures:
        r = parse_reason(failures[-1].reason)
        lines += ["", "latest failure", f"  cause      {r.group}"]
        for name, value in (("class", r.error_class), ("ERP code", r.erp_code), ("HTTP status", r.http_status),
                            ("field", r.field), ("mapping", r.mapping),
                            ("mapping v.", r.mapping_version or failures[-1].mapping_version),
                            ("lookup", f"{r.lookup_key or 'a key'} not in {r.lookup_table}" if r.lookup_table
                             else None),
                            ("ERP detail", r.detail)):
            if value is not None:
                lines.append(f"  {name:<10} {value}")
    lines += ["", "history (UTC)"]
    for o in outcomes:
        version = f" [mapping {o.mapping_version}]" if o.mapping_version else ""
        lines.append(f"  {_when(o.at)}  {o.outcome:<10}{version}" + (f"  {o.reason}" if o.reason else ""))
    if event.state == "failed":
        run_name = event_run_name(event.id, event.entity, event.entity_label)
        lines += ["", f"Replay after fixing the cause: Retry on flow run {run_name} in the Prefect UI, or "
                      f"erpsync dlq replay --reason <class or code>."]
    out.write("\n".join(lines) + "\n")
    return 0


def replay_command(args: argparse.Namespace, out: TextIO) -> int:
    where = _filter(args)
    settings = Settings.from_env()
    ledger = Ledger.connect(settings.database_url)
    runs = None
    try:
        chosen: list[FailedEvent] = select_dead_letters(ledger, where, limit=args.limit)
        if not chosen:
            out.write(f"no dead letters to replay ({where.describe()})\n")
            return 0
        from erpsync.run_control import load_run_control

        try:
            runs = load_run_control(settings)
        except ConfigError as exc:
            if not args.dry_run:
                raise
            # A dry run reads the ledger only: it still says what a replay would do, and what it would need.
            out.write(f"dry run without an orchestrator: {exc}; a replay needs one, this listing does not\n")
        verb = "would replay" if args.dry_run else "replaying"
        out.write(f"{verb} {len(chosen)} dead letters ({where.describe()}) at up to {args.rate:g} per second\n")

        def progress(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        result = replay_events(ledger, runs, chosen, rate=args.rate, dry_run=args.dry_run, progress=progress)
    finally:
        if runs is not None:
            runs.close()
        ledger.close()
    out.write(result.summary() + "\n")
    if args.json:
        out.write(json.dumps(result.as_json(), indent=2) + "\n")
    if not args.dry_run and result.chosen - len(result.in_flight) - len(result.failed):
        out.write("The runs read each event and the mapping when they start; `erpsync dlq list` shows what is left.\n")
    return 1 if result.failed else 0
