"""`erpsync new mapping SOURCE TOPIC RECORD [--to SYSTEM]`: a mapping file and its test cases to start from, both valid."""

from __future__ import annotations

import re
from pathlib import Path

from erpsync.errors import ConfigError
from erpsync.systems import DEFAULT_TARGET, system

_WORD = re.compile(r"^[a-z][a-z0-9_]*$")

MAPPING = """\
# {source} {topic} → {target} {record}, upserted by external id.
# Format: docs/mapping-format.md; transforms: docs/transforms.md; walkthrough: docs/authoring.md.
from: {source}
to: {target}
topics: [{topic}]
# Who the event is about, and the field that orders its versions (older versions are superseded).
entity:
  type: {entity}
  id: "{{id}}"
  version: updated_at
record_type: {record}
# Must be unique per ERP record and stable: letters, digits, _ and - only.
external_id: "{source}-{entity}-{{id}}"
fields:
  # One rule per ERP field: source_field (or value, or template) → target_field, with optional transforms.
  - source_field: name
    target_field: {field}
    transform: [trim, {{name: truncate, length: 999}}]
"""

CASES = """\
# Named cases for {mapping}: input → expected body, or → error. Run them with `erpsync mapping test`.
cases:
  - name: a minimal {entity}
    input:
      id: 1
      name: "Example"
      updated_at: "2026-01-01T00:00:00Z"
    expected:
      external_id: {source}-{entity}-1
      body:
        {field}: Example

  - name: a missing name is named
    input:
      id: 2
      updated_at: "2026-01-01T00:00:00Z"
    error: "name: required source field is missing"
"""


def scaffold_mapping(mappings_dir: Path, source: str, topic: str, record: str, target: str = DEFAULT_TARGET
                     ) -> list[Path]:
    """Write ``<source>_<entity>_to_<target>_<record>.yaml`` and its ``_test.yaml``; refuse to overwrite."""
    entity = topic.split("/", 1)[0].rstrip("s") or topic
    if not _WORD.match(source) or not _WORD.match(entity) or "/" not in topic:
        raise ConfigError(f"expected a source like 'shopify' and a topic like 'customers/create', "
                          f"got {source!r} {topic!r}")
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9]*$", record):
        raise ConfigError(f"record: expected a record type like 'customer', got {record!r}")
    for end in (source, target):
        system(end)  # a ConfigError naming the known systems
    stem = f"{source}_{entity}_to_{target}_{_snake(record)}"
    mapping_path = Path(mappings_dir) / f"{stem}.yaml"
    cases_path = Path(mappings_dir) / f"{stem}_test.yaml"
    for path in (mapping_path, cases_path):
        if path.exists():
            raise ConfigError(f"{path} exists already; edit it, or remove it to start again")
    values = dict(source=source, target=target, topic=topic, entity=entity, record=record, mapping=mapping_path.name,
                  field=_text_field(target, record))
    mapping_path.write_text(MAPPING.format(**values))
    cases_path.write_text(CASES.format(**values))
    return [mapping_path, cases_path]


def _text_field(target: str, record: str) -> str:
    """A free-text field of the record for the example rule: one the target system lists for it (memo if unknown)."""
    known = system(target).record_fields.get(record)
    if not known:
        return "memo"
    return next((f for f in ("memo", "comments", "salesDescription", "displayName") if f in known), "memo")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
