"""Field paths of the mapping language: `customer.id`, `line_items[].sku`, `item.items[].item.id`, `tax_lines[0].rate`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator

from erpsync.errors import MappingError

_SEGMENT = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<index>\d*)\])?$")


class _Missing:
    """The marker for a source value that is absent or null (Shopify sends null for "not set")."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Segment:
    key: str
    each: bool = False  # `key[]`: every element of the list
    index: int | None = None  # `key[3]`: one element

    def __str__(self) -> str:
        if self.each:
            return f"{self.key}[]"
        if self.index is not None:
            return f"{self.key}[{self.index}]"
        return self.key


@dataclass(frozen=True)
class FieldPath:
    """A parsed path; ``[]`` segments iterate a list, and each one adds one index to a value's position."""

    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, text: object) -> FieldPath:
        if isinstance(text, FieldPath):
            return text
        if not isinstance(text, str) or not text:
            raise ValueError("expected a path such as 'line_items[].sku'")
        segments = []
        for part in text.split("."):
            match = _SEGMENT.match(part)
            if match is None:
                raise ValueError(
                    f"bad path {text!r}: segment {part!r} is not a name, name[] or name[N]"
                )
            index = match.group("index")
            if index is None:
                segments.append(Segment(match.group("key")))
            elif index == "":
                segments.append(Segment(match.group("key"), each=True))
            else:
                segments.append(Segment(match.group("key"), index=int(index)))
        return cls(text, tuple(segments))

    def __str__(self) -> str:
        return self.text

    @property
    def iterations(self) -> int:
        """How many ``[]`` the path has: a value read through it has that many indices."""
        return sum(1 for s in self.segments if s.each)

    @property
    def shape(self) -> tuple[str, ...]:
        """The path with list positions erased, to compare where two targets write."""
        out: list[str] = []
        for s in self.segments:
            out.append(s.key)
            if s.each:
                out.append("[]")
            elif s.index is not None:
                out.append(f"[{s.index}]")
        return tuple(out)

    def bound(self, indices: tuple[int, ...]) -> FieldPath:
        """The path with its first ``[]`` segments fixed to ``indices`` (a line's own position)."""
        if not indices:
            return self
        pending = list(indices)
        segments = []
        for seg in self.segments:
            if seg.each and pending:
                seg = Segment(seg.key, index=pending.pop(0))
            segments.append(seg)
        return FieldPath(".".join(str(s) for s in segments), tuple(segments))

    def list_prefixes(self) -> tuple[tuple[str, ...], ...]:
        """The shape up to each ``[]``: which lists the path iterates, outermost first."""
        shape = self.shape
        return tuple(shape[: i + 1] for i, part in enumerate(shape) if part == "[]")

    def list_prefix(self) -> tuple[str, ...]:
        """The shape up to and including the last ``[]`` (what decides a list's length)."""
        shape = self.shape
        last = max(i for i, part in enumerate(shape) if part == "[]")
        return shape[: last + 1]


# A path as a pydantic field of a mapping file: parsed, or a "bad path" error at that key.
PathText = Annotated[FieldPath, BeforeValidator(FieldPath.parse)]


@dataclass(frozen=True)
class Found:
    """One value read from a payload: where it was (concrete, with indices) and its ``[]`` positions."""

    where: str
    indices: tuple[int, ...]
    value: Any


def read(payload: Any, path: FieldPath) -> list[Found]:
    """Every value ``path`` reaches in ``payload``; absent or null ends as ``MISSING`` at its concrete place."""
    return list(_read(payload, path.segments, 0, "", ()))


def _join(prefix: str, text: str) -> str:
    return f"{prefix}.{text}" if prefix else text


def _rest(segments: tuple[Segment, ...], start: int) -> str:
    return ".".join(str(s) for s in segments[start:])


def _read(
    node: Any, segments: tuple[Segment, ...], i: int, where: str, indices: tuple[int, ...]
) -> Iterator[Found]:
    if i == len(segments):
        yield Found(where, indices, node)
        return
    seg = segments[i]
    if not isinstance(node, Mapping):
        # The value itself is not reported: it may be customer data.
        raise MappingError(
            f"expected an object, found {type(node).__name__}", field=where or "(payload)"
        )
    child = node.get(seg.key)
    if child is None:
        yield Found(_join(where, _rest(segments, i)), indices, MISSING)
        return
    here = _join(where, seg.key)
    if not seg.each and seg.index is None:
        yield from _read(child, segments, i + 1, here, indices)
        return
    if not isinstance(child, list):
        raise MappingError(f"expected a list, found {type(child).__name__}", field=here)
    if seg.index is not None:
        if seg.index >= len(child) or child[seg.index] is None:
            rest = _rest(segments, i + 1)
            yield Found(_join(f"{here}[{seg.index}]", rest), indices, MISSING)
            return
        yield from _read(child[seg.index], segments, i + 1, f"{here}[{seg.index}]", indices)
        return
    for n, element in enumerate(child):
        if element is None:
            yield Found(_join(f"{here}[{n}]", _rest(segments, i + 1)), (*indices, n), MISSING)
            continue
        yield from _read(element, segments, i + 1, f"{here}[{n}]", (*indices, n))


def write(body: dict[str, Any], path: FieldPath, indices: tuple[int, ...], value: Any) -> None:
    """Set ``value`` at ``path`` in ``body``, creating objects and list elements on the way.

    Each ``[]`` of the path takes the next of ``indices``, so `line_items[2]` lands in `items[2]`.
    """
    node: Any = body
    pending = list(indices)
    last = len(path.segments) - 1
    for i, seg in enumerate(path.segments):
        if seg.each or seg.index is not None:
            position = pending.pop(0) if seg.each else seg.index
            assert position is not None
            items = node.setdefault(seg.key, [])
            if not isinstance(items, list):
                raise MappingError("target already holds a non-list value", field=path.text)
            while len(items) <= position:
                items.append({})
            if i == last:
                items[position] = value
                return
            node = items[position]
        else:
            if i == last:
                node[seg.key] = value
                return
            node = node.setdefault(seg.key, {})
        if not isinstance(node, dict):
            raise MappingError("target already holds a non-object value", field=path.text)


def positions(body: Mapping[str, Any], path: FieldPath) -> list[tuple[int, ...]]:
    """The index tuples of the list elements already present along ``path``'s ``[]`` segments.

    A constant aimed at `item.items[].taxCode.id` goes to every line the other fields created.
    """
    each_at = [i for i, seg in enumerate(path.segments) if seg.each]
    if not each_at:
        return [()]
    stop = each_at[-1] + 1
    found: list[tuple[int, ...]] = []

    def walk(node: Any, i: int, indices: tuple[int, ...]) -> None:
        if i == stop:
            found.append(indices)
            return
        if not isinstance(node, Mapping):
            return
        seg = path.segments[i]
        child = node.get(seg.key)
        if seg.each:
            if isinstance(child, list):
                for n, element in enumerate(child):
                    walk(element, i + 1, (*indices, n))
        elif seg.index is not None:
            if isinstance(child, list) and seg.index < len(child):
                walk(child[seg.index], i + 1, indices)
        elif child is not None:
            walk(child, i + 1, indices)

    walk(body, 0, ())
    return found
