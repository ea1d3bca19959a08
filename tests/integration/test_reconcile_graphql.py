"""Reconciliation's order reader on the GraphQL Admin API against the shop sandbox as a process: cursor pages (an
order with more lines than a page holds is read whole), a bulk operation and its JSONL, one bulk query at a time,
a failed bulk operation, and the same orders either way as the REST Admin API shows them."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from erpsync.errors import ConfigError, TransientError
from erpsync.mapping import OfflineXref, find_mapping
from erpsync.settings import PROJECT_DIR
from erpsync.systems import system
from erpsync.systems.shopify.admin import ShopifyAdminClient
from erpsync.systems.shopify.bulk import BulkQuery
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.orders_graphql import LINE_PAGE, ShopifyOrderReader, bulk_threshold_from_env
from tests.sandbox_procs import start_shop_sandbox

TOKEN = "shpat_reconcile_graphql"
ORDERS = 9
LONG_ORDER_ID = 4_400_000_000_001


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reconcile-graphql")
    with start_shop_sandbox(directory, "--orders", str(ORDERS), "--seed", "5", "--secret", "whsec-test",
                            "--access-token", TOKEN, "--target", "http://127.0.0.1:9/webhooks/shopify",
                            "--timeout", "0.5") as url:
        for phase in (1, 2):
            httpx.post(f"{url}/_sandbox/phases/{phase}/send", timeout=30).raise_for_status()
        # One order with more lines than a page of the reader holds, announced without its webhook.
        with ShopifyAdminClient(url, SecretStr(TOKEN)) as rest:
            first = next(rest.order_pages(updated_at_min=datetime(2020, 1, 1, tzinfo=UTC),
                                          updated_at_max=datetime(2100, 1, 1, tzinfo=UTC)))[0]
        long = copy.deepcopy(first)
        long["id"], long["name"] = LONG_ORDER_ID, "#9901"
        template = long["line_items"][0]
        long["line_items"] = []
        for n in range(LINE_PAGE * 2 + 1):
            line = copy.deepcopy(template)
            line.update({"id": 5_500_000_000_000 + n, "discount_allocations": [], "tax_lines": [], "quantity": 1,
                         "current_quantity": 1, "price": "1.00", "price_set": {
                             "shop_money": {"amount": "1.00", "currency_code": "USD"},
                             "presentment_money": {"amount": "1.00", "currency_code": "USD"}}})
            long["line_items"].append(line)
        httpx.post(f"{url}/_sandbox/orders", json=long, timeout=30).raise_for_status()
        yield url


def everything():
    now = datetime.now(UTC)
    return {"updated_at_min": now - timedelta(days=2), "updated_at_max": now + timedelta(days=2)}


def reader(url: str, **options) -> ShopifyOrderReader:
    return ShopifyOrderReader(ShopifyGraphQL(url, SecretStr(TOKEN)), **options)


def test_pages_and_bulk_read_the_same_orders_the_rest_api_shows_and_map_them_alike(shop):
    with ShopifyAdminClient(shop, SecretStr(TOKEN)) as rest:
        by_rest = {o["id"]: o for page in rest.order_pages(**everything()) for o in page}
    with reader(shop, page_size=2) as paged:
        pages = list(paged.order_pages(**everything()))
        assert paged.last_path == "pages" and paged.window_count == ORDERS + 1
    by_pages = [o for page in pages for o in page]
    assert len(pages) == (ORDERS + 1 + 1) // 2 and all(len(page) <= 2 for page in pages)
    assert len({o["id"] for o in by_pages}) == len(by_pages) == ORDERS + 1, "cursor pages neither skip nor repeat"
    with reader(shop, bulk_threshold=ORDERS) as bulk:  # one more order than the threshold: a bulk operation
        by_bulk = {o["id"]: o for page in bulk.order_pages(**everything()) for o in page}
        assert bulk.last_path == "bulk" and bulk.bulk.last_status["status"] == "COMPLETED"
        assert int(bulk.bulk.last_status["rootObjectCount"]) == ORDERS + 1
    assert set(by_bulk) == set(by_rest) == {o["id"] for o in by_pages}

    mapping = find_mapping(PROJECT_DIR / "mappings", "shopify", "orders/updated")
    for order in by_pages:
        for other in (by_bulk[order["id"]], by_rest[order["id"]]):
            assert other["updated_at"] == order["updated_at"] and other["created_at"] == order["created_at"]
            assert len(other["line_items"]) == len(order["line_items"])
            if order["id"] == LONG_ORDER_ID:
                continue  # its SKUs repeat one line's and its money is not the order's: mapped below apart
            assert (mapping.apply(other, xref=OfflineXref()).body == mapping.apply(order, xref=OfflineXref()).body)
    long = next(o for o in by_pages if o["id"] == LONG_ORDER_ID)
    assert [line["id"] for line in long["line_items"]] == [line["id"] for line in by_rest[LONG_ORDER_ID]["line_items"]]
    assert len(long["line_items"]) == LINE_PAGE * 2 + 1, "lines past the first page are read by node(id:)"
    # The order model takes what the reader hands on, as it takes a webhook.
    system("shopify").models["order"].parse(long)


def test_orders_by_id_answers_the_ones_that_exist(shop):
    with reader(shop) as client:
        some = [o["id"] for o in next(client.order_pages(**everything()))][:3]
        found = [o["id"] for page in client.orders_by_ids([*map(str, some), "1", "not-an-id", str(LONG_ORDER_ID)])
                 for o in page]
    assert sorted(found) == sorted([*some, LONG_ORDER_ID])


def test_a_bulk_result_is_jsonl_with_nested_lines_under_their_parent_id(shop):
    query = "{ orders { edges { node { id lineItems { edges { node { __typename id sku } } } } } } }"
    with ShopifyGraphQL(shop, SecretStr(TOKEN)) as graphql:
        started = graphql.mutate("mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id "
                                 "status } userErrors { code field message } } }", {"q": query},
                                 payload="bulkOperationRunQuery")
        assert started["bulkOperation"]["status"] == "CREATED"
        operation_id = started["bulkOperation"]["id"]
        for _ in range(100):
            node = graphql.query("query($id: ID!) { node(id: $id) { ... on BulkOperation { status url objectCount "
                                 "rootObjectCount } } }", {"id": operation_id})["node"]
            if node["status"] == "COMPLETED":
                break
            time.sleep(0.1)
        current = graphql.query("{ currentBulkOperation { id status } }")["currentBulkOperation"]
    assert current == {"id": operation_id, "status": "COMPLETED"}
    lines = [json.loads(text) for text in httpx.get(node["url"], timeout=30).text.splitlines()]
    roots = [line for line in lines if "__parentId" not in line]
    children = [line for line in lines if "__parentId" in line]
    assert len(roots) == int(node["rootObjectCount"]) == ORDERS + 1
    assert len(lines) == int(node["objectCount"])
    assert all("lineItems" not in root for root in roots), "a nested connection is lines of its own"
    root_ids = [root["id"] for root in roots]
    for child in children:
        assert child["__typename"] == "LineItem" and child["__parentId"] in root_ids
        # A child comes after its parent.
        assert lines.index(child) > lines.index(next(r for r in roots if r["id"] == child["__parentId"]))
    assert sum(1 for child in children if child["__parentId"] == f"gid://shopify/Order/{LONG_ORDER_ID}") == \
        LINE_PAGE * 2 + 1


def test_one_bulk_query_at_a_time_and_a_failed_one_is_transient(shop):
    run = ("mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } "
           "userErrors { code field message } } }")
    query = "{ orders { edges { node { id } } } }"
    httpx.post(f"{shop}/_sandbox/bulk", json={"runningSeconds": 3}, timeout=10).raise_for_status()
    try:
        with ShopifyGraphQL(shop, SecretStr(TOKEN)) as graphql:
            graphql.mutate(run, {"q": query}, payload="bulkOperationRunQuery")
            answer = httpx.post(f"{shop}/admin/api/2026-10/graphql.json", headers={"X-Shopify-Access-Token": TOKEN},
                                json={"query": run, "variables": {"q": query}}, timeout=10).json()
            refused = answer["data"]["bulkOperationRunQuery"]
            assert refused["bulkOperation"] is None
            [error] = refused["userErrors"]
            assert error["code"] == "OPERATION_IN_PROGRESS" and "already in progress" in error["message"]
            with pytest.raises(TransientError, match="another bulk query is running"):
                list(BulkQuery(graphql).run(query))
    finally:
        httpx.post(f"{shop}/_sandbox/bulk", json={"runningSeconds": 0}, timeout=10).raise_for_status()
    with ShopifyGraphQL(shop, SecretStr(TOKEN)) as graphql:
        bulk = BulkQuery(graphql, poll_seconds=0.2)
        deadline = time.monotonic() + 30
        while True:  # the held operation ends within its 3 s
            try:
                assert list(bulk.run(query))
                break
            except TransientError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        httpx.post(f"{shop}/_sandbox/bulk", json={"failNext": "INTERNAL_SERVER_ERROR"}, timeout=10).raise_for_status()
        with pytest.raises(TransientError, match="FAILED \\(INTERNAL_SERVER_ERROR\\)"):
            list(bulk.run(query))
        assert bulk.last_status["status"] == "FAILED"
        # A query Shopify refuses is a userError naming it, and no operation is made.
        with pytest.raises(Exception, match="INVALID"):
            list(bulk.run("{ shop { ianaTimezone } }"))


def test_the_threshold_setting_is_checked_by_name():
    assert bulk_threshold_from_env({}) == 250
    assert bulk_threshold_from_env({"ERPSYNC_SHOPIFY_BULK_THRESHOLD": "0"}) == 0
    with pytest.raises(ConfigError, match="ERPSYNC_SHOPIFY_BULK_THRESHOLD: a whole number"):
        bulk_threshold_from_env({"ERPSYNC_SHOPIFY_BULK_THRESHOLD": "many"})
