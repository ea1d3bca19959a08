"""A warehouse's stock count in NetSuite, made the only way NetSuite takes one: an inventory adjustment by the
difference between the count and what the item holds (its location quantities are computed and read-only).

Used by the way back's demo, chaos run and benchmark (erpsync_dev/way_back.py) and by the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# The adjustment account and the subsidiary the warehouse's adjustments post to (the sandbox seeds subsidiary 1).
ADJUSTMENT_ACCOUNT = "130"
SUBSIDIARY = "1"


def location_quantities(item: Mapping[str, Any] | None) -> dict[str, tuple[Decimal, Decimal]]:
    """ERP location id → (on hand, committed) of an item as NetSuite answers it, expanded."""
    lines = ((item or {}).get("locations") or {}).get("items") or []
    return {str(line["location"]["id"]): (Decimal(str(line.get("quantityOnHand") or 0)),
                                          Decimal(str(line.get("quantityCommitted") or 0)))
            for line in lines if isinstance(line, dict) and (line.get("location") or {}).get("id") is not None}


def adjustment_lines(item_id: str, held: Mapping[str, tuple[Decimal, Decimal]],
                     counted: Mapping[str, int]) -> list[dict[str, Any]]:
    """One ``inventory`` line per location whose count differs from its on hand, adjusting by the difference."""
    lines = []
    for location, quantity in sorted(counted.items()):
        difference = Decimal(quantity) - held.get(location, (Decimal(0), Decimal(0)))[0]
        if difference:
            lines.append({"item": {"id": str(item_id)}, "location": {"id": str(location)},
                          "adjustQtyBy": int(difference) if difference == int(difference) else float(difference)})
    return lines


def count_stock(erp: Any, item_id: str, counted: Mapping[str, int], external_id: str, *,
                memo: str = "stock count") -> tuple[str | None, dict[str, tuple[Decimal, Decimal]]]:
    """Bring each counted location's on hand to its count by one inventory adjustment (upserted under
    ``external_id``, so a retry does not adjust twice). (The adjustment's internal id, or None when every count
    matched; the item's (on hand, committed) per location before it.)"""
    held = location_quantities(erp.get("inventoryItem", str(item_id), expand_sub_resources=True))
    lines = adjustment_lines(item_id, held, counted)
    if not lines:
        return None, held
    body = {"account": {"id": ADJUSTMENT_ACCOUNT}, "subsidiary": {"id": SUBSIDIARY}, "memo": memo,
            "inventory": {"items": lines}}
    return erp.upsert("inventoryAdjustment", external_id, body), held


def commit_stock(erp: Any, item_id: str, location: str, quantity: int, external_id: str, *,
                 customer: str = "110") -> str:
    """An open sales order of ``quantity`` of the item at ``location``: NetSuite commits it there (upserted under
    ``external_id``, so the same call keeps one order)."""
    return erp.upsert("salesOrder", external_id, {"entity": {"id": customer}, "location": {"id": str(location)},
                                                  "item": {"items": [{"item": {"id": str(item_id)},
                                                                      "quantity": quantity}]}})
