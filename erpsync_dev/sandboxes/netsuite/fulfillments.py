"""Item fulfillments in the ERP sandbox: made only by transforming their sales order, as NetSuite makes them.

Oracle, "Transforming Records"
(https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_157901123882.html):
``POST /record/v1/salesOrder/{id}/!transform/itemFulfillment`` creates the fulfillment from the order, and
the body may set the new record's fields. Oracle, "Use Case For Fulfilling Your Sales Order"
(section_159795518068.html): the request's item lines name the order line they fulfil by ``orderLine``
(lines need not be sequential), may ship less than the whole quantity (``quantity``), and leave a line
unshipped with ``itemReceive: false``. The transform starts from every line still to fulfil, received in
full: that is NetSuite's default while the accounting preference "Default Items to Zero Received/Fulfilled"
is off, so a client that lists only the lines it shipped ships the others too. A fulfillment that receives
no line is refused, and a fulfillment is never created directly (``POST``/``PUT`` of an itemFulfillment): it
has no order to come from. Deleting a fulfillment reverses it: its quantities are open on the order again.
A line ships from its order line's location (or the order's): its quantity leaves that location's on hand and
the order's commitment there (stock.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync_dev.sandboxes.netsuite.records import Rejection, field, text
from erpsync_dev.sandboxes.netsuite.totals import decimal, json_number

_INVALID = "Error while accessing resource: You have entered an Invalid Field Value {} for the following field: {}"
NO_LINES = "Error while accessing a resource. You must enter at least one line item for this transaction."
DIRECT_CREATE = (
    "An item fulfillment is created by transforming its sales order: "
    "POST /record/v1/salesOrder/{id}/!transform/itemFulfillment."
)


def fulfilled_by(fulfillments: list[dict[str, Any]]) -> dict[int, Decimal]:
    """Quantity shipped per order line, over the order's fulfillments (bodies as stored)."""
    shipped: dict[int, Decimal] = {}
    for body in fulfillments:
        for line in field(field(body, "item"), "items") or []:
            order_line = field(line, "orderLine")
            quantity = decimal(field(line, "quantity"))
            if isinstance(order_line, int) and quantity is not None and field(line, "itemReceive") is not False:
                shipped[order_line] = shipped.get(order_line, Decimal(0)) + quantity
    return shipped


def transform(
    order_id: int, order: dict[str, Any], request: dict[str, Any], shipped: dict[int, Decimal]
) -> dict[str, Any] | Rejection:
    """The itemFulfillment body the transform of ``order`` with ``request`` creates, or what NetSuite refuses."""
    open_lines: dict[int, dict[str, Any]] = {}
    remaining: dict[int, Decimal] = {}
    order_lines = {field(line, "line"): line for line in field(field(order, "item"), "items") or []}
    for number, line in order_lines.items():
        ordered = decimal(field(line, "quantity")) or Decimal(0)
        left = ordered - shipped.get(number, Decimal(0))
        if isinstance(number, int) and field(line, "isClosed") is not True and left > 0:
            open_lines[number] = line
            remaining[number] = left
    # NetSuite's default: every line still to fulfil is received, in full, unless the request says otherwise.
    chosen: dict[int, dict[str, Any]] = {number: {"itemReceive": True, "quantity": remaining[number]}
                                         for number in open_lines}
    requested = field(field(request, "item"), "items")
    if requested is not None and not isinstance(requested, list):
        return Rejection("INVALID_CONTENT", "Invalid content in the request body: item.items must be a list.",
                         "item.items")
    for index, line in enumerate(requested or []):
        path = f"item.items[{index}]"
        order_line = field(line, "orderLine")
        if isinstance(order_line, bool) or not isinstance(order_line, int) or order_line not in order_lines:
            shown = order_line if isinstance(order_line, int) else "(missing)" if order_line is None else "(text)"
            return Rejection("INVALID_CONTENT", _INVALID.format(shown, "orderline"), f"{path}.orderLine")
        receive = field(line, "itemReceive")
        if receive is not None and not isinstance(receive, bool):
            return Rejection("INVALID_CONTENT", _INVALID.format(receive, "itemreceive"), f"{path}.itemReceive")
        if order_line not in open_lines:
            # The transform's item sublist holds only the lines still to fulfil; any other one is no line of it.
            detail = (f"Error while accessing a resource. Order line {order_line} has nothing left to fulfill "
                      "(closed or already fulfilled).")
            return Rejection("USER_ERROR", detail, f"{path}.orderLine")
        if receive is False:
            chosen.pop(order_line, None)
            continue
        quantity = field(line, "quantity")
        wanted = remaining[order_line] if quantity is None else decimal(quantity)
        if wanted is None or wanted <= 0:
            return Rejection("INVALID_CONTENT", _INVALID.format(quantity if wanted is not None else "(text)",
                                                                "quantity"), f"{path}.quantity")
        if wanted > remaining[order_line]:
            detail = (f"Error while accessing a resource. You cannot fulfill more than the remaining quantity "
                      f"({remaining[order_line]}) of order line {order_line}.")
            return Rejection("USER_ERROR", detail, f"{path}.quantity")
        chosen[order_line] = {**{k: v for k, v in line.items() if k not in ("orderLine", "line")},
                              "itemReceive": True, "quantity": wanted}
    if not chosen:
        return Rejection("USER_ERROR", NO_LINES, "item.items")
    lines = []
    for number, (order_line, values) in enumerate(sorted(chosen.items()), start=1):
        item = field(open_lines[order_line], "item")
        line = {**values, "orderLine": order_line, "item": {"id": text(field(item, "id"))},
                "quantity": json_number(values["quantity"]), "line": number}
        # The line ships from the order line's location (else the order's), as the transform defaults it; the
        # shipped quantity leaves that location's on hand (stock.py).
        location = field(values, "location") or field(open_lines[order_line], "location") or field(order, "location")
        if location is not None:
            line["location"] = location
        lines.append(line)
    packages = field(field(request, "package"), "items") or []
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        return Rejection("INVALID_CONTENT", "Invalid content in the request body: package.items must be a list of "
                         "objects.", "package.items")
    body = {key: value for key, value in request.items() if key.lower() not in ("item", "package", "externalid")}
    body.update({
        "createdFrom": {"id": str(order_id)},
        "entity": field(order, "entity"),
        "shipStatus": field(request, "shipStatus") or {"id": "C"},  # C: Shipped
        "item": {"items": lines},
    })
    if packages:
        body["package"] = {"items": [{**package, "line": number}
                                     for number, package in enumerate(packages, start=len(lines) + 1)]}
    return body
