"""Products with variants through the pipeline's steps, without Prefect: a real ledger and the ERP sandbox process.

One inventory item per variant (idempotent), every variant's ERP id in the ledger, a variant without SKU left
out with its reason, a SKU another item has refused naming the SKU, and an order for a variant's SKU that
finds the item through the cross-reference, with no row in the SKU table.
"""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from pydantic import SecretStr

from erpsync.deadletters import parse_reason
from erpsync.errors import MappingError
from erpsync.pipeline import ElementRefused, SyncPipeline
from erpsync.retry import RetryPolicy
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.client import NetSuiteClient, NetSuiteSettings
from tests.conftest import fixture_path
from tests.integration.test_pipeline import store, sync
from tests.sandbox_procs import ERP_CLIENT_ID, ERP_CLIENT_SECRET, start_erp_sandbox

# The SKU table's CABLE-USBC-1M is item 140; IPOD2008PINK names item 98 in this ERP (not in any variant).
TAKEN_SKU = "IPOD2008PINK"


@pytest.fixture(scope="module")
def erp_url(tmp_path_factory):
    with start_erp_sandbox(tmp_path_factory.mktemp("erp"), "--items", f"1-999,98={TAKEN_SKU}") as base_url:
        yield base_url


@pytest.fixture
def erp(erp_url):
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=SecretStr(ERP_CLIENT_SECRET))
    with NetSuiteClient(settings, RetryPolicy(max_attempts=2, base=0.01)) as client:
        yield client


@pytest.fixture
def pipeline(ledger, erp_url):
    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=SecretStr(ERP_CLIENT_SECRET))
    pipeline = SyncPipeline(ledger, PROJECT_DIR / "mappings",
                            lambda: NetSuiteClient(settings, RetryPolicy(max_attempts=2, base=0.01)))
    yield pipeline
    pipeline.close()


def fresh() -> int:
    return 800000000000 + uuid.uuid4().int % 10**9


def product(*skus: str | None) -> dict:
    """Shopify's products/update sample with a fresh id and one variant per SKU."""
    sample = json.loads(fixture_path("shopify", "products_update.json").read_text())
    sample["id"] = fresh()
    template = sample["variants"][0]
    sample["variants"] = [copy.deepcopy(template) | {"id": fresh(), "sku": sku, "title": f"Size {n}",
                                                      "product_id": sample["id"]}
                          for n, sku in enumerate(skus)]
    return sample


def items_of(erp, variants: list[dict]) -> dict[str, tuple[str, str]]:
    """external id → (internal id, itemid), as the ERP's SuiteQL answers."""
    ids = ", ".join(f"'shopify-variant-{v['id']}'" for v in variants)
    rows = erp.suiteql(f"SELECT id, itemid, externalid FROM item WHERE externalid IN ({ids})")
    return {row["externalid"]: (str(row["id"]), row["itemid"]) for row in rows}


def test_a_two_variant_product_is_two_items_and_a_second_delivery_changes_nothing(pipeline, ledger, erp):
    payload = product(f"TEE-{fresh()}-S", f"TEE-{fresh()}-M")
    first = sync(pipeline, store(ledger, payload, "products/create"))
    items = items_of(erp, payload["variants"])
    assert sorted(itemid for _, itemid in items.values()) == sorted(v["sku"] for v in payload["variants"])
    [(first_eid, (first_id, _))] = [(k, v) for k, v in items.items()
                                    if k == f"shopify-variant-{payload['variants'][0]['id']}"]
    assert first == first_id, "the product's ERP id is its first variant's"

    # Every variant's id is in the ledger, under its own row; the product's row holds the first.
    rows = {s.entity_id: s for s in ledger.entity_states_of("shopify", "variant", list(items), "netsuite")}
    assert {eid: row.to_id for eid, row in rows.items()} == {eid: iid for eid, (iid, _) in items.items()}
    assert all(row.to_record_type == "inventoryItem" for row in rows.values())
    [product_row] = ledger.entity_states_of("shopify", "product", [str(payload["id"])], "netsuite")
    assert (product_row.external_id, product_row.to_id) == (first_eid, first_id)

    # The same delivery again, and the same content with a newer version: the same two items, nothing more.
    assert sync(pipeline, store(ledger, payload, "products/update")) == "duplicate"
    newer = copy.deepcopy(payload) | {"updated_at": "2031-01-01T00:00:00-05:00"}
    assert sync(pipeline, store(ledger, newer, "products/update")) == first_id
    assert items_of(erp, payload["variants"]) == items
    rows = erp.suiteql(f"SELECT id FROM item WHERE itemid IN ('{payload['variants'][0]['sku']}',"
                       f" '{payload['variants'][1]['sku']}')")
    assert len(rows) == 2

    body = erp.get("inventoryItem", first_id)
    assert body["displayName"] == f"{payload['title']} - Size 0"
    assert body["custitem_erpsync_product_id"] == str(payload["id"])


def test_a_variant_without_sku_is_left_out_with_its_reason(pipeline, ledger, erp):
    payload = product(None, f"CAP-{fresh()}")
    event_id = store(ledger, payload, "products/create")
    sync(pipeline, event_id)
    assert list(items_of(erp, payload["variants"])) == [f"shopify-variant-{payload['variants'][1]['id']}"]
    [outcome] = ledger.outcomes(event_id)
    assert outcome.outcome == "synced"
    assert outcome.reason == "1 left out: variants[0]: no SKU, and a NetSuite item is named by its SKU; give the" \
                             " variant a SKU in Shopify"


def test_a_product_without_any_sku_is_skipped_not_failed(pipeline, ledger):
    payload = product(None, "")
    event_id = store(ledger, payload, "products/create")
    assert sync(pipeline, event_id) == "skipped"
    [outcome] = ledger.outcomes(event_id)
    assert outcome.reason.startswith("variants: no element to sync (variants[0]: no SKU")


def test_a_sku_another_item_has_is_a_dead_letter_naming_the_sku(pipeline, ledger, erp):
    payload = product(f"MUG-{fresh()}", TAKEN_SKU)
    event_id = store(ledger, payload, "products/create")
    event = pipeline.validate(event_id)
    assert pipeline.dedupe(event) is None
    transformed = pipeline.transform(event)
    with pytest.raises(ElementRefused) as caught:
        pipeline.push(transformed)
    second = f"shopify-variant-{payload['variants'][1]['id']}"
    assert str(caught.value) == (f"variants[1].sku '{TAKEN_SKU}': the ERP refused inventoryItem {second}"
                                 " (HTTP 400 USER_ERROR at itemId); records of the elements before it were written")
    pipeline.fail(event_id, caught.value, event=event, transformed=transformed)
    [outcome] = ledger.outcomes(event_id)
    assert outcome.outcome == "failed"
    # A dead letter like any ERP refusal (grouped by code and field); its detail names the element and SKU.
    reason = parse_reason(outcome.reason)
    assert reason.group == "ErpRejected USER_ERROR at itemId"
    assert reason.detail.startswith(f"variants[1].sku '{TAKEN_SKU}' (inventoryItem {second}): ")
    # The first variant's item was written before the refusal: its id is findable in the ledger.
    items = items_of(erp, payload["variants"])
    assert list(items) == [f"shopify-variant-{payload['variants'][0]['id']}"]
    [row] = ledger.entity_states_of("shopify", "variant", list(items), "netsuite")
    assert row.to_id == next(iter(items.values()))[0]


def order_for(*skus: str) -> dict:
    """Shopify's sample order as a real one, its two 199.00 lines on the given SKUs."""
    order = json.loads(fixture_path("shopify", "orders_create.json").read_text())
    order["id"] = fresh()
    order["test"] = False
    for line, sku in zip(order["line_items"], skus, strict=True):
        line["sku"] = sku
    return order


def test_an_order_finds_a_synced_variants_item_through_the_cross_reference(pipeline, ledger, erp):
    sku = f"HOODIE-{fresh()}-L"
    payload = product(f"HOODIE-{fresh()}-M", sku)
    sync(pipeline, store(ledger, payload, "products/create"))
    item_id = items_of(erp, payload["variants"])[f"shopify-variant-{payload['variants'][1]['id']}"][0]

    order = order_for(sku, "CABLE-USBC-1M")
    order_id = sync(pipeline, store(ledger, order, "orders/create"))
    lines = erp.get("salesOrder", order_id, expand_sub_resources=True)["item"]["items"]
    assert [line["item"]["id"] for line in lines[:2]] == [item_id, "140"]


def test_an_order_for_an_unknown_sku_still_names_it(pipeline, ledger):
    order = order_for("NO-SUCH-SKU-1", "CABLE-USBC-1M")
    event = pipeline.validate(store(ledger, order, "orders/create"))
    assert pipeline.dedupe(event) is None
    with pytest.raises(MappingError, match=r"line_items\[0\].sku: 'NO-SUCH-SKU-1' not found in lookup table "
                                           r"'sku_to_item' \(mappings/lookups/sku_to_item.csv\), and no ERP item"):
        pipeline.transform(event)


def test_erpsync_sync_runs_a_product_through_the_same_steps(ledger, erp_url, erp, tmp_path):
    from erpsync.sync_file import sync_file

    settings = NetSuiteSettings(base_url=erp_url, client_id=ERP_CLIENT_ID, client_secret=SecretStr(ERP_CLIENT_SECRET))
    payload = product(f"BAG-{fresh()}", f"BAG-{fresh()}")
    path = tmp_path / "product.json"
    path.write_text(json.dumps(payload))
    result = sync_file(ledger, PROJECT_DIR / "mappings",
                       lambda target: NetSuiteClient(settings, RetryPolicy(max_attempts=2, base=0.01)),
                       path=path, source="shopify", topic="products/create")
    assert result.outcome == "synced"
    items = items_of(erp, payload["variants"])
    assert len(items) == 2
    assert result.erp_id == items[f"shopify-variant-{payload['variants'][0]['id']}"][0]
    # Every variant's item is printed, not only the first.
    assert result.element_ids == tuple((f"shopify-variant-{v['id']}", items[f"shopify-variant-{v['id']}"][0])
                                       for v in payload["variants"])
    printed = "\n".join(result.lines())
    assert all(f"external id shopify-variant-{v['id']}" in printed for v in payload["variants"])
