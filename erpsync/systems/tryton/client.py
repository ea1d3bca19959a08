"""Tryton behind the ports: sales (``sale.sale``) upserted by external id, parties by email, products by code.

A sale body is in Tryton's own names, with what Tryton keeps as ids given by natural key (the writer resolves
them, creating a party it does not find):

    {"party": {"email": "…", "name": "…"} | {"code": "erpsync-guest"},
     "invoice_address": {"name", "street", "postal_code", "city"},   (optional: the party's first address)
     "shipment_address": {…},                                         (optional: the invoice address)
     "currency": "USD", "sale_date": "2024-05-02", "description": "Shopify order #1001",
     "lines": [{"product": "<code>", "quantity": 2, "unit_price": "12.50", "description": "…", "tax_amount": "1.50",
                "line_key": "<the source's line id>"}],                (line_key: kept in the line's note, below)
     "tax_product": "<code>",                                         (the line the lines' tax_amount goes to)
     "state": "draft" | "quotation" | "processing" | "cancelled"}     (where the writer leaves it; draft by default)

A return (a shop's refund) is a sale of its own with negative quantities, Tryton's documented way to take goods
back: processing it makes the customer return shipment and the credit note (docs/tryton.md, "Refunds"). Its body
names the sale it returns instead of a party, ``"return_of": "<external id of the order's sale>"``, and the writer
takes that sale's party, addresses and currency: the refund is booked to the customer the order was.

The external id is the sale's ``reference``, unique in the database erpsync writes to (erpsync_dev/tryton_server.py
``SEED_INDEXES``; docs/tryton.md says how to add it to a production database): of several writers racing to create
one external id, the database lets one win and the others find its sale. Only a draft (or quotation) sale is
written; a confirmed one is refused with ``SALE_NOT_DRAFT`` unless the body asks for what it already holds, so a
retry after a lost answer is harmless. Raw ``create`` runs none of the form's on-change defaults, so both addresses,
each line's unit and unit price are always sent. A confirm is checked: Tryton can answer it and then fail the
processing that follows (the error lands in its ``ir.error``), so the sale must read ``processing``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from erpsync.erp_slots import ErpSlots
from erpsync.errors import ErpRejected, MappingError, TransientError
from erpsync.natural_keys import PERSONAL_FIELDS, check_natural_key
from erpsync.ports import Change
from erpsync.retry import RetryPolicy
from erpsync.systems.tryton import way_back
from erpsync.systems.tryton.rpc import TrytonConcurrency, TrytonRpc, TrytonServerError
from erpsync.systems.tryton.settings import TrytonSettings

SALE = "sale.sale"
SHIPMENT = "stock.shipment.out"
PARTY = "party.party"
PRODUCT = "product.product"
STOCK_MOVE = "stock.move"
# What the way back reads by default (docs/tryton.md, "The way back"): customer shipments, and products whose stock
# moved (through their stock moves: changes_since).
CHANGE_RECORD_TYPES = (SHIPMENT, PRODUCT)
# What find_id accepts, per record type (a mapping's erp_lookup is checked against it).
NATURAL_KEYS: dict[str, frozenset[str]] = {
    PARTY: frozenset({"email", "code"}),
    PRODUCT: frozenset({"code"}),
}
CASE_INSENSITIVE_FIELDS = frozenset({"email"})
_SALE_BODY = {
    "party": ("email", "name", "code"),
    "invoice_address": ("name", "street", "postal_code", "city"),
    "shipment_address": ("name", "street", "postal_code", "city"),
    "lines": ("product", "quantity", "unit_price", "description", "tax_amount", "line_key"),
    "currency": (), "sale_date": (), "description": (), "state": (), "tax_product": (), "return_of": (),
}
# The body fields the writer reads (module docstring), as a mapping's target_field paths name them (a list's
# fields under its name: lines[].product is "lines.product"): a target field is checked against them at load.
RECORD_FIELDS: dict[str, frozenset[str]] = {
    SALE: frozenset({*_SALE_BODY, *(f"{name}.{part}" for name, parts in _SALE_BODY.items() for part in parts)}),
    PARTY: frozenset({"name", "email"}),
}
# Where each record type keeps erpsync's external id (unique: SEED_INDEXES, and party.party's own code_uniq).
EXTERNAL_ID_FIELD = {SALE: "reference", SHIPMENT: "reference", PARTY: "code"}
SALE_FIELDS = ["id", "reference", "number", "state", "party", "invoice_address", "shipment_address", "currency",
               "sale_date", "description", "lines", "untaxed_amount", "tax_amount", "total_amount", "shipments",
               "create_date", "write_date"]
LINE_FIELDS = ["id", "product", "quantity", "unit", "unit_price", "amount", "description"]
TARGET_STATES = ("draft", "quotation", "processing", "cancelled")
WRITABLE_STATES = frozenset({"draft", "quotation"})
CHANGES_MAX_PAGE = 1000
LINE_KEY_PREFIX = way_back.LINE_KEY_PREFIX
# Reads and writes of one upsert before it gives up to the caller's retries, when other writers keep changing the sale.
UPSERT_ROUNDS = 8


def line_key_note(key: str) -> str:
    """The sale line's ``note`` that keeps the source's line id (a Shopify line item id): a sale line has no field of
    erpsync's own, and the way back names the shop's line item a shipped move came from by it (way_back.py)."""
    return f"{LINE_KEY_PREFIX}{key}"


def check_external_id(external_id: str) -> str:
    """An external id a Tryton reference or code can hold: 1-120 printable characters (MappingError otherwise)."""
    if not external_id or len(external_id) > 120 or any(ord(c) < 0x20 for c in external_id):
        raise MappingError("the external id must be 1 to 120 printable characters", field="external_id")
    return external_id


class TrytonClient:
    """RecordWriter, IdResolver and ChangeReader (erpsync/ports.py) over one Tryton database."""

    def __init__(self, settings: TrytonSettings, *, retry: RetryPolicy | None = None, slots: ErpSlots | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.rpc = TrytonRpc(settings, retry=retry, slots=slots, transport=transport)

    @classmethod
    def from_env(cls, database_url: str, environ: Mapping[str, str]) -> TrytonClient:
        """From ``ERPSYNC_TRYTON_*``, its calls under the ERP slots shared through the ledger's database."""
        settings = TrytonSettings.from_env(environ)
        slots = ErpSlots.for_database(database_url, settings.concurrency_limit, name=settings.rpc_url,
                                      linger=settings.timeout_seconds)
        return cls(settings, slots=slots)

    def __enter__(self) -> TrytonClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.rpc.close()

    # -- writing --

    def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any], *,
               previous_id: str | None = None) -> str:
        check_external_id(external_id)
        if record_type == SALE:
            return str(self._upsert_sale(external_id, body))
        if record_type == PARTY:
            return str(self._upsert_party(external_id, body))
        raise ErpRejected(400, "UNSUPPORTED_RECORD", f"erpsync writes {SALE} and {PARTY} to Tryton, not "
                          f"{record_type}", "record_type")

    def _upsert_sale(self, external_id: str, body: Mapping[str, Any]) -> int:
        target = body.get("state", "draft")
        if target not in TARGET_STATES:
            raise ErpRejected(400, "INVALID_STATE", f"state must be one of {', '.join(TARGET_STATES)}", "state")
        values, lines = self._sale_values(body)
        for _ in range(UPSERT_ROUNDS):
            existing = self._sale_by_reference(external_id)
            try:
                if existing is not None:
                    sale_id = self._update_sale(existing, values, lines, target)
                    break
                sale_id, = self.rpc.model_once(SALE, "create", [{**values, "reference": external_id,
                                                                 "lines": [["create", lines]]}])
                break
            except TrytonConcurrency:
                continue  # another writer changed the sale since we read it: read it again
            except TrytonServerError as error:
                # Another writer created this external id between our search and our create: the unique index
                # refused ours; its sale is the one (read again above).
                if not error.is_unique_violation("reference"):
                    raise
        else:
            raise TransientError(f"Tryton sale {external_id}: changed by other writers {UPSERT_ROUNDS} times in a row")
        self._advance(sale_id, target)
        return sale_id

    def _update_sale(self, existing: dict[str, Any], values: dict[str, Any], lines: list[dict[str, Any]],
                     target: str) -> int:
        sale_id, state = existing["id"], existing["state"]
        if state in WRITABLE_STATES:
            # Each call carries the sale's timestamp as read: a writer that changed it since makes Tryton refuse
            # ours (ConcurrencyException) instead of both deleting the same lines and adding their own.
            read_at = {"_timestamp": {f"{SALE},{sale_id}": existing["_timestamp"]}}
            if state == "quotation":
                self.rpc.model_once(SALE, "draft", [sale_id], context=read_at)
                read_at = {"_timestamp": {f"{SALE},{sale_id}": self._sale_by_reference_id(sale_id)["_timestamp"]}}
            self.rpc.model_once(SALE, "write", [sale_id], {**values, "lines": [["delete", existing["lines"]],
                                                                               ["create", lines]]}, context=read_at)
            return sale_id
        if state == "cancelled" and target == "cancelled":
            return sale_id
        if state in ("confirmed", "processing", "done") and target == "processing" \
                and self._same_content(existing, values, lines):
            return sale_id  # a retry of a write that was made: nothing to change
        raise ErpRejected(409, "SALE_NOT_DRAFT",
                          f"sale {sale_id} is {state}: erpsync writes draft sales only (a confirmed sale is changed "
                          "in Tryton, through its own flow)", "state")

    def _same_content(self, existing: dict[str, Any], values: dict[str, Any], lines: list[dict[str, Any]]) -> bool:
        """Whether the body asks for what the sale holds: its party, addresses, description and lines."""
        header = ("party", "invoice_address", "shipment_address", "description")
        if any(existing.get(name) != values.get(name) for name in header):
            return False
        current = self.rpc.model("sale.line", "read", existing["lines"],
                                 ["product", "quantity", "unit_price", "description"])

        def key(line: Mapping[str, Any]) -> tuple[Any, ...]:
            return (line["product"], Decimal(str(line["quantity"])), Decimal(str(line["unit_price"])),
                    line.get("description") or "")

        return sorted(map(key, current)) == sorted(map(key, lines))

    def _advance(self, sale_id: int, target: str) -> None:
        if target == "draft":
            return
        state = self._sale_state(sale_id)
        if target == "cancelled":
            if state != "cancelled":
                self.rpc.model(SALE, "cancel", [sale_id])
            return
        if state == "draft":
            self.rpc.model(SALE, "quote", [sale_id])
            state = "quotation"
        if target == "quotation" or state not in ("quotation", "confirmed"):
            return
        if state == "quotation":
            self.rpc.model(SALE, "confirm", [sale_id])
        else:
            # Confirmed earlier, its processing failed (below): a retry asks Tryton to process it again, with its
            # own button, once whatever stopped it has been fixed.
            self.rpc.model(SALE, "process", [sale_id])
        state = self._sale_state(sale_id)
        if state == "confirmed":
            # The confirm answered, but its processing (shipment, invoice) failed: Tryton logged why in ir.error.
            raise ErpRejected(409, "SALE_NOT_PROCESSED",
                              f"sale {sale_id} was confirmed but Tryton did not process it: {self._last_error()}",
                              "state")

    def _sale_state(self, sale_id: int) -> str:
        rows = self.rpc.model(SALE, "search_read", [["id", "=", sale_id]], 0, 1, None, ["state"])
        if not rows:
            raise TransientError(f"Tryton sale {sale_id} vanished while being written")
        return rows[0]["state"]

    def _last_error(self) -> str:
        try:
            rows = self.rpc.model("ir.error", "search_read", [], 0, 1, [["id", "DESC"]], ["message"])
        except ErpRejected:
            return "(ir.error not readable by this user)"
        return str(rows[0]["message"])[:300] if rows else "(no ir.error record)"

    def _sale_values(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        values: dict[str, Any]
        if body.get("return_of") is not None:
            values = self._returned_sale_values(body)
        else:
            party = body.get("party")
            if not isinstance(party, Mapping):
                raise ErpRejected(400, "MISSING_FIELD", "party: an object with email (and name) or code", "party")
            party_id = self._party(party)
            invoice_address = self._address(party_id, body.get("invoice_address"), "invoice_address")
            shipment_address = self._address(party_id, body.get("shipment_address"), "shipment_address") \
                if body.get("shipment_address") else invoice_address
            values = {"party": party_id, "invoice_address": invoice_address, "shipment_address": shipment_address}
        if body.get("currency"):
            values["currency"] = self._one_id("currency.currency", "code", str(body["currency"]), "currency")
        if body.get("sale_date"):
            try:
                values["sale_date"] = date.fromisoformat(str(body["sale_date"]))
            except ValueError:
                raise ErpRejected(400, "INVALID_DATE", "sale_date: expected YYYY-MM-DD", "sale_date") from None
        if body.get("description") is not None:
            values["description"] = str(body["description"])
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise ErpRejected(400, "MISSING_FIELD", "lines: a sale needs at least one line", "lines")
        codes = []
        for n, line in enumerate(raw_lines):
            if not isinstance(line, Mapping) or not line.get("product"):
                raise ErpRejected(400, "MISSING_FIELD", f"lines[{n}].product: a product code", f"lines[{n}].product")
            codes.append(str(line["product"]))
        products = {row["code"]: row for row in self.rpc.model(
            PRODUCT, "search_read", [["code", "in", sorted(set(codes))]], 0, None, None, ["code", "sale_uom"])}
        lines = []
        for n, (code, line) in enumerate(zip(codes, raw_lines)):
            product = products.get(code)
            if product is None:
                raise ErpRejected(404, "UNKNOWN_PRODUCT", f"no Tryton product has code {code!r}",
                                  f"lines[{n}].product")
            made: dict[str, Any] = {"type": "line", "product": product["id"], "unit": product["sale_uom"],
                                    "quantity": _number(line.get("quantity"), f"lines[{n}].quantity")}
            if line.get("unit_price") is not None:
                made["unit_price"] = Decimal(str(_number(line["unit_price"], f"lines[{n}].unit_price")))
            if line.get("description") is not None:
                made["description"] = str(line["description"])
            if line.get("line_key") not in (None, ""):
                made["note"] = line_key_note(str(line["line_key"]))
            lines.append(made)
        tax = sum((Decimal(str(_number(line.get("tax_amount") or 0, f"lines[{n}].tax_amount")))
                   for n, line in enumerate(raw_lines)), Decimal(0))
        if tax:
            lines.append(self._tax_line(body.get("tax_product"), tax))
        return values, lines

    def _returned_sale_values(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A return's party, addresses and currency: those of the sale it returns, found by its external id."""
        if body.get("party") is not None:
            raise ErpRejected(400, "CONFLICTING_FIELDS", "return_of: a return takes the party of the sale it "
                              "returns; send party or return_of, not both", "return_of")
        returned = str(body["return_of"])
        check_external_id(returned)
        rows = self.rpc.model(SALE, "search_read", [["reference", "=", returned]], 0, 1, None,
                              ["id", "party", "invoice_address", "shipment_address", "currency"])
        if not rows:
            # Usually the order's own event is still on its way (or waits in the dead letters): retried, and the
            # event fails naming the order if its sale never comes.
            raise TransientError(f"Tryton return: the sale it returns ({returned}) is not in Tryton yet")
        sale = rows[0]
        # As Tryton's own "Create Return" (trytond/modules/sale/sale.py, wizard sale.return_sale) links a return to
        # its sale: origin "sale.sale,<id>", shown on the return and followed by its reports.
        return {"party": sale["party"], "invoice_address": sale["invoice_address"],
                "shipment_address": sale["shipment_address"] or sale["invoice_address"], "currency": sale["currency"],
                "origin": f"{SALE},{sale['id']}"}

    def _tax_line(self, code: Any, tax: Decimal) -> dict[str, Any]:
        # The shop computed the tax; Tryton would compute its own from tax rules erpsync does not keep in step, so
        # the shop's tax is one line of the tax product (totals.py counts it the same way).
        if not code:
            raise ErpRejected(400, "MISSING_FIELD", "tax_product: lines carry tax_amount, so a product code for "
                              "the tax line is needed", "tax_product")
        rows = self.rpc.model(PRODUCT, "search_read", [["code", "=", str(code)]], 0, 1, None, ["sale_uom"])
        if not rows:
            raise ErpRejected(404, "UNKNOWN_PRODUCT", f"no Tryton product has code {str(code)!r}", "tax_product")
        # A return's tax (negative) is one tax taken back, like its goods: quantity -1 at the tax's price.
        quantity = -1.0 if tax < 0 else 1.0
        return {"type": "line", "product": rows[0]["id"], "unit": rows[0]["sale_uom"], "quantity": quantity,
                "unit_price": abs(tax), "description": "Tax"}

    def _party(self, party: Mapping[str, Any]) -> int:
        if party.get("code"):
            return self._one_id(PARTY, "code", str(party["code"]), "party.code")
        email = str(party.get("email") or "").strip().lower()
        if "@" not in email:
            raise ErpRejected(400, "MISSING_FIELD", "party: an email or a code", "party.email")
        found = self.find_id(PARTY, "email", email)
        if found is not None:
            return int(found)
        # The code is derived from the email, so two writers creating the same customer at once make one party
        # (party codes are unique in Tryton); the loser reads the winner's.
        code = "erpsync-email-" + hashlib.sha256(email.encode()).hexdigest()[:20]
        return self._upsert_party(code, {"name": party.get("name") or email.split("@")[0], "email": email})

    def _upsert_party(self, code: str, body: Mapping[str, Any]) -> int:
        if not body.get("name"):
            raise ErpRejected(400, "MISSING_FIELD", "name: a party needs a name", "name")
        for _ in range(2):
            rows = self.rpc.model(PARTY, "search_read", [["code", "=", code]], 0, None, None, ["id"])
            if rows:
                party_id = rows[0]["id"]
                self.rpc.model(PARTY, "write", [party_id], {"name": str(body["name"])})
                break
            try:
                party_id, = self.rpc.model_once(PARTY, "create", [{"name": str(body["name"]), "code": code}])
                break
            except (TrytonServerError, ErpRejected) as error:
                if not _is_code_taken(error):
                    raise
        else:
            raise TransientError("Tryton party: the code was taken and then not found")
        email = str(body.get("email") or "").strip()
        if email:
            mechanisms = self.rpc.model("party.contact_mechanism", "search_read",
                                        [["party", "=", party_id], ["type", "=", "email"]], 0, None, None, ["value"])
            if not any(m["value"].lower() == email.lower() for m in mechanisms):
                self.rpc.model("party.contact_mechanism", "create",
                               [{"party": party_id, "type": "email", "value": email}])
        return party_id

    def _address(self, party_id: int, address: Any, where: str) -> int:
        existing = self.rpc.model("party.address", "search_read", [["party", "=", party_id]], 0, None,
                                  [["id", "ASC"]], ["party_name", "street", "postal_code", "city"])
        if not address:
            if existing:
                return existing[0]["id"]
            return self.rpc.model("party.address", "create", [{"party": party_id}])[0]
        if not isinstance(address, Mapping):
            raise ErpRejected(400, "INVALID_FIELD", f"{where}: expected an object", where)
        wanted = {"party_name": address.get("name") or None, "street": address.get("street") or None,
                  "postal_code": address.get("postal_code") or None, "city": address.get("city") or None}
        for row in existing:
            if all((row.get(k) or None) == v for k, v in wanted.items()):
                return row["id"]
        return self.rpc.model("party.address", "create", [{"party": party_id, **wanted}])[0]

    def _one_id(self, model: str, field: str, value: str, where: str) -> int:
        rows = self.rpc.model(model, "search_read", [[field, "=", value]], 0, 2, None, ["id"])
        if len(rows) != 1:
            raise ErpRejected(404 if not rows else 409, "UNKNOWN_RECORD" if not rows else "AMBIGUOUS_RECORD",
                              f"{len(rows)} Tryton {model} records have this {field}", where)
        return rows[0]["id"]

    def transform(self, from_type: str, from_id: str, to_type: str, body: Mapping[str, Any], *,
                  external_id: str) -> str:
        """Ship a processing sale: its waiting shipment takes ``external_id`` and is forced through to done.

        ``assign_force`` rather than ``assign_try``: erpsync records a shipment the shop already made, whatever
        Tryton's stock says."""
        check_external_id(external_id)
        if (from_type, to_type) != (SALE, SHIPMENT):
            raise ErpRejected(400, "UNSUPPORTED_TRANSFORM", f"{from_type} → {to_type}", "record_type")
        sale = self.get(SALE, from_id)
        if sale is None:
            raise ErpRejected(404, "NOT_FOUND", f"no sale {from_id}", "id")
        if self.get_by_external_id(SHIPMENT, external_id) is not None:
            raise ErpRejected(409, "DUPLICATE_EXTERNAL_ID", "a shipment already has this external id", "reference")
        open_shipments = self.rpc.model(SHIPMENT, "search_read", [
            ["id", "in", sale["shipments"]], ["state", "not in", ["done", "cancelled"]]], 0, 1, [["id", "ASC"]],
            ["id", "state"]) if sale["shipments"] else []
        if not open_shipments:
            raise ErpRejected(409, "NOTHING_TO_SHIP", f"sale {from_id} ({sale['state']}) has no shipment to do",
                              "shipments")
        shipment = open_shipments[0]
        try:
            self.rpc.model_once(SHIPMENT, "write", [shipment["id"]], {"reference": external_id})
        except TrytonServerError as error:
            if error.is_unique_violation("reference"):
                raise ErpRejected(409, "DUPLICATE_EXTERNAL_ID", "a shipment already has this external id",
                                  "reference") from None
            raise
        steps = {"draft": ["wait", "assign_force", "pick", "pack", "do"], "waiting": ["assign_force", "pick", "pack",
                 "do"], "assigned": ["pick", "pack", "do"], "picked": ["pack", "do"], "packed": ["do"]}
        for button in steps.get(shipment["state"], []):
            self.rpc.model(SHIPMENT, button, [shipment["id"]])
        return str(shipment["id"])

    def delete(self, record_type: str, internal_id: str) -> bool:
        record_id = _record_id(internal_id)
        if record_id is None or not self.rpc.model(record_type, "search", [["id", "=", record_id]], 0, 1, None):
            return False
        self.rpc.model(record_type, "delete", [record_id])
        return True

    def close_record(self, record_type: str, external_id: str) -> str | None:
        """Cancel the draft or quoted sale of ``external_id``; a confirmed one is refused (its shipments decide)."""
        record = self.get_by_external_id(record_type, external_id)
        if record is None:
            return None
        if record["state"] in WRITABLE_STATES:
            self.rpc.model(record_type, "cancel", [record["id"]])
        elif record["state"] != "cancelled":
            raise ErpRejected(409, "SALE_NOT_DRAFT", f"sale {record['id']} is {record['state']}: only a draft or "
                              "quoted sale is cancelled by erpsync", "state")
        return str(record["id"])

    # -- reading --

    def get(self, record_type: str, internal_id: str, *, expand_sub_resources: bool = False) -> dict[str, Any] | None:
        """The record with this id; ``expand_sub_resources`` (what the way back's ``read:`` asks for): a shipment
        with its lines and sale, a product with its stock per warehouse (way_back.py)."""
        record_id = _record_id(internal_id)
        if record_id is None:
            return None
        if expand_sub_resources and record_type == SHIPMENT:
            return way_back.read_shipment(self.rpc, record_id)
        if expand_sub_resources and record_type == PRODUCT:
            return way_back.read_stock(self.rpc, record_id)
        return self._read_one(record_type, [["id", "=", record_id]])

    def get_by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        field = EXTERNAL_ID_FIELD.get(record_type)
        if field is None:
            raise ValueError(f"unknown ERP record type {record_type!r} (known: {', '.join(EXTERNAL_ID_FIELD)})")
        return self._read_one(record_type, [[field, "=", external_id]])

    def _read_one(self, record_type: str, domain: list[Any]) -> dict[str, Any] | None:
        fields = SALE_FIELDS if record_type == SALE else None
        rows = self.rpc.model(record_type, "search_read", domain, 0, 1, None, fields or _default_fields(record_type))
        if not rows:
            return None
        record = rows[0]
        if record_type == SALE:
            record["lines"] = self.rpc.model("sale.line", "read", record["lines"], LINE_FIELDS) if record["lines"] \
                else []
        return record

    def _sale_by_reference(self, external_id: str) -> dict[str, Any] | None:
        rows = self.rpc.model(SALE, "search_read", [["reference", "=", external_id]], 0, 1, None,
                              ["id", "state", "party", "invoice_address", "shipment_address", "description",
                               "lines", "_timestamp"])
        return rows[0] if rows else None

    def _sale_by_reference_id(self, sale_id: int) -> dict[str, Any]:
        rows = self.rpc.model(SALE, "search_read", [["id", "=", sale_id]], 0, 1, None, ["_timestamp"])
        if not rows:
            raise TrytonConcurrency(f"Tryton sale {sale_id} was deleted while being written")
        return rows[0]

    def find_id(self, record_type: str, field: str, value: str) -> str | None:
        check_natural_key(NATURAL_KEYS, record_type, field)
        if record_type == PARTY and field == "email":
            rows = self.rpc.model("party.contact_mechanism", "search_read",
                                  [["type", "=", "email"], ["value", "ilike", _like_literal(value.strip())]],
                                  0, None, None, ["party"])
            ids = sorted({str(row["party"]) for row in rows})
        else:
            rows = self.rpc.model(record_type, "search_read", [[field, "=", value]], 0, None, None, ["id"])
            ids = sorted({str(row["id"]) for row in rows})
        if len(ids) > 1:
            shown = "this" if field in PERSONAL_FIELDS else repr(value)
            raise MappingError(f"{len(ids)} Tryton {record_type} records have {shown} {field} (ids "
                               f"{', '.join(ids[:5])}); make it unique in Tryton, then retry the event")
        return ids[0] if ids else None

    # -- changes since a cursor --

    def changes_since(self, record_type: str, cursor: str | None, *, limit: int = 100) -> list[Change]:
        """Records changed after ``cursor``, oldest first: modified is ``write_date``, or ``create_date`` until the
        first write.

        Changes are ordered by the whole second of that time, then by id, as the port's cursor is: both dates are
        the writing transaction's start, so a transaction that started first may commit last, and within a second
        raw time says nothing about commit order. Only changes older than ``change_settle_seconds`` are read, so a
        transaction still open cannot commit a row behind a cursor that has passed it. A domain cannot order by
        COALESCE or by a truncated time, so each of the two columns (never written; written) is read as: the rest
        of the cursor's second, then a keyset page after it, then the whole of that page's last second.

        ``product.product`` is read as the products whose stock moved: each change of a ``stock.move`` (made,
        assigned, done, cancelled) is a change of its product, with the move's time and cursor.
        """
        if not 1 <= limit <= CHANGES_MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {CHANGES_MAX_PAGE}")
        if record_type == PRODUCT:
            # A product's own write_date does not move when its stock does: its stock moves' changes are read, each
            # a change of its product (the cursor is the move's; several moves of one second are one notice).
            model, field = STOCK_MOVE, "product"
        elif record_type in EXTERNAL_ID_FIELD:
            model, field = record_type, EXTERNAL_ID_FIELD[record_type]
        else:
            raise ValueError(f"unknown ERP record type {record_type!r} (known: "
                             f"{', '.join([*EXTERNAL_ID_FIELD, PRODUCT])})")
        after, after_id = parse_cursor(cursor)
        settled = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=self.settings.change_settle_seconds)
        fields = ["id", field, "create_date", "write_date"]
        second = timedelta(seconds=1)
        found: dict[int, dict[str, Any]] = {}

        def read(column: str, only: list[Any], low: datetime | None, high: datetime, extra: list[Any],
                 page: int | None) -> list[dict[str, Any]]:
            domain: list[Any] = [only, [column, "<", high], *extra]
            if low is not None:
                domain.append([column, ">=", low])
            rows = self.rpc.model(model, "search_read", domain, 0, page, [[column, "ASC"], ["id", "ASC"]], fields)
            found.update((row["id"], row) for row in rows)
            return rows

        for column, only in (("create_date", ["write_date", "=", None]), ("write_date", ["write_date", "!=", None])):
            start = None
            if after is not None:
                read(column, only, after, min(after + second, settled), [["id", ">", after_id]], None)
                start = after + second
            page = read(column, only, start, settled, [], limit)
            if len(page) == limit:
                last = _whole_second(page[-1][column])
                read(column, only, last, min(last + second, settled), [], None)
        keyed = sorted(((_whole_second(row["write_date"] or row["create_date"]), row["id"]), row)
                       for row in found.values())
        changes = []
        for key, row in keyed:
            if after is not None and key <= (after, after_id):
                continue
            internal_id, external_id = (str(row["product"]), None) if model == STOCK_MOVE \
                else (str(row["id"]), row.get(field))
            changes.append(Change(record_type=record_type, internal_id=internal_id, external_id=external_id,
                                  modified=(row["write_date"] or row["create_date"]).replace(tzinfo=UTC),
                                  cursor=make_cursor(*key)))
            if len(changes) == limit:
                break
        return changes

    def cursor_at(self, moment: datetime) -> str:
        """A cursor before every change of ``moment``'s second (UTC) and later."""
        return make_cursor(_whole_second(moment.astimezone(UTC).replace(tzinfo=None)), 0)


def make_cursor(second: datetime, record_id: int) -> str:
    """``<whole second, UTC>|<id>``: the last change read; the next read starts after it."""
    return f"{second.isoformat(timespec='seconds')}|{record_id}"


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def parse_cursor(cursor: str | None) -> tuple[datetime | None, int]:
    if cursor is None:
        return None, 0
    try:
        moment, record_id = cursor.split("|")
        return _whole_second(datetime.fromisoformat(moment)), int(record_id)
    except ValueError:
        raise ValueError(f"not a Tryton change cursor: {cursor[:60]!r}") from None


def _record_id(internal_id: str) -> int | None:
    try:
        value = int(str(internal_id))
    except ValueError:
        return None
    return value if 0 < value < 2**63 else None


def _default_fields(record_type: str) -> list[str]:
    return {SHIPMENT: ["id", "reference", "state", "origins", "moves", "create_date", "write_date"],
            PARTY: ["id", "code", "name", "contact_mechanisms", "addresses", "create_date", "write_date"]}.get(
        record_type, ["id", "create_date", "write_date"])


def _like_literal(value: str) -> str:
    # ilike compares case-insensitively; _ and % in an email are matched literally (Tryton's escape is \).
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _number(value: Any, where: str) -> float | Decimal:
    if isinstance(value, bool) or value is None:
        raise ErpRejected(400, "INVALID_NUMBER", f"{where}: expected a number", where)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ErpRejected(400, "INVALID_NUMBER", f"{where}: expected a number", where) from None
    if not number.is_finite():
        raise ErpRejected(400, "INVALID_NUMBER", f"{where}: expected a number", where)
    return float(number) if where.endswith("quantity") else number


def _is_code_taken(error: Exception) -> bool:
    if isinstance(error, TrytonServerError):
        return error.is_unique_violation("code")
    return isinstance(error, ErpRejected) and "code" in error.detail.lower() and "unique" in error.detail.lower()
