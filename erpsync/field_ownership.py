"""The field-ownership table (``mappings/ownership/fields.yaml``): which system owns which field of which record.

Read whenever an event is mapped, as mappings are, so a changed owner applies at the next event. Shape::

    shopify:                    # the system holding the record
      productVariant:           # a record type written there (a mapping's record_type)
        price: netsuite         # field (a mapping's top-level target_field) → the system that owns it

What ownership does (erpsync/pipeline.py): a mapping never writes a field its target owns (the value is left out,
and the outcome says so); and when a write finds a field changed in the target since erpsync last set it, the owner
wins: the writing side's value goes over it if the writing side owns the field, and the change it replaced is
reported (the ledger's ``conflict`` table, ``erpsync conflicts``). A field nobody owns is not overwritten.
Errors name the file and the path in it, never a value.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from erpsync.errors import ConfigError

# In a folder of its own: every *.yaml beside the mappings is read as a mapping.
FILE_NAME = "ownership/fields.yaml"


@dataclass(frozen=True)
class FieldOwnership:
    """(system, record type, field) → owner; empty when the mappings folder has no ownership file."""

    owners: dict[tuple[str, str, str], str] = field(default_factory=dict)
    source: str = FILE_NAME

    def owner(self, system: str, record_type: str, field_name: str) -> str | None:
        return self.owners.get((system, record_type, field_name.split(".", 1)[0].split("[", 1)[0]))

    def owned_by(self, system: str, record_type: str, owner: str) -> list[str]:
        """The fields of ``record_type`` in ``system`` that ``owner`` owns."""
        return sorted(f for (s, r, f), o in self.owners.items() if s == system and r == record_type and o == owner)


def load_ownership(mappings_dir: Path) -> FieldOwnership:
    """The table in ``mappings_dir``, read again when the file changed; ConfigError naming the file and the path
    of what is wrong."""
    path = Path(mappings_dir) / FILE_NAME
    try:
        stat = path.stat()
    except FileNotFoundError:
        return FieldOwnership(source=str(path))
    return _load(str(path), stat.st_mtime_ns, stat.st_size, f"{Path(mappings_dir).name}/{FILE_NAME}")


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int, name: str) -> FieldOwnership:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{name}: not valid YAML{where}") from None
    return parse_ownership(data, name=name)


def parse_ownership(data: Any, *, name: str = FILE_NAME) -> FieldOwnership:
    from erpsync.systems import SYSTEMS  # the registry: which systems exist and their record fields

    def refuse(where: str, message: str) -> ConfigError:
        return ConfigError(f"{name}: {where}: {message}" if where else f"{name}: {message}")

    if data is None:
        return FieldOwnership(source=name)
    if not isinstance(data, dict):
        raise refuse("", "expected a mapping of system → record type → field → owner")
    known = sorted(SYSTEMS)
    owners: dict[tuple[str, str, str], str] = {}
    for system, records in data.items():
        if system not in SYSTEMS:
            raise refuse(str(system), f"unknown system{_did_you_mean(str(system), known)} (known: {', '.join(known)})")
        if not isinstance(records, dict) or not records:
            raise refuse(system, "expected record types, each with its fields and their owners")
        catalogue = SYSTEMS[system].record_fields
        for record_type, fields in records.items():
            where = f"{system}.{record_type}"
            if not isinstance(fields, dict) or not fields:
                raise refuse(where, "expected fields, each with the system that owns it (price: netsuite)")
            listed = catalogue.get(str(record_type))
            for field_name, owner in fields.items():
                spot = f"{where}.{field_name}"
                if not isinstance(field_name, str) or not field_name.isidentifier():
                    raise refuse(spot, "a field is named as a mapping's top-level target_field (letters, digits, _)")
                if listed is not None and not any(f == field_name or f.startswith(f"{field_name}.") for f in listed):
                    fields_known = sorted({f.split(".", 1)[0] for f in listed})
                    raise refuse(spot, f"{system} {record_type} has no field {field_name!r}"
                                       f"{_did_you_mean(field_name, fields_known)} (known: {', '.join(fields_known)})")
                if not isinstance(owner, str) or owner not in SYSTEMS:
                    raise refuse(spot, f"the owner must be a system{_did_you_mean(str(owner), known)} "
                                       f"(known: {', '.join(known)})")
                owners[(system, str(record_type), field_name)] = owner
    return FieldOwnership(owners, name)


def _did_you_mean(given: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(given, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
