"""Lookup transforms: a table in the mapping (CSV or inline), and ERP internal ids through the cross-reference."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping.transforms.registry import TransformContext, TransformParams, kind, transform
from erpsync.mapping.xref import PERSONAL_FIELDS, check_xref_field


def key_of(value: Any, ctx: TransformContext) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ctx.fail(f"a lookup key must be text or an integer, found {kind(value)}")
    return str(value)


class LookupParams(TransformParams):
    table: str | None = Field(None, description="name of a CSV table declared under the mapping's `lookups:`")
    values: dict[str, str] | None = Field(None, description="an inline table, key → value")
    redact_key: bool = Field(
        False, description="leave the key out of error messages (set it when keys are not plain codes)"
    )

    @model_validator(mode="after")
    def _one_table(self) -> LookupParams:
        if (self.table is None) == (self.values is None):
            raise ValueError("set exactly one of table (a CSV under lookups:) or values (inline)")
        return self

    def tables_used(self) -> frozenset[str]:
        return frozenset({self.table}) if self.table is not None else frozenset()


@transform("lookup", LookupParams)
def lookup(value: Any, params: LookupParams, ctx: TransformContext) -> str:
    """The value a lookup table holds for this key (e.g. SKU → ERP item id); an unknown key is an error.

    The table is a CSV file declared under the mapping's ``lookups:`` (``table: sku_to_item``) or inline
    (``values:``). The error names the key, the table and its file, so an operator can add the row.

    Example:
        transform: {name: lookup, values: {IPOD2008PINK: "98", IPOD2008BLACK: "99"}}
        input: IPOD2008PINK
        output: "98"

    Example:
        transform: {name: lookup, values: {IPOD2008PINK: "98"}}
        input: NOT-IN-CATALOGUE
        error: "'NOT-IN-CATALOGUE' not found in the inline lookup table"
    """
    key = key_of(value, ctx)
    if params.values is not None:
        found, where = params.values.get(key), "the inline lookup table"
    else:
        assert params.table is not None
        table = ctx.tables[params.table]
        found, where = table.get(key), f"lookup table {params.table!r} ({table.display})"
    if found is None:
        shown = "key" if params.redact_key else repr(key)
        raise ctx.fail(f"{shown} not found in {where}")
    return found


class ErpLookupParams(TransformParams):
    record: str = Field(description="the ERP record (SuiteQL table), e.g. item, customer")
    by: str = Field(description="the ERP field matched against the value, e.g. itemid, email")
    redact_value: bool | None = Field(
        None, description="leave the value out of errors; default: yes for personal fields (email, entityid, …)"
    )

    @model_validator(mode="after")
    def _allowed(self) -> ErpLookupParams:
        check_xref_field(self.record, self.by)
        return self

    @property
    def redacted(self) -> bool:
        return self.by in PERSONAL_FIELDS if self.redact_value is None else self.redact_value


@transform("erp_lookup", ErpLookupParams)
def erp_lookup(value: Any, params: ErpLookupParams, ctx: TransformContext) -> str:
    """The ERP internal id of the record whose field equals the value (SKU → item id, email → customer id).

    Asked of the cross-reference: the ledger's cache, filled on a miss by a SuiteQL query to the ERP. No
    such record is a permanent failure naming the record, field and (unless personal) value: create the
    record in the ERP or fix the source, then retry the event.

    Example:
        transform: {name: erp_lookup, record: item, by: itemid}
        xref: {item.itemid: {IPOD2008PINK: "98"}}
        input: IPOD2008PINK
        output: "98"

    Example:
        transform: {name: erp_lookup, record: customer, by: email}
        xref: {customer.email: {}}
        input: jane@example.com
        error: "no ERP customer has this email; create it in the ERP"
    """
    key = key_of(value, ctx)
    if ctx.xref is None:
        raise ConfigError(f"{ctx.field}: erp_lookup needs the ERP cross-reference, and none was given")
    try:
        found = ctx.xref.resolve(params.record, params.by, key)
    except MappingError as exc:  # e.g. ambiguous: several ERP records match
        raise ctx.fail(str(exc)) from None
    if found is None:
        which = "this" if params.redacted else repr(key)
        what = f"no ERP {params.record} has {which} {params.by}" if params.redacted else (
            f"no ERP {params.record} has {params.by} {which}"
        )
        raise ctx.fail(f"{what}; create it in the ERP (or fix the source value), then retry the event")
    return found
