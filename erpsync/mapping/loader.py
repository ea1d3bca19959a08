"""Reading a mapping file: YAML → validated config → lookup tables → checks across fields → ``Mapping``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from erpsync.errors import ConfigError
from erpsync.mapping.config import MappingConfig, describe_errors
from erpsync.mapping.engine import Mapping
from erpsync.mapping.lookups import LookupTable

CASES_SUFFIX = ".cases.yaml"


def display_path(path: Path) -> str:
    """The path relative to the working directory when it is below it (``mappings/x.yaml``), else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path, display: str) -> tuple[bytes, Any]:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read: {exc.strerror or exc}") from None
    try:
        return content, yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{display}: invalid YAML{where}: {problem}") from None


def validate_file(model: type[BaseModel], data: Any, display: str) -> Any:
    """``model.model_validate(data)``, with every error turned into ``file: path: message`` lines."""
    if not isinstance(data, dict):
        raise ConfigError(f"{display}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{display}: {line}" for line in describe_errors(exc.errors())]
        raise ConfigError("\n".join(lines)) from None


def load_mapping(path: str | Path) -> Mapping:
    """Load and fully check a mapping file; raises ConfigError naming the file and the path in it."""
    path = Path(path)
    display = display_path(path)
    content, data = read_yaml(path, display)
    config: MappingConfig = validate_file(MappingConfig, data, display)

    problems: list[str] = []
    tables: dict[str, LookupTable] = {}
    for name, spec in config.lookups.items():
        table_path = path.parent / spec.path
        try:
            tables[name] = LookupTable.load(name, table_path, display_path(table_path), spec.key, spec.value)
        except ValueError as exc:
            problems.append(f"lookups.{name}: {exc}")
    problems += _cross_checks(config)
    if problems:
        raise ConfigError("\n".join(f"{display}: {p}" for p in problems))

    digest = hashlib.sha256(content)
    for name in sorted(tables):
        digest.update(b"\0" + name.encode() + b"\0" + tables[name].content)
    return Mapping(path=path, display=display, config=config, tables=tables, version=digest.hexdigest()[:12])


def _cross_checks(config: MappingConfig) -> list[str]:
    """What one field cannot see alone: table names, two fields writing one place, lists nobody fills."""
    problems: list[str] = []
    declared = ", ".join(sorted(config.lookups)) or "none"
    for i, rule in enumerate(config.fields):
        if rule.transform is not None:
            for table in sorted(rule.transform.params.tables_used() - set(config.lookups)):
                problems.append(f"fields[{i}].transform: unknown lookup table {table!r} (declared: {declared})")

    first_at: dict[tuple[str, ...], int] = {}
    for i, rule in enumerate(config.fields):
        shape = rule.target_field.shape
        if shape in first_at:
            problems.append(
                f"fields[{i}].target_field: duplicate target {rule.target_field.text!r} (also fields[{first_at[shape]}])"
            )
            continue
        for other, j in first_at.items():
            shorter, longer = sorted((shape, other), key=len)
            if longer[: len(shorter)] == shorter:
                problems.append(
                    f"fields[{i}].target_field: {rule.target_field.text!r} overlaps fields[{j}].target_field"
                    " (one is inside the other)"
                )
                break
        first_at[shape] = i

    filled = {r.target_field.list_prefix() for r in config.fields if r.source_field and r.target_field.iterations}
    for i, rule in enumerate(config.fields):
        if rule.kind == "value" and rule.target_field.iterations:
            if rule.target_field.list_prefix() not in filled:
                problems.append(
                    f"fields[{i}].target_field: no source_field fills the list of {rule.target_field.text!r},"
                    " so a constant has no elements to go to"
                )
    return problems


def discover_mappings(directory: str | Path) -> list[Path]:
    """The mapping files in a folder: ``*.yaml`` except the ``*.cases.yaml`` case files beside them."""
    return sorted(p for p in Path(directory).glob("*.yaml") if not p.name.endswith(CASES_SUFFIX))
