"""Reconciliation against a real Tryton, as the CLI and the nightly flow run it (``reconcile_order_window``): the
shop sandbox's orders over GraphQL, a real trytond's sales over a window, drift injected on the Tryton side by hand
through its own JSON-RPC, repairs through the inbox. An operator sees the same report whichever ERP the order
mapping writes to."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from erpsync.pipeline import SyncPipeline
from erpsync.reconcile import Window
from erpsync.reconcile.job import reconcile_order_window, reconcile_target
from erpsync.settings import PROJECT_DIR
from erpsync.systems import open_writer
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.orders_graphql import ShopifyOrderReader
from erpsync.systems.tryton.client import SALE
from erpsync_dev.tryton_server import RunningTryton, tryton_server
from tests.inline_runs import InlineDispatcher
from tests.inline_runs import sync_outcome as sync
from tests.sandbox_procs import start_shop_sandbox

MAPPINGS = PROJECT_DIR / "mappings" / "tryton"
ACCESS_TOKEN = "shpat_tryton_reconcile"
ORDERS = 8
UNKNOWN_SKUS = ("NOPE-404", "DISCONTINUED-SKU-0001")


@pytest.fixture(scope="module")
def shop_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = Path(tmp_path_factory.mktemp("tryton-reconcile-shop"))
    with start_shop_sandbox(
        directory, "--orders", str(ORDERS), "--seed", "11", "--secret", "whsec-test", "--access-token", ACCESS_TOKEN,
        # Nobody listens there: the webhooks are lost, which is what reconciliation is for.
        "--target", "http://127.0.0.1:9/webhooks/shopify", "--timeout", "0.5",
    ) as url:
        for phase in (1, 2):
            httpx.post(f"{url}/_sandbox/phases/{phase}/send", timeout=30).raise_for_status()
        yield url


@pytest.fixture
def systems(shop_url: str, tmp_path: Path) -> Iterator[dict]:
    # A Tryton of its own per test (and per ledger backend): each starts from the seed, without the last one's sales.
    with tryton_server(tmp_path / "tryton") as tryton:
        yield {"tryton": tryton, "shop_url": shop_url}


def tryton_environ(tryton: RunningTryton) -> dict[str, str]:
    return {"ERPSYNC_TRYTON_URL": tryton.url, "ERPSYNC_TRYTON_DATABASE": tryton.database,
            "ERPSYNC_TRYTON_LOGIN": tryton.login, "ERPSYNC_TRYTON_PASSWORD": tryton.password,
            "ERPSYNC_TRYTON_CONCURRENCY_LIMIT": "1"}


@pytest.fixture
def pipeline(ledger, database_url, systems) -> Iterator[SyncPipeline]:
    environ = tryton_environ(systems["tryton"])
    made = SyncPipeline(ledger, MAPPINGS, writers=lambda target: open_writer(target, database_url, environ))
    yield made
    made.close()


def deliver(ledger, pipeline: SyncPipeline, order: dict) -> str:
    body = json.dumps(order).encode()
    event_id = ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/updated",
                                      shop=None, triggered_at=None, body=body,
                                      payload_sha256=hashlib.sha256(body).hexdigest()).event_id
    return sync(pipeline, event_id)


def test_drift_made_in_tryton_is_found_and_repaired_through_the_inbox_like_netsuites(
        systems, ledger, pipeline, database_url, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_HOME", str(tmp_path))
    shop_environ = {"ERPSYNC_SHOPIFY_SHOP_URL": systems["shop_url"], "ERPSYNC_SHOPIFY_ACCESS_TOKEN": ACCESS_TOKEN}
    # What the CLI and the nightly flow open: the ERP the order mapping writes to, not the default one.
    assert reconcile_target(MAPPINGS) == "tryton"

    now = datetime.now(UTC)
    window = Window(now - timedelta(days=2), now + timedelta(days=2), overlap=timedelta(hours=1))
    with ShopifyOrderReader(ShopifyGraphQL(systems["shop_url"], SecretStr(ACCESS_TOKEN))) as shop:
        orders = [o for page in shop.order_pages(updated_at_min=window.query_start, updated_at_max=window.query_end)
                  for o in page]
    assert len(orders) == ORDERS
    known = [o for o in orders if not any(line.get("sku") in UNKNOWN_SKUS for line in o["line_items"])]
    never_delivered = str(known[0]["id"])
    outcomes = {str(o["id"]): deliver(ledger, pipeline, o) for o in orders if str(o["id"]) != never_delivered}
    dead = {entity for entity, outcome in outcomes.items() if outcome == "failed"}
    synced = sorted(entity for entity, outcome in outcomes.items() if outcome == "synced")
    assert dead and len(synced) >= 2, outcomes

    writer = pipeline.writer("tryton")
    guest = writer.rpc.model("party.party", "search", [["code", "=", "erpsync-guest"]], 0, 1, None)[0]
    address = writer.rpc.model("party.address", "search", [["party", "=", guest]], 0, 1, None)[0]
    product = writer.rpc.model("product.product", "search", [["code", "=", "ERPSYNC-CUSTOM"]], 0, 1, None)[0]
    unit = writer.rpc.model("product.product", "read", [product], ["sale_uom"])[0]["sale_uom"]
    by_hand = {"type": "line", "product": product, "quantity": 1, "unit": unit, "unit_price": "5.00",
               "description": "by hand"}
    # A sale typed by hand under an external id the shop never had: reported, never deleted.
    writer.rpc.model(SALE, "create", [{"reference": "shopify-order-1", "party": guest, "invoice_address": address,
                                       "shipment_address": address, "lines": [["create", [by_hand]]]}])

    dispatcher = InlineDispatcher(pipeline)
    first = reconcile_order_window(window, ledger=ledger, erp_client=writer, mappings_dir=MAPPINGS,
                                   dispatcher=dispatcher, environ=shop_environ, run_id="first")
    drift = first.drift.frame()
    by_kind = {kind: set(drift.loc[drift["kind"] == kind, "entity_id"]) for kind in drift["kind"].unique()}
    assert by_kind["missing_in_erp"] == {never_delivered}, (outcomes, drift.to_dict("records"))
    assert by_kind["dead_lettered"] == dead
    assert by_kind["erp_only"] == {"1"}
    # Every synced sale compares equal: Tryton's lines (the shop's tax as one more line) and total read back
    # summarise as the mapped bodies do. (A person cannot make a processing sale differ here: Tryton refuses a line
    # added to it and keeps the total cached at confirmation.)
    assert "mismatch" not in by_kind
    # Only the order the shop has and Tryton lacks is repaired, through the inbox and the same pipeline.
    assert [r.entity_id for r in first.repairs] == [never_delivered]
    assert list(dispatcher.outcomes.values()) == ["synced"]
    assert writer.get_by_external_id(SALE, f"shopify-order-{never_delivered}")["state"] == "processing"

    second = reconcile_order_window(window, ledger=ledger, erp_client=writer, mappings_dir=MAPPINGS,
                                    dispatcher=dispatcher, environ=shop_environ, run_id="second")
    assert second.repairs == []
    assert second.summary.drift["missing_in_erp"] == 0
    assert second.summary.drift["erp_only"] == 1 and second.summary.drift["dead_lettered"] == len(dead)
