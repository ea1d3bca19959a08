"""Shared fixtures: the ledger on SQLite always, and on PostgreSQL too when ERPSYNC_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from erpsync.db import normalise_url
from erpsync.ledger import Ledger

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
POSTGRES_URL = os.environ.get("ERPSYNC_TEST_POSTGRES_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def fixture_path(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"reference fixture missing: {path} (see tests/fixtures/README.md)")
    return path


def shopify_order_sample() -> dict:
    """Shopify's orders/create sample as an order to sync. The sample is a test order (``test: true``), which
    the shipped mapping records as skipped; a test that means to sync it says it is a real one."""
    order = json.loads(fixture_path("shopify", "orders_create.json").read_text())
    order["test"] = False
    return order


def with_quantity(order: dict, line: int, quantity: int) -> dict:
    """``order`` with one line's quantity changed, and Shopify's totals with it, as Shopify would send the edit.

    For lines without a discount allocation or tax of their own (as in Shopify's sample): the pipeline refuses an
    order whose ERP total would not be Shopify's, so a test that changes a quantity must change the money too.
    """
    item = order["line_items"][line]
    delta = (quantity - item["quantity"]) * Decimal(item["price"])
    item["quantity"] = item["current_quantity"] = quantity
    for name in ("total_price", "current_total_price", "subtotal_price", "current_subtotal_price",
                 "total_line_items_price"):
        if order.get(name) is not None:
            order[name] = str(Decimal(order[name]) + delta)
            for money in (order.get(f"{name}_set") or {}).values():
                money["amount"] = order[name]
    return order


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def _postgres_database() -> Iterator[str]:
    """A throwaway database on the test server, dropped afterwards."""
    admin_url = normalise_url(POSTGRES_URL)
    name = f"erpsync_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def ledger(database_url) -> Iterator[Ledger]:
    ledger = Ledger.connect(database_url)
    yield ledger
    ledger.close()
