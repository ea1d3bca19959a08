"""The idempotency key of a stock write: the same for a retry of the same event's write, another for any other."""

from __future__ import annotations

import uuid

from erpsync.systems.shopify.writer import inventory_request_key
from erpsync.write_context import current_write, event_identity, writing_for
from erpsync_dev.sandboxes.shopify.api_versions import SERVED_VERSION, answering_version

ITEM, MAIN, EAST = "gid://shopify/InventoryItem/1", "gid://shopify/Location/1", "gid://shopify/Location/2"


def test_a_retry_of_the_same_events_write_has_the_same_key_and_anything_else_another():
    first = event_identity(41, "ab" * 32)
    with writing_for(first):
        key = inventory_request_key(ITEM, MAIN, 24, 34)
        assert inventory_request_key(ITEM, MAIN, 24, 34) == key  # the retry after a lost answer
        assert uuid.UUID(key).version == 5
        others = {inventory_request_key(ITEM, EAST, 24, 34), inventory_request_key(ITEM, MAIN, 5, 34),
                  inventory_request_key(ITEM, MAIN, 24, 35)}
    with writing_for(event_identity(42, "ab" * 32)):  # another event writing the same quantities
        others.add(inventory_request_key(ITEM, MAIN, 24, 34))
    with writing_for(event_identity(41, "cd" * 32)):  # a ledger started afresh: id 41 again, another change
        others.add(inventory_request_key(ITEM, MAIN, 24, 34))
    assert key not in others and len(others) == 5


def test_outside_the_pipeline_each_call_has_a_fresh_key():
    assert current_write() is None
    assert inventory_request_key(ITEM, MAIN, 24, 34) != inventory_request_key(ITEM, MAIN, 24, 34)
    with writing_for("event:1:x"):
        assert current_write() == "event:1:x"
    assert current_write() is None


def test_the_shop_sandbox_answers_older_versions_with_the_one_it_serves_and_no_other():
    assert SERVED_VERSION == "2026-10"
    assert [answering_version(v) for v in ("2025-01", "2026-07", "2026-10")] == ["2026-10"] * 3
    assert [answering_version(v) for v in ("2027-01", "unstable", "2025-02", "latest", "")] == [None] * 5
