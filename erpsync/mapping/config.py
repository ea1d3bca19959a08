"""The pydantic models of a mapping file (``mappings/*.yaml``) and of its sibling case file (``*_test.yaml``).

docs/mapping-format.md describes the format; every model forbids unknown keys and suggests the close name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from erpsync.mapping.conditions import Condition
from erpsync.mapping.jinja_sandbox import JinjaTemplate
from erpsync.mapping.key_templates import Template
from erpsync.mapping.paths import FieldPath, PathText
from erpsync.mapping.transforms import TRANSFORMS, TransformParams
from erpsync.mapping.transforms.dates import check_zone
from erpsync.order_money import MoneyOptions

TemplateText = Annotated[Template, BeforeValidator(Template.parse)]


def _ignore_path(text: object) -> FieldPath:
    """An ``ignore:`` entry: a source path, ``[]`` for a list's elements and no position of its own."""
    path = FieldPath.parse(text)
    if any(s.index is not None for s in path.segments):
        # Drift compares payload shapes, where every list position is `[]`: one position would read as ignoring
        # that element only, which the report cannot tell apart.
        plain = ".".join(f"{s.key}[]" if s.index is not None or s.each else s.key for s in path.segments)
        raise ValueError(f"{path.text!r}: a field is ignored in every element of a list; write {plain!r}")
    return path


IgnorePath = Annotated[FieldPath, BeforeValidator(_ignore_path)]
JinjaText = Annotated[JinjaTemplate, BeforeValidator(JinjaTemplate.parse)]
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def did_you_mean(name: str, known: Any, *, show_all: bool = True) -> str:
    """`` (did you mean 'x'?)`` for a close name, else `` (known: a, b)``; empty if nothing is known."""
    options = sorted(str(k) for k in known)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(options)})" if show_all and options else ""


class _Strict(BaseModel):
    """Base of the file models: frozen, unknown keys refused with a suggestion of the close name."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {f.alias or name for name, f in cls.model_fields.items()}
            unknown = [k for k in data if isinstance(k, str) and k not in known]
            if unknown:  # every one, so a file with several is fixed in one go
                detail = "; ".join(f"unknown key {key!r}{did_you_mean(key, known)}" for key in unknown)
                raise PydanticCustomError("unknown_key", "{detail}", {"detail": detail})
        return data


class TransformRef(_Strict):
    """``transform: uppercase`` or ``transform: {name: lookup, table: sku_to_item}``: a name plus its parameters."""

    name: str
    params: TransformParams

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        return data  # the keys besides `name` are the transform's own, checked against its parameters

    @model_validator(mode="before")
    @classmethod
    def _from_file(cls, data: Any) -> Any:
        if isinstance(data, str):
            name, args = data, {}
        elif isinstance(data, dict) and "params" not in data:
            args = dict(data)
            name = args.pop("name", None)
            if not isinstance(name, str):
                raise PydanticCustomError("transform_name", "a transform with arguments needs 'name:'")
        else:
            raise PydanticCustomError(
                "transform_shape", "expected a transform name or a mapping such as {name: lookup, table: ...}"
            )
        spec = TRANSFORMS.get(name)
        if spec is None:
            raise PydanticCustomError(
                "unknown_transform", "{detail}", {"detail": f"unknown transform {name!r}{did_you_mean(name, TRANSFORMS)}"}
            )
        try:
            params = spec.params.model_validate(args)
        except ValidationError as exc:  # re-raised as one error of this field, naming the argument
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {short_message(e)}" if e["loc"] else short_message(e)
                for e in exc.errors()
            )
            raise PydanticCustomError(
                "transform_params", "{detail}", {"detail": f"transform {name!r}: {problems}"}
            ) from None
        return {"name": name, "params": params}


def _one_or_chain(value: Any) -> str:
    return "transform-chain" if isinstance(value, list) else "transform-one"


# One transform, or a list applied in order. Tagged so that errors say `transform` or `transform[1]`.
TransformChain = Annotated[
    Annotated[TransformRef, Tag("transform-one")] | Annotated[list[TransformRef], Tag("transform-chain")],
    Discriminator(_one_or_chain),
]
UNION_TAGS = frozenset({"transform-one", "transform-chain"})

SourceType = Literal["text", "number", "integer", "boolean", "object", "list"]


class FieldConfig(_Strict):
    """One target field, filled from a source field, a constant ``value`` or a Jinja ``template``."""

    target_field: PathText
    source_field: PathText | None = None
    value: Any = None
    template: JinjaText | None = None
    transform: TransformChain | None = None
    default: Any = Field(None, description="used when the source value is absent or null, before the transforms")
    required: bool = Field(True, description="a missing (absent or null) source value is an error; false: skip")
    type: SourceType | None = Field(None, description="the JSON type the source value must have")
    when: Condition | None = Field(None, description="map this field only when the condition holds")

    @model_validator(mode="after")
    def _one_source(self) -> FieldConfig:
        given = [k for k in ("source_field", "value", "template") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of source_field, value, template" + (f" (found: {', '.join(given)})" if given else "")
            )
        if self.template is not None and self.target_field.iterations:
            raise ValueError("a template cannot fill a list ([]) target")
        if self.source_field is None and ({"default", "type"} & self.model_fields_set):
            raise ValueError("default and type apply to a source_field")
        if self.source_field is not None:
            src, dst = self.source_field.iterations, self.target_field.iterations
            if src != dst:
                raise ValueError(f"source_field has {src} list step(s) ([]) but target_field has {dst}; they must match")
        if self.when is not None and self.source_field is not None:
            own = self.source_field.list_prefixes()
            for path in self.when.paths():
                theirs = path.list_prefixes()[: len(own)]
                if theirs != own[: len(theirs)]:
                    raise ValueError(
                        f"when: {path.text!r} iterates another list than source_field {self.source_field.text!r};"
                        " a condition's [] stand for the rule's own line"
                    )
        return self

    @property
    def kind(self) -> str:
        return "source_field" if self.source_field is not None else "template" if self.template else "value"

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    @property
    def transforms(self) -> tuple[TransformRef, ...]:
        if self.transform is None:
            return ()
        return tuple(self.transform) if isinstance(self.transform, list) else (self.transform,)


class LookupConfig(_Strict):
    path: str = Field(description="CSV file, relative to the mapping file")
    key: str | None = Field(None, description="key column; default the first")
    value: str | None = Field(None, description="value column; default the second")

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class RejectConfig(_Strict):
    """An event the mapping refuses on purpose: ``{when: {field: variants[1].id, exists: true}, message: ...}``."""

    when: Condition
    message: str = Field(min_length=1, description="why, and what to do; shown with the first field of `when`")


class EachConfig(_Strict):
    """``each:``: one record per element of a list (a product's variants), all under the event's one claim.

    The rules see the payload with the element under ``as`` (``variant.sku`` beside the product's ``title``).
    An element whose ``key`` is absent, null or blank is skipped with ``without_key`` as its reason; the key
    (a SKU, never customer data) names the element in the errors of its push.
    """

    list_: PathText = Field(alias="list", description="the source list, e.g. variants")
    as_: str = Field(alias="as", description="the name the rules read the element by, e.g. variant")
    key: PathText = Field(description="the element's natural key under `as`, e.g. variant.sku")
    without_key: str = Field(
        "the element has no key", min_length=1, description="the reason an element without its key is skipped"
    )

    @field_validator("list_")
    @classmethod
    def _plain_list(cls, path: FieldPath) -> FieldPath:
        if any(s.each or s.index is not None for s in path.segments):
            raise ValueError(f"{path.text!r}: name the list itself, without [] or [N] (e.g. variants)")
        return path

    @field_validator("as_")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("expected a name such as variant (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _key_of_element(self) -> EachConfig:
        if self.key.segments[0].key != self.as_ or len(self.key.segments) < 2 or self.key.iterations:
            raise ValueError(f"key: {self.key.text!r} must be one value of the element, e.g. {self.as_}.sku")
        return self


class ReadSpec(_Strict):
    """One record read from the ``from`` system before mapping: its record type and internal id, as key templates
    over the event's payload and the records read before it (``{record.createdFrom.id}``)."""

    record_type: TemplateText = Field(description="the source system's record type, e.g. '{data.recordType}'")
    id: TemplateText = Field(description="the record's internal id, e.g. '{data.id}'")


# `read: record`: the record a change notice names (its data.recordType and data.id), read as `record`.
READ_NOTICE_RECORD = {"record": {"record_type": "{data.recordType}", "id": "{data.id}"}}
# Names a read may not take: the payload keys a notice has, and `notice`, where its data is shown to the rules.
_RESERVED_READ_NAMES = frozenset({"notice", "data", "type", "timestamp"})


@dataclass(frozen=True)
class VersionSpec:
    """``entity.version``: ``updated_at``, or ``{field: date_modified_gmt, timezone: UTC}``.

    ``timezone`` is the IANA zone of a timestamp written without a UTC offset (WooCommerce's ``*_gmt``
    fields are UTC but say so only in their name); a timestamp that carries an offset keeps its own.
    """

    field: FieldPath
    timezone: str | None = None

    @classmethod
    def parse(cls, data: object) -> VersionSpec:
        if isinstance(data, VersionSpec):
            return data
        if isinstance(data, dict):
            unknown = [k for k in data if k not in ("field", "timezone")]
            if unknown:
                key = str(unknown[0])
                raise ValueError(f"unknown key {key!r}{did_you_mean(key, ('field', 'timezone'))}")
            if "field" not in data:
                raise ValueError("field: required key is missing (e.g. {field: date_modified_gmt, timezone: UTC})")
            zone = data.get("timezone")
            if zone is not None and not isinstance(zone, str):
                raise ValueError("timezone: expected an IANA zone name such as UTC")
            spec = cls(FieldPath.parse(data["field"]), check_zone(zone))
        else:
            spec = cls(FieldPath.parse(data))
        if spec.field.iterations:
            raise ValueError(f"{spec.field.text!r} iterates a list ([]); a version is one value")
        return spec


VersionText = Annotated[VersionSpec, BeforeValidator(VersionSpec.parse)]


class EntityConfig(_Strict):
    """Who an event is about, and the version that orders its events (the pipeline's version guard)."""

    type: str = Field(description="the entity kind, e.g. order, refund, customer")
    id: TemplateText = Field(description="key template of the entity id, e.g. '{id}'")
    label: TemplateText | None = Field(
        None, description="key template of the code staff search for, e.g. '{name}' (a Shopify order's #1042): "
        "shown beside the event and searchable in runs and the CLI; an order code or number, never customer data"
    )
    version: VersionText = Field(
        description="source path of a tz-aware ISO timestamp or a number, e.g. updated_at; or"
        " {field: date_modified_gmt, timezone: UTC} for timestamps written without an offset"
    )

    @field_validator("type")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("expected a name such as order (letters, digits, _)")
        return value


class MappingConfig(_Strict):
    # `from:` and `to:` name both ends, each a system of the registry (erpsync/systems/); `source:` is the older
    # spelling of `from:`, and a file without `to:` writes to the registry's DEFAULT_TARGET (the first ERP).
    source: str = Field(min_length=1, alias="from", description="the system the events come from, e.g. shopify")
    target: str = Field(None, alias="to", min_length=1, validate_default=True,
                        description="the system the records are written to, e.g. netsuite (default: the first ERP)")
    topic: str | None = Field(None, description="the one source topic handled, e.g. orders/create")
    topics: list[str] | None = Field(None, min_length=1, description="several source topics")
    entity: EntityConfig
    model: str | None = Field(None, description="a payload model of the registry (erpsync.systems.MODELS), e.g. shopify.order")
    record_type: str = Field(min_length=1, description="the ERP record type, e.g. salesOrder")
    external_id: TemplateText = Field(description="key template of the ERP external id, e.g. shopify-order-{id}")
    timezone: str | None = Field(None, description="the ERP account's IANA time zone, for date/datetime transforms")
    lookups: dict[str, LookupConfig] = Field(default_factory=dict)
    reject: list[RejectConfig] = Field(default_factory=list, description="events refused with a named error")
    skip: list[RejectConfig] = Field(
        default_factory=list, description="events recorded as skipped with the message (not failures)"
    )
    cancel: list[RejectConfig] = Field(
        default_factory=list, description="the source undid the record: what erpsync wrote for the entity in the"
        " target is withdrawn (its writer's delete), else the event is skipped with the message; tested first"
    )
    money: MoneyOptions | None = Field(
        None, description="compute the order's money (at `order`) and check its total before every push"
    )
    each: EachConfig | None = Field(
        None, description="one record per element of a source list (e.g. a product's variants)"
    )
    read: dict[str, ReadSpec] | None = Field(
        None, description="records read from the `from` system before mapping, by name, in order: the event is a"
        " notice, the record's current state is what is mapped (`read: record` reads the one a change notice"
        " names as `record`; or {record: {record_type: '{data.recordType}', id: '{data.id}'}, order: {…}})",
    )
    fields: list[FieldConfig] = Field(min_length=1)
    ignore: list[IgnorePath] = Field(
        default_factory=list,
        description="source fields no rule reads on purpose, e.g. admin_graphql_api_id, line_items[].tax_lines"
        " (a field and everything under it): left out of the drift reports",
    )

    @field_validator("ignore", mode="before")
    @classmethod
    def _ignore_list(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a list of source paths, e.g. [admin_graphql_api_id, line_items[].tax_lines]")
        return value

    @field_validator("ignore")
    @classmethod
    def _ignored_once(cls, paths: list[FieldPath]) -> list[FieldPath]:
        first: dict[tuple[str, ...], int] = {}
        for n, path in enumerate(paths):
            if path.shape in first:
                raise ValueError(f"{path.text!r} is listed twice (ignore[{first[path.shape]}] and ignore[{n}])")
            first[path.shape] = n
        return paths

    @field_validator("read", mode="before")
    @classmethod
    def _read_shorthand(cls, value: Any) -> Any:
        if value == "record":
            return READ_NOTICE_RECORD
        if isinstance(value, str):
            raise ValueError(f"{value!r}: write `read: record` (the record a change notice names) or name each"
                             " read, e.g. {record: {record_type: '{data.recordType}', id: '{data.id}'}}")
        if isinstance(value, dict):
            if not value:
                raise ValueError("name at least one record to read, e.g. `read: record`")
            for name in value:
                if not isinstance(name, str) or not _IDENTIFIER.match(name):
                    raise ValueError(f"{name!r}: a read is named like a field (letters, digits, _), e.g. record")
                if name in _RESERVED_READ_NAMES:
                    raise ValueError(f"{name!r}: the notice's own field has that name; choose another, e.g. record")
        return value

    @model_validator(mode="before")
    @classmethod
    def _source_is_from(cls, data: Any) -> Any:
        if isinstance(data, dict) and "source" in data:
            if "from" in data:
                raise PydanticCustomError("both_ends", "{detail}",
                                          {"detail": "set one of from, source (source is the older name of from)"})
            data = {("from" if k == "source" else k): v for k, v in data.items()}
        return data

    @field_validator("source", "target", mode="before")
    @classmethod
    def _registered(cls, name: str | None) -> str:
        from erpsync.systems import DEFAULT_TARGET, SYSTEMS

        if name is None:
            return DEFAULT_TARGET
        if name not in SYSTEMS:
            raise ValueError(f"unknown system {name!r}{did_you_mean(name, SYSTEMS, show_all=True)}")
        return name

    @model_validator(mode="after")
    def _two_ends(self) -> MappingConfig:
        if self.source == self.target:
            raise ValueError(f"from and to are both {self.source!r}: a mapping joins two systems")
        return self

    @model_validator(mode="after")
    def _read_from_a_reader(self) -> MappingConfig:
        from erpsync.systems import SYSTEMS

        if self.read is not None and SYSTEMS[self.source].writer is None:
            raise ValueError(f"read: {self.source!r} has no client to read its records from")
        if self.read is not None and self.each is not None and self.each.as_ in self.read:
            raise ValueError(f"each.as {self.each.as_!r} is also the name of a read")
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, tz: str | None) -> str | None:
        return check_zone(tz)

    @model_validator(mode="after")
    def _one_topic_key(self) -> MappingConfig:
        if (self.topic is None) == (self.topics is None):
            raise ValueError("set exactly one of topic, topics")
        return self

    @model_validator(mode="after")
    def _each_names_the_element(self) -> MappingConfig:
        each = self.each
        if each is None:
            return self
        if self.money is not None:
            raise ValueError("each: and money: cannot be combined (the money section checks one order's total)")
        if not any(path.segments[0].key == each.as_ for path in self.external_id.fields):
            raise ValueError(
                f"each: the external_id must name the element (e.g. shopify-variant-{{{each.as_}.id}}),"
                " or every element would write the same record"
            )
        if any(p.segments[0].key == each.as_ for p in (*self.entity.id.fields, self.entity.version.field)):
            raise ValueError(f"each: entity.id and entity.version name the event's entity, not {each.as_!r}")
        for what, rules in (("reject", self.reject), ("skip", self.skip), ("cancel", self.cancel)):
            for n, rule in enumerate(rules):
                if any(p.segments[0].key == each.as_ for p in rule.when.paths()):
                    raise ValueError(f"{what}[{n}] applies to the whole event and cannot read {each.as_!r};"
                                     f" an element is skipped through each.key")
        return self

    @property
    def all_topics(self) -> tuple[str, ...]:
        return (self.topic,) if self.topic is not None else tuple(self.topics or ())


class ExpectedConfig(_Strict):
    body: dict[str, Any] = Field(description="the expected ERP record body")
    external_id: str | None = None
    entity_id: str | None = None
    version: str | int | float | None = Field(None, description="the expected source version (ISO text or number)")


class CaseConfig(_Strict):
    """One named case: an input (inline or a JSON file) and either the expected record or an error pattern."""

    name: str = Field(min_length=1)
    input: dict[str, Any] | None = None
    input_file: str | None = Field(None, description="JSON file, relative to the case file")
    optional: bool = Field(False, description="skip, not fail, when input_file does not exist")
    xref: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="fake ERP ids for erp_lookup: {'item.itemid': {SKU: id}}"
    )
    override: dict[str, Any] | None = Field(
        None, description="top-level fields replaced in the input (e.g. {test: false} on a vendor sample)"
    )
    expected: ExpectedConfig | None = None
    records: list[ExpectedConfig] | None = Field(
        None, min_length=1, description="an each: mapping's expected records, one per element synced, in order"
    )
    skipped_elements: list[str] = Field(
        default_factory=list, description="with records: a pattern per element the each: mapping leaves out"
    )
    error: str | None = Field(None, description="a substring or regular expression of the expected error")
    skipped: str | None = Field(None, description="a substring or regular expression of the expected skip reason")

    @model_validator(mode="after")
    def _shape(self) -> CaseConfig:
        if (self.input is None) == (self.input_file is None):
            raise ValueError("set exactly one of input, input_file")
        outcomes = [k for k in ("expected", "records", "error", "skipped") if getattr(self, k) is not None]
        if len(outcomes) != 1:
            raise ValueError("set exactly one of expected (the record), records (an each: mapping's), error or"
                             " skipped (a message pattern)")
        if self.skipped_elements and self.records is None:
            raise ValueError("skipped_elements goes with records (an each: mapping's case)")
        return self


class CaseFileConfig(_Strict):
    cases: list[CaseConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> CaseFileConfig:
        seen: set[str] = set()
        for case in self.cases:
            if case.name in seen:
                raise ValueError(f"duplicate case name {case.name!r}")
            seen.add(case.name)
        return self


def short_message(error: Any) -> str:
    """Pydantic's message without its "Value error, " prefix, and plainer words for the common cases."""
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def error_location(loc: tuple[Any, ...]) -> str:
    """``('fields', 3, 'transform', 'transform-chain', 0)`` → ``fields[3].transform[0]`` (union tags left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in UNION_TAGS:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_errors(errors: list[Any]) -> list[str]:
    """One ``path: message`` line per pydantic error, for ConfigError messages."""
    lines = []
    for error in errors:
        where = error_location(tuple(error.get("loc", ())))
        message = short_message(error)
        lines.append(f"{where}: {message}" if where else message)
    return lines
