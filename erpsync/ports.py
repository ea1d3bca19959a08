"""What the core needs of an external system, as small protocols; each system's package implements them.

The pipeline, batches, reconciliation and dead letters speak to systems only through these. A system is a folder
under ``erpsync/systems/`` whose ``SYSTEM`` (a :class:`System`) the registry (``erpsync/systems/__init__.py``)
lists; the contract suites in ``tests/contract/`` run every registered system through the same checks.

    RecordWriter     write a record: upsert by external id, get, transform one record into another, delete
    IdResolver       an internal id by natural key (an item by SKU, a customer by email)
    WindowReader     records modified in a time window, and records by external id (reconciliation)
    ChangeReader     records changed since a cursor, in order, with the next cursor (the way back)
    ShopStateReader  what a shop shows of an order's fulfillments and of stock per location (the way back's drift)
    WebhookSource    authenticate a delivery from its headers and raw body (``erpsync/receiver/deliveries.py``)
    IntakeHandler    a topic a source's package carries out in the receiver itself, before the answer

Errors cross the ports already classified into the one tree of ``erpsync/errors.py``: a system's client turns
its own refusals into ``ErpRejected`` (code, field path), its throttling into ``TransientError`` (with
``retry_after``) and its credentials into ``ErpAuthError``; the core never reads a system's error body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol, runtime_checkable


class TotalsError(ValueError):
    """A body whose money fields are not numbers; ``field`` names the place."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def body_number(value: Any, field: str) -> Decimal:
    """A money or quantity field of a body as a Decimal: what every system's totals read; TotalsError names it.

    A float is read as its shortest text (19.99, not its binary expansion); a boolean, a non-number text, NaN or
    an infinity is refused."""
    if isinstance(value, bool):
        raise TotalsError(field, "expected a number, found a boolean")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, (int, str, Decimal)):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise TotalsError(field, "not a number") from None
        if number.is_finite():
            return number
    raise TotalsError(field, "not a number")


@dataclass(frozen=True)
class Totals:
    """The totals a system computes for an order body, by part."""

    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    shipping: Decimal
    handling: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.discount + self.tax + self.shipping + self.handling


@runtime_checkable
class RecordWriter(Protocol):
    """Writes records of one system; every write is idempotent by the record's external id."""

    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any], *,
               previous_id: str | None = None) -> str:
        """Create or update the record with this external id; its internal id.

        ``previous_id``, the internal id erpsync last wrote this record to, lets a system keep each line's
        identity across an update (``None`` when unknown: the write must still leave one copy of each line).
        """

    def get(self, record_type: str, internal_id: str) -> dict[str, Any] | None:
        """The record by internal id; ``None`` when there is none."""

    def get_by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        """The record erpsync wrote under ``external_id``, its sublists expanded; ``None`` when there is none."""

    def transform(self, from_type: str, from_id: str, to_type: str, body: Mapping[str, Any], *,
                  external_id: str) -> str:
        """Make a ``to_type`` record from an existing ``from_type`` one (a shipment from its order); its id."""

    def delete(self, record_type: str, internal_id: str) -> bool:
        """Delete a record; False when there was none."""

    def close_record(self, record_type: str, external_id: str) -> str | None:
        """Close the record erpsync wrote under ``external_id`` without deleting it (an order that must not ship:
        every line closed); its internal id, or ``None`` when there is none."""

    def close(self) -> None: ...


@runtime_checkable
class IdResolver(Protocol):
    def find_id(self, record_type: str, field: str, value: str) -> str | None:
        """The internal id of the one record whose ``field`` equals ``value``; ``None`` when none does.

        ``field`` must be one of the system's ``natural_keys`` for ``record_type`` (ValueError otherwise); more
        than one match is a ``MappingError`` naming the field (a natural key that is not unique cannot resolve
        an id), never showing a personal value.
        """


@dataclass(frozen=True)
class Change:
    """One record as a change reader sees it: enough to decide whether it is new and to fetch it."""

    record_type: str
    internal_id: str
    external_id: str | None
    modified: datetime
    cursor: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ChangeReader(Protocol):
    def changes_since(self, record_type: str, cursor: str | None, *, limit: int = 100) -> list[Change]:
        """Records of ``record_type`` changed after ``cursor`` (``None``: from the start), oldest first.

        Each change carries the cursor to pass next time; a change is never skipped when several share a
        modification time (the cursor orders by time and then by internal id).
        """

    def cursor_at(self, moment: datetime) -> str:
        """A cursor from which ``changes_since`` reads the changes modified at ``moment`` (to the second) or later:
        where a reader with no cursor yet starts, rather than at the record type's first change ever."""


@runtime_checkable
class WindowReader(Protocol):
    """Reconciliation's reading of the ERP side, in keyset pages of normalised rows."""

    def pages(self, *, modified_min: datetime, modified_max: datetime) -> Iterator[list[dict[str, Any]]]: ...

    def by_external_ids(self, external_ids: list[str]) -> Iterator[list[dict[str, Any]]]: ...


@runtime_checkable
class ShopOrderReader(Protocol):
    """Reconciliation's reading of a shop: its orders updated in a window, and orders by id, in pages."""

    def order_pages(self, *, updated_at_min: datetime, updated_at_max: datetime) -> Iterator[list[dict[str, Any]]]: ...

    def orders_by_ids(self, order_ids: Any) -> Iterator[list[dict[str, Any]]]: ...


@runtime_checkable
class ShopStateReader(Protocol):
    """Reconciliation's reading of what the way back wrote to a shop (erpsync/reconcile/way_back.py)."""

    def fulfillment_states(self, order_ids: Any) -> dict[str, dict[str, Any]]:
        """Per order id the shop holds: ``{"fulfilled": every line fulfilled, "live": ids of its fulfillments that
        are not cancelled}``."""

    def available_levels(self, skus: Any) -> dict[tuple[str, str], int]:
        """``(sku, location id) → available quantity`` for the items with these SKUs."""


@dataclass(frozen=True)
class BodySummary:
    """What reconciliation compares of a mapped record body, read the way the target system reads it."""

    lines: int
    total: float | None  # Σ quantity × rate, to the cent; None when a line's numbers are not numbers
    status: str  # "open" or "closed"
    customer: str | None  # the customer's internal id


@runtime_checkable
class IntakeHandler(Protocol):
    """A topic no mapping takes: the receiver stores the delivery, then this acts on it before the answer (no flow run).

    For what is not a record to write: a privacy request must be carried out even while Prefect is away, and a
    deletion carries nothing to map. The ledger keeps these topics from every flow run. A handler may offer
    more for the command line: ``export(ledger, customer_id, *, emails, shop) -> dict`` (``erpsync privacy
    export``), ``close_order(ledger, event_id, environ) -> str`` (``erpsync lifecycle close-order``).
    """

    def validate(self, topic: str, payload: Any) -> object:
        """The typed request; ``InvalidPayload`` naming the missing field otherwise (answered 400, not stored)."""

    def start(self, environ: Mapping[str, str]) -> Callable[[Any, int], str]:
        """``act(ledger, event_id) -> outcome`` under the settings of ``environ``, read now: a missing one stops
        the receiver at start (``ConfigError``), not at the first delivery. ``act`` carries the stored event out
        and records its outcome once; a redelivery of one already carried out changes nothing."""


@dataclass(frozen=True)
class PayloadModel:
    """One entity a source sends: how its payload is parsed, and (for orders) how its money is computed."""

    parse: Callable[[dict], object]
    # compute(payload, MoneyOptions) -> OrderMoney, and the payload paths it reads (for drift reports).
    money: Callable[..., Any] | None = None
    money_reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class System:
    """One external system, as the registry lists it.

    ``models`` are keyed by entity (``"order"``), and registered as ``"<system>.<entity>"``, the name a mapping's
    ``model:`` uses. ``webhook`` authenticates its deliveries when it sends webhooks. ``writer`` and ``resolver``
    build, from the environment, what an ERP offers; ``reader`` what reconciliation reads of a shop.
    """

    name: str
    kind: Literal["erp", "shop"]
    describe: str
    title: str = ""  # as a message names it: "NetSuite"
    models: Mapping[str, PayloadModel] = field(default_factory=dict)
    webhook: Any = None
    # writer(database_url, environ) -> RecordWriter & IdResolver & ChangeReader, under the shared ERP slots
    writer: Callable[..., Any] | None = None
    # The natural keys an IdResolver accepts per record type (a mapping's `erp_lookup` is checked against it).
    natural_keys: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # The fields of the record types the system knows, per record type: a body field by name, a sublist's as
    # "<sublist>.items.<field>", a subrecord's as "<subrecord>.<field>". A mapping's target_field is checked
    # against them when it loads (a record type not listed is not checked; custom fields are always accepted).
    record_fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Natural keys the system compares case-insensitively (an email): the ledger caches them in lower case.
    case_insensitive_keys: frozenset[str] = frozenset()
    # window_reader(writer, *, external_id_prefix=, record_type=, page_size=, tz=) -> WindowReader (reconciliation;
    # tz is the time zone the ERP answers in: the reconcile flow's erp_timezone).
    window_reader: Callable[..., Any] | None = None
    # summarize_body(body) -> BodySummary: a mapped body as reconciliation compares it with the ERP's record.
    summarize_body: Callable[[Mapping[str, Any]], BodySummary] | None = None
    # order_reader(environ) -> ShopOrderReader, a context manager: a shop's orders read back for reconciliation.
    order_reader: Callable[[Mapping[str, str]], Any] | None = None
    # external_id_rule(text) -> None, or raises MappingError: which external ids the system accepts.
    check_external_id: Callable[[str], Any] | None = None
    # totals(body, places) -> Totals: what the system will compute from a mapped order body (the money check).
    totals: Callable[[Mapping[str, Any], int], Totals] | None = None
    # The record types its ChangeReader reads when none are named (`erpsync poll`, the poll flows), in its own names.
    change_record_types: tuple[str, ...] = ()
    # topic → the IntakeHandler the receiver acts on it with, for topics no mapping handles (a shop's privacy
    # requests, its order deletions).
    intake: Mapping[str, IntakeHandler] = field(default_factory=dict)
