"""Oracle-style date functions SuiteQL queries use (TO_TIMESTAMP, TO_DATE, TO_CHAR), for the ERP sandbox's SQLite.

NetSuite compares ``lastmodifieddate`` with a timestamp built from a string and a format mask
(``TO_TIMESTAMP('2026-11-27 00:00:00', 'YYYY-MM-DD HH24:MI:SS')``) and formats one back with ``TO_CHAR``;
a plain string is not a timestamp there. The sandbox stores timestamps as ISO 8601 UTC text with
milliseconds (``2026-11-27T10:00:00.123Z``), which sorts in time order, so these functions turn a masked
string into that form and back. The sandbox's session time zone is UTC.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime

# Oracle format elements we understand, longest first so HH24 is not read as HH then 24.
_ELEMENTS = {
    "YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "MI": "%M", "SS": "%S",
    "FF3": "%f3", "FF6": "%f6", "FF": "%f6",
}
_TOKEN = re.compile(r'"[^"]*"|YYYY|HH24|FF3|FF6|FF|MM|DD|MI|SS|[-/:., ]', re.IGNORECASE)


class MaskError(ValueError):
    """A format mask with an element the sandbox does not know (NetSuite answers ORA-01821 then)."""


def _tokens(mask: str) -> list[str]:
    tokens, position = [], 0
    while position < len(mask):
        match = _TOKEN.match(mask, position)
        if match is None:
            raise MaskError(f"date format not recognized at {mask[position:]!r}")
        tokens.append(match.group(0))
        position = match.end()
    return tokens


def _pattern(mask: str) -> tuple[re.Pattern[str], list[str]]:
    parts, fields = [], []
    for token in _tokens(mask):
        upper = token.upper()
        if token.startswith('"'):
            parts.append(re.escape(token[1:-1]))
        elif upper in _ELEMENTS:
            digits = {"YYYY": 4, "FF3": 3, "FF6": 6, "FF": 9}.get(upper, 2)
            parts.append(f"(\\d{{1,{digits}}})")
            fields.append(upper)
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts) + r"\Z"), fields


def parse_masked(value: str, mask: str) -> datetime:
    """``value`` read with the Oracle ``mask`` as a UTC datetime (missing parts are 0, a date is its midnight)."""
    pattern, fields = _pattern(mask)
    match = pattern.match(value.strip())
    if match is None:
        raise MaskError(f"literal does not match format string: {value!r}")
    found = dict(zip(fields, match.groups()))
    fraction = next((found[key] for key in ("FF3", "FF6", "FF") if key in found), "0")
    return datetime(
        int(found.get("YYYY", 1970)), int(found.get("MM", 1)), int(found.get("DD", 1)),
        int(found.get("HH24", 0)), int(found.get("MI", 0)), int(found.get("SS", 0)),
        int((fraction + "000000")[:6]), tzinfo=UTC,
    )


def format_masked(moment: datetime, mask: str) -> str:
    """``moment`` written with the Oracle ``mask``."""
    out = []
    for token in _tokens(mask):
        upper = token.upper()
        if token.startswith('"'):
            out.append(token[1:-1])
        elif upper in ("FF3", "FF6", "FF"):
            out.append(f"{moment.microsecond:06d}"[: 3 if upper == "FF3" else 6])
        elif upper in _ELEMENTS:
            out.append(moment.strftime(_ELEMENTS[upper]))
        else:
            out.append(token)
    return "".join(out)


def stored(moment: datetime) -> str:
    """The sandbox's stored form of a timestamp: ISO 8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _from_stored(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _to_timestamp(value: str | None, mask: str | None = None) -> str | None:
    if value is None:
        return None
    if mask is None:
        # Without a mask Oracle uses the session's NLS format; only our own stored form is accepted here.
        return stored(_from_stored(str(value)))
    return stored(parse_masked(str(value), mask))


def _to_char(value: object, mask: str | None = None) -> str | None:
    if value is None:
        return None
    if mask is None or not isinstance(value, str):
        return str(value)
    try:
        moment = _from_stored(value)
    except ValueError:
        return value  # not a timestamp: TO_CHAR of text is the text
    return format_masked(moment, mask)


def _guarded(function):
    def call(*args):
        try:
            return function(*args)
        except MaskError as error:
            # Raised inside SQLite as an OperationalError, which the SuiteQL endpoint answers as a search error.
            raise sqlite3.OperationalError(str(error)) from None
    return call


def register(connection: sqlite3.Connection) -> None:
    """Make TO_TIMESTAMP, TO_DATE and TO_CHAR callable in queries on ``connection``."""
    for name in ("TO_TIMESTAMP", "TO_DATE"):
        connection.create_function(name, 1, _guarded(_to_timestamp), deterministic=True)
        connection.create_function(name, 2, _guarded(_to_timestamp), deterministic=True)
    connection.create_function("TO_CHAR", 1, _guarded(_to_char), deterministic=True)
    connection.create_function("TO_CHAR", 2, _guarded(_to_char), deterministic=True)
