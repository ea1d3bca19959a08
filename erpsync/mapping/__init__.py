"""The mapping layer: data-driven transforms from a source payload to an ERP record body (no Prefect here)."""

from __future__ import annotations

from erpsync.mapping.cases import CaseResult, run_cases
from erpsync.mapping.engine import MappedRecord, Mapping
from erpsync.mapping.loader import discover_mappings, load_mapping

__all__ = ["CaseResult", "MappedRecord", "Mapping", "discover_mappings", "load_mapping", "run_cases"]
