"""Applying a loaded mapping to one source payload: payload dict in, ERP record (type, external id, body) out."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erpsync.errors import MappingError
from erpsync.mapping.config import FieldConfig, MappingConfig
from erpsync.mapping.lookups import LookupTable
from erpsync.mapping.paths import MISSING, positions, read, write
from erpsync.mapping.transforms import TRANSFORMS, TransformContext

# NetSuite accepts letters, digits, underscore and hyphen in an external id (a `|` even breaks the URL form).
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class MappedRecord:
    """What the ERP connector upserts: ``PUT /record/v1/{record_type}/eid:{external_id}`` with ``body``.

    The body holds plain JSON values only (dict, list, str, int, float, bool, None), so it can be hashed,
    stored and sent as is. The external id travels in the URL, not in the body.
    """

    record_type: str
    external_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file with its lookup tables, ready to apply; build it with ``load_mapping``."""

    path: Path
    display: str  # the file as messages name it
    config: MappingConfig = field(repr=False)
    tables: dict[str, LookupTable] = field(repr=False)
    version: str  # short sha256 of the file's bytes and of every lookup table it declares

    @property
    def source(self) -> str:
        return self.config.source

    @property
    def topics(self) -> tuple[str, ...]:
        return self.config.all_topics

    @property
    def record_type(self) -> str:
        return self.config.record_type

    def handles(self, source: str, topic: str) -> bool:
        return source == self.source and topic in self.topics

    def apply(self, payload: AnyMapping[str, Any]) -> MappedRecord:
        """Map one payload; raises MappingError whose ``field`` is the concrete source path at fault."""
        if not isinstance(payload, AnyMapping):
            raise MappingError(f"expected a JSON object, found {type(payload).__name__}", field="(payload)")
        external_id = self.config.external_id.render(payload)
        if not _EXTERNAL_ID.match(external_id):
            raise MappingError(
                "rendered external id may hold only letters, digits, '_' and '-' (NetSuite's rule)",
                field="external_id",
            )
        body: dict[str, Any] = {}
        spread_later: list[tuple[int, FieldConfig]] = []
        for i, rule in enumerate(self.config.fields):
            if rule.source_field is not None:
                for found in read(payload, rule.source_field):
                    if found.value is MISSING:
                        if rule.required:
                            raise MappingError("required source field is missing", field=found.where)
                        continue
                    value = self._transform(rule, found.value, found.where)
                    write(body, rule.target_field, found.indices, value)
            elif rule.template is not None:
                text = rule.template.render(payload)
                write(body, rule.target_field, (), self._transform(rule, text, f"fields[{i}].template"))
            elif rule.target_field.iterations:
                # A constant for every list element: wait until the source fields have created them all.
                spread_later.append((i, rule))
            else:
                value = self._transform(rule, copy.deepcopy(rule.value), f"fields[{i}].value")
                write(body, rule.target_field, (), value)
        for i, rule in spread_later:
            for indices in positions(body, rule.target_field):
                value = self._transform(rule, copy.deepcopy(rule.value), f"fields[{i}].value")
                write(body, rule.target_field, indices, value)
        return MappedRecord(self.record_type, external_id, body)

    def _transform(self, rule: FieldConfig, value: Any, where: str) -> Any:
        if rule.transform is None:
            return value
        spec = TRANSFORMS[rule.transform.name]
        return spec.func(value, rule.transform.params, TransformContext(where, self.tables))
