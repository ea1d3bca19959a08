"""Prefect blocks: each ERP's connection settings and credentials, one block type per system.

``CONNECTIONS`` names, per system, whether its environment settings are present and how to open a writer from its
block; a worker uses the environment when it is set (ERPSYNC_NETSUITE_*), else the block the environment names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from erpsync.errors import ConfigError


def _netsuite() -> tuple[Callable[[], bool], Callable[[str], Any]]:
    from blocks import netsuite

    return netsuite.configured_in_env, netsuite.writer_from_block


# system name → a loader of (configured_in_env(), writer_from_block(database_url)); imported when asked for.
CONNECTIONS: dict[str, Callable[[], tuple[Callable[[], bool], Callable[[str], Any]]]] = {"netsuite": _netsuite}


def configured_in_env(system: str) -> bool:
    """True when ``system``'s settings come from the environment (or it has no block to fall back to)."""
    if system not in CONNECTIONS:
        return True
    in_env, _ = CONNECTIONS[system]()
    return in_env()


def connection_block_writer(system: str, database_url: str) -> Any:
    if system not in CONNECTIONS:
        raise ConfigError(f"no connection block type for {system!r}: set its environment settings")
    _, from_block = CONNECTIONS[system]()
    return from_block(database_url)


__all__ = ["CONNECTIONS", "configured_in_env", "connection_block_writer"]
