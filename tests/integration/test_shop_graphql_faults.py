"""The shop sandbox's injected GraphQL faults (erpsync_dev/sandboxes/shopify/graphql_faults.py), as a process: server
errors before a call runs, answers lost after it ran, and the Shopify writer fulfilling a shipment once through them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from erpsync.errors import TransientError
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.systems.shopify.writer import ShopifyWriter
from tests.sandbox_procs import start_shop_sandbox

TOKEN = "shpat_faults"
ORDER_ID = 6_600_000_001
SHOP_QUERY = {"query": "{ shop { name } }"}
GRAPHQL = "/admin/api/2026-10/graphql.json"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_shop_sandbox(tmp_path_factory.mktemp("shop"), "--orders", "3", "--access-token", TOKEN,
                            env={"ERPSYNC_SHOPIFY_WEBHOOK_SECRET": "faults-secret"}) as base_url:
        order = {"id": ORDER_ID, "name": "#6601", "created_at": "2026-11-28T09:00:00+00:00",
                 "updated_at": "2026-11-28T09:00:00+00:00",
                 "line_items": [{"id": 7101, "variant_id": 4_400_101, "product_id": 3_300_101, "sku": "FLT-MUG",
                                 "title": "FLT-MUG", "quantity": 2, "price": "10.00"}]}
        httpx.post(f"{base_url}/_sandbox/orders", json=order).raise_for_status()
        yield base_url


def faults(shop: str, **settings) -> httpx.Response:
    return httpx.post(f"{shop}/_sandbox/graphql/faults", json=settings)


def post(shop: str) -> httpx.Response:
    return httpx.post(f"{shop}{GRAPHQL}", json=SHOP_QUERY, headers={"X-Shopify-Access-Token": TOKEN})


def test_off_by_default_and_every_call_fails_at_rate_one(shop):
    assert faults(shop).json()["rate"] == 0
    assert post(shop).status_code == 200
    assert faults(shop, rate=1, statuses=[503]).status_code == 200
    answers = [post(shop).status_code for _ in range(3)]
    assert answers == [503, 503, 503]
    assert httpx.get(f"{shop}/_sandbox/graphql/faults").json()["failed"] == 3
    faults(shop)
    assert post(shop).status_code == 200


@pytest.mark.parametrize(("settings", "named"), [
    ({"rate": 2}, "rate: a share"),
    ({"lost_rate": "often"}, "lost_rate: a share"),
    ({"statuses": [404]}, "statuses: a list of 5xx"),
    ({"seed": "x"}, "seed: an integer"),
    ({"rat": 0.1}, "rat: unknown setting"),
])
def test_a_bad_setting_is_refused_naming_it(shop, settings, named):
    answer = faults(shop, **settings)
    assert answer.status_code == 400
    assert named in answer.json()["error"]


def test_a_lost_answer_is_a_transient_error_and_the_mutation_ran(shop):
    faults(shop, lost_rate=1)
    with pytest.raises(TransientError, match="504"):
        ShopifyGraphQL(shop, SecretStr(TOKEN), max_attempts=1).query("{ shop { name } }")
    assert httpx.get(f"{shop}/_sandbox/graphql/faults").json()["lost"] == 1
    faults(shop)


def test_lost_answers_and_server_errors_never_fulfil_a_shipment_twice(shop):
    faults(shop, rate=0.3, lost_rate=0.5, seed=1)
    body = {"order": str(ORDER_ID), "lines": [{"lineItemId": "7101", "quantity": 1}],
            "tracking": {"company": "UPS", "numbers": ["1ZFAULTS0001"]}, "notifyCustomer": True}
    made, attempts = None, 0
    with ShopifyWriter(ShopifyGraphQL(shop, SecretStr(TOKEN), max_attempts=2)) as writer:
        while made is None and attempts < 30:  # a retried event, as the pipeline retries a transient error
            attempts += 1
            try:
                made = writer.upsert("fulfillment", "netsuite-fulfillment-9001", body)
            except TransientError:
                pass
    counts = httpx.get(f"{shop}/_sandbox/graphql/faults").json()
    faults(shop)
    assert made is not None, f"no attempt got through in {attempts}: {counts}"
    assert attempts > 1  # at least one attempt met a fault and was retried
    assert counts["lost"] > 0 and counts["failed"] > 0, counts
    ours = [f for f in httpx.get(f"{shop}/_sandbox/fulfillments").json()["fulfillments"]
            if f["orderId"] == f"gid://shopify/Order/{ORDER_ID}"]
    assert [f["id"] for f in ours] == [made]
