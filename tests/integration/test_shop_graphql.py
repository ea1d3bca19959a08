"""The shop sandbox's GraphQL Admin API, as a process, through erpsync's ShopifyGraphQL client: each call's shapes
and userErrors, Shopify's refusals, and cost-based throttling that the client's pacing never trips."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from erpsync.errors import ConfigError, ConflictingChange, ErpRejected, PermanentError, TransientError
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.writer import ShopifyWriter
from erpsync.write_context import event_identity, writing_for
from erpsync_dev.scenarios.demo import build_demo_scenario
from tests.sandbox_procs import start_shop_sandbox

TOKEN = "shpat_graphql"
SEED = 1414
ORDERS = 12
GRAPHQL = "/admin/api/2026-10/graphql.json"

ORDERS_PAGE = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name updatedAt displayFulfillmentStatus } }
  }
}"""
FULFILLMENT_ORDERS = """
query FulfillmentOrders($id: ID!) {
  order(id: $id) {
    id displayFulfillmentStatus
    fulfillmentOrders(first: 5) {
      nodes { id status assignedLocation { location { id } }
              lineItems(first: 50) { nodes { id sku totalQuantity remainingQuantity } } }
    }
  }
}"""
FULFILLMENT_CREATE = """
mutation Ship($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo(first: 5) { company number url }
                  fulfillmentLineItems(first: 50) { nodes { quantity lineItem { sku } } } }
    userErrors { field message }
  }
}"""
SET_QUANTITIES = """
mutation Stock($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id reason changes(quantityNames: ["available"]) { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}"""
SET_QUANTITIES_WITHOUT_KEY = """
mutation Stock($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) { inventoryAdjustmentGroup { id } userErrors { code field message } }
}"""
BULK_PRICES = """
mutation Prices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id price compareAtPrice }
    userErrors { code field message }
  }
}"""


@pytest.fixture
def shop(tmp_path) -> Iterator[str]:
    with start_shop_sandbox(tmp_path, "--orders", str(ORDERS), "--seed", str(SEED), "--access-token", TOKEN,
                            env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "graphql-test-secret"}) as base_url:
        # Show the scenario's orders in the Admin API (their newest versions), without sending webhooks.
        scenario = build_demo_scenario(ORDERS, SEED)
        with httpx.Client(base_url=base_url) as http:
            for delivery in scenario.deliveries:
                assert http.post("/_sandbox/orders", content=delivery.body).status_code == 200
        yield base_url


@pytest.fixture
def client(shop) -> Iterator[ShopifyGraphQL]:
    with ShopifyGraphQL(shop, SecretStr(TOKEN)) as graphql:
        yield graphql


def _raw(shop: str, query: str, variables: dict | None = None, token: str = TOKEN) -> httpx.Response:
    return httpx.post(f"{shop}{GRAPHQL}", json={"query": query, "variables": variables or {}},
                      headers={"X-Shopify-Access-Token": token}, timeout=30)


def _all_orders(client: ShopifyGraphQL, search: str | None = None, page: int = 5) -> list[dict]:
    seen, after = [], None
    while True:
        data = client.query(ORDERS_PAGE, {"first": page, "after": after, "query": search})["orders"]
        seen.extend(edge["node"] for edge in data["edges"])
        if not data["pageInfo"]["hasNextPage"]:
            return seen
        after = data["pageInfo"]["endCursor"]


def _order_with_lines(client: ShopifyGraphQL) -> tuple[str, dict]:
    for order in _all_orders(client):
        fos = client.query(FULFILLMENT_ORDERS, {"id": order["id"]})["order"]["fulfillmentOrders"]["nodes"]
        if fos and sum(line["totalQuantity"] for line in fos[0]["lineItems"]["nodes"]) >= 2:
            return order["id"], fos[0]
    raise AssertionError("no order with two units to ship")


def test_orders_page_by_cursor_and_filter_on_updated_at(shop, client):
    orders = _all_orders(client, page=5)
    assert len(orders) == len({o["id"] for o in orders}) == ORDERS
    assert all(o["id"].startswith("gid://shopify/Order/") and o["updatedAt"].endswith("Z") for o in orders)
    assert [o["updatedAt"] for o in orders] == sorted(o["updatedAt"] for o in orders)
    assert {o["displayFulfillmentStatus"] for o in orders} == {"UNFULFILLED"}

    cut = orders[len(orders) // 2]["updatedAt"]
    recent = _all_orders(client, f"updated_at:>='{cut}'", page=3)
    assert [o["id"] for o in recent] == [o["id"] for o in orders if o["updatedAt"] >= cut]

    # A search field the query does not know is ignored and reported, as Shopify does.
    answer = _raw(shop, ORDERS_PAGE, {"first": 1, "query": "colour:red"}).json()
    assert answer["extensions"]["search"][0]["warnings"][0]["field"] == "colour"
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 1 * 1 and cost["actualQueryCost"] == 3
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


def test_shopify_refusals_keep_shopifys_shape_and_the_client_names_them(shop, client):
    answer = _raw(shop, "{ orders(first: 1) { nodes { id favouriteColour } } }").json()
    assert answer == {"errors": [{
        "message": "Field 'favouriteColour' doesn't exist on type 'Order'", "locations": [{"line": 1, "column": 33}],
        "path": ["query", "orders", "nodes", "favouriteColour"],
        "extensions": {"code": "undefinedField", "typeName": "Order", "fieldName": "favouriteColour"}}]}
    with pytest.raises(PermanentError, match="undefinedField: Field 'favouriteColour' doesn't exist on type 'Order'"):
        client.query("{ orders(first: 1) { nodes { id favouriteColour } } }")
    with pytest.raises(PermanentError, match="you must provide one of first or last"):
        client.query("{ orders { nodes { id } } }")
    with pytest.raises(PermanentError, match="MAX_COST_EXCEEDED"):
        client.query("{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }")
    with pytest.raises(PermanentError, match="INVALID_VARIABLE") as caught:
        client.mutate(SET_QUANTITIES, {"input": {"name": "available", "reason": "correction", "quantities": [
            {"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": "gid://shopify/Location/1",
             "quantity": "a secret value", "changeFromQuantity": None}]}, "key": str(uuid.uuid4())},
            payload="inventorySetQuantities")
    assert "a secret value" not in str(caught.value)
    assert _raw(shop, "{ orders(first: 1) { nodes { id } } }", token="wrong").status_code == 401
    with ShopifyGraphQL(shop, SecretStr("wrong")) as stranger, pytest.raises(ConfigError, match="ACCESS_TOKEN"):
        stranger.query("{ orders(first: 1) { nodes { id } } }")


def test_fulfillment_create_ships_lines_with_tracking_and_refuses_too_much(shop, client):
    order_id, fo = _order_with_lines(client)
    line = max(fo["lineItems"]["nodes"], key=lambda li: li["totalQuantity"])
    result = client.mutate(FULFILLMENT_CREATE, {"fulfillment": {
        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"],
                                         "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 1}]}],
        "trackingInfo": {"company": "UPS", "numbers": ["1Z999AA10123456784", "1Z999AA10123456785"]},
        "notifyCustomer": True}}, payload="fulfillmentCreate")
    made = result["fulfillment"]
    assert made["status"] == "SUCCESS"
    assert [t["number"] for t in made["trackingInfo"]] == ["1Z999AA10123456784", "1Z999AA10123456785"]
    assert made["fulfillmentLineItems"]["nodes"] == [{"quantity": 1, "lineItem": {"sku": line["sku"]}}]

    after = client.query(FULFILLMENT_ORDERS, {"id": order_id})["order"]
    assert after["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    (fo_after,) = after["fulfillmentOrders"]["nodes"]
    assert fo_after["status"] == "IN_PROGRESS"
    left = {li["id"]: li["remainingQuantity"] for li in fo_after["lineItems"]["nodes"]}
    assert left[line["id"]] == line["totalQuantity"] - 1
    written = httpx.get(f"{shop}/_sandbox/fulfillments").json()["fulfillments"]
    assert [(f["orderId"], f["notifyCustomer"], f["lineItems"][0]["quantity"]) for f in written] == [
        (order_id, True, 1)]

    with pytest.raises(ErpRejected) as refused:
        client.mutate(FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [
            {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 99}]}]}},
            payload="fulfillmentCreate")
    assert refused.value.path == "fulfillment.lineItemsByFulfillmentOrder.0.fulfillmentOrderLineItems.0.quantity"
    assert refused.value.code == "USER_ERROR"  # fulfillmentCreate's UserError carries no code
    assert "quantity requested" in refused.value.reason
    with pytest.raises(ErpRejected, match="fulfillmentOrderId"):
        client.mutate(FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [
            {"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1"}]}}, payload="fulfillmentCreate")

    # The rest of the order: no lines named means every line left; then nothing is left to ship.
    client.mutate(FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [
        {"fulfillmentOrderId": fo["id"]}]}}, payload="fulfillmentCreate")
    done = client.query(FULFILLMENT_ORDERS, {"id": order_id})["order"]
    assert done["displayFulfillmentStatus"] == "FULFILLED"
    assert done["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    with pytest.raises(ErpRejected, match="fulfillmentOrderId"):
        client.mutate(FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": [
            {"fulfillmentOrderId": fo["id"]}]}}, payload="fulfillmentCreate")


def _levels(shop: str) -> dict[tuple[str, str], int]:
    return {(lv["inventoryItemId"], lv["locationId"]): lv["available"]
            for lv in httpx.get(f"{shop}/_sandbox/inventory").json()["levels"]}


def test_inventory_set_quantities_changes_from_the_quantity_held(shop, client):
    level = httpx.get(f"{shop}/_sandbox/inventory").json()["levels"][0]
    where = (level["inventoryItemId"], level["locationId"])

    def set_to(quantity: int, change_from: int | None) -> dict:
        return client.mutate(SET_QUANTITIES, {"input": {"name": "available", "reason": "correction", "quantities": [
            {"inventoryItemId": level["inventoryItemId"], "locationId": level["locationId"], "quantity": quantity,
             "changeFromQuantity": change_from}]}, "key": str(uuid.uuid4())}, payload="inventorySetQuantities")

    group = set_to(7, level["available"])["inventoryAdjustmentGroup"]
    assert group["changes"] == [{"name": "available", "delta": 7 - level["available"], "quantityAfterChange": 7}]

    # Someone in the shop counts the shelf: our next write, changing from 7, must not overwrite it blindly.
    changed = httpx.post(f"{shop}/_sandbox/inventory", json={
        "inventoryItemId": level["inventoryItemId"], "locationId": level["locationId"], "available": 3})
    assert changed.status_code == 200
    with pytest.raises(ErpRejected) as stale:
        set_to(9, 7)
    assert (stale.value.code, stale.value.path) == ("CHANGE_FROM_QUANTITY_STALE",
                                                    "input.quantities.0.changeFromQuantity")
    assert _levels(shop)[where] == 3
    # An explicit null opts out of the check (Shopify's documented opt-out); leaving the field out is an error.
    set_to(4, None)
    assert _levels(shop)[where] == 4
    answer = _raw(shop, SET_QUANTITIES, {"input": {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": level["inventoryItemId"], "locationId": level["locationId"], "quantity": 9}]},
        "key": str(uuid.uuid4())}).json()
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_FIELD_ARGUMENTS"
    assert "must include the following argument: changeFromQuantity" in answer["errors"][0]["message"]
    # The fields 2026-04 removed are unknown now.
    answer = _raw(shop, SET_QUANTITIES, {"input": {"name": "available", "reason": "correction",
                                                   "ignoreCompareQuantity": True, "quantities": [
        {"inventoryItemId": level["inventoryItemId"], "locationId": level["locationId"], "quantity": 9,
         "compareQuantity": 4}]}, "key": str(uuid.uuid4())}).json()
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    assert _levels(shop)[where] == 4

    with pytest.raises(ErpRejected) as unknown:
        client.mutate(SET_QUANTITIES, {"input": {"name": "available", "reason": "because", "quantities": [
            {"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": level["locationId"], "quantity": 1,
             "changeFromQuantity": 0}]}, "key": str(uuid.uuid4())}, payload="inventorySetQuantities")
    codes = [e["code"] for e in unknown.value.user_errors]
    assert codes == ["INVALID_REASON", "INVALID_INVENTORY_ITEM"]


def test_inventory_set_quantities_needs_an_idempotency_key_and_answers_a_retry_as_the_first_call(shop, client):
    level = httpx.get(f"{shop}/_sandbox/inventory").json()["levels"][1]
    where = (level["inventoryItemId"], level["locationId"])
    change = {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": level["inventoryItemId"], "locationId": level["locationId"], "quantity": 11,
         "changeFromQuantity": level["available"]}]}

    # Without the directive: refused before anything runs, as Shopify refuses it since 2026-04.
    answer = _raw(shop, SET_QUANTITIES_WITHOUT_KEY, {"input": change}).json()
    assert answer["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert answer["errors"][0]["message"] == ("The @idempotent directive is required for this mutation but was "
                                              "not provided.")
    with pytest.raises(PermanentError, match="BAD_REQUEST: The @idempotent directive is required"):
        client.mutate(SET_QUANTITIES_WITHOUT_KEY, {"input": change}, payload="inventorySetQuantities")
    assert _levels(shop)[where] == level["available"]

    key = str(uuid.uuid4())
    first = client.mutate(SET_QUANTITIES, {"input": change, "key": key}, payload="inventorySetQuantities")
    assert _levels(shop)[where] == 11
    # The shop changes the level; the same request again (a retry after a lost answer) is answered as the first
    # call was and applies nothing: not a second change, not a stale change-from.
    httpx.post(f"{shop}/_sandbox/inventory", json={
        "inventoryItemId": level["inventoryItemId"], "locationId": level["locationId"], "available": 5})
    again = client.mutate(SET_QUANTITIES, {"input": change, "key": key}, payload="inventorySetQuantities")
    assert again == first
    assert _levels(shop)[where] == 5
    # The key with other input is refused, and nothing is applied.
    other = {**change, "quantities": [{**change["quantities"][0], "quantity": 12, "changeFromQuantity": 5}]}
    with pytest.raises(ErpRejected) as mismatch:
        client.mutate(SET_QUANTITIES, {"input": other, "key": key}, payload="inventorySetQuantities")
    assert mismatch.value.code == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    assert _levels(shop)[where] == 5
    # A new key is a new call.
    client.mutate(SET_QUANTITIES, {"input": other, "key": str(uuid.uuid4())}, payload="inventorySetQuantities")
    assert _levels(shop)[where] == 12


def test_an_events_stock_write_made_again_after_a_stale_answer_runs_once_the_shop_holds_the_quantity_again(shop):
    level = httpx.get(f"{shop}/_sandbox/inventory").json()["levels"][2]
    where = (level["inventoryItemId"], level["locationId"])
    last = f"{level['inventoryItemId']}|{level['locationId']}|{level['available']}"  # what erpsync set last
    target = level["available"] + 10
    count = {"inventoryItemId": level["inventoryItemId"], "locationId": level["locationId"]}
    body = {"location": level["locationId"], "available": target}
    with ShopifyWriter(ShopifyGraphQL(shop, SecretStr(TOKEN))) as writer, writing_for(event_identity(7, "ab" * 32)):
        # A count in the shop since: the event's write is refused as a conflict, and Shopify keeps that answer.
        httpx.post(f"{shop}/_sandbox/inventory", json={**count, "available": 2}).raise_for_status()
        with pytest.raises(ConflictingChange):
            writer.upsert("inventoryLevel", "x", body, previous_id=last)
        # The count is put back and the event written again within the day: the same key would get the kept stale
        # answer; the writer sees the shop holds what it changes from, and makes the call under a key of its own.
        httpx.post(f"{shop}/_sandbox/inventory", json={**count, "available": level["available"]}).raise_for_status()
        assert writer.upsert("inventoryLevel", "x", body, previous_id=last).endswith(f"|{target}")
    assert _levels(shop)[where] == target


def test_a_retired_version_falls_forward_and_the_client_refuses_the_other_schema(shop):
    query = "{ shop { name } }"
    served = httpx.post(f"{shop}{GRAPHQL}", json={"query": query}, headers={"X-Shopify-Access-Token": TOKEN})
    assert served.status_code == 200 and served.headers["x-shopify-api-version"] == "2026-10"
    # 2025-01 is past support: Shopify answers it with the oldest supported version, the header says which.
    old = httpx.post(f"{shop}/admin/api/2025-01/graphql.json", json={"query": query},
                     headers={"X-Shopify-Access-Token": TOKEN})
    assert old.status_code == 200 and old.headers["x-shopify-api-version"] == "2026-10"
    with ShopifyGraphQL(shop, SecretStr(TOKEN), api_version="2025-01") as pinned, \
            pytest.raises(ConfigError, match="answered with Admin API version 2026-10, not the 2025-01"):
        pinned.query(query)
    # Since 2025-01 the body is JSON, said so by the Content-Type (GraphQL over HTTP); the legacy form is refused.
    legacy = httpx.post(f"{shop}{GRAPHQL}", content=query, headers={"X-Shopify-Access-Token": TOKEN,
                                                                    "Content-Type": "application/graphql"})
    assert legacy.status_code == 415
    # Not a quarter's name, or newer than the sandbox serves: no schema answers it.
    for version in ("2025-02", "unstable", "2027-01"):
        assert httpx.post(f"{shop}/admin/api/{version}/graphql.json", json={"query": query},
                          headers={"X-Shopify-Access-Token": TOKEN}).status_code == 404


def test_product_variants_bulk_update_sets_prices(shop, client):
    variants = httpx.get(f"{shop}/_sandbox/variants").json()["variants"]
    variant = variants[0]
    result = client.mutate(BULK_PRICES, {"productId": variant["productId"], "variants": [
        {"id": variant["id"], "price": "24.5", "compareAtPrice": "30"}]}, payload="productVariantsBulkUpdate")
    assert result["productVariants"] == [{"id": variant["id"], "price": "24.50", "compareAtPrice": "30.00"}]
    after = {v["id"]: v for v in httpx.get(f"{shop}/_sandbox/variants").json()["variants"]}
    assert (after[variant["id"]]["price"], after[variant["id"]]["compareAtPrice"]) == ("24.50", "30.00")

    other = next(v for v in variants if v["productId"] != variant["productId"])
    with pytest.raises(ErpRejected) as refused:
        client.mutate(BULK_PRICES, {"productId": variant["productId"], "variants": [
            {"id": variant["id"], "price": "1.00"}, {"id": other["id"], "price": "2.00"}]},
            payload="productVariantsBulkUpdate")
    assert (refused.value.code, refused.value.path) == ("PRODUCT_VARIANT_DOES_NOT_EXIST", "variants.1.id")
    assert httpx.get(f"{shop}/_sandbox/variants").json()["variants"][0]["price"] == "24.50"  # all or nothing
    with pytest.raises(ErpRejected, match="PRODUCT_DOES_NOT_EXIST"):
        client.mutate(BULK_PRICES, {"productId": "gid://shopify/Product/1", "variants": []},
                      payload="productVariantsBulkUpdate")


def test_a_burst_over_the_bucket_is_paced_to_zero_throttles_and_spends_most_of_the_budget(shop):
    # A small bucket so the burst outruns it: 100 points, restored at 20 a second, so that the pacing, not a loaded
    # machine's slow requests, sets the burst's time (300 points over the bucket: 15 s of waiting).
    bucket, rate, calls, threads = 100, 20, 40, 4
    assert httpx.post(f"{shop}/_sandbox/graphql/throttle", json={
        "maximumAvailable": bucket, "restoreRate": rate, "currentlyAvailable": bucket, "resetCounts": True,
    }).status_code == 200
    levels = httpx.get(f"{shop}/_sandbox/inventory").json()["levels"]
    errors: list[BaseException] = []
    with ShopifyGraphQL(shop, SecretStr(TOKEN)) as paced:
        def worker(index: int) -> None:
            try:
                for n in range(index, calls, threads):
                    level = levels[n % len(levels)]
                    paced.mutate(SET_QUANTITIES, {"input": {
                        "name": "available", "reason": "correction",
                        "quantities": [{"inventoryItemId": level["inventoryItemId"],
                                        "locationId": level["locationId"], "quantity": n,
                                        "changeFromQuantity": None}]}, "key": str(uuid.uuid4())},
                        payload="inventorySetQuantities")
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                errors.append(exc)

        started = time.monotonic()
        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=60)
        elapsed = time.monotonic() - started
    assert not errors
    counts = httpx.get(f"{shop}/_sandbox/graphql/throttle").json()
    assert counts["throttled"] == 0 and paced.throttled == 0
    assert counts["requests"] == calls and counts["pointsSpent"] == 10 * calls
    # What the shop could have given in that time: the full bucket plus the restore; we used most of it.
    budget = bucket + rate * elapsed
    assert counts["pointsSpent"] / budget > 0.75, (counts, elapsed)

    # The same burst unpaced is throttled: the pacing, not the sandbox, kept the count at zero. (A slow restore, so
    # that a loaded machine's slow requests do not pace the burst by themselves.)
    httpx.post(f"{shop}/_sandbox/graphql/throttle", json={"restoreRate": 1, "currentlyAvailable": bucket})
    for n in range(20):
        _raw(shop, SET_QUANTITIES, {"input": {"name": "available", "reason": "correction", "quantities": [
            {"inventoryItemId": levels[0]["inventoryItemId"], "locationId": levels[0]["locationId"], "quantity": n,
             "changeFromQuantity": None}]}, "key": str(uuid.uuid4())})
    assert httpx.get(f"{shop}/_sandbox/graphql/throttle").json()["throttled"] > 0


def test_a_throttled_answer_is_waited_out_and_retried_then_reported_as_transient(shop):
    variant = httpx.get(f"{shop}/_sandbox/variants").json()["variants"][0]
    prices = {"productId": variant["productId"], "variants": [{"id": variant["id"], "price": "9.99"}]}
    # An empty bucket the client has not seen yet (another process of ours spent it): THROTTLED on the first call.
    # (Restored slowly, so that the call still finds it short on a loaded machine.)
    httpx.post(f"{shop}/_sandbox/graphql/throttle", json={
        "maximumAvailable": 100, "restoreRate": 4, "currentlyAvailable": 0, "resetCounts": True})
    with ShopifyGraphQL(shop, SecretStr(TOKEN)) as graphql:
        graphql.mutate(BULK_PRICES, prices, payload="productVariantsBulkUpdate")
        assert graphql.throttled == 1 and graphql.waited_seconds >= 10 / 4 / 2
    httpx.post(f"{shop}/_sandbox/graphql/throttle", json={"currentlyAvailable": 0, "restoreRate": 1})
    with ShopifyGraphQL(shop, SecretStr(TOKEN), max_attempts=1) as impatient:
        with pytest.raises(TransientError, match="THROTTLED") as caught:
            impatient.mutate(BULK_PRICES, prices, payload="productVariantsBulkUpdate")
    assert caught.value.retry_after is not None and caught.value.retry_after >= 9


def test_the_client_refuses_bad_settings_and_reports_an_unreachable_shop():
    with pytest.raises(ConfigError, match="ERPSYNC_SHOPIFY_SHOP_URL: not set"):
        ShopifyGraphQL.from_env({"ERPSYNC_SHOPIFY_ACCESS_TOKEN": "x"})
    with pytest.raises(ConfigError, match="ERPSYNC_SHOPIFY_ACCESS_TOKEN: not set"):
        ShopifyGraphQL.from_env({"ERPSYNC_SHOPIFY_SHOP_URL": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="must be an http"):
        ShopifyGraphQL("ftp://shop", SecretStr("x"))
    waits: list[float] = []
    with ShopifyGraphQL("http://127.0.0.1:9", SecretStr("x"), max_attempts=2, timeout=2, sleep=waits.append) as down:
        with pytest.raises(TransientError, match="ConnectError after 2 attempts"):
            down.query("{ orders(first: 1) { nodes { id } } }")
    assert len(waits) == 1
