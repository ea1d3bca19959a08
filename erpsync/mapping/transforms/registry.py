"""The registry of named transforms: ``@transform(name, Params)`` on a ``(value, params, context) -> value`` function.

Each transform has a pydantic model of its parameters (``extra="forbid"``), so a mapping file is checked
against the registry when it is loaded, and a docstring whose ``Example:`` blocks (YAML: ``transform``,
``input``, ``output`` or ``error``) are shown in docs/transforms.md and run by the unit tests.

Error messages never contain the value being transformed (it may be customer data), except where the
value is a code an operator needs to see to act (a SKU, a status, a currency code).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from erpsync.errors import MappingError
from erpsync.mapping.lookup_tables import LookupTable
from erpsync.mapping.xref_resolvers import XrefResolver


class TransformParams(BaseModel):
    """Base of every transform's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def tables_used(self) -> frozenset[str]:
        """Names of the lookup tables these parameters refer to; checked against the mapping's ``lookups``."""
        return frozenset()

    def mappings_used(self) -> frozenset[str]:
        """Names of other mapping files (beside this one) these parameters refer to; checked when it loads."""
        return frozenset()


class NoParams(TransformParams):
    pass


@dataclass(frozen=True)
class TransformContext:
    """What a transform sees besides its value: where the value came from, tables, ERP ids, the account zone."""

    field: str  # the concrete source path, e.g. line_items[2].sku; every error names it
    tables: Mapping[str, LookupTable] = field(default_factory=dict)
    xref: XrefResolver | None = None
    timezone: str | None = None  # the file's `timezone:` (the ERP account's), if any
    # The whole source payload and the mapping file being applied: erp_lookup's `create:` builds a record
    # from another part of the payload with a mapping beside this one.
    payload: Mapping[str, Any] | None = None
    mapping_path: Path | None = None

    def fail(self, message: str) -> MappingError:
        return MappingError(message, field=self.field)


TransformFunc = Callable[[Any, Any, TransformContext], Any]


@dataclass(frozen=True)
class TransformSpec:
    name: str
    func: TransformFunc
    params: type[TransformParams]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return self.doc.partition("\n")[0]

    @property
    def description(self) -> str:
        """The docstring without its ``Example:`` blocks."""
        lines, _ = _split_examples(self.doc)
        return "\n".join(lines).strip()

    @property
    def examples(self) -> list[dict[str, Any]]:
        """The docstring's ``Example:`` blocks, each a dict with transform, input and output or error."""
        _, examples = _split_examples(self.doc)
        return examples


TRANSFORMS: dict[str, TransformSpec] = {}


def transform(name: str, params: type[TransformParams] = NoParams) -> Callable[[TransformFunc], TransformFunc]:
    """Register ``func`` under ``name``."""

    def register(func: TransformFunc) -> TransformFunc:
        if name in TRANSFORMS:
            raise RuntimeError(f"transform {name!r} registered twice")
        TRANSFORMS[name] = TransformSpec(name, func, params)
        return func

    return register


def known_transforms() -> str:
    return ", ".join(sorted(TRANSFORMS))


def kind(value: Any) -> str:
    """A value's JSON-ish type name, for messages that must not quote the value."""
    return type(value).__name__


def _split_examples(doc: str) -> tuple[list[str], list[dict[str, Any]]]:
    text_lines: list[str] = []
    examples: list[dict[str, Any]] = []
    block: list[str] | None = None
    for line in doc.splitlines() + [""]:
        if block is not None:
            if line.startswith((" ", "\t")) and line.strip():
                block.append(line)
                continue
            examples.append(yaml.safe_load(textwrap.dedent("\n".join(block))))
            block = None
        if line.strip() == "Example:":
            block = []
        else:
            text_lines.append(line)
    return text_lines, examples
