"""Issue 16, item 4: a payload that is not what its topic carries is `mismatched`, apart from dead letters that alert."""

from __future__ import annotations

import hashlib

import pytest

from erpsync.deadletters import group_dead_letters, select_dead_letters
from erpsync.errors import PayloadMismatch
from erpsync.pipeline import SyncPipeline
from tests.conftest import REPO, fixture_path


def no_erp():
    raise AssertionError("a mismatched payload never reaches the ERP")


# customers/create is not here: an order carries what the customer model asks for (id, email, names), so only the
# intake's replay rule stops that one (tests/integration/test_receiver_hardening.py).
@pytest.mark.parametrize("topic", ["products/create", "refunds/create", "fulfillments/create"])
def test_an_order_body_under_another_topic_is_mismatched_and_grouped_apart(ledger, topic):
    body = fixture_path("shopify", "orders_create.json").read_bytes()
    event_id = ledger.record_delivery(source="shopify", delivery_id=f"replay-{topic}", topic=topic, shop=None,
                                      triggered_at=None, body=body,
                                      payload_sha256=hashlib.sha256(body).hexdigest()).event_id
    pipeline = SyncPipeline(ledger, REPO / "mappings", no_erp)
    with pytest.raises(PayloadMismatch) as raised:
        pipeline.validate(event_id)
    reason = pipeline.fail(event_id, raised.value)
    assert reason.startswith("PayloadMismatch: ")
    assert "@" not in reason  # names a field, never a value of the order (its email)
    event = ledger.get_event(event_id)
    assert event.state == "mismatched"
    assert [o.outcome for o in ledger.outcomes(event_id)] == ["mismatched"]
    [dead] = select_dead_letters(ledger)
    assert dead.event_id == event_id
    [group] = group_dead_letters([dead])
    assert group.group.startswith("PayloadMismatch")
    assert group.label.startswith("PayloadMismatch at ")

