"""How the ERP sandbox applies a write to a record's sublists, the way NetSuite's REST record API does.

Oracle, "Updating a Sublist" (https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1545295601.html):
on an update, lines of a keyed sublist "are updated if the line contains matching keys, and the remaining lines
from the request are added" — a line without a key is appended, it never replaces anything. Oracle, "Replacing
a Sublist" (section_1545297048.html): only with ``?replace=<sublist>`` are the existing lines the request does
not name removed. The item sublist of a transaction is keyed by ``line``, NetSuite's own line number, which
the system assigns and never re-uses (Oracle, "Sublist Line Numbers", section_N3443715.html: lines are not
re-indexed when others are added or removed). An upsert (``PUT …/eid:X``) of a record that exists is an update
(Oracle, "Using the Upsert Operation"), so these rules hold for it too.

Every sublist is treated as keyed by ``line`` here; header fields the request leaves out keep their values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erpsync_dev.sandboxes.netsuite.totals import decimal

_LINE_PATH = re.compile(r"^(?P<sublist>\w+)\.items\[(?P<index>\d+)\]")


@dataclass(frozen=True)
class LineRefusal:
    """A line change NetSuite refuses: its error code, detail and path in the request."""

    code: str
    detail: str
    path: str


@dataclass
class Merged:
    body: dict[str, Any]
    next_line: int
    # (sublist, index in the merged body) → index of the same line in the request, for error paths.
    origins: dict[tuple[str, int], int] = field(default_factory=dict)

    def request_path(self, path: str | None) -> str | None:
        """A path into the merged body (``item.items[3].item``) as a path into the request that caused it."""
        if path is None:
            return None
        match = _LINE_PATH.match(path)
        if match is None:
            return path
        origin = self.origins.get((match["sublist"], int(match["index"])))
        if origin is None:
            return path
        return f"{match['sublist']}.items[{origin}]{path[match.end():]}"


def sublists(body: dict[str, Any]) -> list[str]:
    """The keys of ``body`` that hold a sublist (``{"items": [...]}``)."""
    return [key for key, value in body.items() if isinstance(value, dict) and isinstance(value.get("items"), list)]


def line_number(line: Any) -> Any:
    return line.get("line") if isinstance(line, dict) else None


def create(body: dict[str, Any]) -> Merged | LineRefusal:
    """A new record: its lines numbered 1…n in each sublist; a ``line`` in the request names nothing."""
    merged = dict(body)
    next_line = 1
    origins: dict[tuple[str, int], int] = {}
    for name in sublists(body):
        lines = []
        for index, line in enumerate(body[name]["items"]):
            if not isinstance(line, dict):
                return LineRefusal("INVALID_CONTENT", _not_an_object(name), f"{name}.items[{index}]")
            if line_number(line) is not None:
                return _no_such_line(name, index, line_number(line))
            lines.append({**line, "line": next_line})
            origins[(name, len(lines) - 1)] = index
            next_line += 1
        merged[name] = {**body[name], "items": lines}
    return Merged(merged, max(next_line, 1), origins)


def update(
    stored: dict[str, Any],
    request: dict[str, Any],
    *,
    replace: frozenset[str],
    next_line: int,
    fulfilled: dict[int, Decimal] | None = None,
) -> Merged | LineRefusal:
    """``stored`` changed by ``request``: header fields replaced, sublist lines matched by ``line``.

    ``replace``: the sublists (by name, case-insensitive) whose unnamed existing lines are removed.
    ``fulfilled``: quantity fulfilled by item fulfillments, by line of ``item``; such a line cannot be removed
    nor its quantity set below what was shipped (NetSuite keeps the fulfilment's link to the order line).
    """
    merged = {**stored}
    origins: dict[tuple[str, int], int] = {}
    replaced = {name.lower() for name in replace}
    request_sublists = set(sublists(request))
    for key, value in request.items():
        if key not in request_sublists:
            merged[key] = value
            continue
        existing_key = next((k for k in stored if k.lower() == key.lower()), key)
        existing_value = stored.get(existing_key)
        existing = list(existing_value["items"]) if isinstance(existing_value, dict) and isinstance(
            existing_value.get("items"), list) else []
        by_number = {line.get("line"): position for position, line in enumerate(existing)}
        kept: dict[int, tuple[int, dict[str, Any]]] = {}
        added: list[tuple[int | None, dict[str, Any]]] = []
        for index, line in enumerate(value["items"]):
            if not isinstance(line, dict):
                return LineRefusal("INVALID_CONTENT", _not_an_object(key), f"{key}.items[{index}]")
            number = line_number(line)
            if number is None:
                added.append((index, {**line, "line": next_line}))
                next_line += 1
                continue
            if isinstance(number, bool) or not isinstance(number, int) or number not in by_number:
                return _no_such_line(key, index, number)
            position = by_number[number]
            updated = {**existing[position], **line}
            shipped = (fulfilled or {}).get(number, Decimal(0)) if key.lower() == "item" else Decimal(0)
            quantity = decimal(updated.get("quantity"))
            if shipped and quantity is not None and quantity < shipped:
                detail = (f"Error while accessing a resource. The quantity of line {number} cannot be less than "
                          f"the quantity already fulfilled ({shipped}).")
                return LineRefusal("USER_ERROR", detail, f"{key}.items[{index}].quantity")
            kept[position] = (index, updated)
        if key.lower() in replaced:
            removed = [line for position, line in enumerate(existing) if position not in kept]
            if key.lower() == "item":
                for line in removed:
                    if (fulfilled or {}).get(line.get("line"), Decimal(0)) > 0:
                        detail = (f"Error while accessing a resource. Line {line.get('line')} has been fulfilled "
                                  "and cannot be removed; close it instead (isClosed).")
                        return LineRefusal("USER_ERROR", detail, f"{key}.items")
            result: list[tuple[int | None, dict[str, Any]]] = [kept[position] for position in sorted(kept)]
        else:
            result = [kept.get(position, (None, line)) for position, line in enumerate(existing)]
        result.extend(added)
        lines = []
        for origin, line in result:
            if origin is not None:
                origins[(existing_key, len(lines))] = origin
            lines.append(line)
        container = existing_value if isinstance(existing_value, dict) else {}
        merged.pop(key, None)
        merged[existing_key] = {**container, **value, "items": lines}
    return Merged(merged, next_line, origins)


def _no_such_line(sublist: str, index: int, number: Any) -> LineRefusal:
    # The number is NetSuite's own line id, no customer data.
    detail = (f"Error while accessing a resource. You have entered an Invalid Field Value {number} for the "
              f"following field: line (no such line on the {sublist} sublist)")
    return LineRefusal("INVALID_CONTENT", detail, f"{sublist}.items[{index}].line")


def _not_an_object(sublist: str) -> str:
    return f"Invalid content in the request body: each line of the {sublist} sublist must be an object."
