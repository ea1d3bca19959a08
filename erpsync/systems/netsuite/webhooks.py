"""NetSuite's change notices: Standard Webhooks deliveries posted by erpsync's user-event script (netsuite/suitescript/)
or by the ERP sandbox, verified at ``POST /webhooks/netsuite`` with ERPSYNC_NETSUITE_WEBHOOK_SECRET.

NetSuite sends no webhooks of its own; the script signs a thin notice of a change by the Standard Webhooks scheme
(HMAC-SHA256 over ``webhook-id.webhook-timestamp.body``, base64, ``v1,``). Its ``webhook-id`` is the change's
delivery id (``netsuite:<recordType>:<id>:<last modified>``, erpsync/change_intake.py), which the change reader
gives the same change, so a change notified and also read is one inbox event.

Verified with the ``standardwebhooks`` package, as the generic Standard Webhooks source verifies; that source is
another system's package, which this one may not import (tests/unit/test_system_boundaries.py), hence the few
lines below rather than a subclass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

from erpsync.errors import ConfigError
from erpsync.receiver.deliveries import BadDelivery, Delivery, SignatureRefused, iso_or_none
from erpsync.receiver.limits import JsonRefused, parse_json_object

# The standardwebhooks package's own tolerance; checked first so a refusal can say "outside the window".
TOLERANCE = timedelta(minutes=5)


def notice_headers(secret: str, delivery_id: str, body: bytes, timestamp: datetime | None = None) -> dict[str, str]:
    """The headers the script (and the ERP sandbox) put on a notice: ``webhook-id`` is the delivery id as it is."""
    when = (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=delivery_id, timestamp=when, data=body.decode()),
    }


class NetSuiteNoticeSource:
    """Change notices signed by the Standard Webhooks scheme; topic = the payload's ``type`` (``<recordType>.changed``)."""

    name = "netsuite"
    example_topic = None  # the topic is the payload's own `type`, which the signature covers
    header_docs = [
        ("webhook-id", "the change's delivery id, netsuite:<recordType>:<internal id>:<last modified UTC>; the "
                       "change reader gives the same change the same id, so both make one event"),
        ("webhook-timestamp", "Unix seconds; refused outside 5 minutes of the receiver's clock"),
        ("webhook-signature", "space-separated v1,<base64 HMAC-SHA256> signatures (several during key rotation)"),
    ]
    extra_content: dict = {}

    def sign(self, secret: str, body: bytes, *, topic: str | None, delivery_id: str, shop: str | None = None
             ) -> dict[str, str]:
        try:
            kind = json.loads(body).get("type")
        except (ValueError, AttributeError):
            kind = None
        if not isinstance(kind, str) or not kind:
            raise ConfigError("SAMPLE_OR_FILE: a change notice names its topic in the field 'type'; this one has none")
        if topic and topic != kind:
            raise ConfigError(f"--topic: {topic!r} differs from the payload's 'type' {kind!r}, which is the topic "
                              f"of a change notice (leave --topic out, or edit 'type')")
        return notice_headers(secret, delivery_id, body)

    def authenticate(self, headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime) -> Delivery:
        msg_id, stamp, signature = (headers.get("webhook-id"), headers.get("webhook-timestamp"),
                                    headers.get("webhook-signature"))
        missing = [n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", stamp),
                                  ("webhook-signature", signature)) if not v]
        if missing:
            raise SignatureRefused(f"missing header: {', '.join(missing)}")
        try:
            sent = datetime.fromtimestamp(float(stamp), tz=timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise SignatureRefused("webhook-timestamp is not a Unix time") from None
        if abs(now - sent) > TOLERANCE:
            raise SignatureRefused("webhook-timestamp outside the 5-minute tolerance (replay or clock skew)")
        signed = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
        if not any(_verifies(secret, body, signed) for secret in secrets):
            raise SignatureRefused("missing or invalid webhook-signature")
        try:
            payload = parse_json_object(body)
        except JsonRefused as exc:
            raise BadDelivery(str(exc)) from None
        topic = payload.get("type")
        if not isinstance(topic, str) or not topic:
            raise BadDelivery("payload field 'type' must be a non-empty string")
        return Delivery(self.name, msg_id, topic, None, iso_or_none(payload.get("timestamp")))


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    # Hostile input raises more than the package's own error: a signature without a comma or bad base64
    # (ValueError), a body that is not UTF-8 (UnicodeDecodeError); a secret not base64 or empty likewise.
    except (WebhookVerificationError, ValueError, EmptyWebhookSecretError):
        return False
    return True
