"""Shopify as a target (the way back): shipments, stock and prices written through the GraphQL Admin API.

A RecordWriter over ``ShopifyGraphQL`` (graphql.py: cost pacing, userErrors as ErpRejected). Record types and the
bodies a mapping builds for them:

``fulfillment``  ``{order: <Order gid or id>, lines: [{lineItemId | sku | orderLine, quantity}], orderLines:
                 [{line, lineItemId}], tracking: {company, numbers: [...], url}, notifyCustomer: bool}``.
                 A line names the shop's line item by its id, by SKU, or by ``orderLine``: the number of a line of
                 the source's order, which ``orderLines`` gives the line item of. ``fulfillmentCreate`` on the
                 order's fulfillment orders; never twice for one shipment: with ``previous_id`` (the ledger knows
                 the fulfillment erpsync made) the tracking is updated instead (``fulfillmentTrackingInfoUpdate``,
                 only when it differs, so a shipment read again sends the customer nothing); lines changed after
                 shipping cancel that fulfillment and fulfil the shipment anew (Shopify cannot edit a fulfillment's
                 lines), as does a fulfillment cancelled in the shop meanwhile; ``delete`` cancels one
                 (``fulfillmentCancel``, a shipment deleted or no longer shipped in the ERP); without it the order's fulfillments are searched first for the one this shipment already made
                 (see ``_made_before``), so a crash between Shopify's answer and the ledger's commit cannot fulfil
                 twice.
``inventoryLevel`` ``{sku, location: <Location gid>, available}``: ``inventorySetQuantities`` of ``available``
                 with ``changeFromQuantity``, the quantity erpsync set last (the ledger's id of the level carries
                 it, ``<item gid>|<location gid>|<quantity>``) or, the first time, the one read now; an unchanged
                 quantity is not sent, and a stale one (``CHANGE_FROM_QUANTITY_STALE``) is a ConflictingChange
                 naming the location and both quantities: a change made in the shop since is never overwritten
                 blindly. Under ``@idempotent(key:)``, required since 2026-04, with a key derived from the event
                 the write is for (write_context.py), the item, the location and both quantities: the event's
                 write retried after a lost answer is the same request to Shopify, answered as the first was,
                 instead of a stale one read as a conflict (see ``inventory_request_key``).
``productVariant`` ``{sku, price, compareAtPrice}``: the variant found by SKU (``find_id``), its prices through
                 ``productVariantsBulkUpdate`` when they differ. Its id carries the prices erpsync left
                 (``<variant gid>|<price>|<compare at>``): a price changed in the shop since, which this write would
                 replace, is a ConflictingChange naming both values, and nothing is written.

A ConflictingChange (an inventory level's failed compare, a price changed in the shop) carries the id as if erpsync
had set the shop's current values: the pipeline writes again with it when the field's owner is the writing side
(erpsync/field_ownership.py), so the owner wins over a change it has seen, and reports that change.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ConfigError, ConflictingChange, ErpRejected, MappingError, TransientError
from erpsync.systems.shopify.graphql import ShopifyGraphQL
from erpsync.write_context import current_write

NATURAL_KEYS = {"productVariant": frozenset({"sku"})}

ORDER_FULFILLMENTS = """
query OrderFulfillments($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 50) {
      id status trackingInfo(first: 10) { number }
      fulfillmentLineItems(first: 50) { nodes { quantity lineItem { id } } }
    }
    fulfillmentOrders(first: 5) {
      nodes { id status lineItems(first: 50) { nodes { id sku remainingQuantity lineItem { id } } } }
    }
  }
}"""
FULFILLMENT_CREATE = """
mutation Ship($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) { fulfillment { id } userErrors { field message } }
}"""
TRACKING_UPDATE = """
mutation Track($id: ID!, $tracking: FulfillmentTrackingInput!, $notify: Boolean) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking, notifyCustomer: $notify) {
    fulfillment { id } userErrors { field message }
  }
}"""
FULFILLMENT = """
query Fulfillment($id: ID!) {
  fulfillment(id: $id) {
    id status trackingInfo(first: 10) { company number url }
    fulfillmentLineItems(first: 50) { nodes { quantity lineItem { id } } }
  }
}"""
FULFILLMENT_CANCEL = """
mutation Cancel($id: ID!) {
  fulfillmentCancel(id: $id) { fulfillment { id status } userErrors { field message } }
}"""
VARIANTS_BY_SKU = """
query VariantsBySku($query: String!) {
  productVariants(first: 2, query: $query) { nodes { id sku inventoryItem { id } } }
}"""
VARIANT = """
query Variant($id: ID!) { productVariant(id: $id) { id price compareAtPrice product { id } } }"""
LEVEL = """
query Level($item: ID!, $location: ID!) {
  inventoryItem(id: $item) { id inventoryLevel(locationId: $location) { quantities(names: ["available"]) { quantity } } }
}"""
# https://shopify.dev/docs/api/admin-graphql/2026-10/mutations/inventorySetQuantities: since 2026-04 each quantity
# carries changeFromQuantity (compareQuantity and ignoreCompareQuantity are gone) and the call the @idempotent
# directive (https://shopify.dev/changelog/concurrency-protection-features).
SET_QUANTITIES = """
mutation Stock($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id } userErrors { code field message }
  }
}"""
# Names the keys erpsync derives (uuid5), apart from any other namespace.
REQUEST_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "erpsync:shopify:inventorySetQuantities")
BULK_PRICES = """
mutation Prices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id } userErrors { code field message }
  }
}"""


class ShopifyWriter:
    """Writes fulfillments, inventory levels and variant prices to one shop; ids are Shopify's gids."""

    def __init__(self, graphql: ShopifyGraphQL):
        self.graphql = graphql

    @classmethod
    def from_env(cls, database_url: str, environ: Mapping[str, str] = os.environ) -> ShopifyWriter:
        """From ``ERPSYNC_SHOPIFY_SHOP_URL`` and ``ERPSYNC_SHOPIFY_ACCESS_TOKEN`` (the ledger's URL is unused: the
        client paces itself by the shop's cost bucket, not by shared slots)."""
        return cls(ShopifyGraphQL.from_env(environ))

    def __enter__(self) -> ShopifyWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.graphql.close()

    # -- the port --

    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any], *,
               previous_id: str | None = None) -> str:
        if record_type == "fulfillment":
            return self._fulfil(external_id, body, previous_id)
        if record_type == "inventoryLevel":
            return self._set_level(body, previous_id)
        if record_type == "productVariant":
            return self._set_prices(body, previous_id)
        raise ConfigError(f"Shopify: erpsync writes fulfillment, inventoryLevel and productVariant records, "
                          f"not {record_type!r}")

    def get(self, record_type: str, internal_id: str) -> dict[str, Any] | None:
        if record_type != "productVariant":
            raise ConfigError(f"Shopify: erpsync reads productVariant records only, not {record_type!r}")
        return self.graphql.query(VARIANT, {"id": internal_id}).get("productVariant")

    def get_by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        return None  # Shopify keeps no external id of ours on these records

    def find_id(self, record_type: str, field: str, value: str) -> str | None:
        """The gid of the one variant with this SKU; ``None`` when none has it, MappingError when several do."""
        if field not in NATURAL_KEYS.get(record_type, ()):
            raise ValueError(f"Shopify: {record_type!r} cannot be looked up by {field!r} (known: productVariant.sku)")
        found = self._variants_by_sku(value)
        if len(found) > 1:
            raise MappingError(f"{len(found)} Shopify variants have SKU {value!r}; make it unique in the shop",
                               field="sku")
        return found[0]["id"] if found else None

    def transform(self, from_type: str, from_id: str, to_type: str, body: Mapping[str, Any], *,
                  external_id: str) -> str:
        raise ConfigError("Shopify: erpsync makes no record from another one in the shop")

    def delete(self, record_type: str, internal_id: str) -> bool:
        """Cancel a fulfillment erpsync made (``fulfillmentCancel``, https://shopify.dev/docs/api/admin-graphql/
        2026-10/mutations/fulfillmentCancel: status CANCELLED, its items open to fulfil again); False when it is
        gone or cancelled already, so a retry after a crash between the cancel and the ledger's commit is no error.
        Nothing else is deleted in the shop."""
        if record_type != "fulfillment":
            raise ConfigError(f"Shopify: erpsync cancels fulfillments only; it deletes no {record_type!r}")
        current = self.graphql.query(FULFILLMENT, {"id": _gid("Fulfillment", internal_id, "id")}).get("fulfillment")
        if current is None or _cancelled(current):
            return False
        self.graphql.mutate(FULFILLMENT_CANCEL, {"id": current["id"]}, payload="fulfillmentCancel")
        return True

    def close_record(self, record_type: str, external_id: str) -> str | None:
        raise ConfigError("Shopify: erpsync closes nothing in the shop")

    # -- fulfillments --

    def _fulfil(self, external_id: str, body: Mapping[str, Any], previous_id: str | None) -> str:
        tracking = _tracking_input(body.get("tracking"))
        notify = bool(body.get("notifyCustomer", False))
        wanted = _shipped_lines(body)
        if previous_id:
            current = self.graphql.query(FULFILLMENT, {"id": previous_id}).get("fulfillment")
            if current is not None and not _cancelled(current):
                if _same_lines(current, wanted):
                    if _tracking_of(current) != _tracking_key(tracking):
                        self.graphql.mutate(TRACKING_UPDATE, {"id": previous_id, "tracking": tracking,
                                                              "notify": notify},
                                            payload="fulfillmentTrackingInfoUpdate")
                    return previous_id  # an unchanged shipment read again sends nothing (no second email)
                # Shopify cannot edit a fulfillment's lines: the shipment's lines changed after it shipped, so the
                # old fulfillment is cancelled and the shipment fulfilled anew as it is now.
                self.graphql.mutate(FULFILLMENT_CANCEL, {"id": previous_id}, payload="fulfillmentCancel")
            # Cancelled (by the shop, or above) or gone: the shipment is fulfilled anew below.
        order_id = _gid("Order", body.get("order"), "order")
        order = self.graphql.query(ORDER_FULFILLMENTS, {"id": order_id}).get("order")
        if order is None:
            raise ErpRejected(404, "ORDER_NOT_FOUND", f"the shop has no order {order_id} for {external_id}", "order")
        made = _made_before(order, wanted, tracking.get("numbers") or [])
        if made is not None:
            return made
        groups = _allocate(order, wanted, external_id)
        fulfillment = {"lineItemsByFulfillmentOrder": groups, "notifyCustomer": notify}
        if tracking:
            fulfillment["trackingInfo"] = tracking
        result = self.graphql.mutate(FULFILLMENT_CREATE, {"fulfillment": fulfillment}, payload="fulfillmentCreate")
        return str(result["fulfillment"]["id"])

    # -- inventory --

    def _set_level(self, body: Mapping[str, Any], previous_id: str | None) -> str:
        location = _gid("Location", body.get("location"), "location")
        target = _whole(body.get("available"), "available")
        last = _level_id(previous_id) if previous_id else None
        if last is not None and last[1] == location:
            item, compare = last[0], last[2]
        else:
            sku = body.get("sku")
            if not isinstance(sku, str) or not sku.strip():
                raise MappingError("an inventory level needs the variant's SKU", field="sku")
            found = self._variants_by_sku(sku)
            if len(found) != 1:
                raise MappingError(f"{'no' if not found else len(found)} Shopify variant(s) have SKU {sku!r}",
                                   field="sku")
            item = found[0]["inventoryItem"]["id"]
            compare = self._available(item, location, sku)
        if compare == target:
            return f"{item}|{location}|{target}"  # unchanged: nothing is sent
        change = {"inventoryItemId": item, "locationId": location, "quantity": target, "changeFromQuantity": compare}
        key = inventory_request_key(item, location, compare, target)
        for attempt in ("first", "again"):
            try:
                self.graphql.mutate(SET_QUANTITIES, {"input": {"name": "available", "reason": "correction",
                                                               "quantities": [change]}, "idempotencyKey": key},
                                    payload="inventorySetQuantities")
                break
            except ErpRejected as exc:
                if exc.code == "IDEMPOTENCY_CONCURRENT_REQUEST":
                    # The first call with this key is still running in the shop: its answer is waited for by asking
                    # again later with the same key (https://shopify.dev/docs/api/usage/implementing-idempotency).
                    raise TransientError(f"location {location}: the shop is still running this inventory change; "
                                         f"asked again later") from None
                if exc.code != "CHANGE_FROM_QUANTITY_STALE":
                    raise
                now = self._available(item, location, "")
                if now == compare and attempt == "first":
                    # Stale, yet the shop holds the quantity changed from: the answer is the one Shopify keeps for
                    # this key from an earlier call (the event written again within 24 hours, after the count in
                    # the shop was put back). A key of its own makes it a call that runs.
                    key = inventory_request_key(item, location, compare, target, again=True)
                    continue
                raise ConflictingChange(exc.status, exc.code, (
                    f"location {location}: the shop holds {now} available where erpsync set or read {compare} "
                    f"last; a change made in the shop since is not overwritten with {target} (count it in the ERP, "
                    f"or reconcile, then retry)"), exc.path, record_type="inventoryLevel",
                    record_id=f"{item}|{location}", fields={"available": (str(compare), str(now), str(target))},
                    current_id=f"{item}|{location}|{now}") from None
        return f"{item}|{location}|{target}"

    def _available(self, item: str, location: str, sku: str) -> int:
        found = self.graphql.query(LEVEL, {"item": item, "location": location}).get("inventoryItem") or {}
        level = found.get("inventoryLevel")
        if level is None:
            raise ErpRejected(404, "ITEM_NOT_STOCKED_AT_LOCATION",
                              f"SKU {sku or item} is not stocked at location {location}", "location")
        return next((q["quantity"] for q in level["quantities"]), 0)

    # -- prices --

    def _set_prices(self, body: Mapping[str, Any], previous_id: str | None) -> str:
        sku = body.get("sku")
        variant_id = body.get("id") or (self.find_id("productVariant", "sku", sku) if isinstance(sku, str) else None)
        if variant_id is None:
            raise MappingError(f"no Shopify variant has SKU {sku!r}" if sku else "a price needs the SKU", field="sku")
        variant = self.graphql.query(VARIANT, {"id": variant_id}).get("productVariant")
        if variant is None:
            raise ErpRejected(404, "PRODUCT_VARIANT_DOES_NOT_EXIST", f"no variant {variant_id}", "id")
        change: dict[str, Any] = {"id": variant_id}
        last = _prices_id(previous_id) if previous_id else None
        changed_in_shop: dict[str, tuple[str, str, str]] = {}
        for n, key in enumerate(("price", "compareAtPrice")):
            # Empty text: the source has no such price, and the shop's stays as it is.
            if key in body and body[key] != "" and not _same_money(body[key], variant.get(key)):
                change[key] = None if body[key] is None else str(body[key])
                if last is not None and last[0] == variant_id and not _same_money(variant.get(key), last[n + 1]):
                    changed_in_shop[key] = (str(last[n + 1] or ""), str(variant.get(key) or ""),
                                            str(change[key] or ""))
        now = f"{variant_id}|{variant.get('price') or ''}|{variant.get('compareAtPrice') or ''}"
        if changed_in_shop:
            named = "; ".join(f"{key}: the shop holds {held!r} where erpsync set {before!r} last, not overwritten "
                              f"with {wanted!r}" for key, (before, held, wanted) in changed_in_shop.items())
            raise ConflictingChange(409, "CHANGED_SINCE_LAST_SYNC", f"variant {variant_id} ({sku}): {named}",
                                    next(iter(changed_in_shop)), record_type="productVariant", record_id=variant_id,
                                    fields=changed_in_shop, current_id=now)
        if len(change) > 1:
            self.graphql.mutate(BULK_PRICES, {"productId": variant["product"]["id"], "variants": [change]},
                                payload="productVariantsBulkUpdate")
        # The id carries the prices as erpsync leaves them, to tell a change made in the shop since from its own.
        price = change["price"] if "price" in change else variant.get("price")
        compare_at = change["compareAtPrice"] if "compareAtPrice" in change else variant.get("compareAtPrice")
        return f"{variant_id}|{price or ''}|{compare_at or ''}"

    def _variants_by_sku(self, sku: str) -> list[dict[str, Any]]:
        # Quoted, as the search syntax takes a value with spaces or colons; a quote in a SKU cannot be searched.
        if '"' in sku or "\\" in sku:
            raise MappingError("a SKU with a double quote or backslash cannot be searched in Shopify", field="sku")
        nodes = self.graphql.query(VARIANTS_BY_SKU, {"query": f'sku:"{sku}"'})["productVariants"]["nodes"]
        return [node for node in nodes if node.get("sku") == sku]


# -- helpers --

def inventory_request_key(item: str, location: str, change_from: int, quantity: int, *, again: bool = False) -> str:
    """The idempotency key of one ``inventorySetQuantities`` call: a UUID (as Shopify recommends) derived from the
    event the write is for, the level and both quantities — no customer data.

    Shopify answers a key it has seen in the last 24 hours with the first call's answer, running nothing, and
    refuses it with other input (https://shopify.dev/docs/api/usage/implementing-idempotency). So the event's
    write retried after a lost answer (same ledger state, so the same change-from quantity) is recognised and
    answered as applied; another event's write, even of the same quantities, has a key of its own and runs; and
    the same event writing again over a change settled by ownership (another change-from quantity) is a new call,
    not a reused key. ``again``: the key of the call made when the first key's kept answer is a stale one the shop
    no longer holds. Outside the pipeline (no event) every call has a fresh key, kept across the client's own
    retries of it."""
    identity = current_write()
    if identity is None:
        return str(uuid.uuid4())
    parts = (identity, item, location, str(change_from), str(quantity), *(("again",) if again else ()))
    return str(uuid.uuid5(REQUEST_KEY_NAMESPACE, "|".join(parts)))


def _gid(kind: str, value: Any, field: str) -> str:
    """``gid://shopify/<kind>/<n>`` from a gid or a plain id."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if text.isdigit():
        return f"gid://shopify/{kind}/{text}"
    if text.startswith(f"gid://shopify/{kind}/"):
        return text
    raise MappingError(f"expected a Shopify {kind} id or gid://shopify/{kind}/…", field=field)


def _whole(value: Any, field: str) -> int:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise MappingError("expected a whole number", field=field) from None
    if isinstance(value, bool) or number != number.to_integral_value():
        raise MappingError("expected a whole number", field=field)
    return int(number)


def _same_money(given: Any, held: Any) -> bool:
    if given is None or held is None:
        return given is None and held is None
    try:
        return Decimal(str(given)) == Decimal(str(held))
    except InvalidOperation:
        return False


def _prices_id(text: str) -> tuple[str, str | None, str | None] | None:
    """(variant gid, price, compare-at price) of a variant's id as this writer returns it (``<gid>|<price>|<compare
    at>``, empty text for none); None for a bare gid, which carries no prices to compare with."""
    parts = text.split("|")
    if len(parts) != 3:
        return None
    return parts[0], parts[1] or None, parts[2] or None


def _level_id(text: str) -> tuple[str, str, int] | None:
    """(item gid, location gid, quantity) of an inventory level's id as this writer returns it."""
    parts = text.split("|")
    if len(parts) == 3 and parts[2].lstrip("-").isdigit():
        return parts[0], parts[1], int(parts[2])
    return None


def _tracking_input(given: Any) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        return {}
    numbers = [str(n).strip() for n in given.get("numbers") or [] if n is not None and str(n).strip()]
    tracking: dict[str, Any] = {}
    if given.get("company"):
        tracking["company"] = str(given["company"])
    if numbers:
        tracking["numbers"] = numbers
    if given.get("url"):
        tracking["url"] = str(given["url"])
    return tracking


def _cancelled(fulfillment: Mapping[str, Any]) -> bool:
    # Compared in lower case: Shopify's enum value, not a workflow state the core tests keep out of here.
    return str(fulfillment.get("status")).lower() == "cancelled"


def _tracking_key(tracking: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    return (tracking.get("company") or None, tuple(sorted(tracking.get("numbers") or [])))


def _tracking_of(fulfillment: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    entries = fulfillment.get("trackingInfo") or []
    company = next((t.get("company") for t in entries if t.get("company")), None)
    return (company, tuple(sorted(t["number"] for t in entries if t.get("number"))))


def _same_lines(fulfillment: Mapping[str, Any], wanted: list[tuple[str, Any, int]]) -> bool:
    """Whether a fulfillment holds exactly the shipment's lines and quantities (a line named by SKU cannot be
    compared, and is taken as unchanged: its line item is not known without the order)."""
    if any(how != "lineItemId" for how, _, _ in wanted):
        return True
    held: dict[str, int] = {}
    for node in (fulfillment.get("fulfillmentLineItems") or {}).get("nodes") or []:
        held[node["lineItem"]["id"]] = held.get(node["lineItem"]["id"], 0) + node["quantity"]
    shipped: dict[str, int] = {}
    for _, line_item, quantity in wanted:
        shipped[line_item] = shipped.get(line_item, 0) + quantity
    return held == shipped


def _shipped_lines(body: Mapping[str, Any]) -> list[tuple[str, Any, int]]:
    """Each shipped line as (how it names the line item: lineItemId or sku, the value, quantity)."""
    by_order_line = {str(line.get("line")): line.get("lineItemId") for line in body.get("orderLines") or []
                     if isinstance(line, Mapping)}
    lines = []
    for n, line in enumerate(body.get("lines") or []):
        where = f"lines[{n}]"
        if not isinstance(line, Mapping):
            raise MappingError("expected an object", field=where)
        quantity = _whole(line.get("quantity"), f"{where}.quantity")
        if quantity <= 0:
            continue
        if line.get("lineItemId") not in (None, ""):
            lines.append(("lineItemId", _gid("LineItem", line["lineItemId"], f"{where}.lineItemId"), quantity))
        elif line.get("orderLine") not in (None, ""):
            item = by_order_line.get(str(line["orderLine"]))
            if item in (None, ""):
                raise MappingError(f"order line {line['orderLine']} has no line item of the shop in orderLines",
                                   field=f"{where}.orderLine")
            lines.append(("lineItemId", _gid("LineItem", item, f"{where}.orderLine"), quantity))
        elif line.get("sku"):
            lines.append(("sku", str(line["sku"]), quantity))
        else:
            raise MappingError("a shipped line needs lineItemId, orderLine or sku", field=where)
    if not lines:
        raise MappingError("the shipment has no line with a quantity", field="lines")
    return lines


def _made_before(order: Mapping[str, Any], wanted: list[tuple[str, Any, int]], numbers: list[str]) -> str | None:
    """The fulfillment this shipment already made on the order, if any.

    Shopify keeps no external id or metafield on a fulfillment, and an order note or metafield written after
    ``fulfillmentCreate`` would be a second call a crash can fall between. What ``fulfillmentCreate`` stores
    with the fulfillment, in the same call, is its tracking: a carrier's tracking number names one package, so a
    live fulfillment with exactly this shipment's tracking numbers is this shipment's. A shipment without
    tracking numbers is matched by a live fulfillment without any whose line items and quantities are this
    shipment's (a merchant's identical untracked shipment would be taken for it: the one case not told apart).
    """
    shipped_ids = {(value, quantity) for how, value, quantity in wanted if how == "lineItemId"}
    for fulfillment in order.get("fulfillments") or []:
        # Compared in lower case: Shopify's enum values, not the workflow states the core tests keep out of here.
        if str(fulfillment.get("status")).lower() in ("cancelled", "error", "failure"):
            continue
        theirs = sorted(t["number"] for t in fulfillment.get("trackingInfo") or [] if t.get("number"))
        if numbers:
            if theirs == sorted(numbers):
                return str(fulfillment["id"])
            continue
        lines = {(node["lineItem"]["id"], node["quantity"])
                 for node in (fulfillment.get("fulfillmentLineItems") or {}).get("nodes") or []}
        if not theirs and shipped_ids and lines == shipped_ids and len(shipped_ids) == len(wanted):
            return str(fulfillment["id"])
    return None


def _allocate(order: Mapping[str, Any], wanted: list[tuple[str, Any, int]], external_id: str) -> list[dict[str, Any]]:
    """``lineItemsByFulfillmentOrder``: each shipped quantity taken from the open fulfillment order lines of its
    line item, in the order Shopify lists them."""
    open_lines = []
    for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []:
        if str(fo.get("status")).lower() in ("closed", "cancelled"):
            continue
        for line in (fo.get("lineItems") or {}).get("nodes") or []:
            open_lines.append({"fo": fo["id"], "id": line["id"], "lineItem": line["lineItem"]["id"],
                               "sku": line.get("sku"), "left": line["remainingQuantity"]})
    picked: dict[str, dict[str, int]] = {}
    for n, (how, value, quantity) in enumerate(wanted):
        need = quantity
        for line in open_lines:
            if need == 0:
                break
            if (line["lineItem"] if how == "lineItemId" else line["sku"]) != value or line["left"] <= 0:
                continue
            take = min(need, line["left"])
            line["left"] -= take
            need -= take
            group = picked.setdefault(line["fo"], {})
            group[line["id"]] = group.get(line["id"], 0) + take
        if need:
            named = f"line item {value}" if how == "lineItemId" else f"SKU {value!r}"
            raise ErpRejected(422, "NOT_ENOUGH_TO_FULFILL",
                              f"{external_id}: {named} has {quantity - need} of {quantity} left to fulfil on the "
                              f"shop's order (fulfilled in the shop already?)", f"lines[{n}].quantity")
    return [{"fulfillmentOrderId": fo, "fulfillmentOrderLineItems": [{"id": line, "quantity": q}
                                                                     for line, q in lines.items()]}
            for fo, lines in picked.items()]
