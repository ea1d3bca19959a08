"""The traffic `make chaos` sends: its shares, its wrong orders, and the expected end state it promises."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from erpsync.errors import ConfigError
from erpsync_dev.scenarios.chaos import ERP_REJECTED, MAPPING_REJECTED, build_chaos_scenario
from erpsync_dev.scenarios.demo import ORIGINAL, REDELIVERY, UNKNOWN_SKU


@pytest.fixture(scope="module")
def scenario():
    return build_chaos_scenario(1000, seed=4)


def test_exactly_the_webhooks_asked_for_about_a_fifth_of_them_redeliveries(scenario) -> None:
    counts = scenario.counts()
    assert counts["webhooks"] == len(scenario.deliveries) == 1000
    assert 180 <= counts["redeliveries"] <= 220


def test_a_redelivery_repeats_an_earlier_delivery_byte_for_byte(scenario) -> None:
    first_seen: dict[str, int] = {}
    for position, delivery in enumerate(scenario.deliveries):
        if delivery.kind == REDELIVERY:
            original = scenario.deliveries[first_seen[delivery.webhook_id]]
            assert (original.body, original.event_id, original.topic) == (delivery.body, delivery.event_id,
                                                                           delivery.topic)
        else:
            assert delivery.webhook_id not in first_seen, "a webhook id is used by two different deliveries"
            first_seen[delivery.webhook_id] = position


def test_a_fifth_of_the_orders_get_two_to_five_updates_sent_out_of_order(scenario) -> None:
    versions = Counter(d.order_id for d in scenario.unique)
    updated = [order_id for order_id, n in versions.items() if n > 1]
    assert round(len(versions) * 0.2) == len(updated)
    assert {versions[o] - 1 for o in updated} <= {2, 3, 4, 5}
    for order_id in updated:
        sent = [d.version for d in scenario.unique if d.order_id == order_id]
        assert sent != sorted(sent), f"order {order_id}'s versions go out in order"


def test_the_expected_end_state_is_each_orders_newest_version(scenario) -> None:
    for order in scenario.orders:
        newest = max((d for d in scenario.unique if d.order_id == order.order_id), key=lambda d: d.version)
        body = newest.payload()
        assert order.newest_updated_at == body["updated_at"]
        assert order.newest_lines == tuple((li["sku"], li["quantity"], li["price"]) for li in body["line_items"])


def test_updates_change_the_content_and_keep_the_totals_consistent(scenario) -> None:
    for delivery in scenario.unique:
        if delivery.topic == "orders/updated":
            body = delivery.payload()
            # Shopify's subtotal is after the discounts allocated to the lines.
            lines = sum(Decimal(li["price"]) * li["quantity"] for li in body["line_items"])
            discounts = sum(Decimal(a["amount"]) for li in body["line_items"] for a in li["discount_allocations"])
            assert Decimal(body["subtotal_price"]) == lines - discounts
            assert body["total_price_set"]["shop_money"]["amount"] == body["total_price"]


def test_permanent_failures_are_injected_on_purpose_and_named(scenario) -> None:
    rejected = Counter(o.rejected for o in scenario.orders)
    assert rejected[MAPPING_REJECTED] == 1
    assert rejected[ERP_REJECTED] == round(len(scenario.orders) * 0.01)
    unknown = next(o for o in scenario.orders if o.rejected == MAPPING_REJECTED)
    assert unknown.newest_lines[0][0] == UNKNOWN_SKU
    assert set(scenario.erp_rejected_external_ids) == {
        o.external_id for o in scenario.orders if o.rejected == ERP_REJECTED}
    # Refused orders have one version each, so each is exactly one dead letter.
    assert all(o.versions == 1 for o in scenario.orders if o.rejected)


def test_the_same_seed_gives_the_same_traffic() -> None:
    # Built in two different seconds the bodies' times would differ (they count back from now), so one start.
    start = datetime(2026, 11, 2, 15, 0, 0, tzinfo=timezone.utc)
    first = build_chaos_scenario(60, seed=9, started_at=start)
    second = build_chaos_scenario(60, seed=9, started_at=start)
    assert [(d.webhook_id, d.body) for d in first.deliveries] == [(d.webhook_id, d.body) for d in second.deliveries]
    assert all(d.kind in (ORIGINAL, REDELIVERY) for d in first.deliveries)


def test_too_few_webhooks_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="webhooks: at least 20, got 5"):
        build_chaos_scenario(5, seed=1)
