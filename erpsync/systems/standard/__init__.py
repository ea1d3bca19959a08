"""Any Standard Webhooks sender: events signed by the spec, orders in erpsync's documented shape (docs/sources.md)."""

from erpsync.ports import PayloadModel, System
from erpsync.systems.standard import models, money
from erpsync.systems.standard.webhooks import StandardWebhooksSource

SYSTEM = System(
    name="standard",
    title="Standard Webhooks",
    kind="shop",
    describe="Standard Webhooks sender (webhook-id, webhook-timestamp, webhook-signature)",
    models={"order": PayloadModel(models.parse_order, money.order_money, money.READS)},
    webhook=StandardWebhooksSource("standard"),
)
