"""The check of a mapping's ``target_field`` paths against the fields its ``to:`` system knows of the record type.

A typo in a target field (``memoo``, ``item.items[].quantiy``) is otherwise found only by the ERP, one dead
letter per event. The system lists its record types' fields (``System.record_fields``); a record type it does not
list is not checked, and custom fields (``custbody_…``, ``custcol_…``, ``custentity_…``, ``custitem_…``) are the
account's own, so always accepted. Works on the file's raw data, so it reports even when other keys are invalid.
"""

from __future__ import annotations

import re
from typing import Any

from erpsync.mapping.config import did_you_mean
from erpsync.mapping.paths import FieldPath

# After a reference field: its internal id, external id or name (NetSuite's REST references).
REFERENCE_KEYS = frozenset({"id", "externalId", "refName"})
_CUSTOM = re.compile(r"^cust[a-z]*_[A-Za-z0-9_]+$")


def target_field_problems(data: Any) -> list[str]:
    """``fields[N].target_field: …`` for each target the record type does not have, with the close name."""
    if not isinstance(data, dict) or not isinstance(data.get("record_type"), str):
        return []
    from erpsync.systems import DEFAULT_TARGET, SYSTEMS

    system = SYSTEMS.get(data.get("to") or DEFAULT_TARGET)
    if system is None or not system.record_fields:
        return []
    record_type = data["record_type"]
    known = system.record_fields.get(record_type)
    if known is None:
        same = [t for t in system.record_fields if t.lower() == record_type.lower()]
        return [f"record_type: {system.title or system.name} has no record type {record_type!r}"
                f" (did you mean {same[0]!r}?)"] if same else []
    rules = data.get("fields")
    problems = []
    for n, rule in enumerate(rules if isinstance(rules, list) else []):
        text = rule.get("target_field") if isinstance(rule, dict) else None
        try:
            path = FieldPath.parse(text)
        except ValueError:
            continue  # not a path: the file's validation says so
        hint = _unknown(path, known)
        if hint is not None:
            problems.append(f"fields[{n}].target_field: {path.text!r} is not a field of a"
                            f" {system.title or system.name} {record_type}{hint}")
    return problems


def _unknown(path: FieldPath, known: frozenset[str]) -> str | None:
    """None when the record has the path; else the hint: the close name, or what is wrong and what is allowed."""
    keys = [s.key for s in path.segments]
    for i, key in enumerate(keys):
        if _CUSTOM.match(key):
            return None  # the account's custom field, at the body or in a sublist or subrecord we know
        if ".".join(keys[: i + 1]) in known:
            continue
        parent = ".".join(keys[:i])
        if i and parent in known and key in REFERENCE_KEYS and i == len(keys) - 1:
            return None
        names = {k.split(".")[i] for k in known if k.count(".") >= i and (not parent or k.startswith(parent + "."))}
        if i and parent in known:
            names |= REFERENCE_KEYS
        close = did_you_mean(key, names, show_all=False)
        if close:
            segments = [str(s) for s in path.segments]
            segments[i] = segments[i].replace(key, close.removeprefix(" (did you mean '").removesuffix("'?)"), 1)
            return f" (did you mean {'.'.join(segments)!r}?)"
        where = f" under {'.'.join(str(s) for s in path.segments[:i])!r}" if i else ""
        return (f": nothing called {key!r}{where}; a custom field starts custbody_, custcol_, custentity_ or"
                f" custitem_ (docs/mapping-format.md)")
    return None
