"""What the NetSuite sandbox can be told to be: its records file, credentials, limits, faults and seeded lists."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

from erpsync_dev.sandboxes.netsuite.latency import NO_LATENCY, LatencyProfile

DEFAULT_DB = Path(".erpsync") / "erp-sandbox.db"


@dataclass(frozen=True)
class SandboxOptions:
    """Everything the command line can set; ``create_app`` needs nothing else."""

    db_path: Path = DEFAULT_DB
    client_id: str = "sandbox"
    client_secret: str = "sandbox-secret"
    token_lifetime: float = 3600.0
    # How long each API request takes before it is carried out: fixed or long-tailed, seeded (latency.py).
    latency: LatencyProfile = NO_LATENCY
    concurrency: int = 5
    fault_rate: float = 0.0
    fault_statuses: tuple[int, ...] = (500, 503)
    # Injected 429s, counted apart from the ones the concurrency limit gives, so a test can tell them apart.
    throttle_rate: float = 0.0
    # Timeouts: the request is carried out, then its answer held back longer than the client waits.
    timeout_rate: float = 0.0
    timeout_hold_seconds: float = 35.0
    # Writes to these external ids are refused for good (400 USER_ERROR): the injected permanent failures.
    reject_external_ids: frozenset[str] = frozenset()
    seed: int | None = None
    retry_after: float = 1.0
    items: dict[int, str] = field(default_factory=lambda: parse_items("1-999"))
    # Customers that exist before any is written: the default (guest) customer of the shops.
    customers: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_CUSTOMERS))
    # The internal ids of each list a transaction's select fields point into (see DEFAULT_LISTS).
    lists: dict[str, frozenset[int]] = field(default_factory=lambda: dict(DEFAULT_LISTS))
    # Change notices as erpsync's user-event script posts them (notices.py): where, signed with what, for which types.
    notify_url: str | None = None
    notify_secret: str | None = None
    notify_types: frozenset[str] = frozenset({"itemFulfillment", "inventoryItem"})


DEFAULT_CUSTOMERS = {110: "Web Store"}
# Permissive enough for every shipped configuration; a reference outside these is refused as NetSuite refuses
# an unknown internal id. Currencies are fixed (totals.CURRENCIES): their ids are part of the contract.
DEFAULT_LISTS: dict[str, frozenset[int]] = {
    "subsidiary": frozenset(range(1, 6)),
    "location": frozenset(range(1, 10)),
    "department": frozenset(range(1, 10)),
    "class": frozenset(range(1, 10)),
    # Shipping items and tax codes are item-like records in NetSuite, with ids from the same sequence; the shipped
    # lookup tables (mappings/lookups/shipping_method_to_id.csv, tax_code_to_id.csv) use 9xx and 3xx.
    "shipMethod": frozenset(range(1, 21)) | frozenset(range(900, 1000)),
    "taxCode": frozenset(range(1, 51)) | frozenset(range(300, 400)),
}


def parse_list(spec: str) -> tuple[str, frozenset[int]]:
    """``"location=1-9,12"`` → ("location", {1…9, 12}): the ids one list of the account holds."""
    kind, separator, ids = spec.partition("=")
    if not separator or kind.strip() not in DEFAULT_LISTS:
        raise argparse.ArgumentTypeError(f"give KIND=IDS with KIND one of {', '.join(DEFAULT_LISTS)} (got {spec!r})")
    try:
        return kind.strip(), frozenset(parse_items(ids))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: ids are numbers or ranges, e.g. location=1-9,12") from None


def parse_items(spec: str) -> dict[int, str]:
    """``"1-999"``, ``"98,110"``, ``"98=WIDGET"`` (id=itemid) or a mix, comma separated → {id: itemid}."""
    items: dict[int, str] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        if "=" in part:
            number, itemid = part.split("=", 1)
            items[int(number)] = itemid.strip()
        elif re.fullmatch(r"\d+\s*-\s*\d+", part):
            low, high = (int(bound) for bound in part.split("-", 1))
            items.update({n: f"item-{n}" for n in range(low, high + 1)})
        else:
            items[int(part)] = f"item-{int(part)}"
    return items
