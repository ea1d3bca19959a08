"""Running a mapping's named test cases (the sibling ``*.cases.yaml``), for the test suite and ``erpsync mapping test``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping.config import CaseConfig, CaseFileConfig
from erpsync.mapping.engine import Mapping
from erpsync.mapping.loader import CASES_SUFFIX, display_path, load_mapping, read_yaml, validate_file


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    message: str  # why it failed, or why it was skipped; empty when it passed
    skipped: bool = False


def cases_path(mapping_path: str | Path) -> Path:
    """``mappings/x.yaml`` → ``mappings/x.cases.yaml``."""
    path = Path(mapping_path)
    return path.with_name(path.name.removesuffix(".yaml").removesuffix(".yml") + CASES_SUFFIX)


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
    return [run_case(mapping, case, base) for case in load_cases(mapping_path)]


def run_case(mapping: Mapping, case: CaseConfig, base: Path) -> CaseResult:
    if case.input_file is not None:
        source = base / case.input_file
        if not source.exists():
            if case.optional:
                return CaseResult(case.name, True, f"skipped: {display_path(source)} not found", skipped=True)
            return CaseResult(case.name, False, f"input_file {display_path(source)} not found")
        try:
            payload = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return CaseResult(case.name, False, f"input_file {display_path(source)}: {exc}")
    else:
        payload = case.input

    try:
        record = mapping.apply(payload)
    except MappingError as exc:
        if case.error is None:
            return CaseResult(case.name, False, f"unexpected MappingError: {exc}")
        if case.error not in str(exc):
            return CaseResult(case.name, False, f"error {str(exc)!r} does not contain {case.error!r}")
        return CaseResult(case.name, True, "")
    if case.error is not None:
        return CaseResult(case.name, False, f"expected an error containing {case.error!r}, got a record")

    differences: list[str] = []
    if case.external_id is not None and record.external_id != case.external_id:
        differences.append(f"external_id: expected {case.external_id!r}, got {record.external_id!r}")
    differences += _diff(case.body, record.body, "body")
    if differences:
        return CaseResult(case.name, False, "; ".join(differences))
    return CaseResult(case.name, True, "")


def _diff(expected: Any, actual: Any, where: str) -> list[str]:
    """Paths where two JSON values differ; 1 and 1.0 are equal (YAML and the decimal transform may differ there)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in expected.keys() - actual.keys():
            out.append(f"{where}.{key}: missing")
        for key in actual.keys() - expected.keys():
            out.append(f"{where}.{key}: not expected")
        for key in expected.keys() & actual.keys():
            out += _diff(expected[key], actual[key], f"{where}.{key}")
        return sorted(out)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} elements, got {len(actual)}"]
        return [d for n, (e, a) in enumerate(zip(expected, actual)) for d in _diff(e, a, f"{where}[{n}]")]
    same_type = isinstance(expected, bool) == isinstance(actual, bool) and (
        type(expected) is type(actual) or all(isinstance(v, (int, float)) for v in (expected, actual))
    )
    if not same_type or expected != actual:
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []
