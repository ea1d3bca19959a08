"""The field paths a payload holds (``line_items[].sku``), to compare with the ones a mapping reads or ignores (drift
reports)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from erpsync.mapping.paths import FieldPath

Shape = tuple[str, ...]  # ("line_items", "[]", "sku"): keys, and "[]" for any list position


def normalised_shape(path: FieldPath) -> Shape:
    """A path's shape with ``[N]`` read as ``[]``: reading ``line_items[0].sku`` reads the field ``line_items[].sku``."""
    out: list[str] = []
    for seg in path.segments:
        out.append(seg.key)
        if seg.each or seg.index is not None:
            out.append("[]")
    return tuple(out)


def covers(shape: Shape, leaf: Shape) -> bool:
    """Whether reading or ignoring the field at ``shape`` accounts for the payload's ``leaf``: the leaf is the field or
    lies under it (``tax_lines`` covers ``tax_lines[].rate``), or the leaf is an empty or null container on the way to
    it (``customer: null`` where ``customer.id`` is named)."""
    return leaf[: len(shape)] == shape or shape[: len(leaf)] == leaf


def leaf_paths(payload: Any) -> set[Shape]:
    """Every leaf of a JSON value: scalars, nulls, and empty objects or lists (whose insides are unknown)."""
    return set(_leaves(payload, ()))


def _leaves(node: Any, here: Shape) -> Iterator[Shape]:
    if isinstance(node, Mapping):
        if not node and here:
            yield here
        for key, child in node.items():
            yield from _leaves(child, (*here, str(key)))
    elif isinstance(node, list):
        if not node:
            yield (*here, "[]")
        for element in node:
            yield from _leaves(element, (*here, "[]"))
    elif here:
        yield here


def shape_text(shape: Shape) -> str:
    """``("line_items", "[]", "sku")`` → ``line_items[].sku``."""
    out = ""
    for part in shape:
        if part == "[]":
            out += "[]"
        else:
            out += f".{part}" if out else part
    return out
