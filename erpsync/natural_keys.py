"""Values looked up by natural key (an item by SKU, a customer by email): which may be asked, which are personal.

Neutral ground for the core and every system's ``find_id``: imported by erpsync/mapping/xref_resolvers.py and by a
system's query builder, so it imports nothing of either.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from erpsync.errors import MappingError

# Fields whose values are personal data: an error names the field, never the value.
PERSONAL_FIELDS = frozenset({"email", "entityid", "companyname"})
# Longer than any key erpsync looks up (an email is at most 254 characters, an item name 250 in the ERP).
MAX_VALUE_LENGTH = 300


def check_lookup_value(value: str, field: str) -> str:
    """``value`` if any system could be asked for it: not empty, not overlong, no control character.

    A MappingError otherwise, naming the field (a personal field's value is never shown). Checked before the
    ledger's cache is asked too: a NUL byte is no text PostgreSQL can compare.
    """
    shown = f"this {field}" if field in PERSONAL_FIELDS else f"{field} {value[:40]!r}"
    if not value:
        raise MappingError(f"an empty {field} cannot be looked up")
    if len(value) > MAX_VALUE_LENGTH:
        raise MappingError(f"{shown} is longer than {MAX_VALUE_LENGTH} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise MappingError(f"{shown} holds a control character")
    return value


def check_natural_key(keys: Mapping[str, frozenset[str]], record_type: str, field: str) -> None:
    """ValueError unless ``keys`` (a system's natural keys) allow ``record_type.field``, with the close name.

    The only guard before the names reach a system's query text."""
    if record_type not in keys:
        close = difflib.get_close_matches(record_type, keys, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(keys))}"
        raise ValueError(f"unknown ERP record {record_type!r} ({hint})")
    allowed = keys[record_type]
    if field not in allowed:
        close = difflib.get_close_matches(field, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(allowed))}"
        raise ValueError(f"{record_type!r} cannot be looked up by {field!r} ({hint})")
