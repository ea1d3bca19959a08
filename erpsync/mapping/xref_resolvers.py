"""Cross-references to ERP internal ids (SKU → item id, email → customer id): the resolver protocols and the allow-list.

The ``erp_lookup`` transform asks an ``XrefResolver``; erpsync/xref_cache.py has the one backed by the ledger and
the ERP's ``find_id`` (an ``IdResolver``, erpsync/ports.py), ``InMemoryXref`` serves case files and previews.
Record types and fields are identifiers that end up in a query text, so only the pairs the target system lists
as its ``natural_keys`` are accepted, at load time.

A resolver that can also create (``CreatingXrefResolver``) serves ``erp_lookup`` with ``create:``: find the
record by the value, else upsert the record the caller builds, by its external id, and remember its id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from erpsync.errors import MappingError
from erpsync.natural_keys import PERSONAL_FIELDS, check_lookup_value, check_natural_key  # noqa: F401  (imported from here)

if TYPE_CHECKING:
    from erpsync.mapping.engine import MappedRecord


def check_xref_field(record_type: str, field: str, system: str | None = None) -> None:
    """ValueError unless ``system`` allows ``record_type.field`` as a natural key (its ``natural_keys``).

    The only guard before the names reach a query text: each system's own ``find_id`` checks them again.
    ``None``: the mappings' default target, until a mapping's ``to:`` reaches its transforms.
    """
    # Imported here: the registry imports the mapping engine, which imports this module.
    from erpsync.systems import DEFAULT_TARGET
    from erpsync.systems import system as registered

    check_natural_key(registered(system or DEFAULT_TARGET).natural_keys, record_type, field)


@runtime_checkable
class XrefResolver(Protocol):
    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        """The ERP internal id of the record whose ``field`` equals ``value``, or None if there is none."""
        ...


@runtime_checkable
class CreatingXrefResolver(XrefResolver, Protocol):
    def find_or_create(
        self, record_type: str, field: str, value: str, create: Callable[[], MappedRecord]
    ) -> str:
        """The id of the record whose ``field`` equals ``value``; on a miss, the id of ``create()`` upserted.

        ``create`` is called only on a miss (building the record may fail, and need not when the record
        exists). Its record is written by external id, so two callers that miss at once end with one record.
        """
        ...


class OfflineXref:
    """Resolves and creates nothing: mapping a payload without the ERP (reconciliation compares many at once).

    ``erp_lookup`` asks an offline resolver (``offline = True``) only ``resolve``, and an unknown value leaves
    its field null instead of failing, so a comparison can skip that field. erpsync/xref_cache.py's ``CachedXref``
    is the offline resolver that answers from the ledger's cache.
    """

    offline = True

    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        return None

    def find_or_create(
        self, record_type: str, field: str, value: str, create: Callable[[], MappedRecord]
    ) -> str | None:
        return None


class InMemoryXref:
    """A fixed table of ERP ids, keyed ``"record.field"`` → value → id: the ``xref:`` of a case file.

    A record created on a miss takes the id the table gives its external id (``customer.externalid``), as the
    ERP would after the upsert; ``created`` lists what was created, and a later lookup of the value finds it.
    """

    def __init__(self, table: Mapping[str, Mapping[str, str]] | None = None):
        self.table = {key: {str(k): str(v) for k, v in values.items()} for key, values in (table or {}).items()}
        self.created: list[MappedRecord] = []

    def resolve(self, record_type: str, field: str, value: str) -> str | None:
        return self.table.get(f"{record_type}.{field}", {}).get(value)

    def find_or_create(
        self, record_type: str, field: str, value: str, create: Callable[[], MappedRecord]
    ) -> str:
        found = self.resolve(record_type, field, value)
        if found is not None:
            return found
        record = create()
        new_id = self.table.get(f"{record_type}.externalid", {}).get(record.external_id)
        if new_id is None:
            raise MappingError(
                f"the xref table gives no id to the new {record_type} {record.external_id}"
                f" (add it under {record_type}.externalid)"
            )
        self.created.append(record)
        self.table.setdefault(f"{record_type}.{field}", {})[value] = new_id
        return new_id
