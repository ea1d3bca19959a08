"""The change notice out of Tryton (the way back): the shape the change reader writes to the inbox.

The same shape as NetSuite's (erpsync/change_intake.py), with Tryton's model names as record types: source
``tryton``, topic ``<model>.changed`` (``stock.shipment.out.changed``, ``product.product.changed``), delivery id
``tryton:<model>:<id>:<modified, whole seconds, UTC>``. Tryton posts no notices of its own (docs/tryton.md), so the
reader is the only way in. A notice names the record; the pipeline reads it from Tryton before mapping.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from erpsync.validation import parse_model

# A Tryton model name: dotted lower-case words (stock.shipment.out, product.product).
_MODEL_NAME = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


class ChangeData(BaseModel):
    model_config = ConfigDict(extra="allow")  # a field added later is drift, not a refusal

    record_type: str = Field(alias="recordType", pattern=_MODEL_NAME)
    id: str = Field(pattern=r"^[1-9][0-9]*$", description="the record's id in Tryton")
    external_id: str | None = Field(None, alias="externalId")
    last_modified: AwareDatetime = Field(alias="lastModified")


class ChangeNotice(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    timestamp: AwareDatetime
    data: ChangeData

    @model_validator(mode="after")
    def _type_names_the_record(self) -> ChangeNotice:
        if self.type != f"{self.data.record_type}.changed":
            raise ValueError(f"type must be '{self.data.record_type}.changed', the model of data")
        return self

    @property
    def entity_id(self) -> str:
        return self.data.id


def parse_change(payload: Any) -> ChangeNotice:
    """Validate a change notice; InvalidPayload naming the field (``data.recordType``) otherwise."""
    return parse_model(ChangeNotice, payload)
