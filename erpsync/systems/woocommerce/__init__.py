"""WooCommerce: order webhooks signed with X-WC-Webhook-Signature."""

from erpsync.ports import PayloadModel, System
from erpsync.systems.woocommerce import models, money
from erpsync.systems.woocommerce.webhooks import WooCommerceSource

SYSTEM = System(
    name="woocommerce",
    title="WooCommerce",
    kind="shop",
    describe="WooCommerce (webhooks signed with X-WC-Webhook-Signature)",
    models={"order": PayloadModel(models.parse_order, money.order_money, money.READS)},
    webhook=WooCommerceSource(),
)
