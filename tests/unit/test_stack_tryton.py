"""The local stack with a real Tryton as its ERP: the workers' settings, and the demo check's expected lines."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.errors import ConfigError
from erpsync_dev.scenarios.demo import build_demo_scenario
from erpsync_dev.stack import LocalStack, StackConfig
from erpsync_dev.tryton_demo import expected_lines


def test_a_tryton_stack_gives_its_workers_tryton_and_its_mappings_and_one_call_at_a_time_on_sqlite(tmp_path):
    env = StackConfig(home=tmp_path, erp="tryton", erp_port=8123).environment({})
    assert env["ERPSYNC_TRYTON_URL"] == "http://127.0.0.1:8123/"
    assert env["ERPSYNC_TRYTON_DATABASE"] == "erpsync"
    assert env["ERPSYNC_TRYTON_CONCURRENCY_LIMIT"] == "1"
    assert Path(env["ERPSYNC_MAPPINGS_DIR"]).parts[-2:] == ("mappings", "tryton")


def test_on_postgresql_tryton_serves_a_copy_named_after_its_port_and_the_client_limit_applies(tmp_path):
    config = StackConfig(home=tmp_path, erp="tryton", erp_port=8123,
                         tryton_postgres_url="postgresql://postgres@127.0.0.1:5432/test")
    env = config.environment({})
    assert env["ERPSYNC_TRYTON_DATABASE"] == "erpsync_8123"
    assert "ERPSYNC_TRYTON_CONCURRENCY_LIMIT" not in env
    chosen = StackConfig(home=tmp_path, erp="tryton", tryton_concurrency=3).environment({})
    assert chosen["ERPSYNC_TRYTON_CONCURRENCY_LIMIT"] == "3"


def test_the_netsuite_stack_sets_no_tryton_settings_and_keeps_the_default_mappings(tmp_path):
    env = StackConfig(home=tmp_path).environment({})
    assert not any(name.startswith("ERPSYNC_TRYTON_") for name in env)
    assert "ERPSYNC_MAPPINGS_DIR" not in env


def test_an_unknown_erp_is_refused_naming_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="erp: one of netsuite, tryton, got 'odoo'"):
        LocalStack(StackConfig(home=tmp_path, erp="odoo"), {})


def test_the_lines_the_check_expects_add_up_to_shopifys_total_for_every_demo_order():
    scenario = build_demo_scenario(orders=50, seed=7)
    for delivery in scenario.deliveries:
        body = json.loads(delivery.body)
        lines = expected_lines(body)
        assert sum(amount for _, _, amount in lines) == Decimal(body["total_price"]), body["name"]
        assert len([code for code, _, _ in lines if code == "ERPSYNC-SHIPPING"]) == len(body["shipping_lines"])
