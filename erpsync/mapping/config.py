"""The pydantic models of a mapping file (``mappings/*.yaml``) and of its sibling case file (``*.cases.yaml``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from erpsync.mapping.paths import FieldPath
from erpsync.mapping.templates import Template
from erpsync.mapping.transforms import TRANSFORMS, TransformParams, known_transforms

PathText = Annotated[FieldPath, BeforeValidator(FieldPath.parse)]
TemplateText = Annotated[Template, BeforeValidator(Template.parse)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class TransformRef(_Strict):
    """``transform: uppercase`` or ``transform: {name: lookup, table: sku_to_item}``: a name plus its parameters."""

    name: str
    params: TransformParams

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
                "unknown_transform", "{detail}", {"detail": f"unknown transform {name!r} (known: {known_transforms()})"}
            )
        try:
            params = spec.params.model_validate(args)
        except ValidationError as exc:  # re-raised as one error of this field, naming the argument
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {_short_message(e)}" for e in exc.errors()
            )
            raise PydanticCustomError(
                "transform_params", "{detail}", {"detail": f"transform {name!r}: {problems}"}
            ) from None
        return {"name": name, "params": params}


class FieldConfig(_Strict):
    """One target field, filled from a source field, a constant ``value`` or a ``template``."""

    target_field: PathText
    source_field: PathText | None = None
    value: Any = None
    template: TemplateText | None = None
    transform: TransformRef | None = None
    required: bool = Field(True, description="a missing (absent or null) source value is an error; false: skip")

    @model_validator(mode="after")
    def _one_source(self) -> FieldConfig:
        given = [k for k in ("source_field", "value", "template") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of source_field, value, template"
                + (f" (found: {', '.join(given)})" if given else "")
            )
        if self.template is not None and self.target_field.iterations:
            raise ValueError("a template cannot fill a list ([]) target")
        if self.source_field is not None:
            src, dst = self.source_field.iterations, self.target_field.iterations
            if src != dst:
                raise ValueError(
                    f"source_field has {src} list step(s) ([]) but target_field has {dst}; they must match"
                )
        return self

    @property
    def kind(self) -> str:
        return "source_field" if self.source_field is not None else "template" if self.template else "value"


class LookupConfig(_Strict):
    path: str = Field(description="CSV file, relative to the mapping file")
    key: str | None = Field(None, description="key column; default the first")
    value: str | None = Field(None, description="value column; default the second")

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class MappingConfig(_Strict):
    source: str = Field(min_length=1, description="the source system, e.g. shopify")
    topic: str | None = Field(None, description="the one source topic handled, e.g. orders/create")
    topics: list[str] | None = Field(None, min_length=1, description="several source topics")
    record_type: str = Field(min_length=1, description="the ERP record type, e.g. salesOrder")
    external_id: TemplateText = Field(description="template of the ERP external id, e.g. shopify-order-{id}")
    lookups: dict[str, LookupConfig] = Field(default_factory=dict)
    fields: list[FieldConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_topic_key(self) -> MappingConfig:
        if (self.topic is None) == (self.topics is None):
            raise ValueError("set exactly one of topic, topics")
        return self

    @property
    def all_topics(self) -> tuple[str, ...]:
        return (self.topic,) if self.topic is not None else tuple(self.topics or ())


class CaseConfig(_Strict):
    """One named case: an input (inline or a JSON file) and either the expected record or an error substring."""

    name: str = Field(min_length=1)
    input: dict[str, Any] | None = None
    input_file: str | None = Field(None, description="JSON file, relative to the case file")
    optional: bool = Field(False, description="skip, not fail, when input_file does not exist")
    external_id: str | None = None
    body: dict[str, Any] | None = None
    error: str | None = Field(None, description="a substring of the expected MappingError message")

    @model_validator(mode="after")
    def _shape(self) -> CaseConfig:
        if (self.input is None) == (self.input_file is None):
            raise ValueError("set exactly one of input, input_file")
        if self.error is not None and (self.body is not None or self.external_id is not None):
            raise ValueError("a case expects either error or body/external_id, not both")
        if self.error is None and self.body is None:
            raise ValueError("set body (the expected record body) or error")
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


def _short_message(error: Any) -> str:
    """Pydantic's message without its "Value error, " prefix, and plainer words for the common cases."""
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def error_location(loc: tuple[Any, ...]) -> str:
    """``('fields', 3, 'transform')`` → ``fields[3].transform``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_errors(errors: list[Any]) -> list[str]:
    """One ``path: message`` line per pydantic error, for ConfigError messages."""
    lines = []
    for error in errors:
        where = error_location(tuple(error.get("loc", ())))
        message = _short_message(error)
        lines.append(f"{where}: {message}" if where else message)
    return lines
