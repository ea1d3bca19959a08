"""Webhook secrets for the receiver: several active per source (rotation), from ERPSYNC_<NAME>_WEBHOOK_SECRET."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping


def secret_env_name(source: str) -> str:
    """``ERPSYNC_<NAME>_WEBHOOK_SECRET`` for source ``name`` (``-`` becomes ``_``)."""
    return f"ERPSYNC_{source.upper().replace('-', '_')}_WEBHOOK_SECRET"


def split_secrets(value: str | None) -> list[str]:
    """One secret or several, comma-separated (rotation: the old and the new are both accepted for a while)."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def secrets_from_env(environ: Mapping[str, str] | None = None) -> Callable[[str], list[str]]:
    """A ``secrets(source) -> list[str]`` reading the environment on each call, so a changed variable applies."""
    env = os.environ if environ is None else environ

    def secrets(source: str) -> list[str]:
        return split_secrets(env.get(secret_env_name(source)))

    return secrets
