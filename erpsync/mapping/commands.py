"""``erpsync mapping validate | preview | test | drift``: each a function writing to a stream and returning an exit code.

Exit codes: 0 everything is fine, 1 a case fails or a file is invalid (CI-friendly). The CLI only parses
arguments and calls these.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from erpsync.errors import ConfigError, MappingError, SkipEvent
from erpsync.mapping.case_accept import accept_outputs
from erpsync.mapping.cases import CaseResult, cases_path, load_cases, run_cases
from erpsync.mapping.config import did_you_mean
from erpsync.mapping.engine import Mapping, RuleResult
from erpsync.mapping.loader import discover_mappings, load_mapping
from erpsync.mapping.money_check import check_total
from erpsync.mapping.xref_resolvers import InMemoryXref, XrefResolver
from erpsync.systems import DEFAULT_TARGET, system

if TYPE_CHECKING:
    from erpsync.ledger import Ledger


def mapping_files(paths: Iterable[str | Path]) -> list[Path]:
    """Mapping files named directly, or found in the folders named; a case file stands for its mapping."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += discover_mappings(path)
        elif path.name.endswith("_test.yaml"):
            files.append(path.with_name(path.name.removesuffix("_test.yaml") + ".yaml"))
        else:
            files.append(path)
    return files


def validate(paths: Iterable[str | Path], out: TextIO = sys.stdout) -> int:
    """Load every mapping and its case file; report each problem with file and path; 1 if any is invalid."""
    files = mapping_files(paths)
    failed = 0
    handlers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in files:
        # Both files are read whatever the other holds, so one run reports every error of both.
        problems: list[str] = []
        mapping = None
        try:
            mapping = load_mapping(path)
        except ConfigError as exc:
            problems.append(str(exc))
        try:
            load_cases(path)
        except ConfigError as exc:
            problems.append(str(exc))
        if problems or mapping is None:
            failed += 1
            print(f"FAIL {path.name}: {len(_lines(problems))} error(s)", file=out)
            for line in _lines(problems):
                print(f"  {line}", file=out)
            continue
        for topic in mapping.topics:
            handlers[(mapping.source, topic)].append(mapping.display)
        print(f"ok   {mapping.display} @{mapping.version} ({mapping.source} {', '.join(mapping.topics)} → "
              f"{mapping.record_type})", file=out)
    for (source, topic), names in sorted(handlers.items()):
        if len(names) > 1:
            failed += 1
            print(f"FAIL {source} topic {topic!r} is handled by more than one mapping: {', '.join(names)}", file=out)
    print(f"{failed} invalid" if failed else f"{len(files)} mapping(s) valid", file=out)
    return 1 if failed else 0


def _lines(problems: list[str]) -> list[str]:
    return [line for problem in problems for line in problem.splitlines()]


def test(paths: Iterable[str | Path], out: TextIO = sys.stdout, *, accept: bool = False) -> int:
    """Run each mapping's ``_test.yaml`` cases; 1 if a case fails or a file is invalid.

    A failed case whose mapping made a record shows its differences and a diff of the expected and the actual
    output; with ``accept`` its ``expected:`` is rewritten from the actual output instead (golden-file style).
    """
    passed = failed = skipped = invalid = accepted = 0
    acceptable = False  # a failed case made a record, so --accept could take it
    for path in mapping_files(paths):
        try:
            results = run_cases(path)
        except ConfigError as exc:
            invalid += 1
            print(f"FAIL {exc}", file=out)
            continue
        to_accept: dict[int, tuple[str, Any]] = {}
        for result in results:
            if result.skipped:
                skipped += 1
                print(f"skip {path.name}: {result.name}\n     {result.message}", file=out)
            elif result.passed:
                passed += 1
                print(f"ok   {path.name}: {result.name}", file=out)
            elif accept and result.actual is not None and result.index is not None:
                to_accept[result.index] = ("records" if isinstance(result.actual, list) else "expected", result.actual)
                print(f"accepted {path.name}: {result.name}", file=out)
            else:
                failed += 1
                print(f"FAIL {path.name}: {result.name}", file=out)
                acceptable |= _print_failure(result, out, accept=accept)
        if to_accept:
            accept_outputs(cases_path(path), to_accept)
            # Run again: what the rewrite cannot fix (an each: case's skipped_elements) still fails.
            for result in run_cases(path):
                if result.index in to_accept and not result.passed:
                    del to_accept[result.index]
                    failed += 1
                    print(f"FAIL {path.name}: {result.name} (still, after accepting its output)", file=out)
                    _print_failure(result, out, accept=False)
            accepted += len(to_accept)
    counts = [f"{passed} passed", f"{failed} failed"]
    counts += [f"{skipped} skipped"] if skipped else []
    counts += [f"{accepted} accepted (their expected output rewritten)"] if accepted else []
    counts += [f"{invalid} file(s) invalid"] if invalid else []
    cases = f"{passed + failed + skipped + accepted} case(s): {', '.join(counts)}"
    print(f"all cases passed; {cases}" if not (failed or invalid) and not accepted else cases, file=out)
    if acceptable and not accept:
        print("if the new output is right, `erpsync mapping test --accept <mapping>` rewrites the failed cases'"
              " expected output from it", file=out)
    return 1 if failed or invalid else 0


def _print_failure(result: CaseResult, out: TextIO, *, accept: bool) -> bool:
    """Each difference on a line, then the expected and actual output as a unified diff; True if there was one."""
    for line in result.message.split("; "):
        print(f"     {line}", file=out)
    if result.actual is None:
        if accept:
            print("     (not accepted: the mapping made no record to accept)", file=out)
        return False
    expected = json.dumps(result.expected, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    actual = json.dumps(result.actual, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    for line in difflib.unified_diff(expected, actual, "expected", "actual", lineterm=""):
        print(f"     {line}", file=out)
    return True


def preview(
    mapping_path: str | Path,
    payload_path: str | Path,
    out: TextIO = sys.stdout,
    *,
    xref: XrefResolver | None = None,
) -> int:
    """Print each rule's result and the ERP body the mapping would send for this payload; 1 if it fails.

    Without ``xref``, erp_lookup rules answer from the ``xref:`` tables of the mapping's case file (if any).
    """
    try:
        mapping = load_mapping(mapping_path)
        payload = json.loads(Path(payload_path).read_text(encoding="utf-8"))
    except ConfigError as exc:
        print(f"FAIL {exc}", file=out)
        return 1
    except (OSError, ValueError) as exc:
        print(f"FAIL {payload_path}: cannot read a JSON payload: {exc}", file=out)
        return 1
    if xref is None:
        xref = _case_xref(mapping)
    trace: list[RuleResult] = []
    print(f"{mapping.display} @{mapping.version}: {mapping.source} → {mapping.record_type}", file=out)
    if mapping.config.each is not None:
        return _preview_each(mapping, payload, xref, out)
    try:
        record = mapping.apply(payload, xref=xref, trace=trace)
        print(f"entity: {mapping.entity_type} {mapping.entity_id(payload)} "
              f"version {_text(mapping.source_version(payload))}", file=out)
        _print_trace(trace, out)
        trace = []
        totals = check_total(record, mapping.ref)
    except SkipEvent as exc:
        # Not a failure: the pipeline records the event as skipped with this reason.
        print(f"SKIP {exc}", file=out)
        return 0
    except MappingError as exc:
        _print_trace(trace, out)
        print(f"FAIL {exc}", file=out)
        return 1
    expected = record.expected_total
    if totals is not None and expected is not None:
        places = expected.places
        target = system(record.target or DEFAULT_TARGET).title
        print(f"money check: {target} total {totals.total:.{places}f} {expected.currency} = "
              f"{'minus ' if expected.negated else ''}source {expected.total_field} "
              f"{(-expected.total if expected.negated else expected.total):.{places}f} "
              f"(subtotal {totals.subtotal:.{places}f}, "
              f"discount {totals.discount:.{places}f}, tax {totals.tax:.{places}f}, "
              f"shipping {totals.shipping:.{places}f})", file=out)
    print(f"external id: {record.external_id}", file=out)
    print(json.dumps(record.body, indent=2, ensure_ascii=False), file=out)
    return 0


def _preview_each(mapping: Mapping, payload: Any, xref: Any, out: TextIO) -> int:
    """An `each:` mapping's records, one per element (no per-rule trace: the rules run once per element)."""
    try:
        result = mapping.apply_each(payload, xref=xref)
        print(f"entity: {mapping.entity_type} {mapping.entity_id(payload)} "
              f"version {_text(mapping.source_version(payload))}", file=out)
    except SkipEvent as exc:
        print(f"SKIP {exc}", file=out)
        return 0
    except MappingError as exc:
        print(f"FAIL {exc}", file=out)
        return 1
    for reason in result.skipped:
        print(f"skipped {reason}", file=out)
    for record in result.records:
        print(f"{record.key_source} {record.key}: external id {record.external_id}", file=out)
        print(json.dumps(record.body, indent=2, ensure_ascii=False), file=out)
    return 0


DRIFT_EVENTS = 1000  # events read by default: the newest, enough to meet every shape a topic sends in a day


def drift(
    ledger: Ledger,
    mappings_dir: str | Path,
    out: TextIO = sys.stdout,
    *,
    topic: str | None = None,
    since: timedelta | None = None,
    new: bool = False,
    limit: int = DRIFT_EVENTS,
) -> int:
    """The source fields seen in the inbox that no rule of their mapping reads and its ``ignore:`` does not name:
    counts first, then the fields grouped by mapping. 1 if ``topic`` is one nobody knows.

    A new field here is a platform change coming: map it, or add it to the mapping's ``ignore:``. ``topic`` and
    ``since`` narrow the events read (the newest ``limit``); ``new`` lists only fields this view has not listed
    before, and remembers them as listed (the ledger's ``drift_field``).
    """
    from sqlmodel import select

    from erpsync.drift_fields import report_new
    from erpsync.ledger import InboxEvent, utcnow

    mappings = _loadable(mappings_dir, out)
    if topic is not None:
        with ledger.session() as session:
            received = set(session.exec(select(InboxEvent.topic).distinct()).all())
        known = {t for m in mappings for t in m.topics} | received
        if topic not in known:
            print(f"unknown topic {topic!r}: no mapping handles it and no event has it"
                  f"{did_you_mean(topic, known)}", file=out)
            return 1
    query = select(InboxEvent.source, InboxEvent.topic, InboxEvent.body)
    if topic is not None:
        query = query.where(InboxEvent.topic == topic)
    if since is not None:
        query = query.where(InboxEvent.received_at >= utcnow() - since)
    with ledger.session() as session:
        events = session.exec(query.order_by(InboxEvent.id.desc()).limit(limit)).all()  # type: ignore[union-attr]

    fields: dict[str, Counter[str]] = defaultdict(Counter)  # mapping name → field → events carrying it
    read: Counter[str] = Counter()  # mapping name → events read
    by_name = {m.name: m for m in mappings}
    unmapped: Counter[tuple[str, str]] = Counter()
    purged = 0
    for source, event_topic, body in events:
        handling = [m for m in mappings if m.handles(source, event_topic)]
        if not handling:
            unmapped[(source, event_topic)] += 1
            continue
        try:
            payload = json.loads(body)
        except (TypeError, ValueError):
            purged += 1  # its payload was purged (erpsync purge): nothing to compare
            continue
        for mapping in handling:
            read[mapping.name] += 1
            fields[mapping.name].update(mapping.unread_fields(payload))
    shown = {name: set(counts) for name, counts in fields.items()}
    if new:
        shown = report_new(ledger.engine, shown)

    scope = " ".join(part for part in (
        f"of topic {topic}" if topic else "",
        f"received in the last {_duration_text(since)}" if since is not None else "",
    ) if part)
    newest = f" (the newest {limit}; there may be more)" if len(events) == limit else ""
    total = sum(len(f) for f in shown.values())
    kind = "new field(s) (not listed by --new before)" if new else "field(s)"
    print(f"{len(events)} event(s){' ' + scope if scope else ''} read{newest}; {total} {kind} no rule reads "
          f"in {sum(1 for f in shown.values() if f)} of {len(read)} mapping(s)", file=out)
    for name in sorted(read):
        m = by_name[name]
        print(f"  {name}: {read[name]} event(s) ({m.source} {', '.join(m.topics)}), {len(shown.get(name, ()))} "
              f"{'new ' if new else ''}field(s)", file=out)
    for (source, event_topic), count in sorted(unmapped.items()):
        print(f"  {source} {event_topic}: {count} event(s), no mapping handles this topic", file=out)
    if purged:
        print(f"  {purged} event(s) without a payload (purged), not read", file=out)
    for name in sorted(read):
        if not shown.get(name):
            continue
        print(f"\n{name} ({by_name[name].display}):", file=out)
        for field in sorted(shown[name]):
            print(f"  {field}  ({fields[name][field]} of {read[name]} event(s))", file=out)
    if total:
        print("\nmap each field, or add it to the mapping's ignore: list (docs/mapping-format.md, \"ignore\")",
              file=out)
    return 0


def _duration_text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _loadable(mappings_dir: str | Path, out: TextIO) -> list[Mapping]:
    loaded = []
    for path in discover_mappings(mappings_dir):
        try:
            loaded.append(load_mapping(path))
        except ConfigError as exc:
            print(f"skipping an invalid mapping: {exc}", file=out)
    return loaded


def _case_xref(mapping: Mapping) -> InMemoryXref:
    table: dict[str, dict[str, str]] = {}
    if cases_path(mapping.path).exists():
        try:
            for case in load_cases(mapping.path):
                for key, values in case.xref.items():
                    table.setdefault(key, {}).update(values)
        except ConfigError:
            pass
    return InMemoryXref(table)


def _print_trace(trace: list[RuleResult], out: TextIO) -> None:
    for result in trace:
        source = f" ← {result.source}" if result.source else ""
        outcome = f"skipped ({result.skipped})" if result.skipped else json.dumps(result.value, ensure_ascii=False)
        print(f"  {result.rule:<11} {result.target}{source}: {outcome}", file=out)


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


