"""Retries of transient failures with capped exponential backoff and full jitter, free of Prefect."""

from __future__ import annotations

import logging
import random as _random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from erpsync.errors import TransientError

T = TypeVar("T")

logger = logging.getLogger("erpsync.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """Calls a function again when it raises ``TransientError``; every other exception passes through.

    Without a server hint the n-th retry waits ``random() * min(cap, base * 2**(n-1))`` seconds (full
    jitter: many workers hit by the same 429 spread out instead of returning in lockstep). When the
    error carries ``retry_after`` the wait is that hint, capped by ``max_retry_after``, plus up to
    ``base`` seconds of jitter for the same reason.
    """

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=_random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base < 0 or self.cap < 0 or self.max_retry_after < 0:
            raise ValueError("base, cap and max_retry_after must not be negative")

    def delay(self, retry_number: int, error: TransientError) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_after) + self.random() * self.base
        return self.random() * min(self.cap, self.base * 2 ** (retry_number - 1))

    def call(self, fn: Callable[..., T], *args: object, describe: str = "call", **kwargs: object) -> T:
        """Return ``fn(*args, **kwargs)``, retrying transient failures; re-raise the last one when out of attempts.

        ``describe`` names the operation in log lines; it must not contain payload data.
        """
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except TransientError as error:
                if attempt >= self.max_attempts:
                    logger.warning(
                        "%s failed after %d attempt(s), giving up: %s", describe, attempt, _summary(error)
                    )
                    raise
                wait = self.delay(attempt, error)
                logger.warning(
                    "%s failed (attempt %d of %d), retrying in %.2fs: %s",
                    describe,
                    attempt,
                    self.max_attempts,
                    wait,
                    _summary(error),
                )
                self.sleep(wait)
                attempt += 1


def _summary(error: TransientError) -> str:
    # The message is built by our own connectors from status, code and ids, never from record bodies.
    parts = [type(error).__name__]
    if error.status is not None:
        parts.append(f"status {error.status}")
    if error.retry_after is not None:
        parts.append(f"retry-after {error.retry_after:g}s")
    return f"{', '.join(parts)}: {error}"
