"""The one order of an event's steps — dedupe → transform → push → confirm — for every caller.

`flows/sync_event.py` runs it with each step a Prefect task (retries, a name in the UI), `batch.sync_one` with the
pipeline's plain methods, and the tests the same way; so the order, and what a skip means, is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from erpsync.errors import SkipEvent


class Steps(Protocol):
    """What the sequence calls; ``SyncPipeline`` is one, the flow's task wrappers are another."""

    def dedupe(self, event: Any) -> SkipEvent | None: ...

    def transform(self, event: Any) -> Any:
        """The mapped record; a ``SkipEvent`` (raised or returned) when the mapping skips the event."""

    def push(self, transformed: Any) -> str: ...

    def confirm(self, event: Any, transformed: Any, erp_id: str) -> None: ...

    def skip(self, event: Any, reason: SkipEvent) -> str:
        """Record the event as skipped; the outcome's name (duplicate, superseded, skipped)."""


@dataclass(frozen=True)
class StepsResult:
    outcome: str  # "synced", or the skip's outcome
    transformed: Any = None
    erp_id: str | None = None
    skipped: SkipEvent | None = None


def run_steps(steps: Steps, event: Any) -> StepsResult:
    """A validated event through the steps; a failure is raised for the caller to dead-letter or hand off."""
    skip = steps.dedupe(event)
    if skip is not None:
        return StepsResult(steps.skip(event, skip), skipped=skip)
    try:
        transformed = steps.transform(event)
    except SkipEvent as skipped:  # the mapping's `skip:` (a test order, an unpaid one): recorded, not failed
        transformed = skipped
    if isinstance(transformed, SkipEvent):  # a Prefect task returns it rather than failing
        return StepsResult(steps.skip(event, transformed), skipped=transformed)
    erp_id = steps.push(transformed)
    steps.confirm(event, transformed, erp_id)
    return StepsResult("synced", transformed, erp_id)
