"""What the way back reads of Tryton: a customer shipment with its lines and sale, and a product's stock per warehouse.

The pipeline reads these when a change notice names them (a mapping's ``read:``, through ``TrytonClient.get`` with
``expand_sub_resources``), so the shop is written from Tryton's state now, not from the notice. Shapes::

    stock.shipment.out  {"id", "number", "reference", "state", "effective_date", "warehouse": {"id", "code"},
                         "lines": [{"product": <code>, "quantity", "line_key"}],     (its outgoing moves, not cancelled)
                         "sale": {"id", "number", "reference"} | None}              (the sale its moves come from)
    product.product     {"id", "code", "warehouses": [{"id", "code", "name", "quantity", "forecast_quantity"}]}

A shipment's lines are its outgoing moves (output zone → customer), which the sale made from its lines; the sale is
found through the moves' ``origin`` (``sale.line,<id>``), and each line's ``line_key`` (the shop's line item id the
sale line was written with: its note, ``erpsync line key: <id>``; None when the note does not hold one). Tryton's base stock module keeps no carrier or tracking
number: ``stock_package_shipping`` adds a ``shipping_reference`` to packages, and ``carrier`` a carrier to shipments,
neither installed here, so no tracking is read (docs/tryton.md).

Stock per warehouse: ``quantity`` and ``forecast_quantity`` of the product read with the warehouse as the context's
location (a warehouse counts its child zones: input, storage, output). ``stock_date_end`` is left unset on purpose:
Tryton clamps ``quantity`` to today by itself (``product.product._quantity_context``), and ``forecast_quantity`` then
counts every planned move, a sale shipping next week included: stock the shop must not sell again.
"""

from __future__ import annotations

from typing import Any

from erpsync.errors import MappingError
from erpsync.systems.tryton.rpc import TrytonRpc

SHIPMENT = "stock.shipment.out"
PRODUCT = "product.product"
MOVE = "stock.move"
# How a sale line's note keeps the source's line id (client.py writes it).
LINE_KEY_PREFIX = "erpsync line key: "
WAREHOUSE_FIELDS = ["id", "code", "name"]


def read_shipment(rpc: TrytonRpc, shipment_id: int) -> dict[str, Any] | None:
    rows = rpc.model(SHIPMENT, "search_read", [["id", "=", shipment_id]], 0, 1, None,
                     ["id", "number", "reference", "state", "effective_date", "warehouse", "outgoing_moves"])
    if not rows:
        return None
    shipment = rows[0]
    move_ids = shipment.pop("outgoing_moves")
    moves = rpc.model(MOVE, "read", move_ids, ["product", "quantity", "origin", "state"]) if move_ids else []
    live = [move for move in moves if move["state"] != "cancelled"]
    codes = _product_codes(rpc, {move["product"] for move in moves})
    sale, keys = _sale_of(rpc, moves, shipment_id)
    shipment["lines"] = [{"product": codes[move["product"]], "quantity": move["quantity"],
                          "line_key": keys.get(_origin_line(move))} for move in live]
    shipment["sale"] = sale
    if shipment["warehouse"]:
        shipment["warehouse"] = _warehouses(rpc, [["id", "=", shipment["warehouse"]]])[0]
    if shipment["effective_date"] is not None:
        shipment["effective_date"] = shipment["effective_date"].isoformat()
    return shipment


def read_stock(rpc: TrytonRpc, product_id: int) -> dict[str, Any] | None:
    rows = rpc.model(PRODUCT, "search_read", [["id", "=", product_id]], 0, 1, None, ["id", "code"])
    if not rows:
        return None
    product = rows[0]
    levels = []
    for warehouse in _warehouses(rpc, [["type", "=", "warehouse"]]):
        quantities, = rpc.model(PRODUCT, "read", [product_id], ["quantity", "forecast_quantity"],
                                context={"locations": [warehouse["id"]]})
        levels.append({**warehouse, "quantity": quantities["quantity"],
                       "forecast_quantity": quantities["forecast_quantity"]})
    product["warehouses"] = levels
    return product


def _product_codes(rpc: TrytonRpc, ids: set[int]) -> dict[int, str | None]:
    if not ids:
        return {}
    return {row["id"]: row["code"] for row in rpc.model(PRODUCT, "read", sorted(ids), ["code"])}


def _warehouses(rpc: TrytonRpc, domain: list[Any]) -> list[dict[str, Any]]:
    return rpc.model("stock.location", "search_read", domain, 0, None, [["id", "ASC"]], WAREHOUSE_FIELDS)


def _origin_line(move: dict[str, Any]) -> int | None:
    origin = str(move.get("origin") or "")
    return int(origin.split(",", 1)[1]) if origin.startswith("sale.line,") else None


def _sale_of(rpc: TrytonRpc, moves: list[dict[str, Any]], shipment_id: int
             ) -> tuple[dict[str, Any] | None, dict[int, str | None]]:
    """The one sale the shipment's moves come from (None for a shipment made by hand, with no sale line behind it),
    and each sale line's key."""
    line_ids = sorted({line for line in map(_origin_line, moves) if line is not None})
    if not line_ids:
        return None, {}
    lines = rpc.model("sale.line", "read", line_ids, ["sale", "note"])
    keys = {row["id"]: _line_key(row["note"]) for row in lines}
    sale_ids = sorted({row["sale"] for row in lines})
    if len(sale_ids) != 1:
        # erpsync writes one sale per shop order and Tryton makes its shipments per sale; a shipment merged by hand
        # from several orders cannot become one fulfillment of one order.
        raise MappingError(f"Tryton shipment {shipment_id} ships lines of {len(sale_ids)} sales (ids "
                           f"{', '.join(map(str, sale_ids[:5]))}); a fulfillment belongs to one order", field="sale")
    sale, = rpc.model("sale.sale", "read", sale_ids, ["id", "number", "reference"])
    return sale, keys


def _line_key(note: str | None) -> str | None:
    # The note is a person's field too: only a line of its own that reads as erpsync wrote it is taken.
    for line in (note or "").splitlines():
        if line.startswith(LINE_KEY_PREFIX) and line[len(LINE_KEY_PREFIX):].strip():
            return line[len(LINE_KEY_PREFIX):].strip()
    return None
