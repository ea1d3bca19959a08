"""When a change notice delivered again must read its record again (two changes in one second share a delivery id)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from erpsync.change_intake import (
    REREAD_CLOCK_MARGIN,
    REREAD_READER_MARGIN,
    base_delivery_id,
    notice_body,
    reread_delivery,
    reread_due,
)
from erpsync.ledger import InboxDelivery

CHANGED = datetime(2026, 11, 28, 10, 15, 2, 400_000, tzinfo=UTC)
BODY = notice_body("itemFulfillment", "812", None, CHANGED)
SECOND_OVER = datetime(2026, 11, 28, 10, 15, 3, tzinfo=UTC)


@pytest.mark.parametrize(("state", "received", "due"), [
    ("synced", CHANGED, True),  # read within the change's second: a later change of that second may be missed
    ("skipped", SECOND_OVER + REREAD_CLOCK_MARGIN - timedelta(milliseconds=1), True),
    ("synced", SECOND_OVER + REREAD_CLOCK_MARGIN, False),  # read after the second (and the clocks' margin)
    ("received", CHANGED, False),  # still waiting: it reads the record when it runs
    ("failed", CHANGED, False),  # a dead letter: its replay reads the record
    ("superseded", CHANGED, False),  # a later version was read after it
])
def test_a_redelivery_is_read_again_only_after_a_finished_event_that_may_have_read_too_early(state, received, due):
    assert reread_due(BODY, state, received) is due


def test_the_readers_repeat_is_judged_by_the_clocks_margin_only():
    read = SECOND_OVER + timedelta(seconds=5)  # read five seconds after the change's second
    assert reread_due(BODY, "synced", read) is True  # a notice posted again: the save may have committed late
    assert reread_due(BODY, "synced", read, REREAD_READER_MARGIN) is False  # the reader's overlap reading it again
    assert reread_due(BODY, "synced", SECOND_OVER, REREAD_READER_MARGIN) is True


def test_a_notice_without_a_change_time_is_read_again_rather_than_lost():
    assert reread_due(b'{"data": {}}', "synced", SECOND_OVER + timedelta(days=1)) is True


def test_a_reread_has_its_own_delivery_id_and_a_body_of_other_content():
    delivery = InboxDelivery("netsuite", "netsuite:itemFulfillment:812:2026-11-28T10:15:02Z", "itemFulfillment.changed",
                             None, "2026-11-28T10:15:02Z", BODY, "x")
    first = reread_delivery(delivery, 1)
    second = reread_delivery(first, 2)
    assert (first.delivery_id, second.delivery_id) == (f"{delivery.delivery_id}#reread-1",
                                                      f"{delivery.delivery_id}#reread-2")
    assert base_delivery_id(second.delivery_id) == delivery.delivery_id
    assert json.loads(second.body) == {**json.loads(BODY), "reread": 2}
    assert first.payload_sha256 != second.payload_sha256
