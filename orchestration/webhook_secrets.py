"""Webhook secrets from Prefect Secret blocks, for deployments that keep secrets in Prefect.

Block `<source>-webhook-secret` (e.g. `shopify-webhook-secret`) holds one secret, or several separated by
commas while a secret is rotated. Blocks are read at most once a minute per source, so a rotation applies
without a restart and the receiver does not call Prefect on every delivery.

``with_block_fallback`` is the entry point ``erpsync.webhook_secrets: prefect``: the command line hands it the
environment's secrets and gets them back with the blocks behind them. Prefect is imported only when a block is
read, and only with PREFECT_API_URL set: asked without one, Prefect's client would start a temporary server.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from erpsync.receiver.secrets import split_secrets

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0


def block_name(source: str) -> str:
    return f"{source}-webhook-secret"


class _Unreachable(Exception):
    pass


def load_webhook_secrets(source: str) -> list[str]:
    """The source's secrets from its Secret block; [] when there is no such block.

    Raises _Unreachable when Prefect cannot be asked, so the caller keeps what it had.
    """
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block_name(source), _sync=True).get()
    except ValueError:  # Prefect raises ValueError for a block that does not exist
        return []
    except Exception as exc:
        log.warning("could not read Prefect Secret block %s: %s", block_name(source), type(exc).__name__)
        raise _Unreachable from None
    return split_secrets(str(value))


def with_block_fallback(from_env: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """Secrets from the environment when set for a source, else from its Prefect Secret block; the environment's
    alone when PREFECT_API_URL is not set.

    Block values are cached for REFRESH_SECONDS. While Prefect is unreachable the last good values stay in
    force, and the fetch happens outside the lock, so one slow call never stalls deliveries of other sources.
    """
    if not os.environ.get("PREFECT_API_URL"):
        return from_env
    import prefect.blocks.system  # noqa: F401  -- now, rather than on the first delivery that needs a block
    cache: dict[str, tuple[float, list[str]]] = {}
    lock = threading.Lock()

    def secrets(source: str) -> list[str]:
        found = from_env(source)
        if found:
            return found
        with lock:
            fetched_at, values = cache.get(source, (float("-inf"), []))
            if time.monotonic() - fetched_at <= REFRESH_SECONDS:
                return values
            cache[source] = (time.monotonic(), values)  # others use these values while this request fetches
        try:
            fresh = load_webhook_secrets(source)
        except _Unreachable:
            return values
        with lock:
            cache[source] = (time.monotonic(), fresh)
        return fresh

    return secrets
