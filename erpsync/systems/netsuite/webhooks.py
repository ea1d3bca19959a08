"""NetSuite's change notices: Standard Webhooks deliveries posted by erpsync's user-event script (netsuite/suitescript/)
or by the ERP sandbox, verified at ``POST /webhooks/netsuite`` with ERPSYNC_NETSUITE_WEBHOOK_SECRET.

NetSuite sends no webhooks of its own; the script signs a thin notice of a change by the Standard Webhooks scheme
(HMAC-SHA256 over ``webhook-id.webhook-timestamp.body``, base64, ``v1,``). Its ``webhook-id`` is the change's
delivery id (``netsuite:<recordType>:<id>:<last modified>``, erpsync/change_intake.py), which the change reader
gives the same change, so a change notified and also read is one inbox event.

Verified and signed by the shared Standard Webhooks scheme (erpsync.receiver.webhook_spec.py), as the
generic Standard Webhooks source is; ``webhook-id`` is the delivery id as it is.
"""

from __future__ import annotations

from datetime import datetime

from erpsync.receiver.webhook_spec import SpecWebhooksScheme, signed_headers


def notice_headers(secret: str, delivery_id: str, body: bytes, timestamp: datetime | None = None) -> dict[str, str]:
    """The headers the script (and the ERP sandbox) put on a notice: ``webhook-id`` is the delivery id as it is."""
    return signed_headers(secret, delivery_id, body, timestamp)


class NetSuiteNoticeSource(SpecWebhooksScheme):
    """Change notices signed by the Standard Webhooks scheme; topic = the payload's ``type`` (``<type>.changed``)."""

    name = "netsuite"
    payload_name = "a change notice"
    header_docs = [
        ("webhook-id", "the change's delivery id, netsuite:<recordType>:<internal id>:<last modified UTC>; the "
                       "change reader gives the same change the same id, so both make one event"),
        ("webhook-timestamp", "Unix seconds; refused outside 5 minutes of the receiver's clock"),
        ("webhook-signature", "space-separated v1,<base64 HMAC-SHA256> signatures (several during key rotation)"),
    ]
