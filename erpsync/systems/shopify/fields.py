"""The bodies the Shopify writer (writer.py) takes per record type, so a mapping's ``target_field`` is checked at load.

These are the writer's own bodies, which it turns into GraphQL Admin API input (``fulfillmentCreate``,
``inventorySetQuantities``, ``productVariantsBulkUpdate``), not Shopify's field names: a list field as
``<list>.<field>`` (``lines[].quantity`` in a mapping).
"""

from __future__ import annotations

RECORD_FIELDS: dict[str, frozenset[str]] = {
    # The shop's order (its id), the shipped lines by the ERP order line they ship, the ERP order's lines with the
    # shop line item each came from, the carrier and tracking numbers, and whether Shopify tells the customer.
    "fulfillment": frozenset({
        "order", "lines", "lines.orderLine", "lines.lineItemId", "lines.sku", "lines.quantity",
        "orderLines", "orderLines.line", "orderLines.lineItemId",
        "tracking", "tracking.company", "tracking.numbers", "tracking.url", "notifyCustomer",
    }),
    # One location's available quantity of one SKU.
    "inventoryLevel": frozenset({"sku", "location", "available"}),
    # A variant by SKU: its price and compare-at price.
    "productVariant": frozenset({"sku", "price", "compareAtPrice"}),
}
