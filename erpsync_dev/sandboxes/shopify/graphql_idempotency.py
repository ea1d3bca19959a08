"""The shop sandbox's ``@idempotent(key:)`` directive: required on the inventory mutations, a retry with the same key
answered as the first call was, a key reused for other input refused.

What Shopify documents, and the sandbox does:
- From 2026-04 ``inventorySetQuantities`` (with the other inventory and refund mutations) must carry the directive;
  "calling these mutations without an idempotency directive will result in an error at runtime"
  (https://shopify.dev/changelog/making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations). The
  error, as a live store words it: a top-level error ``BAD_REQUEST``, "The @idempotent directive is required for this
  mutation but was not provided." (reported in luke-selrai/openclaw-workshop-kit#218).
- "If you retry the same request with the same idempotency key [...] Shopify will recognize it as a duplicate [...]
  It will return the result of the original operation instead of creating a new one" (same changelog). The sandbox
  keeps the first call's answer (its userErrors too) and answers a retry with it, running nothing.
- A key used again with different mutation variables is refused with ``IDEMPOTENCY_KEY_PARAMETER_MISMATCH``, "The
  same idempotency key cannot be used with different operation parameters."
  (https://shopify.dev/docs/api/admin-graphql/2026-10/enums/InventorySetQuantitiesUserErrorCode).
- Keys are kept 24 hours (https://shopify.dev/docs/api/usage/implementing-idempotency, "retention window"); after
  that the same key runs the mutation again.

Not modelled: ``IDEMPOTENCY_CONCURRENT_REQUEST`` (the sandbox runs one request at a time, so a retry never meets
its first call still running) and ``IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED`` (no call fails half way here).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError
from graphql.execution.values import get_directive_values

RETENTION_SECONDS = 24 * 3600
MISSING_DIRECTIVE = "The @idempotent directive is required for this mutation but was not provided."
KEY_MISMATCH = "The same idempotency key cannot be used with different operation parameters."


def idempotency_key(info: Any) -> str:
    """The ``key`` of the ``@idempotent`` directive on this field (a literal or a variable); a GraphQLError in
    Shopify's words when the field carries none."""
    values = get_directive_values(info.schema.get_directive("idempotent"), info.field_nodes[0], info.variable_values)
    if values is None:
        raise GraphQLError(MISSING_DIRECTIVE, extensions={"code": "BAD_REQUEST"})
    key = values.get("key")
    if not isinstance(key, str) or not key.strip():
        raise GraphQLError("The @idempotent directive needs a non-empty key.", extensions={"code": "BAD_REQUEST"})
    return key


class IdempotencyKeys:
    """The answers of keyed mutation calls, by (mutation, key), for the retention window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], tuple[float, str, dict[str, Any]]] = {}
        self.replayed = 0

    def run(self, mutation: str, key: str, arguments: dict[str, Any], call: Callable[[], dict[str, Any]],
            mismatch: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """The first answer for this key if its arguments are the same; ``mismatch(message)`` if they differ;
        otherwise ``call()``, kept for the key."""
        fingerprint = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
        now = self._clock()
        with self._lock:
            self._answers = {k: v for k, v in self._answers.items() if now - v[0] < RETENTION_SECONDS}
            seen = self._answers.get((mutation, key))
            if seen is not None:
                if seen[1] != fingerprint:
                    return mismatch(KEY_MISMATCH)
                self.replayed += 1
                return seen[2]
            answer = call()
            self._answers[(mutation, key)] = (now, fingerprint, answer)
            return answer

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"keys": len(self._answers), "replayed": self.replayed}
