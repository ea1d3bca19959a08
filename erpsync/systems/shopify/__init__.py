"""Shopify: order, refund, fulfillment, product and customer webhooks in; orders read back through GraphQL to reconcile."""

from erpsync.ports import PayloadModel, System
from erpsync.systems.shopify import compliance, fields, models, money, order_delete, refund_money
from erpsync.systems.shopify.orders_graphql import ShopifyOrderReader
from erpsync.systems.shopify.webhooks import ShopifySource
from erpsync.systems.shopify.writer import NATURAL_KEYS, ShopifyWriter

SYSTEM = System(
    name="shopify",
    title="Shopify",
    kind="shop",
    describe="Shopify (webhooks signed with X-Shopify-Hmac-Sha256; GraphQL Admin API for reconciliation)",
    models={
        "order": PayloadModel(models.parse_order, money.order_money, money.READS),
        "refund": PayloadModel(models.parse_refund, refund_money.refund_money, refund_money.READS),
        "fulfillment": PayloadModel(models.parse_fulfillment),
        "product": PayloadModel(models.parse_product),
        "customer": PayloadModel(models.parse_customer),
    },
    webhook=ShopifySource(),
    intake={**dict.fromkeys(compliance.TOPICS, compliance.HANDLER), order_delete.TOPIC: order_delete.HANDLER},
    # Reconciliation reads orders through the GraphQL Admin API (pages, or a bulk operation for a large window).
    order_reader=ShopifyOrderReader.from_env,
    # The way back: fulfillments, inventory levels and variant prices written through the GraphQL Admin API.
    writer=ShopifyWriter.from_env,
    record_fields=fields.RECORD_FIELDS,
    natural_keys=NATURAL_KEYS,
)
