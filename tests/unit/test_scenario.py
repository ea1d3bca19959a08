"""The demo scenario: counts, fresh ids, signatures, faithfulness to Shopify's sample order, version order."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.errors import ConfigError
from erpsync.systems.shopify.webhooks import verify_shopify
from erpsync_dev.scenarios.chaos import build_chaos_scenario
from erpsync_dev.scenarios.demo import (
    API_VERSION,
    CONTENT_DUPLICATE,
    DEAD_LETTERED,
    DEMO_SKUS,
    ORIGINAL,
    REDELIVERY,
    STALE,
    SYNCED,
    UNKNOWN_SKU,
    build_demo_scenario,
    order_template,
    reprice,
    sign,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
STARTED_AT = datetime(2025, 3, 14, 15, 9, 26, tzinfo=timezone.utc)
SECRET = "unit-test-webhook-secret"
SHOPIFY_HEADERS = {
    "X-Shopify-Topic",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Shop-Domain",
    "X-Shopify-API-Version",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Triggered-At",
    "X-Shopify-Event-Id",
}


@pytest.fixture(scope="module")
def scenario():
    return build_demo_scenario(50, seed=20250314, started_at=STARTED_AT)


@pytest.fixture(scope="module")
def sample_order() -> dict:
    path = FIXTURES / "orders_create.json"
    if not path.exists():
        pytest.skip(f"Shopify sample payloads not found at {path}")
    return json.loads(path.read_text())


def test_template_has_the_sample_orders_keys(sample_order):
    template = order_template()
    assert list(template) == list(sample_order)
    assert list(template["line_items"][0]) == list(sample_order["line_items"][0])
    for nested in ("customer", "billing_address", "shipping_address"):
        assert set(template[nested]) == set(sample_order[nested]), nested
    assert set(template["shipping_lines"][0]) == set(sample_order["shipping_lines"][0])


def test_orders_updated_sample_has_the_same_shape(sample_order):
    # The template stands for every orders/* topic the scenario sends; Shopify uses one body shape for them.
    updated = json.loads((FIXTURES / "orders_updated.json").read_text())
    assert list(updated) == list(sample_order)


def test_generated_bodies_keep_the_template_shape(scenario):
    template = order_template()
    for delivery in scenario.deliveries:
        body = delivery.payload()
        assert list(body) == list(template)
        for item in body["line_items"]:
            assert list(item) == list(template["line_items"][0])


def test_counts_at_fifty_orders(scenario):
    burst, late = scenario.phases
    assert scenario.counts() == {
        "deliveries": 63,
        "unique_deliveries": 57,
        "redeliveries": 6,
        "content_duplicates": 1,
        "superseded": 1,
        "applied": 54,
        "dead_lettered": 1,
        "orders": 50,
        "synced_orders": 49,
        "dead_lettered_orders": 1,
    }
    assert len(burst) == 61 and len(late) == 2
    assert [d.topic for d in burst if d.kind == ORIGINAL].count("orders/create") == 50
    assert [d.topic for d in burst if d.kind == ORIGINAL].count("orders/updated") == 5
    assert [d.topic for d in burst].count("orders/paid") == 1


def test_counts_agree_with_the_deliveries_themselves(scenario):
    deliveries = scenario.deliveries
    assert len({d.webhook_id for d in deliveries}) == scenario.counts()["unique_deliveries"]
    first_seen: dict[str, int] = {}
    for index, delivery in enumerate(deliveries):
        if delivery.webhook_id in first_seen:
            original = deliveries[first_seen[delivery.webhook_id]]
            assert delivery.kind == REDELIVERY
            assert (delivery.body, delivery.event_id, delivery.triggered_at, delivery.topic) == (
                original.body,
                original.event_id,
                original.triggered_at,
                original.topic,
            )
        else:
            assert delivery.kind != REDELIVERY
            first_seen[delivery.webhook_id] = index


def test_the_paid_order_repeats_an_earlier_body_under_a_new_webhook_id(scenario):
    burst = scenario.phases[0]
    (paid,) = [d for d in burst if d.kind == CONTENT_DUPLICATE]
    assert paid.topic == "orders/paid"
    (create,) = [
        d for d in burst if d.topic == "orders/create" and d.kind == ORIGINAL and d.order_id == paid.order_id
    ]
    assert paid.body == create.body
    assert paid.webhook_id != create.webhook_id
    assert paid.event_id == create.event_id  # one merchant action, two topics
    assert burst.index(create) in paid.after
    # It duplicates the newest version of its order, so a version guard alone cannot catch it.
    assert not [d for d in scenario.deliveries if d.order_id == paid.order_id and d.topic == "orders/updated"]


def test_ids_are_fresh_and_unique(scenario):
    bodies = [json.loads(d.body) for d in scenario.deliveries if d.kind == ORIGINAL and d.topic == "orders/create"]
    order_ids = [b["id"] for b in bodies]
    assert len(set(order_ids)) == 50
    assert order_ids == sorted(order_ids)  # Shopify's ids grow with time
    assert len({b["name"] for b in bodies}) == 50
    customers = [b["customer"]["id"] for b in bodies if b["customer"] is not None]
    assert len(set(customers)) == len(customers) >= 40  # a few guest checkouts have none
    line_ids = [li["id"] for b in bodies for li in b["line_items"]]
    assert len(set(line_ids)) == len(line_ids)
    assert not set(order_ids) & {li["product_id"] for b in bodies for li in b["line_items"]}
    originals = [d for d in scenario.deliveries if d.kind != REDELIVERY]
    assert len({d.webhook_id for d in originals}) == len(originals)
    sample = json.loads((FIXTURES / "orders_create.json").read_text()) if FIXTURES.exists() else {"id": None}
    assert sample["id"] not in order_ids

    other = build_demo_scenario(50, seed=1, started_at=STARTED_AT)
    assert not {o.order_id for o in other.orders} & {o.order_id for o in scenario.orders}
    assert not {d.webhook_id for d in other.deliveries} & {d.webhook_id for d in scenario.deliveries}


def test_a_seed_replays_the_same_scenario(scenario):
    again = build_demo_scenario(50, seed=scenario.seed, started_at=STARTED_AT)
    assert again.phases == scenario.phases
    assert again.expected() == scenario.expected()


def test_without_a_seed_one_is_drawn_and_recorded():
    drawn = build_demo_scenario(5)
    assert isinstance(drawn.seed, int)
    assert build_demo_scenario(5, seed=drawn.seed, started_at=drawn.started_at).phases == drawn.phases


def test_every_delivery_is_signed_with_shopifys_header_set(scenario):
    for delivery in scenario.deliveries:
        headers = sign(delivery, SECRET, shop_domain="erpsync-demo.myshopify.com")
        assert SHOPIFY_HEADERS <= set(headers)
        assert headers["X-Shopify-API-Version"] == API_VERSION == "2026-10"
        assert headers["X-Shopify-Topic"] == delivery.topic
        assert headers["X-Shopify-Shop-Domain"] == "erpsync-demo.myshopify.com"
        assert verify_shopify(SECRET, delivery.body, headers["X-Shopify-Hmac-Sha256"])
        assert not verify_shopify("another-secret", delivery.body, headers["X-Shopify-Hmac-Sha256"])
        assert not verify_shopify(SECRET, delivery.body + b" ", headers["X-Shopify-Hmac-Sha256"])


def test_trigger_times_follow_their_versions_and_precede_the_start(scenario):
    for delivery in scenario.deliveries:
        triggered = datetime.strptime(delivery.triggered_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        assert delivery.version < triggered <= STARTED_AT
        assert json.loads(delivery.body)["updated_at"] == delivery.updated_at


def test_exactly_one_order_has_an_unknown_sku(scenario):
    dead = [o for o in scenario.orders if o.outcome == DEAD_LETTERED]
    assert len(dead) == 1
    assert [li.sku for li in dead[0].line_items] == [UNKNOWN_SKU]
    assert dead[0].reason and UNKNOWN_SKU in dead[0].reason
    for order in scenario.orders:
        if order.outcome == SYNCED:
            assert {li.sku for li in order.line_items} <= {*DEMO_SKUS, None}  # None: a custom line
    assert scenario.unknown_skus == (UNKNOWN_SKU,)
    assert all(d.order_id != dead[0].order_id or d.kind == ORIGINAL for d in scenario.deliveries)


def test_the_catalogue_is_a_parameter():
    custom = build_demo_scenario(10, seed=5, skus=["A-1", "B-2"], unknown_sku="GONE-9", started_at=STARTED_AT)
    skus = {li.sku for o in custom.orders for li in o.line_items}
    assert skus <= {"A-1", "B-2", "GONE-9", None} and "GONE-9" in skus
    assert custom.skus == ("A-1", "B-2")


def test_updates_come_after_their_create_with_a_newer_version(scenario):
    burst = list(scenario.phases[0])
    updates = [d for d in burst if d.topic == "orders/updated" and d.kind == ORIGINAL]
    assert len(updates) == 5
    for update in updates:
        (create,) = [
            d for d in burst if d.topic == "orders/create" and d.kind == ORIGINAL and d.order_id == update.order_id
        ]
        assert update.after == (burst.index(create),)
        assert burst.index(create) < burst.index(update)
        assert update.version > create.version
        old, new = create.payload(), update.payload()
        assert new["note"] != old["note"]
        assert new["line_items"][0]["quantity"] != old["line_items"][0]["quantity"]
        assert new["current_subtotal_price"] != old["current_subtotal_price"]
    for delivery in burst:
        for before in delivery.after:
            assert before < burst.index(delivery)


def test_the_late_phase_brings_an_older_version_and_a_late_retry(scenario):
    burst, late = scenario.phases
    (stale,) = [d for d in late if d.kind == STALE]
    (retry,) = [d for d in late if d.kind == REDELIVERY]
    assert stale.topic == "orders/updated"
    newest_in_burst = max(d.version for d in burst if d.order_id == stale.order_id)
    create = next(d for d in burst if d.order_id == stale.order_id and d.topic == "orders/create")
    assert create.version < stale.version < newest_in_burst
    assert stale.webhook_id not in {d.webhook_id for d in burst}
    assert stale.body not in {d.body for d in burst}
    assert retry.webhook_id in {d.webhook_id for d in burst}
    assert all(not d.after for d in late)
    (expected,) = [o for o in scenario.orders if o.order_id == stale.order_id]
    assert datetime.fromisoformat(expected.updated_at) == newest_in_burst


def test_expected_outcome_is_the_newest_version_of_each_order(scenario):
    assert len(scenario.orders) == 50
    for order in scenario.orders:
        versions = [d for d in scenario.deliveries if d.order_id == order.order_id]
        newest = max(versions, key=lambda d: d.version).payload()
        assert order.updated_at == newest["updated_at"]
        assert order.name == newest["name"]
        assert [(li.sku, li.quantity, li.price) for li in order.line_items] == [
            (li["sku"], li["quantity"], li["price"]) for li in newest["line_items"]
        ]


def test_expected_outcome_is_json_and_names_no_customer_data(scenario):
    text = json.dumps(scenario.expected())
    document = json.loads(text)
    assert document["counts"]["deliveries"] == 63
    assert [p["deliveries"] for p in document["phases"]] == [61, 2]
    assert set(document["orders"][0]) == {"order_id", "name", "updated_at", "line_items", "outcome", "reason",
                                          "total", "guest", "customer_id"}
    assert "example.com" not in text and "Test Customer" not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"orders": 2}, "orders: must be at least 3"),
        ({"skus": []}, "skus:"),
        ({"skus": ["A", UNKNOWN_SKU]}, "unknown_sku:"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_demo_scenario(**{"orders": 10, **kwargs})


def test_three_orders_still_make_every_case():
    small = build_demo_scenario(3, seed=9, started_at=STARTED_AT)
    kinds = {d.kind for d in small.deliveries}
    assert kinds == {ORIGINAL, REDELIVERY, CONTENT_DUPLICATE, STALE}


def assert_adds_up(body: dict) -> None:
    """Discounts allocated over the lines, tax on the discounted lines, shipping: total_price to the cent."""
    lines = body["line_items"]
    gross = sum(Decimal(li["price"]) * li["quantity"] for li in lines)
    allocated = sum(Decimal(a["amount"]) for li in lines for a in li["discount_allocations"])
    tax = sum(Decimal(t["price"]) for li in lines for t in li["tax_lines"])
    shipping = sum(Decimal(s["price"]) for s in body["shipping_lines"])
    assert Decimal(body["total_discounts"]) == allocated
    assert Decimal(body["total_tax"]) == tax == sum((Decimal(t["price"]) for t in body["tax_lines"]), Decimal(0))
    assert Decimal(body["subtotal_price"]) == gross - allocated
    assert Decimal(body["total_price"]) == (gross - allocated + shipping + tax).quantize(Decimal("0.01"))
    assert body["total_price"] == body["current_total_price"] == body["total_price_set"]["shop_money"]["amount"]


def test_reprice_is_what_render_order_computes_and_follows_a_changed_quantity(scenario):
    for delivery in scenario.deliveries:
        body = delivery.payload()
        assert reprice(json.loads(json.dumps(body))) == body
    taxed = next(d.payload() for d in scenario.deliveries if d.payload()["tax_lines"] and d.payload()["discount_codes"])
    before = Decimal(taxed["total_price"])
    taxed["line_items"][0]["quantity"] += 3
    assert_adds_up(reprice(taxed))
    assert Decimal(taxed["total_price"]) > before


def test_the_chaos_runs_edits_add_up_too():
    for delivery in build_chaos_scenario(120, seed=3).deliveries:
        assert_adds_up(delivery.payload())


def test_the_money_adds_up_as_shopify_computes_it_and_every_kind_appears(scenario):
    kinds = {"discount": 0, "tax": 0, "custom line": 0, "guest": 0}
    for delivery in scenario.deliveries:
        body = delivery.payload()
        assert_adds_up(body)
        kinds["discount"] += Decimal(body["total_discounts"]) > 0
        kinds["tax"] += Decimal(body["total_tax"]) > 0
        kinds["custom line"] += any(li["sku"] is None for li in body["line_items"])
        kinds["guest"] += body["customer"] is None
    assert all(kinds.values()), kinds
