"""Lookup tables: small two-column CSV files (e.g. SKU → ERP item id) that a mapping reads at load time.

A mapping names its tables by path, and a mapping is data that people who may not run code edit: a path must
not reach beyond the mapping's folder (``../../proc/self/environ``, an absolute path, a link pointing out), and
no error may quote what a file holds, since a run's error reaches the ledger and the logs.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_TABLE_BYTES = 16 * 1024 * 1024  # a SKU table of 100,000 rows is about 3 MiB


def confined(folder: Path, relative: str) -> Path:
    """``folder / relative`` with every link resolved, if it stays inside ``folder`` (also resolved);
    ValueError otherwise. The file need not exist yet: reading it reports that."""
    try:
        root = folder.resolve()
        target = (root / relative).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop of links (Python 3.11)
        raise ValueError(f"path {relative!r} cannot be resolved (a loop of links?)") from None
    if target != root and root not in target.parents:
        raise ValueError(f"path {relative!r} leads outside the mapping's folder; a file a mapping names must be"
                         " in that folder or below it (links are followed before this check)")
    return target


def read_regular_file(path: Path, display: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ValueError naming ``display`` otherwise.

    Not a FIFO or a device (reading one could block or never end), and the size checked before reading."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"cannot read {display}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{display}: not a regular file")
        if info.st_size > limit:
            raise ValueError(f"{display}: {info.st_size} bytes, more than the {limit} allowed")
        content = file.read(limit + 1)
    if len(content) > limit:  # it grew while being read
        raise ValueError(f"{display}: more than the {limit} bytes allowed")
    return content


@dataclass(frozen=True)
class LookupTable:
    name: str
    path: Path
    display: str  # how messages name the file: relative to the working directory when possible
    key_column: str
    value_column: str
    rows: dict[str, str] = field(repr=False)
    content: bytes = field(repr=False)  # the exact bytes, part of the mapping's version hash

    def get(self, key: str) -> str | None:
        return self.rows.get(key)

    @classmethod
    def load(
        cls,
        name: str,
        path: Path,
        display: str,
        key_column: str | None = None,
        value_column: str | None = None,
    ) -> LookupTable:
        """Read and check the table; raises ValueError with a message naming the file, line and column, never
        quoting a cell (``path`` is trusted here: ``confined`` is the loader's check)."""
        content = read_regular_file(path, display, MAX_TABLE_BYTES)
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError(f"{display}: not UTF-8 text") from None
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            key_column, value_column, rows = _read_rows(reader, display, key_column, value_column)
        except csv.Error as exc:  # e.g. "line contains NUL": the reason, never the text
            raise ValueError(f"{display}: line {reader.line_num}: not CSV ({exc})") from None
        return cls(name, path, display, key_column, value_column, rows, content)


def _read_rows(
    reader: Any, display: str, key_column: str | None, value_column: str | None
) -> tuple[str, str, dict[str, str]]:
    """The key and value columns, and the rows by key (ValueError naming the line, never a cell)."""
    header = next(reader, None)
    if not header:
        raise ValueError(f"{display}: empty file, expected a header row such as 'sku,item_id'")
    header = [h.strip() for h in header]
    key_column = key_column or header[0]
    value_column = value_column or (header[1] if len(header) > 1 else "")
    for wanted in (key_column, value_column):
        if wanted not in header:
            # The header is the file's content: name only a column close to the one asked for, which
            # cannot reveal what an unrelated file holds.
            close = difflib.get_close_matches(wanted, header, n=1, cutoff=0.75) if wanted else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            count = f"{len(header)} column{'s' if len(header) != 1 else ''}"
            raise ValueError(f"{display}: no column {wanted!r} in its first row ({count}){hint}")
    k, v = header.index(key_column), header.index(value_column)
    rows: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise ValueError(f"{display}: line {line}: {len(record)} cells, header has {len(header)}")
        key, value = record[k].strip(), record[v].strip()
        if not key or not value:
            raise ValueError(f"{display}: line {line}: empty {key_column if not key else value_column}")
        if key in rows:
            raise ValueError(f"{display}: line {line}: duplicate key (also on line {first_line[key]})")
        rows[key] = value
        first_line[key] = line
    return key_column, value_column, rows
