"""The one error tree of erpsync, classified by what the caller should do.

    ErpsyncError                 base of everything erpsync raises on purpose
    ├── ConfigError              refuse: a setting, mapping file or block is wrong; names file and path
    ├── TransientError           retry: the ERP or network may succeed later (429, 5xx, timeout, connect)
    │   └── EntityBusy           another event of the same entity is being synced right now
    ├── PermanentError           dead-letter: retrying cannot help until data or mapping changes
    │   ├── InvalidPayload       the source payload fails validation; names the field
    │   ├── MappingError         a transform cannot produce a value for this record; names the field
    │   ├── ErpRejected          the ERP refused the record (4xx with o:errorDetails): code, detail, path
    │   │   └── ConflictingChange the target changed a field since erpsync set it; nothing written (ownership decides)
    │   └── ErpAuthError         the ERP refused our credentials even after a fresh token
    └── SkipEvent                skip: not a failure, recorded in the ledger and the run ends Completed
        ├── DuplicateEvent       this content was already applied
        ├── SupersededEvent      a newer version of this entity was already applied
        └── WithdrawRecord       the source undid the record (a mapping's cancel:): what erpsync wrote is withdrawn

Only ``TransientError`` triggers retries (in the core's retry policy and in Prefect's task retries).
"""

from __future__ import annotations


class ErpsyncError(Exception):
    """Base class of every error erpsync raises on purpose."""


class ConfigError(ErpsyncError):
    """Bad configuration: the operator must fix a file or a setting before anything can run."""


class TransientError(ErpsyncError):
    """A failure that may go away by itself; safe to retry.

    ``retry_after`` is the delay in seconds the remote side asked for (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class EntityBusy(TransientError):
    """Another event for the same entity is between dedupe and confirm; try again shortly."""


class PermanentError(ErpsyncError):
    """A failure that will repeat on every retry; the event goes to the dead-letter view."""

    @property
    def reason(self) -> str:
        """The text the ledger stores as the failure reason."""
        return f"{type(self).__name__}: {self}"


class InvalidPayload(PermanentError):
    def __init__(self, message: str, *, field: str | None = None,
                 problems: tuple[tuple[str, str], ...] = ()):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        # Every (field, problem) the model check found, for callers that sort them (the message shows ten).
        self.problems = problems


class PayloadMismatch(InvalidPayload):
    """The payload is not what its topic carries (an order body sent as ``customers/create``): a replay under
    another topic, or a subscription pointed at the wrong place. Recorded as ``mismatched``, not ``failed``: an
    operator sees it in `erpsync dlq`, and no alert pages anyone, since no change of ours would fix it."""


class MappingError(PermanentError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class ErpRejected(PermanentError):
    """The ERP answered 4xx with an error body; ``code``/``detail``/``path`` are NetSuite's own.

    NetSuite's ``detail`` may quote a value we sent (a name, an email), so it stays out of the message, which
    reaches logs and Prefect; only ``reason``, stored in the ledger, carries it.
    """

    def __init__(self, status: int, code: str, detail: str, path: str | None = None):
        where = f" at {path}" if path else ""
        super().__init__(f"HTTP {status} {code}{where}")
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path

    @property
    def reason(self) -> str:
        return f"{super().reason}: {self.detail}"


class ConflictingChange(ErpRejected):
    """A write found fields changed in the target since erpsync last set them (both sides changed the record since
    the last sync) and wrote nothing. ``fields``: field → (what erpsync set last, the target's value now, the value
    to write), as text (prices and quantities, never customer data). ``current_id``: the record's id as the writer
    would have returned it had erpsync set the target's current values: a write with it as ``previous_id`` goes
    over them (compare-and-set against what was just read). The pipeline lets the fields' owner decide
    (erpsync/field_ownership.py); unresolved, it is a dead letter naming both values."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None, *, record_type: str,
                 record_id: str, fields: dict[str, tuple[str, str, str]], current_id: str):
        super().__init__(status, code, detail, path)
        self.record_type = record_type
        self.record_id = record_id
        self.fields = fields
        self.current_id = current_id


class ErpAuthError(PermanentError):
    """Credentials were refused after a token refresh: an operator must fix the connection block."""


class SkipEvent(ErpsyncError):
    """The event needs no ERP write; the ledger records why."""

    outcome = "skipped"


class DuplicateEvent(SkipEvent):
    outcome = "duplicate"


class SupersededEvent(SkipEvent):
    outcome = "superseded"


class WithdrawRecord(SkipEvent):
    """A mapping's ``cancel:`` rule holds: the source undid the record (a shipment deleted or no longer shipped).
    The pipeline withdraws what erpsync wrote for the entity in the target (its writer's ``delete``); when it wrote
    nothing, the event is a plain skip with this reason."""
