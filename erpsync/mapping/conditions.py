"""``when:`` conditions of a field rule: a small declarative test of source fields, never code.

    when: {field: financial_status, equals: paid}
    when: {field: financial_status, in: [paid, partially_paid]}
    when: {field: line_items[].gift_card, equals: false}       # per line: [] is the rule's own line
    when: {field: note, exists: true}
    when: {field: sku, matches: '^GIFT-'}
    when: {not: {field: test, equals: true}}
    when: {all: [{...}, {...}]}     when: {any: [{...}, {...}]}

A path's leading ``[]`` are bound to the position of the value being mapped (``line_items[2]`` tests
``line_items[2].gift_card``); a further ``[]`` means "any element". A field test holds when any value it
reaches passes (``exists: false``: when none exists). A missing or null value equals nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from erpsync.mapping.paths import MISSING, FieldPath, PathText, read

_TESTS = ("equals", "in_", "exists", "matches")


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: PathText | None = Field(None, description="the source path tested")
    equals: Any = None
    in_: list[Any] | None = Field(None, alias="in", min_length=1)
    exists: bool | None = None
    matches: str | None = Field(None, description="a regular expression searched in the (text) value")
    not_: Condition | None = Field(None, alias="not")
    all: list[Condition] | None = Field(None, min_length=1)
    any: list[Condition] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        combinators = [k for k in ("not_", "all", "any") if getattr(self, k) is not None]
        tests = [k for k in _TESTS if k in self.model_fields_set]
        if combinators:
            if len(combinators) > 1 or tests or self.field is not None:
                raise ValueError("a condition is one of: a field test, not, all, any")
            return self
        if self.field is None:
            raise ValueError("set field (with equals, in, exists or matches), or not / all / any")
        if len(tests) != 1:
            raise ValueError("a field test needs exactly one of equals, in, exists, matches")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches: bad regular expression: {exc}") from None
        return self

    def paths(self) -> list[FieldPath]:
        """Every source path the condition reads (for drift reports and load-time checks)."""
        if self.field is not None:
            return [self.field]
        children = [self.not_] if self.not_ is not None else (self.all or self.any or [])
        return [path for child in children for path in child.paths()]

    def holds(self, payload: Mapping[str, Any], indices: tuple[int, ...] = ()) -> bool:
        if self.not_ is not None:
            return not self.not_.holds(payload, indices)
        if self.all is not None:
            return all(c.holds(payload, indices) for c in self.all)
        if self.any is not None:
            return any(c.holds(payload, indices) for c in self.any)
        assert self.field is not None
        values = [f.value for f in read(payload, self.field.bound(indices)) if f.value is not MISSING]
        if self.exists is not None:
            return bool(values) == self.exists
        if self.matches is not None:
            pattern = re.compile(self.matches)
            return any(isinstance(v, str) and pattern.search(v) is not None for v in values)
        options = self.in_ if self.in_ is not None else [self.equals]
        return any(_same(v, option) for v in values for option in options)


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: true is not 1, but 1 and 1.0 are the same number."""
    if isinstance(value, bool) != isinstance(expected, bool):
        return False
    return bool(value == expected)
