"""A target's record id as long as the Shopify writer makes one (an inventory level: item gid|location gid|quantity)
is kept whole by the ledger, on SQLite and on PostgreSQL, which enforces a column's length (revision 0007)."""

from datetime import UTC, datetime

from erpsync.ledger import EntityKey

LEVEL_ID = "gid://shopify/InventoryItem/40003898923736|gid://shopify/Location/71000000001|39"
KEY = EntityKey("netsuite", "level", "netsuite-item-1000-location-1", "shopify")
V1 = datetime(2026, 12, 3, 13, 3, 33, tzinfo=UTC)


def test_an_inventory_levels_id_fits_the_cross_reference_and_the_outcome(ledger):
    event_id = ledger.record_delivery(source="netsuite", delivery_id="netsuite:inventoryItem:1000:x",
                                      topic="inventoryItem.changed", shop=None, triggered_at=None, body=b"{}",
                                      payload_sha256="h1").event_id
    ledger.record_element(KEY, record_type="inventoryLevel", external_id="netsuite-item-1000-location-1",
                          to_id=LEVEL_ID, version=V1, payload_sha256="h1", mapping_version="m1")
    ledger.record_outcome(event_id=event_id, source="netsuite", outcome="synced", key=KEY,
                          external_id="netsuite-item-1000-location-1", to_id=LEVEL_ID, mapping_version="m1",
                          payload_sha256="h1", applied=("inventoryLevel", V1))
    assert ledger.entity_state(KEY).to_id == LEVEL_ID
    assert [o.to_id for o in ledger.outcomes(event_id)] == [LEVEL_ID]
