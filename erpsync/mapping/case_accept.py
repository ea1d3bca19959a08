"""``erpsync mapping test --accept``: a failed case's ``expected:`` (or ``records:``) rewritten from the actual output.

Golden-file style: the operator reads the diff, decides the new output is right, and accepts it. Only the value
of that one key of that one case is replaced in the file's text; every other line, comments included, stays as
written (a whole-file YAML dump would drop the comments that explain the cases).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from erpsync.errors import ConfigError
from erpsync.mapping.loader import MAX_YAML_BYTES, display_path
from erpsync.mapping.lookup_tables import read_regular_file


def accept_outputs(case_file: Path, accepted: dict[int, tuple[str, Any]]) -> None:
    """Replace, for each case index, the value of its key (``expected`` or ``records``) with the new value."""
    display = display_path(case_file)
    try:
        text = read_regular_file(case_file, display, MAX_YAML_BYTES).decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{display}: cannot rewrite: {exc}") from None
    cases = _value(root, "cases")
    if not isinstance(cases, yaml.SequenceNode):
        raise ConfigError(f"{display}: cannot rewrite: no list under cases:")
    spans = []
    for index, (key, value) in accepted.items():
        node = _value(cases.value[index], key) if index < len(cases.value) else None
        if node is None:
            raise ConfigError(f"{display}: cannot rewrite: cases[{index}] has no {key}:")
        spans.append((node.start_mark.index, _content_end(node), node.start_mark.column, value, node))
    # From the end of the file backwards, so earlier offsets stay valid.
    for start, end, column, value, node in sorted(spans, key=lambda s: s[0], reverse=True):
        text = text[:start] + _dump(value, column, block=not getattr(node, "flow_style", False)) + text[end:]
    case_file.write_text(text, encoding="utf-8")


def _value(node: Any, key: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _content_end(node: Any) -> int:
    """Where a node's own text ends. A block collection's end mark lies at the next token, past the blank lines and
    comments that follow it; those belong to the next case and are kept."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return node.end_mark.index


def _dump(value: Any, column: int, *, block: bool) -> str:
    """The value as YAML starting at ``column`` (the first line continues the key's line)."""
    if not block:
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000).strip()
    lines = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, allow_unicode=True, width=120,
                           indent=2).rstrip("\n").split("\n")
    return "\n".join([lines[0], *(" " * column + line for line in lines[1:])])
