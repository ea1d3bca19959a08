"""The registry of external systems: a name → its package's ``SYSTEM``. A new system is a new folder and a line here.

Nothing outside a system's own package names it (``tests/unit/test_system_boundaries.py``); the core asks this
registry by the name a mapping file or a webhook URL carries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from erpsync.errors import ConfigError
from erpsync.ports import PayloadModel, System
from erpsync.systems import netsuite, shopify, standard, tryton, woocommerce

SYSTEMS: dict[str, System] = {s.SYSTEM.name: s.SYSTEM for s in (netsuite, tryton, shopify, woocommerce, standard)}
# The system a mapping writes to when its file names none (`to:`): every mapping written before files named both ends.
DEFAULT_TARGET = "netsuite"

# "<system>.<entity>" → its payload model: the names a mapping's `model:` may use.
PAYLOAD_MODELS: dict[str, PayloadModel] = {
    f"{system.name}.{entity}": model for system in SYSTEMS.values() for entity, model in system.models.items()
}
# name → parse(payload) that returns the typed entity or raises InvalidPayload(field=...).
MODELS: dict[str, Callable[[dict], object]] = {name: model.parse for name, model in PAYLOAD_MODELS.items()}


def system(name: str) -> System:
    """The registered system called ``name``; a ConfigError listing the known ones otherwise."""
    try:
        return SYSTEMS[name]
    except KeyError:
        raise ConfigError(f"unknown system {name!r} (known: {', '.join(sorted(SYSTEMS))})") from None


def open_writer(name: str, database_url: str, environ: Mapping[str, str] | None = None) -> Any:
    """A client of the ERP ``name`` configured from the environment, under the ERP slots the ledger shares."""
    target = system(name)
    if target.writer is None:
        raise ConfigError(f"{name!r} is not a system erpsync writes records to")
    return target.writer(database_url, os.environ if environ is None else environ)


def erps() -> list[System]:
    return [s for s in SYSTEMS.values() if s.kind == "erp"]


def shops() -> list[System]:
    return [s for s in SYSTEMS.values() if s.kind == "shop"]


__all__ = ["DEFAULT_TARGET", "MODELS", "PAYLOAD_MODELS", "SYSTEMS", "erps", "open_writer", "shops", "system"]
