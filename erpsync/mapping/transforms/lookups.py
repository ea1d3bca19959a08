"""Lookup transforms: a table in the mapping (CSV or inline), and ERP internal ids through the cross-reference."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from erpsync.errors import ConfigError, ErpRejected, MappingError
from erpsync.mapping.lookup_tables import confined
from erpsync.mapping.paths import MISSING, FieldPath, read
from erpsync.mapping.transforms.registry import TransformContext, TransformParams, kind, transform
from erpsync.mapping.xref_resolvers import PERSONAL_FIELDS, CreatingXrefResolver, check_xref_field

if TYPE_CHECKING:
    from erpsync.mapping.engine import MappedRecord, Mapping


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


_MAPPING_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _one_value_path(text: str, what: str) -> FieldPath:
    path = FieldPath.parse(text)
    if path.iterations:
        raise ValueError(f"{what} {text!r} iterates a list ([]); it must name one value")
    return path


class CreateParams(TransformParams):
    """``create:`` of ``erp_lookup``: the record to upsert when the lookup finds none."""

    mapping: str = Field(
        description="the mapping that builds the record: a file beside this one, named without .yaml"
    )
    from_: str | dict[str, str] = Field(
        alias="from",
        description="the source path of the object that mapping reads (e.g. customer), or that object built"
        " key by key from source paths (e.g. {id: customer_id, email: billing.email})",
    )
    fill: dict[str, str] = Field(
        default_factory=dict,
        description="keys of that object taken from another source path where the object has none (absent,"
        " null or empty), e.g. {default_address: billing_address}",
    )

    @field_validator("mapping")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _MAPPING_NAME.match(value):
            raise ValueError(
                "a mapping is named by its file name without .yaml, e.g. shopify_customer_to_netsuite_customer"
            )
        return value

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(value, str):
            _one_value_path(value, "from")
            return value
        if not value:
            raise ValueError("name the object's keys and the source path of each, e.g. {id: customer_id}")
        return cls._keys_and_paths(value)

    @staticmethod
    def _keys_and_paths(value: dict[str, str]) -> dict[str, str]:
        for key, path in value.items():
            if not _KEY.match(key):
                raise ValueError(f"{key!r} is not a key of the object (letters, digits, _)")
            if not isinstance(path, str):
                raise ValueError(f"{key}: expected a source path such as billing_address")
            _one_value_path(path, key)
        return value

    @field_validator("fill")
    @classmethod
    def _fill(cls, value: dict[str, str]) -> dict[str, str]:
        return cls._keys_and_paths(value)

    @property
    def source_name(self) -> str:
        """How errors name the object: its path, or ``(from)`` when it is built key by key."""
        return self.from_ if isinstance(self.from_, str) else "(from)"


class ErpLookupParams(TransformParams):
    record: str = Field(description="the ERP record (SuiteQL table), e.g. item, customer")
    by: str = Field(description="the ERP field matched against the value, e.g. itemid, email")
    table: str | None = Field(
        None, description="a CSV table under the mapping's `lookups:` asked first: a key it lists maps to its"
        " value without asking the ERP (ids pinned by hand, e.g. SKUs whose item is named otherwise)"
    )
    redact_value: bool | None = Field(
        None, description="leave the value out of errors; default: yes for personal fields (email, entityid, …)"
    )
    create: CreateParams | None = Field(
        None,
        description="on a miss, create the record: `{mapping: <a mapping file beside this one, without .yaml>,"
        " from: <source path of the object it reads, or {key: source path, …} to build it>,"
        " fill: {<key of that object>: <source path used where"
        " the object has none>}}`",
    )

    @model_validator(mode="after")
    def _allowed(self) -> ErpLookupParams:
        check_xref_field(self.record, self.by)
        return self

    @property
    def redacted(self) -> bool:
        return self.by in PERSONAL_FIELDS if self.redact_value is None else self.redact_value

    def mappings_used(self) -> frozenset[str]:
        return frozenset({self.create.mapping}) if self.create is not None else frozenset()

    def tables_used(self) -> frozenset[str]:
        return frozenset({self.table}) if self.table is not None else frozenset()


class CreateRefused(MappingError):
    """The ERP refused the record ``create:`` built; the ledger's reason keeps the ERP's detail, logs do not."""

    def __init__(self, message: str, *, field: str | None = None, detail: str = ""):
        super().__init__(message, field=field)
        self.detail = detail

    @property
    def reason(self) -> str:
        return f"{super().reason}: {self.detail}" if self.detail else super().reason


@transform("erp_lookup", ErpLookupParams)
def erp_lookup(value: Any, params: ErpLookupParams, ctx: TransformContext) -> str | None:
    """The ERP internal id of the record whose field equals the value (SKU → item id, email → customer id).

    Asked of the cross-reference: the ledger's cache, filled on a miss by a SuiteQL query to the ERP. No
    such record is a permanent failure naming the record, field and (unless personal) value: create the
    record in the ERP or fix the source, then retry the event.

    With ``create:``, a miss creates the record instead, inside the same event: the named mapping (a file
    beside this one) is applied to the source object at ``from`` (``fill`` supplies keys that object lacks
    from other source paths), the record is upserted by its external id, and its id is cached and returned.
    Two events of one new customer at once write the same external id, so the ERP ends with one record.
    Errors name the field and the external id, never the value (an email, a name). Mapped without the ERP
    (reconciliation), an offline cross-reference answers from what it holds, and an unknown value leaves the
    field null rather than failing.

    With ``table``, a lookup table of the mapping is asked first, and only a key it does not list goes to
    the cross-reference: the table pins ids by hand, the ERP knows every item synced since.

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

    Example:
        transform: {name: erp_lookup, record: customer, by: email,
                    create: {mapping: shopify_customer_to_netsuite_customer, from: customer,
                             fill: {default_address: billing_address}}}
        xref: {customer.email: {jane@example.com: "1201"}}
        input: jane@example.com
        output: "1201"
    """
    key = key_of(value, ctx)
    if params.table is not None:
        pinned = ctx.tables[params.table].get(key)
        if pinned is not None:
            return pinned
    if ctx.xref is None:
        raise ConfigError(f"{ctx.field}: erp_lookup needs the ERP cross-reference, and none was given")
    if getattr(ctx.xref, "offline", False):
        # Mapped without the ERP (reconciliation): what is known already, else an empty field, not compared.
        return ctx.xref.resolve(params.record, params.by, key)
    if params.create is not None:
        return _find_or_create(key, params, params.create, ctx)
    try:
        found = ctx.xref.resolve(params.record, params.by, key)
    except MappingError as exc:  # e.g. ambiguous: several ERP records match
        raise ctx.fail(str(exc)) from None
    if found is None:
        which = "this" if params.redacted else repr(key)
        what = f"no ERP {params.record} has {which} {params.by}" if params.redacted else (
            f"no ERP {params.record} has {params.by} {which}"
        )
        if params.table is not None:
            # Worded as the table's own miss first, so a dead letter groups with other unknown keys of the table.
            table = ctx.tables[params.table]
            shown = "key" if params.redacted else repr(key)
            raise ctx.fail(f"{shown} not found in lookup table {params.table!r} ({table.display}), and {what};"
                           " create it in the ERP (or add the row, or fix the source value), then retry the event")
        raise ctx.fail(f"{what}; create it in the ERP (or fix the source value), then retry the event")
    return found


class _Located(MappingError):
    """A MappingError already phrased for ``ctx.field``; passed through unchanged."""


def _find_or_create(key: str, params: ErpLookupParams, create: CreateParams, ctx: TransformContext) -> str:
    xref = ctx.xref
    if not isinstance(xref, CreatingXrefResolver):
        raise ConfigError(f"{ctx.field}: erp_lookup with create: needs a cross-reference that can create records")
    built: list[MappedRecord] = []

    def build() -> MappedRecord:
        record = _record_to_create(params, create, ctx)
        built.append(record)
        return record

    try:
        return xref.find_or_create(params.record, params.by, key, build)
    except _Located as exc:  # already phrased; raised as the plain MappingError it is
        plain = MappingError(exc.args[0])
        plain.field = exc.field
        raise plain from None
    except ErpRejected as exc:
        eid = built[0].external_id if built else "?"
        raise CreateRefused(
            f"the ERP refused the new {params.record} {eid} ({exc}); fix the source or the mapping"
            f" {create.mapping}, then retry the event",
            field=ctx.field,
            detail=exc.detail,
        ) from None
    except MappingError as exc:  # the lookup itself: ambiguous, or a value that cannot be queried
        raise ctx.fail(str(exc)) from None


def _record_to_create(params: ErpLookupParams, create: CreateParams, ctx: TransformContext) -> MappedRecord:
    """Apply the ``create:`` mapping to the ``from`` object, its missing keys filled from ``fill``."""
    payload = ctx.payload if ctx.payload is not None else {}  # a transform run alone has no payload around it
    if isinstance(create.from_, dict):
        source = {}
        for name, path in create.from_.items():
            found = _one(payload, path)
            if found is not MISSING:
                source[name] = copy.deepcopy(found)
        if not source:
            paths = ", ".join(create.from_.values())
            raise _Located(f"none of {paths} is present to create the ERP {params.record} from", field=ctx.field)
    else:
        source = _one(payload, create.from_)
        if source is MISSING:
            raise _Located(f"{create.from_}: required to create the ERP {params.record}, and missing", field=ctx.field)
        if not isinstance(source, dict):
            raise _Located(f"{create.from_}: expected an object to create the ERP {params.record} from, found"
                           f" {kind(source)}", field=ctx.field)
        source = copy.deepcopy(source)
    for name, path in create.fill.items():
        if source.get(name) in (None, "", {}, []):
            found = _one(payload, path)
            if found is not MISSING:
                source[name] = copy.deepcopy(found)
    mapping = _mapping_beside(ctx, create.mapping)
    try:
        return mapping.apply(source, xref=ctx.xref)
    except MappingError as exc:
        where = _source_path(create, exc.field)
        problem = str(exc).removeprefix(f"{mapping.ref}: ").removeprefix(f"{exc.field}: ")
        eid = _external_id(mapping, source)
        raise _Located(
            f"cannot create the ERP {params.record}{eid} with {mapping.ref}: {where}: {problem}", field=ctx.field
        ) from None


def _source_path(create: CreateParams, field: str | None) -> str:
    """Where in the order a field of the built object came from: ``customer.last_name``, ``billing.email``."""
    if field is None:
        return create.source_name
    key = field.partition(".")[0].partition("[")[0]
    if isinstance(create.from_, dict) and key in create.from_:
        return create.from_[key] + field[len(key):]
    if isinstance(create.from_, str):
        return f"{create.from_}.{field}"
    return f"{create.source_name}.{field}"


def _one(payload: Any, text: str) -> Any:
    (found,) = read(payload, FieldPath.parse(text))
    return found.value


def _external_id(mapping: Mapping, source: dict[str, Any]) -> str:
    try:
        return f" {mapping.config.external_id.render(source)}"
    except MappingError:
        return ""


def _mapping_beside(ctx: TransformContext, name: str) -> Mapping:
    from erpsync.mapping.loader import load_mapping_cached  # the loader imports the engine, which imports us

    if ctx.mapping_path is None:
        raise ConfigError(f"{ctx.field}: erp_lookup's create: needs to know the folder of the mapping applied")
    try:  # a link named like a mapping must not lead out of the folder (erpsync/mapping/lookup_tables.py)
        return load_mapping_cached(confined(ctx.mapping_path.parent, f"{name}.yaml"))
    except ValueError as exc:
        raise ConfigError(f"{ctx.field}: create: {exc}") from None
