"""The webhook sources the receiver serves, one per registered system that sends webhooks (``POST /webhooks/{name}``)."""

from __future__ import annotations

from erpsync.receiver.deliveries import (
    BadDelivery,
    Delivery,
    DeliveryRefused,
    NotAWebhook,
    SignatureRefused,
    WebhookSource,
)
from erpsync.systems import SYSTEMS

SOURCES: dict[str, WebhookSource] = {name: s.webhook for name, s in SYSTEMS.items() if s.webhook is not None}

__all__ = ["SOURCES", "BadDelivery", "Delivery", "DeliveryRefused", "NotAWebhook", "SignatureRefused", "WebhookSource"]
