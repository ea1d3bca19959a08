"""Standard Webhooks (standardwebhooks.com): any sender signing by the spec, verified by the shared scheme."""

from __future__ import annotations

from erpsync.receiver.webhook_spec import TOLERANCE as STANDARD_WEBHOOKS_TOLERANCE
from erpsync.receiver.webhook_spec import SpecWebhooksScheme
from erpsync.receiver.webhook_spec import signed_headers as standard_webhook_headers


class StandardWebhooksSource(SpecWebhooksScheme):
    """Any Standard Webhooks sender (erpsync.receiver.webhook_spec.py); topic = the payload's ``type``."""

    header_docs = [
        ("webhook-id", "message id: a repeated id is answered 200 with no new work"),
        ("webhook-timestamp", "Unix seconds; refused outside 5 minutes of the receiver's clock"),
        ("webhook-signature", "space-separated v1,<base64 HMAC-SHA256> signatures (several during key rotation)"),
    ]

    def __init__(self, name: str = "standard"):
        self.name = name

    def message_id(self, delivery_id: str) -> str:
        return f"msg_{delivery_id.replace('-', '')}"  # the spec's examples: msg_<token>


__all__ = ["STANDARD_WEBHOOKS_TOLERANCE", "StandardWebhooksSource", "standard_webhook_headers"]
