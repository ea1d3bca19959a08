"""Running a mapping's named test cases (the sibling ``<name>_test.yaml``), for the test suite and ``erpsync mapping test``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from erpsync.errors import ConfigError, MappingError, SkipEvent
from erpsync.mapping.config import CaseConfig, CaseFileConfig, ExpectedConfig
from erpsync.mapping.engine import MappedRecord, Mapping, Records
from erpsync.mapping.loader import TEST_SUFFIX, display_path, load_mapping, read_yaml, validate_file
from erpsync.mapping.money_check import check_total
from erpsync.mapping.xref_resolvers import InMemoryXref


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    message: str  # why it failed, or why it was skipped; empty when it passed
    skipped: bool = False
    # A failed case whose mapping made records: the case's `expected:` (or `records:`) as written, and what the
    # mapping made in the same shape, for the diff `erpsync mapping test` shows and for `--accept`.
    expected: Any = None
    actual: Any = None
    index: int | None = field(default=None, compare=False)  # the case's position in its file


def cases_path(mapping_path: str | Path) -> Path:
    """``mappings/x.yaml`` → ``mappings/x_test.yaml``."""
    path = Path(mapping_path)
    return path.with_name(path.name.removesuffix(".yaml").removesuffix(".yml") + TEST_SUFFIX)


def load_cases(mapping_path: str | Path) -> list[CaseConfig]:
    path = cases_path(mapping_path)
    display = display_path(path)
    if not path.exists():
        raise ConfigError(f"{display}: missing; every mapping ships with its test cases")
    _, data = read_yaml(path, display)
    return list(validate_file(CaseFileConfig, data, display).cases)


def run_cases(mapping_path: str | Path) -> list[CaseResult]:
    """Load the mapping and run each of its cases in isolation; ConfigError if either file is invalid."""
    mapping = load_mapping(mapping_path)
    base = cases_path(mapping_path).parent
    return [replace(run_case(mapping, case, base), index=n) for n, case in enumerate(load_cases(mapping_path))]


def read_case_input(case: CaseConfig, base: Path) -> dict[str, Any] | CaseResult:
    """The case's payload, or the result that ends it (input file absent or unreadable)."""
    if case.input_file is None:
        return case.input or {}
    loaded = _read_input_file(case, base)
    if isinstance(loaded, dict) and case.override:
        loaded = {**loaded, **case.override}
    return loaded


def _read_input_file(case: CaseConfig, base: Path) -> dict[str, Any] | CaseResult:
    assert case.input_file is not None
    source = base / case.input_file
    if not source.exists():
        if case.optional:
            return CaseResult(case.name, True, f"skipped: {display_path(source)} not found", skipped=True)
        return CaseResult(case.name, False, f"input_file {display_path(source)} not found")
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return CaseResult(case.name, False, f"input_file {display_path(source)}: {exc}")


def run_case(mapping: Mapping, case: CaseConfig, base: Path) -> CaseResult:
    payload = read_case_input(case, base)
    if isinstance(payload, CaseResult):
        return payload
    xref = InMemoryXref(case.xref)
    each = mapping.config.each is not None
    if (each and case.expected is not None) or (not each and case.records is not None):
        wanted = "records: (it maps one record per element, each:)" if each else "expected: (it maps one record)"
        return CaseResult(case.name, False, f"this mapping's cases state {wanted}")
    try:
        result = mapping.apply_each(payload, xref=xref)
        for record in result.records:
            check_total(record)  # the pipeline's pre-push check: a case's record must add up as a pushed one must
        entity_id = mapping.entity_id(payload)
        version = mapping.source_version(payload)
    except SkipEvent as exc:
        if case.skipped is None:
            return CaseResult(case.name, False, f"unexpected skip: {exc}")
        if not error_matches(case.skipped, str(exc)):
            return CaseResult(case.name, False, f"skip reason {str(exc)!r} does not match {case.skipped!r}")
        return CaseResult(case.name, True, "")
    except MappingError as exc:
        if case.error is None:
            return CaseResult(case.name, False, f"unexpected MappingError: {exc}")
        if not error_matches(case.error, str(exc)):
            return CaseResult(case.name, False, f"error {str(exc)!r} does not match {case.error!r}")
        return CaseResult(case.name, True, "")
    if case.error is not None or case.skipped is not None:
        wanted = f"an error matching {case.error!r}" if case.error is not None else f"a skip matching {case.skipped!r}"
        return CaseResult(case.name, False, f"expected {wanted}, got a record")

    if case.records is not None:
        outcome = _compare_records(case, result, entity_id, version)
        if outcome.passed:
            return outcome
        return replace(outcome, expected=[_written(e) for e in case.records],
                       actual=[_made(e, r, entity_id, version) for e, r in _beside_expected(case.records, result)])
    assert case.expected is not None
    differences = _compare(case.expected, result.records[0], entity_id, version, "")
    if differences:
        return CaseResult(case.name, False, "; ".join(differences), expected=_written(case.expected),
                          actual=_made(case.expected, result.records[0], entity_id, version))
    return CaseResult(case.name, True, "")


def _written(expected: ExpectedConfig) -> dict[str, Any]:
    """An expected record as its case file states it (the keys it sets, body last)."""
    stated = expected.model_dump(exclude_none=True, exclude={"body"})
    return {**stated, "body": expected.body}


def _made(expected: ExpectedConfig | None, record: MappedRecord, entity_id: str,
          version: datetime | int | float) -> dict[str, Any]:
    """What the mapping made, with the keys the case states (all of them for a record the case does not name)."""
    made = {"external_id": record.external_id, "entity_id": entity_id, "version": _version_text(version)}
    keys = made if expected is None else {k for k in made if getattr(expected, k) is not None}
    return {**{k: v for k, v in made.items() if k in keys}, "body": record.body}


def _beside_expected(expected: list[ExpectedConfig], result: Records):
    """Each record made, beside the expected one at its place (None past the end of the case's list)."""
    return [(expected[n] if n < len(expected) else None, record) for n, record in enumerate(result.records)]


def _compare_records(case: CaseConfig, result: Records, entity_id: str,
                     version: datetime | int | float) -> CaseResult:
    assert case.records is not None
    differences: list[str] = []
    if len(case.records) != len(result.records):
        got = ", ".join(f"{r.key_source} {r.external_id}" for r in result.records)
        differences.append(f"expected {len(case.records)} records, got {len(result.records)} ({got})")
    for n, (expected, record) in enumerate(zip(case.records, result.records)):
        differences += _compare(expected, record, entity_id, version, f"records[{n}].")
    if len(case.skipped_elements) != len(result.skipped):
        differences.append(f"expected {len(case.skipped_elements)} skipped elements, got {len(result.skipped)}"
                           f" ({'; '.join(result.skipped)})")
    for pattern, reason in zip(case.skipped_elements, result.skipped):
        if not error_matches(pattern, reason):
            differences.append(f"skipped element {reason!r} does not match {pattern!r}")
    if differences:
        return CaseResult(case.name, False, "; ".join(differences))
    return CaseResult(case.name, True, "")


def _compare(expected: ExpectedConfig, record: MappedRecord, entity_id: str, version: datetime | int | float,
             prefix: str) -> list[str]:
    differences: list[str] = []
    if expected.external_id is not None and record.external_id != expected.external_id:
        differences.append(f"external_id: expected {expected.external_id!r}, got {record.external_id!r}")
    if expected.entity_id is not None and entity_id != expected.entity_id:
        differences.append(f"entity_id: expected {expected.entity_id!r}, got {entity_id!r}")
    if expected.version is not None and not _same_version(expected.version, version):
        differences.append(f"version: expected {expected.version!r}, got {_version_text(version)!r}")
    differences += diff(expected.body, record.body, "body")
    return [prefix + d for d in differences]


def error_matches(pattern: str, message: str) -> bool:
    """A substring of the message, or else a regular expression found in it."""
    if pattern in message:
        return True
    try:
        return re.search(pattern, message) is not None
    except re.error:
        return False


def _version_text(version: datetime | int | float) -> str | int | float:
    return version.isoformat() if isinstance(version, datetime) else version


def _same_version(expected: str | int | float, actual: datetime | int | float) -> bool:
    if isinstance(actual, datetime):
        if not isinstance(expected, str):
            return False
        try:
            return datetime.fromisoformat(expected) == actual
        except ValueError:
            return False
    return expected == actual


def diff(expected: Any, actual: Any, where: str) -> list[str]:
    """Paths where two JSON values differ; 1 and 1.0 are equal (YAML and the decimal transform may differ there)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in expected.keys() - actual.keys():
            out.append(f"{where}.{key}: missing")
        for key in actual.keys() - expected.keys():
            out.append(f"{where}.{key}: not expected")
        for key in expected.keys() & actual.keys():
            out += diff(expected[key], actual[key], f"{where}.{key}")
        return sorted(out)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} elements, got {len(actual)}"]
        return [d for n, (e, a) in enumerate(zip(expected, actual)) for d in diff(e, a, f"{where}[{n}]")]
    same_type = isinstance(expected, bool) == isinstance(actual, bool) and (
        type(expected) is type(actual) or all(isinstance(v, (int, float)) for v in (expected, actual))
    )
    if not same_type or expected != actual:
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []
