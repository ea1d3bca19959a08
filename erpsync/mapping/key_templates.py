"""String templates such as ``shopify-order-{id}``: literal text with source fields substituted, nothing else.

Why not ``str.format`` or Jinja: a mapping file is data edited by operators, and an external id needs
substitution only. ``str.format`` would resolve ``{id.__class__}`` through Python attributes, and even a
sandboxed Jinja environment brings expressions, filters and loops that a key does not need and that a
reviewer has to reason about. Here ``string.Formatter().parse`` only splits the text; every ``{...}`` must be a
plain field path (``customer.id``, ``line_items[0].sku``), read from the payload by the mapping's own path
reader; format specs, conversions and ``[]`` are refused at load time.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erpsync.errors import MappingError
from erpsync.mapping.paths import MISSING, FieldPath, read


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[str | FieldPath, ...]

    @classmethod
    def parse(cls, text: object) -> Template:
        if isinstance(text, Template):
            return text
        if not isinstance(text, str) or not text:
            raise ValueError("expected a template such as 'shopify-order-{id}'")
        if "{{" in text or "{%" in text:
            raise ValueError(f"bad template {text!r}: '{{{{' is Jinja syntax; key templates take {{field}}")
        parts: list[str | FieldPath] = []
        try:
            pieces = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"bad template {text!r}: {exc}") from None
        for literal, name, spec, conversion in pieces:
            if literal:
                parts.append(literal)
            if name is None:
                continue
            if spec or conversion:
                raise ValueError(f"bad template {text!r}: only {{field}} is allowed, no '!' or ':'")
            path = FieldPath.parse(name)
            if path.iterations:
                raise ValueError(f"bad template {text!r}: {name!r} iterates a list ([]); use [N]")
            parts.append(path)
        return cls(text, tuple(parts))

    @property
    def fields(self) -> tuple[FieldPath, ...]:
        return tuple(p for p in self.parts if isinstance(p, FieldPath))

    def render(self, payload: Mapping[str, Any]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            (found,) = read(payload, part)
            value = found.value
            if value is MISSING:
                raise MappingError("required source field is missing", field=found.where)
            if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
                raise MappingError(
                    f"a template needs text or a number, found {type(value).__name__}", field=found.where
                )
            out.append(str(value))
        return "".join(out)
