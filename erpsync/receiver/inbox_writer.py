"""Group commit for the receiver: one thread writes the deliveries of many concurrent requests per transaction.

With a transaction per request, a burst serialises on the database's write lock: SQLite makes the losers sleep
in its busy handler (tens of milliseconds each) and PostgreSQL flushes its WAL once per request. Here each
request hands its delivery to a queue and waits; the writer thread takes everything queued (up to
``max_batch``), stores it in one transaction and wakes every waiter with its own answer. Under a trickle a
batch is one delivery, so a quiet request pays nothing extra; under a burst the cost of a commit is shared.

Durability is unchanged: a request is answered only after the transaction holding its delivery committed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future

from erpsync.errors import TransientError
from erpsync.ledger import InboxDelivery, Intake, Ledger

log = logging.getLogger("erpsync.receiver")

_STOP = object()


class InboxWriter:
    def __init__(self, ledger: Ledger, *, max_batch: int = 256, body_signed_sources: frozenset[str] = frozenset()):
        self.ledger = ledger
        # Sources whose signature covers the body only: their bodies replayed under new delivery ids are
        # recorded as duplicates (Ledger.record_deliveries).
        self.body_signed_sources = body_signed_sources
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._thread.start()

    async def store(self, delivery: InboxDelivery) -> Intake:
        """Wait until ``delivery`` is committed; TransientError when the database could not take it."""
        future: Future[Intake] = Future()
        self._queue.put((delivery, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Store what is queued, then stop."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[tuple[InboxDelivery, Future]]) -> None:
        try:
            intakes = self.ledger.record_deliveries([delivery for delivery, _ in batch],
                                                     replays=self.body_signed_sources)
        except TransientError as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(TransientError("the inbox could not store the delivery"))
                # The type only: a database error's text can quote the statement's parameters (the payload).
                log.error("inbox write failed: %s", type(exc).__name__)
                return
            # One delivery the database refuses must not cost the others their answer: store one by one.
            for item in batch:
                self._write([item])
            return
        for (_, future), intake in zip(batch, intakes, strict=True):
            future.set_result(intake)
