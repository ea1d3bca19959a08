"""The Standard Webhooks scheme (standardwebhooks.com), as any source that signs by it is verified and signs.

A scheme, not a system: the generic Standard Webhooks source (erpsync/systems/standard/) and NetSuite's change
notices (erpsync/systems/netsuite/) both sign this way. Verified by the ``standardwebhooks`` package; the topic is
the payload's own ``type``, which the signature covers. A source subclasses ``SpecWebhooksScheme`` with its
``name``, ``header_docs`` and how a delivery id becomes a ``webhook-id`` (``message_id``).
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

# The standardwebhooks package's own tolerance (it is not configurable there); checked here first as well so a
# refusal can say "outside the window" rather than only "not verified" — replays are counted apart from forgeries.
TOLERANCE = timedelta(minutes=5)


def signed_headers(secrets: list[str] | str, msg_id: str, body: bytes,
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


class SpecWebhooksScheme:
    """Verifies and signs by the Standard Webhooks scheme; a subclass names the source and its ``webhook-id``."""

    name: str
    example_topic = None  # the topic is the payload's own `type`, which the signature covers
    extra_content: dict = {}
    # What the payloads are called in a refusal of `erpsync send` ("a Standard Webhooks payload").
    payload_name = "a Standard Webhooks payload"

    def message_id(self, delivery_id: str) -> str:
        """The ``webhook-id`` a delivery of ``delivery_id`` is sent under."""
        return delivery_id

    def sign(self, secret: str, body: bytes, *, topic: str | None, delivery_id: str, shop: str | None = None
             ) -> dict[str, str]:
        """The headers a sender puts on ``body``; the topic must be the payload's ``type``."""
        try:
            kind = json.loads(body).get("type")
        except (ValueError, AttributeError):
            kind = None
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"SAMPLE_OR_FILE: {self.payload_name} names its topic in the field 'type'; "
                              "this one has none")
        if topic and topic != kind:
            raise ConfigError(f"--topic: {topic!r} differs from the payload's 'type' {kind!r}, which is the topic "
                              f"of {self.payload_name} (leave --topic out, or edit 'type')")
        return signed_headers(secret, self.message_id(delivery_id), body)

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
    # The package raises more than its own error on hostile input: a signature without a comma or with bad
    # base64 (ValueError), a body that is not UTF-8 (UnicodeDecodeError); a secret that is not base64 or is
    # empty fails the same way. Each means "not verified".
    except (WebhookVerificationError, ValueError, EmptyWebhookSecretError):
        return False
    return True
