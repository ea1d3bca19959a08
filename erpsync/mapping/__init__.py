"""The mapping layer: data-driven transforms from a source payload to an ERP record body (no Prefect here).

docs/mapping-format.md describes the files; docs/transforms.md the transforms.
"""

from __future__ import annotations

from erpsync.mapping.cases import CaseResult, run_cases
from erpsync.mapping.engine import MappedRecord, Mapping, Records, RuleResult
from erpsync.mapping.loader import discover_mappings, find_mapping, handled_topics, load_mapping
from erpsync.mapping.xref_resolvers import InMemoryXref, OfflineXref, XrefResolver

__all__ = [
    "CaseResult",
    "InMemoryXref",
    "MappedRecord",
    "Mapping",
    "OfflineXref",
    "Records",
    "RuleResult",
    "XrefResolver",
    "discover_mappings",
    "find_mapping",
    "handled_topics",
    "load_mapping",
    "run_cases",
]
