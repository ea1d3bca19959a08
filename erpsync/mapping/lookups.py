"""Lookup tables: small two-column CSV files (e.g. SKU → ERP item id) that a mapping reads at load time."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path


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
        """Read and check the table; raises ValueError with a message naming the file and line."""
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {display}: {exc.strerror or exc}") from None
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError(f"{display}: not UTF-8 text") from None
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            raise ValueError(f"{display}: empty file, expected a header row such as 'sku,item_id'")
        header = [h.strip() for h in header]
        key_column = key_column or header[0]
        value_column = value_column or (header[1] if len(header) > 1 else "")
        for wanted in (key_column, value_column):
            if wanted not in header:
                raise ValueError(f"{display}: no column {wanted!r} (header: {', '.join(header)})")
        k, v = header.index(key_column), header.index(value_column)
        rows: dict[str, str] = {}
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
                raise ValueError(f"{display}: line {line}: duplicate key {key!r}")
            rows[key] = value
        return cls(name, path, display, key_column, value_column, rows, content)
