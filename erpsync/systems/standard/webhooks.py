"""Standard Webhooks (standardwebhooks.com): any sender signing by the spec, verified by the ``standardwebhooks`` package."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

from erpsync.errors import ConfigError
from erpsync.receiver.deliveries import BadDelivery, Delivery, SignatureRefused, iso_or_none
from erpsync.receiver.limits import JsonRefused, parse_json_object


def standard_webhook_headers(secrets: list[str] | str, msg_id: str, body: bytes,
                             timestamp: datetime | None = None) -> dict[str, str]:
    """Headers a Standard Webhooks sender puts on ``body``, signed by the ``standardwebhooks`` package.

    Several secrets give several space-separated ``v1,`` signatures, as a sender does while rotating keys.
    """
    when = timestamp or datetime.now(timezone.utc)
    # The package reads a naive or zoned datetime as if it were UTC; hand it UTC so the header and signature agree.
    when = when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
    keys = [secrets] if isinstance(secrets, str) else secrets
    signatures = [Webhook(key).sign(msg_id=msg_id, timestamp=when, data=body.decode()) for key in keys]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# The standardwebhooks package's own tolerance (it is not configurable there); checked here first as well so a
# refusal can say "outside the window" rather than only "not verified" — replays are counted apart from forgeries.
STANDARD_WEBHOOKS_TOLERANCE = timedelta(minutes=5)


class StandardWebhooksSource:
    """Any Standard Webhooks sender, verified by the ``standardwebhooks`` package; topic = the payload's ``type``."""

    example_topic = None  # the topic is the payload's own `type`, which the signature covers
    header_docs = [
        ("webhook-id", "message id: a repeated id is answered 200 with no new work"),
        ("webhook-timestamp", "Unix seconds; refused outside 5 minutes of the receiver's clock"),
        ("webhook-signature", "space-separated v1,<base64 HMAC-SHA256> signatures (several during key rotation)"),
    ]
    extra_content: dict = {}

    def __init__(self, name: str = "standard"):
        self.name = name

    def sign(self, secret: str, body: bytes, *, topic: str | None, delivery_id: str, shop: str | None = None
             ) -> dict[str, str]:
        """The headers a Standard Webhooks sender puts on ``body``; the topic must be the payload's ``type``."""
        try:
            kind = json.loads(body).get("type")
        except (ValueError, AttributeError):
            kind = None
        if not isinstance(kind, str) or not kind:
            raise ConfigError("SAMPLE_OR_FILE: a Standard Webhooks payload names its topic in the field 'type'; "
                              "this one has none")
        if topic and topic != kind:
            raise ConfigError(f"--topic: {topic!r} differs from the payload's 'type' {kind!r}, which is the topic "
                              f"for Standard Webhooks (leave --topic out, or edit 'type')")
        return standard_webhook_headers(secret, f"msg_{delivery_id.replace('-', '')}", body)

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
        if abs(now - sent) > STANDARD_WEBHOOKS_TOLERANCE:
            raise SignatureRefused("webhook-timestamp outside the 5-minute tolerance (replay or clock skew)")
        signed = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
        if not any(self._verifies(secret, body, signed) for secret in secrets):
            raise SignatureRefused("missing or invalid webhook-signature")
        try:
            payload = parse_json_object(body)
        except JsonRefused as exc:
            raise BadDelivery(str(exc)) from None
        topic = payload.get("type")
        if not isinstance(topic, str) or not topic:
            raise BadDelivery("payload field 'type' must be a non-empty string")
        return Delivery(self.name, msg_id, topic, None, iso_or_none(payload.get("timestamp")))

    @staticmethod
    def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        # The package raises more than its own error on hostile input: a signature without a comma or with bad
        # base64 (ValueError), a body that is not UTF-8 (UnicodeDecodeError); a secret that is not base64 or is
        # empty fails the same way. Each means "not verified".
        except (WebhookVerificationError, ValueError, EmptyWebhookSecretError):
            return False
        return True
