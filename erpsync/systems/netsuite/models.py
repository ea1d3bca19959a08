"""The change notice out of NetSuite (the way back): the one shape both ways in write to the inbox.

A notice says that a record changed, not what it holds; the pipeline reads the record's current state from
NetSuite before mapping (a mapping's ``read:``). Source ``netsuite``, topic ``<recordType>.changed``, delivery id
``netsuite:<recordType>:<internal id>:<lastModified, whole seconds, UTC>``, body in the Standard Webhooks shape::

    {"type": "itemFulfillment.changed", "timestamp": "2026-11-28T10:15:02Z",
     "data": {"recordType": "itemFulfillment", "id": "812", "externalId": null,
              "lastModified": "2026-11-28T10:15:02Z"}}

The entity is (netsuite, <recordType>, <id>, <target>) and its version ``data.lastModified``. An item whose stock a
transaction moved (the reader's ``stockMove``) is an ``inventoryItem`` notice stamped with the transaction's last
modified and naming it in ``data.cause`` (``{"recordType": "inventoryadjustment", "id": "4513"}``), kept as an
extra field; its delivery id ends ``:by-<transaction id>``.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from erpsync.validation import parse_model

# A REST record type as the record API names it (itemFulfillment, inventoryItem).
_RECORD_TYPE = r"^[a-z][A-Za-z0-9]*$"


class ChangeData(BaseModel):
    model_config = ConfigDict(extra="allow")  # a field added later is drift, not a refusal

    record_type: str = Field(alias="recordType", pattern=_RECORD_TYPE)
    id: str = Field(pattern=r"^[1-9][0-9]*$", description="the record's internal id")
    external_id: str | None = Field(None, alias="externalId")
    last_modified: AwareDatetime = Field(alias="lastModified")


class ChangeNotice(BaseModel):
    model_config = ConfigDict(extra="allow")  # a field added later is drift, not a refusal

    type: str
    timestamp: AwareDatetime
    data: ChangeData

    @model_validator(mode="after")
    def _type_names_the_record(self) -> ChangeNotice:
        if self.type != f"{self.data.record_type}.changed":
            raise ValueError(f"type must be '{self.data.record_type}.changed', the record type of data")
        return self

    @property
    def entity_id(self) -> str:
        return self.data.id


def parse_change(payload: Any) -> ChangeNotice:
    """Validate a change notice; InvalidPayload naming the field (``data.lastModified``) otherwise."""
    return parse_model(ChangeNotice, payload)
