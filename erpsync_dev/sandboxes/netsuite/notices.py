"""The ERP sandbox posts the change notices erpsync's user-event script posts from NetSuite (netsuite/suitescript/).

After a create or update of a watched record type, in the background (the write's answer does not wait, as
``afterSubmit`` runs after the record is saved), one signed Standard Webhooks notice per change to the configured
URL, e.g. the receiver's ``/webhooks/netsuite``: topic ``<recordType>.changed``, delivery id
``netsuite:<recordType>:<id>:<last modified>``, the body of erpsync/change_intake.py. An inventory item's change
is also a ``price.changed`` notice of that item, as the script sends it. A saved inventory adjustment or item
fulfillment is also an ``inventoryItem.changed`` notice of each item it moves, with ``data.cause`` naming the
transaction and delivery id ``netsuite:inventoryItem:<item>:<the transaction's last modified>:by-<transaction id>``,
as the script deployed on those transactions posts it (sent while ``inventoryItem`` is watched). One attempt each,
like the script: a notice lost is read later by the change reader, under the same delivery id.

Configured by ``--notify-url``/``--notify-secret``/``--notify-types`` or, while running, ``POST /_sandbox/notices``
``{"url", "secret", "types"}`` (``{"url": null}`` stops them); ``GET /_sandbox/notices`` counts what was sent.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from erpsync.change_intake import notice_body, notice_delivery_id
from erpsync.systems.netsuite.webhooks import notice_headers

log = logging.getLogger(__name__)

SOURCE = "netsuite"
DEFAULT_TYPES = frozenset({"itemFulfillment", "inventoryItem"})
# The notices one saved record gives, by its record type: an item's change stands for its prices too.
ALSO_NOTIFIED = {"inventoryItem": ("price",)}
# A stock-moving transaction (an adjustment, a fulfillment) gives this notice for each item it moves.
STOCK_NOTICE = "inventoryItem"


@dataclass(frozen=True)
class NoticeTarget:
    url: str
    secret: str
    types: frozenset[str] = DEFAULT_TYPES


class NoticeSender:
    """Posts notices on a small thread pool; counts what was sent and what failed (never a record's content)."""

    def __init__(self, target: NoticeTarget | None = None) -> None:
        self.target = target
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notice")
        self._client = httpx.Client(timeout=10.0)
        self._lock = threading.Lock()
        self.counts = {"sent": 0, "refused": 0, "failed": 0}

    def configure(self, document: Any) -> dict[str, Any]:
        """``{"url", "secret", "types"?}`` from ``POST /_sandbox/notices``; ValueError naming a bad field."""
        if not isinstance(document, dict):
            raise ValueError('expected {"url": ..., "secret": ..., "types": [...]}')
        url = document.get("url")
        if url is None:
            self.target = None
            return self.state()
        secret, types = document.get("secret"), document.get("types", sorted(DEFAULT_TYPES))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url: an http(s) URL, e.g. http://127.0.0.1:8600/webhooks/netsuite")
        if not isinstance(secret, str) or not secret:
            raise ValueError("secret: the receiver's ERPSYNC_NETSUITE_WEBHOOK_SECRET (whsec_...)")
        if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
            raise ValueError("types: a list of record types, e.g. [\"itemFulfillment\", \"inventoryItem\"]")
        self.target = NoticeTarget(url, secret, frozenset(types))
        return self.state()

    def state(self) -> dict[str, Any]:
        target = self.target
        with self._lock:
            counts = dict(self.counts)
        return {"url": target.url if target else None, "types": sorted(target.types) if target else [], **counts}

    def changed(self, record_type: str, internal_id: int | str, external_id: str | None, last_modified: str) -> None:
        """A record was saved: queue its notices when its type is watched."""
        target = self.target
        if target is None or record_type not in target.types:
            return
        modified = datetime.fromisoformat(last_modified.replace("Z", "+00:00"))
        for notified in (record_type, *ALSO_NOTIFIED.get(record_type, ())):
            self._pool.submit(self._post, target, notified, str(internal_id), external_id, modified)

    def moved(self, transaction_type: str, transaction_id: int | str, last_modified: str,
              items: list[tuple[str, str | None]]) -> None:
        """A stock-moving transaction was saved: queue an ``inventoryItem`` notice of each (item id, external id) it
        names, caused by the transaction and stamped with its last modified, when inventory items are watched."""
        target = self.target
        if target is None or STOCK_NOTICE not in target.types:
            return
        modified = datetime.fromisoformat(last_modified.replace("Z", "+00:00"))
        # The REST record type in lower case is the script's record.type and SuiteQL's transaction.recordtype.
        cause = {"recordType": transaction_type.lower(), "id": str(transaction_id)}
        for item_id, external_id in items:
            self._pool.submit(self._post, target, STOCK_NOTICE, item_id, external_id, modified, cause)

    def _post(self, target: NoticeTarget, record_type: str, internal_id: str, external_id: str | None,
              modified: datetime, cause: dict[str, str] | None = None) -> None:
        body = notice_body(record_type, internal_id, external_id, modified, cause)
        delivery_id = notice_delivery_id(SOURCE, record_type, internal_id, modified, cause["id"] if cause else None)
        headers = {**notice_headers(target.secret, delivery_id, body), "Content-Type": "application/json"}
        try:
            answer = self._client.post(target.url, content=body, headers=headers)
            outcome = "sent" if answer.status_code < 300 else "refused"
            if outcome == "refused":
                log.warning("notice %s answered %d", delivery_id, answer.status_code)
        except httpx.HTTPError as exc:
            outcome = "failed"
            log.warning("notice %s not delivered: %s", delivery_id, type(exc).__name__)
        with self._lock:
            self.counts[outcome] += 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
