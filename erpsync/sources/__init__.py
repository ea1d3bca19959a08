"""Source payload models by name, so a mapping file can say which one validates its events (``model:``)."""

from __future__ import annotations

from collections.abc import Callable

from erpsync.sources import shopify, standard, woocommerce

# name → parse(payload) that returns the typed entity or raises InvalidPayload(field=...).
# A mapping's `model:` must be one of these names; a new source entity is a new line here.
MODELS: dict[str, Callable[[dict], object]] = {
    "shopify.order": shopify.parse_order,
    "shopify.refund": shopify.parse_refund,
    "shopify.fulfillment": shopify.parse_fulfillment,
    "shopify.product": shopify.parse_product,
    "shopify.customer": shopify.parse_customer,
    "woocommerce.order": woocommerce.parse_order,
    "standard.order": standard.parse_order,
}

__all__ = ["MODELS"]
