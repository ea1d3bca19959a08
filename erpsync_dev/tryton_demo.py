"""`erpsync demo --erp tryton`'s check: Tryton holds exactly the sales the shop's orders call for.

As the NetSuite demo checks its sandbox, read back through the ERP's own API: every order that should sync is one
sale (its ``reference`` is the external id), ``processing`` (confirmed, its shipment made), Tryton's own
``total_amount`` equal to Shopify's ``total_price`` to the cent, its party the order's customer (found by the
order's email) or the guest party, every line by product code, quantity and amount; the dead-lettered order has no
sale.

One difference from NetSuite, on purpose: the Tryton mapping confirms a sale when it writes it, and only a draft
sale is rewritten (docs/tryton.md, "Drafts only"). So an orders/updated that reaches a sale already confirmed is a
dead letter ``SALE_NOT_DRAFT``, and the sale keeps the version it was confirmed with. Which of an order's versions
got there first depends on the order its runs happened to take; the check therefore takes the version the ledger
says was applied (the event whose body hash is the entity's applied hash), compares Tryton with that body, and
requires every newer version to be a ``SALE_NOT_DRAFT`` dead letter, never a silent loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from erpsync.ledger import EntityKey, InboxEvent, Ledger, Outcome
from erpsync.systems.tryton.client import SALE, TrytonClient
from erpsync_dev.tryton_server import GUEST_PARTY_CODE

CENT = Decimal("0.01")
# The mapping's fallback products (mappings/tryton, money.items; the seed has them): a line without a SKU,
# a shipping line, the tax line.
CUSTOM_PRODUCT = "ERPSYNC-CUSTOM"
SHIPPING_PRODUCT = "ERPSYNC-SHIPPING"
TAX_PRODUCT = "ERPSYNC-SALES-TAX"
NOT_DRAFT = "SALE_NOT_DRAFT"


@dataclass
class TrytonCheck:
    problems: list[str] = field(default_factory=list)
    sales: int = 0
    # Orders whose newer version came after their sale was confirmed: (order code, dead-lettered versions).
    kept_first: list[tuple[str, int]] = field(default_factory=list)


def check_tryton(scenario: dict, ledger: Ledger, tryton: TrytonClient) -> TrytonCheck:
    """Differences between Tryton's sales and the versions of the scenario's orders erpsync applied."""
    check = TrytonCheck()
    rpc = tryton.rpc
    sales = rpc.model(SALE, "search_read", [], 0, None, None,
                      ["id", "reference", "state", "party", "total_amount", "lines"])
    check.sales = len(sales)
    by_reference: dict[str, list[dict[str, Any]]] = {}
    for sale in sales:
        by_reference.setdefault(sale["reference"] or "", []).append(sale)
    codes = {row["id"]: row["code"] for row in rpc.model("product.product", "search_read", [], 0, None, None,
                                                          ["code"], context={"active_test": False})}
    wanted = {f"shopify-order-{o['order_id']}": o for o in scenario["orders"] if o["outcome"] == "synced"}
    dead = {f"shopify-order-{o['order_id']}": o for o in scenario["orders"] if o["outcome"] != "synced"}
    for reference in sorted(set(by_reference) - set(wanted)):
        what = "the dead-lettered order's" if reference in dead else "an unexpected"
        check.problems.append(f"{what} sale {reference or '(no reference)'} is in Tryton "
                              f"({len(by_reference[reference])} of them)")
    for reference, order in wanted.items():
        found = by_reference.get(reference, [])
        if len(found) != 1:
            check.problems.append(f"{reference}: {len(found)} sales in Tryton, not 1")
            continue
        _check_order(check, ledger, tryton, codes, reference, order, found[0])
    return check


def _check_order(check: TrytonCheck, ledger: Ledger, tryton: TrytonClient, codes: dict[int, str], reference: str,
                 order: dict, sale: dict[str, Any]) -> None:
    problems = check.problems
    key = EntityKey("shopify", "order", order["order_id"], "tryton")
    state = ledger.entity_state(key)
    if state is None:
        problems.append(f"{reference}: the ledger has no applied version")
        return
    if state.to_id != str(sale["id"]):
        problems.append(f"{reference}: the ledger says Tryton sale {state.to_id}, Tryton has {sale['id']}")
    events = ledger.events_about(entity=f"order/{order['order_id']}", source="shopify", limit=100)
    applied = next((e for e in events if e.payload_sha256 == state.last_payload_sha256), None)
    if applied is None:
        problems.append(f"{reference}: no inbox event holds the applied content")
        return
    body = json.loads(applied.body)
    _check_newer_versions(check, ledger, reference, order, body, events)
    if sale["state"] != "processing":
        problems.append(f"{reference}: the sale is {sale['state']}, not processing")
    if Decimal(str(sale["total_amount"])) != Decimal(body["total_price"]):
        problems.append(f"{reference}: Tryton's total_amount is {sale['total_amount']}, Shopify's total_price "
                        f"{body['total_price']}")
    lines = tryton.rpc.model("sale.line", "read", sale["lines"], ["product", "quantity", "amount"])
    got = sorted((codes.get(line["product"], "?"), Decimal(str(line["quantity"])),
                  Decimal(str(line["amount"])).quantize(CENT)) for line in lines)
    want = sorted(expected_lines(body))
    if got != want:
        problems.append(f"{reference}: Tryton's lines {_shown(got)} != the applied version's {_shown(want)}")
    _check_party(problems, tryton, reference, body, sale["party"])


def _check_newer_versions(check: TrytonCheck, ledger: Ledger, reference: str, order: dict, applied: dict,
                          events: list[InboxEvent]) -> None:
    """Each version newer than the applied one must be a SALE_NOT_DRAFT dead letter (the sale was confirmed)."""
    applied_at = applied["updated_at"]
    newer_failed = 0
    if order["updated_at"] != applied_at and not any(json.loads(e.body)["updated_at"] == order["updated_at"]
                                                     for e in events):
        check.problems.append(f"{reference}: the newest version is in no inbox event")
    failures = {o.event_id: o for o in ledger.outcomes_of([e.id for e in events]) if o.outcome == "failed"}
    for event in events:
        version = json.loads(event.body)["updated_at"]
        if _instant(version) <= _instant(applied_at) or event.state in ("duplicate", "superseded", "skipped"):
            continue
        reason = _last_reason(failures, event)
        if event.state != "failed" or NOT_DRAFT not in reason:
            check.problems.append(f"{reference}: event {event.id} ({event.topic}, a newer version) is {event.state}"
                                  f"{', ' + reason[:120] if reason else ''}; expected a {NOT_DRAFT} dead letter")
        else:
            newer_failed += 1
    if newer_failed:
        check.kept_first.append((applied.get("name") or reference, newer_failed))


def _last_reason(failures: dict[int, Outcome], event: InboxEvent) -> str:
    outcome = failures.get(event.id)
    return (outcome.reason or "") if outcome else ""


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def expected_lines(body: dict) -> list[tuple[str, Decimal, Decimal]]:
    """(product code, quantity, amount) of the sale lines a Shopify order body calls for: each line at its price
    less its discount, each shipping line less its discount, and the order's tax as one tax line."""
    lines = []
    for item in body["line_items"]:
        discount = sum((Decimal(a["amount"]) for a in item.get("discount_allocations") or []), Decimal(0))
        amount = Decimal(item["price"]) * item["quantity"] - discount
        lines.append((item.get("sku") or CUSTOM_PRODUCT, Decimal(item["quantity"]), amount.quantize(CENT)))
    for shipping in body.get("shipping_lines") or []:
        discount = sum((Decimal(a["amount"]) for a in shipping.get("discount_allocations") or []), Decimal(0))
        lines.append((SHIPPING_PRODUCT, Decimal(1), (Decimal(shipping["price"]) - discount).quantize(CENT)))
    tax = sum((Decimal(t["price"]) for t in body.get("tax_lines") or []), Decimal(0))
    if tax:
        lines.append((TAX_PRODUCT, Decimal(1), tax.quantize(CENT)))
    return lines


def _check_party(problems: list[str], tryton: TrytonClient, reference: str, body: dict, party_id: int) -> None:
    """A guest order's party is the guest party; a customer's has the order's email (never printed)."""
    customer = body.get("customer") or {}
    email = (customer.get("email") or "").strip().lower()
    if "@" not in email:
        [party] = tryton.rpc.model("party.party", "read", [party_id], ["code"])
        if party["code"] != GUEST_PARTY_CODE:
            problems.append(f"{reference}: a guest order's party is {party['code']}, not {GUEST_PARTY_CODE}")
        return
    emails = [row["value"].strip().lower() for row in tryton.rpc.model(
        "party.contact_mechanism", "search_read", [["party", "=", party_id], ["type", "=", "email"]], 0, None, None,
        ["value"])]
    if email not in emails:
        problems.append(f"{reference}: Tryton party {party_id} has not the order's customer email")


def _shown(lines: list[tuple[str, Decimal, Decimal]]) -> str:
    return "[" + ", ".join(f"{code} ×{quantity.normalize()} = {amount}" for code, quantity, amount in lines) + "]"

