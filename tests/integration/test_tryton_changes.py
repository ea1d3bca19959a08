"""Reading Tryton's changes by cursor, the first part of the way back: a shipment erpsync marked done is read once,
with its external id, from a cursor set before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from erpsync.systems.tryton.client import SALE, SHIPMENT, TrytonClient
from erpsync.systems.tryton.settings import TrytonSettings
from erpsync_dev.tryton_server import tryton_server


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonClient]:
    with tryton_server(Path(tmp_path_factory.mktemp("tryton-changes"))) as running:
        settings = TrytonSettings(url=running.url, database=running.database, login=running.login,
                                  password=running.password, change_settle_seconds=0)
        with TrytonClient(settings) as made:
            yield made


def test_a_shipment_done_is_read_once_from_a_cursor_set_before_it(client: TrytonClient) -> None:
    before = client.cursor_at(datetime.now(UTC) - timedelta(seconds=1))
    body = {"party": {"code": "erpsync-guest"}, "state": "processing",
            "lines": [{"product": "CABLE-USBC-1M", "quantity": 1, "unit_price": "12.50"}]}
    sale_id = client.upsert(SALE, "changes-order-1", body)
    shipment_id = client.transform(SALE, sale_id, SHIPMENT, {}, external_id="changes-shipment-1")
    changes = client.changes_since(SHIPMENT, before)
    assert [(c.internal_id, c.external_id) for c in changes] == [(shipment_id, "changes-shipment-1")]
    assert client.get(SHIPMENT, shipment_id)["state"] == "done"
    assert client.changes_since(SHIPMENT, changes[-1].cursor) == []
    # The sale changed too (processed, then its shipment state): one change of it, not one per write.
    assert [c.internal_id for c in client.changes_since(SALE, before)] == [sale_id]
