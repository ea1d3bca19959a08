"""Reconciliation end to end without Prefect: the shop and ERP sandboxes as processes, a real ledger, injected drift."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from erpsync.mapping import find_mapping
from erpsync.pipeline import SyncPipeline
from erpsync.reconcile import (
    Window,
    enqueue_repairs,
    first_rows,
    markdown_summary,
    plan_repairs,
    report_dir,
    run_reconciliation,
    save_html,
)
from erpsync.reconcile.report import text_summary
from erpsync.retry import RetryPolicy
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from erpsync.systems.netsuite.sales_orders import ErpSalesOrders
from erpsync.systems.shopify.admin import ShopifyAdminClient
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.orders_graphql import ShopifyOrderReader
from tests.inline_runs import InlineDispatcher
from tests.inline_runs import sync_outcome as sync
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox, start_shop_sandbox

ACCESS_TOKEN = "shpat_reconcile_test"
ORDERS = 12


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reconcile")
    erp_db = directory / "erp.db"
    with start_erp_sandbox(directory, "--db", str(erp_db)) as erp_url, start_shop_sandbox(
        directory, "--orders", str(ORDERS), "--seed", "11", "--secret", "whsec-test", "--access-token", ACCESS_TOKEN,
        # Nobody listens there: the webhooks are lost, but the store records what it "sent" for its Admin API.
        "--target", "http://127.0.0.1:9/webhooks/shopify", "--timeout", "0.5",
    ) as shop_url:
        for phase in (1, 2):
            httpx.post(f"{shop_url}/_sandbox/phases/{phase}/send", timeout=30).raise_for_status()
        yield {"erp_url": erp_url, "erp_db": erp_db, "shop_url": shop_url}


@pytest.fixture
def erp_client(sandboxes):
    # The sandboxes outlive one test (and run once per ledger backend): each test starts from an empty ERP.
    httpx.post(f"{sandboxes['erp_url']}/_sandbox/reset", timeout=30).raise_for_status()
    settings = NetSuiteSettings(base_url=sandboxes["erp_url"], client_id=ERP_CLIENT_ID,
                                client_secret=SecretStr(ERP_CLIENT_SECRET))
    client = NetSuiteClient(settings, RetryPolicy(max_attempts=4, base=0.05))
    yield client
    client.close()


@pytest.fixture(params=["pages", "bulk"])
def shop(sandboxes, request):
    """The shop's orders as the registry reads them, through the GraphQL Admin API: page by page (3 orders a page,
    so the window takes several), and through a bulk operation (threshold 0), each giving the same results."""
    reader = ShopifyOrderReader(ShopifyGraphQL(sandboxes["shop_url"], SecretStr(ACCESS_TOKEN)), page_size=3,
                                bulk_threshold=250 if request.param == "pages" else 0)
    yield reader
    reader.close()


@pytest.fixture
def pipeline(ledger, sandboxes):
    settings = NetSuiteSettings(base_url=sandboxes["erp_url"], client_id=ERP_CLIENT_ID,
                                client_secret=SecretStr(ERP_CLIENT_SECRET))
    pipeline = SyncPipeline(ledger, PROJECT_DIR / "mappings",
                            lambda: NetSuiteClient(settings, RetryPolicy(max_attempts=4, base=0.05)))
    yield pipeline
    pipeline.close()


def deliver(ledger, pipeline, order: dict) -> str:
    """The webhook the store would have sent for this order, stored and synced."""
    body = json.dumps(order).encode()
    event_id = ledger.record_delivery(
        source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/updated", shop=None, triggered_at=None,
        body=body, payload_sha256=hashlib.sha256(body).hexdigest(),
    ).event_id
    return sync(pipeline, event_id)


def delete_from_erp(erp_url: str, external_id: str) -> None:
    """Someone deleted the record in the ERP (NetSuite's DELETE on the record API)."""
    token = httpx.post(f"{erp_url}/services/rest/auth/oauth2/v1/token", data={
        "grant_type": "client_credentials", "client_id": ERP_CLIENT_ID, "client_secret": ERP_CLIENT_SECRET,
    }, timeout=30).raise_for_status().json()["access_token"]
    response = httpx.delete(f"{erp_url}/services/rest/record/v1/salesOrder/eid:{external_id}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 204, response.text


def next_second() -> None:
    """SuiteQL stamps lastmodifieddate to the second: an edit made in a later second than the sync is newer."""
    time.sleep(1.0)


def window_around_now() -> Window:
    now = datetime.now(UTC)
    return Window(now - timedelta(days=2), now + timedelta(days=2), overlap=timedelta(hours=1))


def test_injected_drift_is_found_repaired_or_reported_and_a_second_run_has_nothing_to_repair(
    sandboxes, ledger, pipeline, shop, erp_client, database_url, tmp_path
):
    mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/updated")
    window = window_around_now()
    orders = [o for page in shop.order_pages(updated_at_min=window.query_start, updated_at_max=window.query_end)
              for o in page]
    assert len(orders) == ORDERS and len({o["id"] for o in orders}) == ORDERS, "cursor pages neither skip nor repeat"
    # ordersCount is asked to count one past the threshold at most: enough to choose the way to read.
    assert shop.window_count == min(ORDERS, shop.bulk_threshold + 1)
    assert shop.last_path == ("bulk" if shop.bulk_threshold == 0 else "pages")

    outcomes = {}
    never_delivered = []
    for order in orders:
        if len(never_delivered) < 2 and not any(line["sku"] == "NOPE-404" for line in order["line_items"]):
            never_delivered.append(str(order["id"]))
            continue
        outcomes[str(order["id"])] = deliver(ledger, pipeline, order)
    dead = {entity for entity, outcome in outcomes.items() if outcome == "failed"}
    synced = sorted(entity for entity, outcome in outcomes.items() if outcome == "synced")
    assert len(dead) == 1, "the scenario has one order with an SKU no lookup knows"

    deleted, hand_edited, requantified = synced[0], synced[1], synced[2]
    delete_from_erp(sandboxes["erp_url"], f"shopify-order-{deleted}")
    next_second()
    record = erp_client.get("salesOrder", f"eid:shopify-order-{hand_edited}", expand_sub_resources=True)
    body = {key: record[key] for key in ("entity", "tranDate", "otherRefNum", "memo", "item")}
    for line in body["item"]["items"]:
        line["isClosed"] = True  # closed by hand in the ERP
    erp_client.upsert("salesOrder", f"shopify-order-{hand_edited}", body)
    record = erp_client.get("salesOrder", f"eid:shopify-order-{requantified}", expand_sub_resources=True)
    body = {key: record[key] for key in ("entity", "tranDate", "otherRefNum", "memo", "item")}
    items = body["item"]["items"]
    # A person changes a quantity (NetSuite recomputes the amount) and adds a line of their own: the total and
    # the line count differ.
    items[0]["quantity"] += 5
    items[0].pop("amount", None)
    items.append({"item": items[0]["item"], "quantity": 1, "rate": items[0]["rate"]})
    erp_client.upsert("salesOrder", f"shopify-order-{requantified}", body)
    erp_client.upsert("salesOrder", "shopify-order-1", {"entity": {"id": "110"}, "item": {"items": [
        {"item": {"id": "98"}, "quantity": 1, "rate": 5.0}]}})

    dispatcher = InlineDispatcher(pipeline)
    erp = ErpSalesOrders(erp_client, external_id_prefix="shopify-order-", page_size=4)
    first = run_reconciliation(window, shop=shop, erp=erp, ledger=ledger, mapping=mapping,
                               spool=tmp_path / "first.sqlite", dispatcher=dispatcher, erp_edit_slack=timedelta(0))
    drift = first.drift.frame()
    by_kind = {kind: set(drift.loc[drift["kind"] == kind, "entity_id"]) for kind in drift["kind"].unique()}
    assert by_kind["missing_in_erp"] == {*never_delivered, deleted}
    assert by_kind["erp_only"] == {"1"}
    assert by_kind["dead_lettered"] == dead
    assert by_kind["mismatch"] == {hand_edited, requantified}
    edit = drift[drift["entity_id"] == hand_edited].iloc[0]
    assert (edit["fields"], edit["newer"]) == ("status", "erp")
    edit = drift[drift["entity_id"] == requantified].iloc[0]
    assert (edit["fields"], edit["newer"]) == ("total,lines", "erp")
    assert drift.loc[drift["kind"] == "erp_only", "newer"].tolist() == ["erp"]

    assert {r.entity_id for r in first.repairs} == {*never_delivered, deleted}, "hand edits and ERP-only are reported"
    assert first.repair_result.enqueued == 3 and set(dispatcher.outcomes.values()) == {"synced"}
    assert first.summary.compared == ORDERS + 1

    html = save_html(first.summary, first.drift, report_dir(database_url, tmp_path / "reports"),
                     steps=first.next_steps)
    page = html.read_text()
    assert "<svg" in page and "missing_in_erp" in page
    markdown = markdown_summary(first.summary, first.drift, steps=first.next_steps)
    assert "| missing_in_erp | 3 |" in markdown
    text = text_summary(first.summary, first.drift, steps=first.next_steps)
    for order in orders:  # no customer value reaches the report
        for value in (order.get("email"), (order.get("customer") or {}).get("first_name")):
            if value:
                assert value not in page and value not in markdown and value not in text

    # Each row says what comes next: the dead letter names the event `erpsync dlq show` takes.
    [failed] = [o for o in ledger.outcomes() if o.outcome == "failed"]
    steps = {row["entity_id"]: row["next_step"] for row in first_rows(first.drift, steps=first.next_steps)}
    assert steps[failed.entity_id].startswith(f"erpsync dlq show {failed.event_id};")
    assert f"erpsync dlq show {failed.event_id}" in text and f"erpsync dlq show {failed.event_id}" in page
    assert "check ERP record" in steps["1"] and "erpsync never deletes" in steps["1"]
    assert "--authoritative status" in steps[hand_edited]
    assert all(steps[entity].startswith("re-sync queued") for entity in (*never_delivered, deleted))
    assert first.summary.needs_attention == 4 and first.exit_code == 3

    second = run_reconciliation(window, shop=shop, erp=erp, ledger=ledger, mapping=mapping,
                                spool=tmp_path / "second.sqlite", dispatcher=dispatcher, erp_edit_slack=timedelta(0))
    assert second.repairs == []
    assert second.summary.drift == {"missing_in_erp": 0, "erp_only": 1, "mismatch": 2, "dead_lettered": 1}

    # Declaring status source-authoritative lets the hand edit be overwritten, through the pipeline.
    owned = plan_repairs(second.drift, authoritative_fields={"status"})
    assert [r.entity_id for r in owned] == [hand_edited]


def test_a_later_run_repairs_a_record_deleted_again_which_one_run_queues_once(
    sandboxes, ledger, pipeline, shop, erp_client, tmp_path
):
    mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/updated")
    window = window_around_now()
    order = next(o for page in shop.order_pages(updated_at_min=window.query_start, updated_at_max=window.query_end)
                 for o in page if not any(line["sku"] == "DISCONTINUED-SKU-0001" for line in o["line_items"]))
    # Delivered exactly as the Admin API shows it: a repair's body is then the very content already applied.
    body = json.dumps(order, separators=(",", ":"), ensure_ascii=False).encode()
    event_id = ledger.record_delivery(source="shopify", delivery_id=str(uuid.uuid4()), topic="orders/updated",
                                      shop=None, triggered_at=None, body=body,
                                      payload_sha256=hashlib.sha256(body).hexdigest()).event_id
    assert sync(pipeline, event_id) == "synced"
    external_id = f"shopify-order-{order['id']}"
    erp = ErpSalesOrders(erp_client, external_id_prefix="shopify-order-")
    dispatcher = InlineDispatcher(pipeline)
    # The ERP starts empty: a first run brings every other order in as well.
    run_reconciliation(window, shop=shop, erp=erp, ledger=ledger, mapping=mapping, spool=tmp_path / "catch-up.sqlite",
                       dispatcher=dispatcher, run_id="catch-up")
    dispatcher.outcomes.clear()
    for attempt in ("first", "second"):
        delete_from_erp(sandboxes["erp_url"], external_id)
        result = run_reconciliation(window, shop=shop, erp=erp, ledger=ledger, mapping=mapping,
                                    spool=tmp_path / f"{attempt}.sqlite", dispatcher=dispatcher, run_id=attempt)
        assert result.repair_result.enqueued == 1, attempt
        assert erp_client.get("salesOrder", f"eid:{external_id}") is not None, f"{attempt} repair restored it"
        # The same run queueing its repairs again (a retried flow run) finds them in the inbox.
        again = enqueue_repairs(ledger, result.repairs, mapping=mapping, fetch_orders=shop.orders_by_ids,
                                run=attempt, dispatcher=dispatcher)
        assert (again.enqueued, again.already_in_inbox) == (0, 1)
    assert sorted(dispatcher.outcomes.values()) == ["synced", "synced"]


def test_dry_run_plans_without_touching_the_inbox(sandboxes, ledger, shop, erp_client, tmp_path):
    mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/updated")
    erp = ErpSalesOrders(erp_client, external_id_prefix="shopify-order-")
    some_order = next(page for page in shop.order_pages(updated_at_min=datetime(2020, 1, 1, tzinfo=UTC),
                                                        updated_at_max=datetime(2100, 1, 1, tzinfo=UTC)))[0]
    result = run_reconciliation(window_around_now(), shop=shop, erp=erp, ledger=ledger, mapping=mapping,
                                spool=tmp_path / "dry.sqlite", dry_run=True)
    assert result.repair_result.dry_run and result.repair_result.enqueued == 0
    assert result.repair_result.planned == len(result.repairs) > 0
    assert str(some_order["id"]) in {r.entity_id for r in result.repairs}
    assert ledger.inbox_counts()["events"] == 0


def test_the_order_reader_refuses_a_wrong_token_naming_the_setting(sandboxes):
    from erpsync.errors import ConfigError

    with ShopifyOrderReader(ShopifyGraphQL(sandboxes["shop_url"], SecretStr("wrong"))) as client:
        with pytest.raises(ConfigError, match="ERPSYNC_SHOPIFY_ACCESS_TOKEN"):
            next(client.order_pages(updated_at_min=datetime(2020, 1, 1, tzinfo=UTC),
                                    updated_at_max=datetime(2030, 1, 1, tzinfo=UTC)))


def test_a_generated_catalogue_pages_by_cursor_without_gaps_and_answers_by_ids(tmp_path):
    from erpsync_dev.scenarios.demo import GeneratedOrders

    start = datetime(2026, 11, 26, tzinfo=UTC)
    with start_shop_sandbox(tmp_path, "--secret", "whsec-test", "--access-token", ACCESS_TOKEN,
                            "--generated-orders", "620", "--generated-seed", "9",
                            "--generated-start", start.isoformat()) as shop_url, \
            ShopifyAdminClient(shop_url, SecretStr(ACCESS_TOKEN), page_size=250) as shop:
        catalogue = GeneratedOrders(620, 9, start=start)
        everything = [o for page in shop.order_pages(updated_at_min=start, updated_at_max=start + timedelta(days=3))
                      for o in page]
        assert [o["id"] for o in everything] == [GeneratedOrders.FIRST_ID + i for i in range(619, -1, -1)]
        assert everything[-1] == catalogue.order(0), "the shop serves what any process computes for the index"
        part = [o["id"] for page in shop.order_pages(updated_at_min=catalogue.updated_at(100),
                                                     updated_at_max=catalogue.updated_at(399)) for o in page]
        assert part == [GeneratedOrders.FIRST_ID + i for i in range(399, 99, -1)]
        wanted = [str(GeneratedOrders.FIRST_ID + i) for i in (3, 600, 7)] + ["1"]
        found = [o["id"] for page in shop.orders_by_ids(wanted) for o in page]
        assert sorted(found) == sorted(GeneratedOrders.FIRST_ID + i for i in (3, 600, 7))


def test_the_reconcile_command_prints_plain_text_with_next_steps_and_exits_3_when_a_person_must_act(
    sandboxes, ledger, pipeline, shop, erp_client, database_url, tmp_path, monkeypatch, capsys
):
    from erpsync.cli import main

    window = window_around_now()
    orders = [o for page in shop.order_pages(updated_at_min=window.query_start, updated_at_max=window.query_end)
              for o in page]
    [unknown] = [o for o in orders if any(line["sku"] == "DISCONTINUED-SKU-0001" for line in o["line_items"])]
    assert deliver(ledger, pipeline, unknown) == "failed"
    [failed] = [o for o in ledger.outcomes() if o.outcome == "failed"]
    for name, value in {"ERPSYNC_HOME": str(tmp_path), "ERPSYNC_DATABASE_URL": database_url,
                        "ERPSYNC_SHOPIFY_SHOP_URL": sandboxes["shop_url"], "ERPSYNC_SHOPIFY_ACCESS_TOKEN": ACCESS_TOKEN,
                        "ERPSYNC_NETSUITE_BASE_URL": sandboxes["erp_url"], "ERPSYNC_NETSUITE_ACCOUNT_ID": "SANDBOX",
                        "ERPSYNC_NETSUITE_CLIENT_ID": ERP_CLIENT_ID,
                        "ERPSYNC_NETSUITE_CLIENT_SECRET": ERP_CLIENT_SECRET}.items():
        monkeypatch.setenv(name, value)

    code = main(["reconcile", "--since", window.start.date().isoformat(), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 3, out
    title = out.splitlines()[0]
    assert title.startswith("Reconciliation ") and "." not in title.split("→")[1], "to the second"
    assert "|" not in out and "**" not in out and "#" not in out, "plain text, not Markdown"
    assert f"next: erpsync dlq show {failed.event_id};" in out
    assert "would be re-synced from the shop" in out, "a dry run says what a real run would queue"
    report = next(line for line in out.splitlines() if line.startswith("report: "))
    assert Path(report.removeprefix("report: ")).is_file()
    assert "left for a person" in out.splitlines()[-1] and "(exit 3)" in out
    assert ledger.inbox_counts()["events"] == 1, "a dry run queues nothing"


def test_the_reconcile_commands_help_says_what_each_exit_status_means(capsys):
    from erpsync.cli import main

    with pytest.raises(SystemExit):
        main(["reconcile", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert "3 drift is left for a person" in usage and "2 a setting or argument is wrong" in usage
