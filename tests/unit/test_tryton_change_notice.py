"""Tryton's change notice (erpsync/systems/tryton/models.py) as the receiver and the pipeline validate it, and the
record types `erpsync poll --erp NAME` reads when none are named."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from erpsync.change_intake import DEFAULT_RECORD_TYPES, default_record_types, notice_body
from erpsync.errors import ConfigError, InvalidPayload
from erpsync.systems import MODELS

MOMENT = datetime(2026, 12, 3, 10, 15, 2, 700000, tzinfo=UTC)


@pytest.mark.parametrize("model", ["stock.shipment.out", "product.product"])
def test_the_readers_notice_of_a_tryton_model_is_valid(model: str) -> None:
    notice = MODELS["tryton.change"](json.loads(notice_body(model, "31", None, MOMENT)))
    assert (notice.type, notice.entity_id, notice.data.last_modified) == (
        f"{model}.changed", "31", MOMENT.replace(microsecond=0))


@pytest.mark.parametrize(("change", "field"), [
    ({"data": {"recordType": "Stock Shipment"}}, "data.recordType"),  # not a Tryton model name
    ({"data": {"recordType": "itemFulfillment"}}, "data.recordType"),  # NetSuite's names are not Tryton's
    ({"data": {"id": "0"}}, "data.id"),
    ({"data": {"lastModified": "2026-12-03T10:15:02"}}, "data.lastModified"),  # no time zone
    ({"type": "product.product.changed"}, "type"),  # the type must name data's model
])
def test_a_notice_that_is_not_tryton_s_shape_is_refused_naming_the_field(change: dict, field: str) -> None:
    payload = json.loads(notice_body("stock.shipment.out", "31", None, MOMENT))
    for key, value in change.items():
        payload[key] = {**payload[key], **value} if isinstance(value, dict) else value
    with pytest.raises(InvalidPayload) as refused:
        MODELS["tryton.change"](payload)
    assert field in str(refused.value)


def test_each_erp_reads_its_own_record_types_by_default() -> None:
    assert default_record_types("tryton") == ("stock.shipment.out", "product.product")
    assert default_record_types("netsuite") == DEFAULT_RECORD_TYPES
    with pytest.raises(ConfigError, match="unknown system"):
        default_record_types("odoo")
