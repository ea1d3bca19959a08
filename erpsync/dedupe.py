"""Dedupe decisions (layers 2 and 3 of the four in ARCHITECTURE.md), as a pure function of the ledger's state.

Layer 1 (delivery id unique in the inbox) is the receiver's; layer 4 (upsert by external id) is the ERP's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

Decision = Literal["apply", "duplicate", "superseded"]


def decide(
    *,
    version: datetime,
    payload_sha256: str,
    last_version: datetime | None,
    last_payload_sha256: str | None,
    event_already_applied: bool = False,
) -> Decision:
    """What to do with an event for an entity whose last applied version/hash are given (None: never applied).

    - the same event, or the same content, applied before → duplicate
    - a version older than the last applied one → superseded (ordering without a global queue)
    - an equal version with other content is applied: the source changed the record within its timestamp
      resolution, and the last write must win rather than be lost
    """
    if event_already_applied or (last_payload_sha256 is not None and payload_sha256 == last_payload_sha256):
        return "duplicate"
    if last_version is not None and version < last_version:
        return "superseded"
    return "apply"
