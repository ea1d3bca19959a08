"""Property: for every shipped order mapping and every money option, NetSuite's total of the mapped body is the
source's own total to the cent.

Orders are generated the way each platform computes them (docs of Shopify's Order resource and WooCommerce's
REST v3 order): line and order-level discounts allocated to lines with their remainder cents, a discount no
line carries, taxes per line on the discounted amount (added, or included in the price), shipping with its
own discount and tax, zero-price lines, gift cards, tips, up to 100 lines, currencies with 0 and 2 decimals,
presentment money in another currency, lines edited out and units refunded. The generator computes the
platform's total from its own parts; the mapping never sees how, so the test proves the mapping. The ERP
sandbox's own computation of NetSuite's totals must agree with the pre-push check on every body.
"""

from __future__ import annotations

import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpsync.errors import MappingError
from erpsync.mapping import Mapping, load_mapping
from erpsync.mapping.money_check import check_total
from erpsync.systems import MODELS
from erpsync.systems.netsuite.totals import sales_order_totals
from erpsync_dev.sandboxes.netsuite.totals import totals as sandbox_totals

REPO = Path(__file__).parents[2]
PLACES = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "JPY": 0}
SKUS = ["TEE-BLK-S", "TEE-BLK-M", "HOODIE-GRY-L", "MUG-WHT-11OZ", "CAP-NVY-OS", "TOTE-NAT-OS", "Bar3"]
TAXES = {"State Tax": Decimal("0.06"), "County Tax": Decimal("0.0125")}
OPTIONS = [
    {"currency": currency, "shipping": shipping, "discounts": discounts}
    for currency in ("shop", "presentment") for shipping in ("header", "line") for discounts in ("header", "lines")
]
SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def variant(tmp: Path, name: str, options: dict[str, str]) -> Mapping:
    """The shipped mapping with other money options, beside a copy of the mappings it refers to."""
    if not (tmp / "lookups").exists():
        shutil.copytree(REPO / "mappings", tmp, dirs_exist_ok=True)
    config = yaml.safe_load((REPO / "mappings" / f"{name}.yaml").read_text())
    config["money"].update(options)
    path = tmp / f"{name}-{'-'.join(options.values())}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_mapping(path)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Mapping]:
    tmp = tmp_path_factory.mktemp("mappings")
    names = ("shopify_order_to_netsuite_sales_order", "woocommerce_order_to_netsuite_sales_order",
             "standard_order_to_netsuite_sales_order")
    return {(name, n): variant(tmp, name, options) for name in names for n, options in enumerate(OPTIONS)}


def q(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def text(amount: Decimal, places: int) -> str:
    return f"{q(amount, places):.{places}f}"


def allocate(total: Decimal, weights: list[Decimal], places: int) -> list[Decimal]:
    """``total`` spread over ``weights`` in proportion, each part rounded, the remainder cents on the last part
    that can hold them (Shopify's "across" allocation: the parts always sum to the discount)."""
    whole = sum(weights)
    if not whole or not total:
        return [Decimal(0)] * len(weights)
    parts = [q(total * w / whole, places) if w else Decimal(0) for w in weights]
    rest = total - sum(parts)
    for i in reversed(range(len(parts))):
        if weights[i] and Decimal(0) <= parts[i] + rest <= weights[i]:
            parts[i] += rest
            break
    return parts


def check(mapping: Mapping, payload: dict[str, Any], total: Decimal, places: int) -> dict[str, Any]:
    assert mapping.model is not None
    MODELS[mapping.model](payload)  # the generated order is valid for the source's model
    record = mapping.apply(payload)
    totals = check_total(record)  # raises, naming both totals, when they differ
    assert totals is not None and totals.total == q(total, places)
    assert sales_order_totals(record.body, places).total == q(total, places)
    # The ERP sandbox computes NetSuite's totals on its own (erpsync_dev/sandboxes/netsuite/totals.py): it agrees.
    assert sandbox_totals(record.body).total == q(total, places)
    return record.body


# -- Shopify ---------------------------------------------------------------------------------------------------

@st.composite
def shopify_orders(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, tuple[Decimal, int]]]:
    """A Shopify order in shop money and presentment money, and its total in each (amount, places)."""
    shop = draw(st.sampled_from(["USD", "EUR", "JPY"]))
    presentment = draw(st.sampled_from([shop, "EUR", "JPY", "GBP"]))
    rate = Decimal(1) if presentment == shop else draw(st.sampled_from([Decimal("0.92"), Decimal("151.3"),
                                                                         Decimal("0.0066"), Decimal("1.27")]))
    taxes_included = draw(st.booleans())
    n = draw(st.integers(1, 100) | st.integers(1, 4))
    lines = []
    for i in range(n):
        kind = draw(st.sampled_from(["product"] * 6 + ["custom", "gift_card", "tip"]))
        plain = kind in ("gift_card", "tip")  # no tax; a tip is not discounted, edited or refunded
        lines.append({
            "id": 1000 + i,
            "kind": kind,
            "sku": draw(st.sampled_from(SKUS)) if kind == "product" else draw(st.sampled_from([None, ""])),
            "units": draw(st.integers(0, 40000)),  # price in hundredths of the shop currency: zero-price lines too
            "quantity": draw(st.integers(1, 4)),
            "line_discount": 0 if kind == "tip" else draw(st.sampled_from([0, 0, 0, 10, 35])),  # percent off the line
            "taxes": [] if plain else draw(st.sampled_from([[], ["State Tax"], ["State Tax", "County Tax"]])),
            "removed": kind != "tip" and draw(st.integers(0, 9)) == 0,
            "refunded": kind != "tip" and draw(st.integers(0, 9)) == 0,
        })
    if all(li["removed"] for li in lines):
        lines[0]["removed"] = False  # an order with no line left is not an order to book
    order_discount_pct = draw(st.sampled_from([0, 0, 5, 15]))
    unallocated_pct = draw(st.sampled_from([0, 0, 3]))
    shipping = [
        {"units": draw(st.integers(0, 3000)), "discount": draw(st.booleans()), "code": draw(st.sampled_from(["Standard", "Express"])),
         "taxed": draw(st.booleans())}
        for _ in range(draw(st.integers(0, 2)))
    ]
    tip_units = draw(st.sampled_from([0, 0, 500])) if presentment == shop else 0  # a tip on no line

    def money(currency: str, factor: Decimal) -> dict[str, Any]:
        """Every amount of the order in one currency, computed as Shopify does."""
        places = PLACES[currency]
        price = [q(Decimal(li["units"]) / 100 * factor, places) for li in lines]
        gross = [p * li["quantity"] for p, li in zip(price, lines)]
        line_alloc = [q(g * li["line_discount"] / 100, places) for g, li in zip(gross, lines)]
        after_line = [g - a for g, a in zip(gross, line_alloc)]
        weights = [Decimal(0) if li["kind"] == "tip" else a for a, li in zip(after_line, lines)]
        order_alloc = allocate(q(sum(weights) * order_discount_pct / 100, places), weights, places)
        net = [a - o for a, o in zip(after_line, order_alloc)]
        unallocated = q(sum(net) * unallocated_pct / 100, places)
        tax_lines = []
        for amount, li in zip(net, lines):
            rates = [TAXES[t] for t in li["taxes"]]
            base = amount / (1 + sum(rates)) if taxes_included else amount
            tax_lines.append([(t, q(base * r, places)) for t, r in zip(li["taxes"], rates)])
        ship = []
        for s in shipping:
            sp = q(Decimal(s["units"]) / 100 * factor, places)
            sd = q(sp / 4, places) if s["discount"] else Decimal(0)
            base = (sp - sd) / Decimal("1.06") if taxes_included else sp - sd
            st_ = q(base * Decimal("0.06"), places) if s["taxed"] else Decimal(0)
            ship.append((sp, sd, st_))
        tip = q(Decimal(tip_units) / 100 * factor, places)
        tips_received = tip + sum(g for g, li in zip(gross, lines) if li["kind"] == "tip")
        tax_total = sum(sum(t for _, t in tl) for tl in tax_lines) + sum(t for _, _, t in ship)
        total = (sum(net) - unallocated + sum(sp - sd for sp, sd, _ in ship) + tip
                 + (0 if taxes_included else tax_total))
        # An edit that removes a line takes its discounted amount and its tax off the current total; a refund
        # of a unit gives back that unit's share.
        removed = refunds = Decimal(0)
        for i, li in enumerate(lines):
            line_tax = sum(t for _, t in tax_lines[i])
            value = net[i] + (0 if taxes_included else line_tax)
            if li["removed"]:
                removed += value
            elif li["refunded"]:
                refunds += q(value / li["quantity"], places)
        return {"places": places, "price": price, "line_alloc": line_alloc, "order_alloc": order_alloc,
                "unallocated": unallocated, "tax_lines": tax_lines, "ship": ship, "tip": tips_received, "total": total,
                "current": total - removed - refunds, "refunds": refunds, "expected": total - removed,
                "discounts": sum(line_alloc) + sum(order_alloc) + unallocated + sum(sd for _, sd, _ in ship)}

    s_money, p_money = money(shop, Decimal(1)), money(presentment, rate)

    def money_set(key: str, *index: int) -> dict[str, Any]:
        def pick(m: dict[str, Any]) -> Decimal:
            value = m[key]
            for i in index:
                value = value[i]
            return value
        return {"shop_money": {"amount": text(pick(s_money), s_money["places"]), "currency_code": shop},
                "presentment_money": {"amount": text(pick(p_money), p_money["places"]), "currency_code": presentment}}

    line_items = []
    for i, li in enumerate(lines):
        allocations = []
        for key in ("line_alloc", "order_alloc"):
            if s_money[key][i] or p_money[key][i]:
                allocations.append({"amount": text(s_money[key][i], s_money["places"]), "amount_set": money_set(key, i)})
        quantity = li["quantity"]
        current = 0 if li["removed"] else quantity - 1 if li["refunded"] else quantity
        line_items.append({
            "id": li["id"], "sku": li["sku"], "title": f"Line &amp; {i}", "gift_card": li["kind"] == "gift_card",
            "tip_payment_gateway": "shopify_payments" if li["kind"] == "tip" else None,
            "quantity": quantity, "current_quantity": current,
            "price": text(s_money["price"][i], s_money["places"]), "price_set": money_set("price", i),
            "discount_allocations": allocations,
            "tax_lines": [{"title": t, "rate": float(TAXES[t]), "price": text(s_money["tax_lines"][i][k][1], s_money["places"]),
                           "price_set": money_set("tax_lines", i, k, 1)} for k, (t, _) in enumerate(s_money["tax_lines"][i])],
        })
    refunds = [{"refund_line_items": [{"line_item_id": li["id"], "quantity": 1}], "transactions": []}
               for li in lines if li["refunded"] and not li["removed"]]
    if refunds:
        refunds[0]["transactions"] = [{"kind": "refund", "status": "success", "amount": text(p_money["refunds"], p_money["places"]),
                                       "currency": presentment, "amount_set": money_set("refunds")}]
    payload = {
        "id": 5001, "name": "#5001", "order_number": 5001, "test": False,
        "created_at": "2024-05-02T10:15:00-04:00", "updated_at": "2024-05-02T10:15:00-04:00",
        "currency": shop, "presentment_currency": presentment, "taxes_included": taxes_included,
        "total_price": text(s_money["total"], s_money["places"]), "total_price_set": money_set("total"),
        "current_total_price": text(s_money["current"], s_money["places"]), "current_total_price_set": money_set("current"),
        "total_discounts": text(s_money["discounts"], s_money["places"]), "total_discounts_set": money_set("discounts"),
        "total_tip_received": text(s_money["tip"], s_money["places"]),
        "line_items": line_items,
        "shipping_lines": [
            {"code": s["code"], "title": s["code"], "price": text(s_money["ship"][k][0], s_money["places"]),
             "price_set": money_set("ship", k, 0),
             "discount_allocations": [{"amount": text(s_money["ship"][k][1], s_money["places"]),
                                       "amount_set": money_set("ship", k, 1)}] if s["discount"] else [],
             "tax_lines": [{"title": "State Tax", "rate": 0.06, "price": text(s_money["ship"][k][2], s_money["places"]),
                            "price_set": money_set("ship", k, 2)}] if s["taxed"] else []}
            for k, s in enumerate(shipping)
        ],
        "refunds": refunds,
    }
    return payload, {"shop": (s_money["expected"], s_money["places"]),
                     "presentment": (p_money["expected"], p_money["places"])}


@pytest.mark.parametrize("n", range(len(OPTIONS)), ids=["-".join(o.values()) for o in OPTIONS])
def test_shopify_orders_add_up(variants: dict[tuple[str, int], Mapping], n: int) -> None:
    mapping = variants[("shopify_order_to_netsuite_sales_order", n)]

    @SETTINGS
    @given(shopify_orders())
    def run(generated: tuple[dict[str, Any], dict[str, tuple[Decimal, int]]]) -> None:
        payload, totals = generated
        total, places = totals[OPTIONS[n]["currency"]]
        body = check(mapping, payload, total, places)
        # Every line but the edited-out ones, in order, each keyed by its Shopify id; refunded units stay.
        refunded = {r["line_item_id"] for refund in payload["refunds"] for r in refund["refund_line_items"]}
        kept = [str(li["id"]) for li in payload["line_items"] if li["current_quantity"] or li["id"] in refunded]
        keys = [line["custcol_erpsync_line_key"] for line in body["item"]["items"]]
        assert keys[: len(kept)] == kept and not set(keys[len(kept):]) & set(kept)

    run()


# -- WooCommerce -----------------------------------------------------------------------------------------------

@st.composite
def woo_orders(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal, int]:
    currency = draw(st.sampled_from(["USD", "EUR", "JPY"]))
    places = PLACES[currency]
    prices_include_tax = draw(st.booleans())
    rate = draw(st.sampled_from([Decimal(0), Decimal("0.0725"), Decimal("0.2")]))
    coupon = draw(st.sampled_from([0, 0, 10, 25]))  # percent off every line
    line_items, tax_total = [], Decimal(0)
    total = Decimal(0)
    for i in range(draw(st.integers(1, 100) | st.integers(1, 4))):
        quantity = draw(st.integers(0, 4))  # 0: removed by an edit
        shown = q(Decimal(draw(st.integers(0, 30000))) / 100, places)  # the price the customer saw
        unit = q(shown / (1 + rate), places) if prices_include_tax else shown
        subtotal = unit * quantity
        line_total = subtotal - q(subtotal * coupon / 100, places)
        tax = q(line_total * rate, places)
        sku = draw(st.sampled_from([*SKUS, ""]))
        line_items.append({"id": 300 + i, "name": f"Item &ndash; {i}", "sku": sku, "quantity": quantity,
                           "price": float(line_total / quantity) if quantity else 0,
                           "subtotal": text(subtotal, places), "total": text(line_total, places),
                           "total_tax": text(tax, places), "taxes": [{"id": 1, "total": str(tax)}] if rate else []})
        total += line_total + tax
        tax_total += tax
    shipping_lines, fee_lines = [], []
    if draw(st.booleans()):
        cost = q(Decimal(draw(st.integers(0, 2000))) / 100, places)
        tax = q(cost * rate, places)
        shipping_lines.append({"id": 90, "method_id": "flat_rate", "method_title": "Flat Rate",
                               "total": text(cost, places), "total_tax": text(tax, places)})
        total += cost + tax
    if draw(st.booleans()):
        fee = q(Decimal(draw(st.integers(-500, 500))) / 100, places)  # a negative fee is a discount by hand
        tax = q(fee * rate, places)
        fee_lines.append({"id": 91, "name": "Handling &amp; wrap", "total": text(fee, places), "total_tax": text(tax, places)})
        total += fee + tax
    payload = {
        "id": 901, "number": "901", "status": draw(st.sampled_from(["processing", "completed", "on-hold", "cancelled"])),
        "currency": currency, "prices_include_tax": prices_include_tax,
        "date_created_gmt": "2024-05-02T14:15:00", "date_modified_gmt": "2024-05-02T14:15:00",
        "total": text(total, places), "line_items": line_items, "shipping_lines": shipping_lines, "fee_lines": fee_lines,
        "tax_lines": [{"id": 7, "rate_id": 1, "rate_code": "US-CA-STATE TAX", "label": "State Tax"}] if rate else [],
    }
    return payload, total, places


@pytest.mark.parametrize("n", range(len(OPTIONS)), ids=["-".join(o.values()) for o in OPTIONS])
def test_woocommerce_orders_add_up(variants: dict[tuple[str, int], Mapping], n: int) -> None:
    mapping = variants[("woocommerce_order_to_netsuite_sales_order", n)]

    @SETTINGS
    @given(woo_orders())
    def run(generated: tuple[dict[str, Any], Decimal, int]) -> None:
        payload, total, places = generated
        if not any(li["quantity"] for li in payload["line_items"]):
            return  # every line removed: nothing left to book (NetSuite refuses a sales order without items)
        body = check(mapping, payload, total, places)
        kept = [str(li["id"]) for li in payload["line_items"] if li["quantity"]]
        assert [line["custcol_erpsync_line_key"] for line in body["item"]["items"]][: len(kept)] == kept

    run()


# -- Standard Webhooks -----------------------------------------------------------------------------------------

@st.composite
def standard_orders(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal, int]:
    currency = draw(st.sampled_from(["USD", "GBP", "JPY"]))
    places = PLACES[currency]
    taxes_included = draw(st.booleans())
    lines, total = [], Decimal(0)
    for i in range(draw(st.integers(1, 100) | st.integers(1, 4))):
        quantity = draw(st.integers(1, 4))
        price = q(Decimal(draw(st.integers(0, 30000))) / 100, places)
        discount = q(price * quantity * draw(st.sampled_from([0, 0, 10, 50])) / 100, places)
        base = price * quantity - discount
        tax = q((base - base / Decimal("1.2")) if taxes_included else base * Decimal("0.2"), places)
        kind = draw(st.sampled_from(["product"] * 4 + ["gift_card", "tip"]))
        sku = draw(st.sampled_from(SKUS)) if kind == "product" and draw(st.integers(0, 4)) else None
        if kind != "product":
            tax = Decimal(0)
        lines.append({"id": f"l{i}", "kind": kind, "sku": sku, "quantity": quantity, "price": text(price, places),
                      "discount": text(discount, places), "tax": text(tax, places), "tax_code": "VAT"})
        total += base + (0 if taxes_included else tax)
    order_discount = q(total * draw(st.sampled_from([0, 0, 5])) / 100, places)
    total -= order_discount
    shipping = None
    if draw(st.booleans()):
        price = q(Decimal(draw(st.integers(0, 2000))) / 100, places)
        off = q(price / 2, places) if draw(st.booleans()) else Decimal(0)
        base = price - off
        tax = q((base - base / Decimal("1.2")) if taxes_included else base * Decimal("0.2"), places)
        shipping = {"method": "Express", "price": text(price, places), "discount": text(off, places),
                    "tax": text(tax, places), "tax_code": "VAT"}
        total += base + (0 if taxes_included else tax)
    payload = {"type": "order.created", "timestamp": "2024-05-02T14:15:01Z", "data": {
        "id": "ord-1", "number": "SO-1", "created_at": "2024-05-02T14:15:00Z", "updated_at": "2024-05-02T14:15:00Z",
        "currency": currency, "taxes_included": taxes_included, "total": text(total, places),
        "discount": text(order_discount, places), "lines": lines, **({"shipping": shipping} if shipping else {}),
    }}
    return payload, total, places


@pytest.mark.parametrize("n", range(len(OPTIONS)), ids=["-".join(o.values()) for o in OPTIONS])
def test_standard_orders_add_up(variants: dict[tuple[str, int], Mapping], n: int) -> None:
    mapping = variants[("standard_order_to_netsuite_sales_order", n)]

    @SETTINGS
    @given(standard_orders())
    def run(generated: tuple[dict[str, Any], Decimal, int]) -> None:
        payload, total, places = generated
        body = check(mapping, payload, total, places)
        items = {line["custcol_erpsync_line_key"]: line["item"]["id"] for line in body["item"]["items"]}
        for line in payload["data"]["lines"]:
            fallback = {"gift_card": "901", "tip": "902"}.get(line["kind"], None if line["sku"] else "900")
            assert fallback is None or items[line["id"]] == fallback

    run()


def test_a_wrong_total_is_caught_by_the_same_check(variants: dict[tuple[str, int], Mapping]) -> None:
    """The property can fail: one cent off the source total and the check refuses the record."""
    payload = {"type": "order.created", "timestamp": "2024-05-02T14:15:01Z", "data": {
        "id": "ord-2", "number": "SO-2", "created_at": "2024-05-02T14:15:00Z", "updated_at": "2024-05-02T14:15:00Z",
        "currency": "USD", "total": "25.01", "lines": [{"sku": "TEE-BLK-S", "quantity": 2, "price": "12.50"}]}}
    with pytest.raises(MappingError, match=r"would total 25\.00 USD .* is 25\.01 USD: difference -0\.01 USD"):
        check(variants[("standard_order_to_netsuite_sales_order", 0)], payload, Decimal("25.00"), 2)
