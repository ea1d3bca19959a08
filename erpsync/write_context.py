"""Which event a write to a target is made for, so that a target that recognises a retried request by a key can
derive the key from it: the same event's write retried after a lost answer carries the same key, another event's
write a different one.

Set by the pipeline around each upsert (``writing_for``) and read by the writer that needs it
(``current_write``); the port's signature stays as every system implements it. A context variable, so writes in
other threads or tasks each see their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[str | None] = ContextVar("erpsync_write_for", default=None)


@contextmanager
def writing_for(identity: str | None) -> Iterator[None]:
    """Writes inside are made for ``identity`` (stable across retries of the same event, no customer data)."""
    token = _CURRENT.set(identity)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_write() -> str | None:
    """The identity of the event the write now being made is for; None outside the pipeline."""
    return _CURRENT.get()


def event_identity(event_id: int, payload_sha256: str | None) -> str:
    """An event's identity for request keys: its inbox id and its payload's hash, so that a ledger started afresh,
    whose ids begin again at 1, does not give another change the key of an earlier one."""
    return f"event:{event_id}:{payload_sha256 or ''}"
