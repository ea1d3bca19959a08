"""`make chaos`'s traffic: order webhooks with redeliveries, out-of-order updates and injected permanent failures.

Built on the demo scenario's real-shaped, signed Shopify orders. The shape, for ``webhooks`` deliveries:
- about 20% are redeliveries: the very same delivery (webhook id, bytes) sent again;
- 20% of the orders get 2–5 ``orders/updated`` versions, and the versions of each such order are shuffled so
  they go out in the wrong order;
- a few orders fail for good on purpose: one whose SKU the mapping does not know (a mapping error, before the
  ERP) and about 1% whose external id the ERP sandbox refuses (``--reject-external-ids``).
Everything else must end in the ERP as exactly one sales order carrying its newest version.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from erpsync.errors import ConfigError
from erpsync_dev.scenarios.demo import (
    DEMO_SKUS,
    ORIGINAL,
    REDELIVERY,
    UNKNOWN_SKU,
    Delivery,
    build_demo_scenario,
    reprice,
)

MIN_WEBHOOKS = 20
REDELIVERY_SHARE = 0.2
UPDATED_ENTITY_SHARE = 0.2
REJECTED_ENTITY_SHARE = 0.01
UPDATES_PER_ENTITY = (2, 5)
MEAN_UPDATES = sum(UPDATES_PER_ENTITY) / 2

MAPPING_REJECTED = "mapping"  # the order's SKU is in no lookup table: dead-lettered before the ERP is called
ERP_REJECTED = "erp"  # the ERP refuses the write: 400 USER_ERROR


@dataclass(frozen=True)
class ChaosOrder:
    order_id: str
    external_id: str
    name: str
    newest_updated_at: str
    newest_lines: tuple[tuple[str | None, int, str], ...]  # (sku or None for a custom line, quantity, price)
    versions: int
    rejected: str | None = None  # MAPPING_REJECTED, ERP_REJECTED or None (must be synced)


@dataclass(frozen=True)
class ChaosScenario:
    seed: int
    deliveries: tuple[Delivery, ...]  # in sending order, redeliveries included
    orders: tuple[ChaosOrder, ...]

    @property
    def unique(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.kind != REDELIVERY]

    @property
    def erp_rejected_external_ids(self) -> tuple[str, ...]:
        return tuple(o.external_id for o in self.orders if o.rejected == ERP_REJECTED)

    def counts(self) -> dict[str, int]:
        return {
            "webhooks": len(self.deliveries),
            "unique_deliveries": len(self.unique),
            "redeliveries": len(self.deliveries) - len(self.unique),
            "orders": len(self.orders),
            "orders_with_updates": sum(o.versions > 1 for o in self.orders),
            "orders_rejected_by_mapping": sum(o.rejected == MAPPING_REJECTED for o in self.orders),
            "orders_rejected_by_erp": sum(o.rejected == ERP_REJECTED for o in self.orders),
            "orders_to_sync": sum(o.rejected is None for o in self.orders),
        }


def build_chaos_scenario(
    webhooks: int, seed: int, *, external_id_prefix: str = "shopify-order-", started_at: datetime | None = None
) -> ChaosScenario:
    """``webhooks`` deliveries in total; the same seed and start give the same deliveries, ids and order.

    The orders' times are taken back from ``started_at`` (now when not given), so two runs of one seed at
    different seconds differ in their timestamps only.
    """
    if webhooks < MIN_WEBHOOKS:
        raise ConfigError(f"webhooks: at least {MIN_WEBHOOKS}, got {webhooks}")
    rng = random.Random(seed)
    redeliveries = round(webhooks * REDELIVERY_SHARE)
    # Unique deliveries = orders + updates = orders × (1 + share × mean updates): solve for the orders.
    orders_count = max(3, round((webhooks - redeliveries) / (1 + UPDATED_ENTITY_SHARE * MEAN_UPDATES)))
    demo = build_demo_scenario(orders=orders_count, seed=seed, skus=DEMO_SKUS, started_at=started_at)
    creates = [d for d in demo.phases[0] if d.kind == ORIGINAL and d.topic == "orders/create"]

    unknown = [d for d in creates if UNKNOWN_SKU.encode() in d.body]
    known = [d for d in creates if d not in unknown]
    rng.shuffle(known)
    n_updated = round(orders_count * UPDATED_ENTITY_SHARE)
    n_rejected = max(1, round(orders_count * REJECTED_ENTITY_SHARE))
    updated, rejected = known[:n_updated], known[n_updated:n_updated + n_rejected]

    versions_of: dict[str, list[Delivery]] = {d.order_id: [d] for d in creates}
    for create in updated:
        count = rng.randint(*UPDATES_PER_ENTITY)
        versions_of[create.order_id] += [_updated_version(create, step, rng) for step in range(1, count + 1)]
    # Trim or grow the redeliveries so the total is exactly ``webhooks``.
    unique_count = sum(len(v) for v in versions_of.values())
    redeliveries = webhooks - unique_count
    if redeliveries < 0:
        raise ConfigError(f"webhooks: {webhooks} is too few for {orders_count} orders and their updates")

    # Each updated order's versions in a shuffled order that is never the right one.
    sequences = []
    for order_id, versions in versions_of.items():
        shuffled = list(versions)
        while len(shuffled) > 1 and shuffled == sorted(shuffled, key=lambda d: d.version):
            rng.shuffle(shuffled)
        sequences.append(shuffled)
    # Interleave the orders at random, keeping each order's (wrong) version order.
    plan: list[Delivery] = []
    cursors = [0] * len(sequences)
    pending = [i for i, seq in enumerate(sequences) for _ in seq]
    rng.shuffle(pending)
    for i in pending:
        plan.append(sequences[i][cursors[i]])
        cursors[i] += 1
    # Redeliveries: the same delivery again, somewhere after its first attempt.
    for original in rng.sample(list(plan), k=min(redeliveries, len(plan))):
        start = plan.index(original) + 1
        plan.insert(rng.randint(start, len(plan)), replace(original, kind=REDELIVERY))
    while len(plan) < webhooks:  # more redeliveries than deliveries (only for tiny runs): send some twice more
        original = rng.choice([d for d in plan if d.kind == ORIGINAL])
        plan.append(replace(original, kind=REDELIVERY))

    rejected_ids = {d.order_id for d in rejected}
    unknown_ids = {d.order_id for d in unknown}
    orders = []
    for create in creates:
        newest = max(versions_of[create.order_id], key=lambda d: d.version)
        body = newest.payload()
        orders.append(ChaosOrder(
            order_id=create.order_id,
            external_id=f"{external_id_prefix}{create.order_id}",
            name=body["name"],
            newest_updated_at=body["updated_at"],
            newest_lines=tuple((li["sku"], int(li["quantity"]), li["price"]) for li in body["line_items"]),
            versions=len(versions_of[create.order_id]),
            rejected=(MAPPING_REJECTED if create.order_id in unknown_ids
                      else ERP_REJECTED if create.order_id in rejected_ids else None),
        ))
    return ChaosScenario(seed=seed, deliveries=tuple(plan), orders=tuple(orders))


def _updated_version(create: Delivery, step: int, rng: random.Random) -> Delivery:
    """The order ``step`` edits after its create: one more of its first line, ten seconds later each time."""
    body: dict[str, Any] = json.loads(create.body)
    at = datetime.fromisoformat(body["updated_at"]) + timedelta(seconds=10 * step)
    first = body["line_items"][0]
    quantity = int(first["quantity"]) + step
    first["quantity"] = quantity
    reprice(body)  # discount allocations, taxes and totals follow the new quantity, as Shopify's would
    body["updated_at"] = at.isoformat(timespec="seconds")
    body["note"] = f"Edited {step} time(s) after checkout."
    new_body = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Delivery(
        topic="orders/updated",
        webhook_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        triggered_at=(at + timedelta(seconds=1)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        body=new_body,
        order_id=create.order_id,
        updated_at=body["updated_at"],
    )


