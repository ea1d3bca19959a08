"""Reconciliation's pure parts: windows, drift classification, the repair rules, rate-limit handling, the chart."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pandas as pd
import pytest
from pydantic import SecretStr

from erpsync.errors import ConfigError, TransientError
from erpsync.mapping import find_mapping
from erpsync.mapping.xref_resolvers import OfflineXref
from erpsync.reconcile import Window, classify, nightly_window, parse_moment, plan_repairs, source_row, split_window
from erpsync.reconcile.alert import drift_alert
from erpsync.reconcile.compare import external_id_shape
from erpsync.reconcile.repair import delivery_id, run_stamp
from erpsync.reconcile.report import NextSteps, ReconcileSummary, drift_chart_svg
from erpsync.settings import PROJECT_DIR
from erpsync.systems.netsuite.sales_orders import ErpSalesOrders, erp_timestamp, line_summary, parse_erp_timestamp
from erpsync.systems.shopify.admin import ShopifyAdminClient, parse_call_limit, throttle_delay

MAPPINGS = PROJECT_DIR / "mappings"


# -- windows ---------------------------------------------------------------------------------------------------


def test_nightly_window_is_yesterday_in_the_shops_zone_widened_by_the_overlap():
    window = nightly_window(datetime(2026, 11, 28, 1, 0, tzinfo=UTC), tz="Europe/Berlin")
    assert window.start == datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    assert window.query_start == window.start - timedelta(hours=1)
    assert window.query_end == window.end + timedelta(hours=1)


def test_a_dst_day_is_25_hours_long():
    window = nightly_window(datetime(2026, 10, 26, 2, 0, tzinfo=UTC), tz="Europe/Berlin", overlap=timedelta(0))
    assert window.end - window.start == timedelta(hours=25)


def test_split_windows_cover_the_range_without_gaps():
    window = Window(parse_moment("2026-11-01"), parse_moment("2026-11-04T12:00:00Z"))
    parts = list(split_window(window))
    assert [p.start.day for p in parts] == [1, 2, 3, 4]
    assert parts[-1].end == window.end and all(a.end == b.start for a, b in zip(parts, parts[1:]))


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
    ("2026-11-27T10:00:00+02:00", datetime(2026, 11, 27, 8, tzinfo=UTC)),
    ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
])
def test_parse_moment_reads_dates_and_offsets_as_utc(text, expected):
    assert parse_moment(text) == expected


@pytest.mark.parametrize(("build", "message"), [
    (lambda: parse_moment("yesterday"), "since/until"),
    (lambda: parse_moment("2026-11-27", tz="Mars/Olympus"), "tz"),
    (lambda: Window(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)), "until must be after"),
    (lambda: Window(datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC)), "window.start"),
])
def test_bad_windows_are_refused_naming_the_setting(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


# -- the source side through the mapping -----------------------------------------------------------------------


def order(**changes):
    base = {"id": 1001, "name": "#1001", "order_number": 1001, "created_at": "2026-11-27T10:00:00-05:00",
            "updated_at": "2026-11-27T11:00:00-05:00", "currency": "USD", "total_price": "24.00",
            "line_items": [{"id": 1, "sku": "IPOD2008PINK", "quantity": 2, "price": "10.50", "title": "iPod"},
                           {"id": 2, "sku": "EARBUD-WHT-STD", "quantity": 1, "price": "3.00", "title": "Earbuds"}]}
    return {**base, **changes}


def test_source_row_applies_the_sync_mapping():
    mapping = find_mapping(MAPPINGS, "shopify", "orders/updated")
    row = source_row(mapping, order())
    assert row["external_id"] == "shopify-order-1001" and row["entity_id"] == "1001"
    assert (row["src_total"], row["src_lines"], row["src_status"], row["src_customer"]) == (24.0, 2, "open", "110")
    assert row["source_version"] == "2026-11-27T16:00:00.000000+00:00"
    assert source_row(mapping, order(cancelled_at="2026-11-27T12:00:00Z"))["src_status"] == "closed"


def test_a_record_the_mapping_refuses_keeps_its_row_with_the_field_named():
    mapping = find_mapping(MAPPINGS, "shopify", "orders/updated")
    # (An unknown SKU is no refusal here: mapped offline, the cross-reference leaves its item unknown.)
    row = source_row(mapping, order(line_items=[{"id": 1, "sku": "CABLE-USBC-1M", "quantity": "1.5", "price": "1"}]))
    assert row["external_id"] == "shopify-order-1001"
    assert row["map_error"] and "line_items[0].quantity" in row["map_error"]


def test_external_id_shape_recovers_the_entity_id():
    shape = external_id_shape(find_mapping(MAPPINGS, "shopify", "orders/updated"))
    assert shape.entity_id("shopify-order-42") == "42"
    assert shape.entity_id("woo-order-42") is None


def test_line_summary_sums_quantity_times_rate():
    assert line_summary({"item": {"items": [{"quantity": 2, "rate": 10.5}, {"quantity": 1, "rate": "3"}]}}) == (2, 24.0)
    assert line_summary({"item": {"items": [{"quantity": 2, "rate": None}]}}) == (1, None)


# -- classification --------------------------------------------------------------------------------------------

T0 = "2026-11-27T10:00:00.000000+00:00"
T1 = "2026-11-27T11:00:00.000000+00:00"
T2 = "2026-11-27T12:00:00.000000+00:00"


def joined(**overrides):
    row = {"external_id": "shopify-order-1", "entity_id": "1", "source_version": T0, "src_total": 10.0,
           "src_status": "open", "src_lines": 1, "src_customer": "110", "map_error": None, "erp_id": "7",
           "erp_status": "open", "erp_customer": "110", "erp_modified": T0, "erp_total": 10.0, "erp_lines": 1,
           "has_source": 1, "has_erp": 1}
    return {**row, **overrides}


def ledger_row(**overrides):
    row = {"entity_id": "1", "last_version": T0, "synced_at": T0, "last_outcome": "synced", "last_reason": None,
           "outcome_at": T0}
    return {**row, **overrides}


CASES = {
    "in step": (joined(), ledger_row(), None),
    "missing in the ERP": (joined(has_erp=0, erp_id=None, erp_modified=None, erp_status=None, erp_total=None,
                                  erp_lines=None, erp_customer=None), ledger_row(), ("missing_in_erp", None, "source")),
    "only in the ERP": (joined(has_source=0, source_version=None, src_total=None, src_status=None, src_lines=None,
                               src_customer=None), ledger_row(), ("erp_only", None, "erp")),
    "hand-closed in the ERP": (joined(erp_status="closed", erp_modified=T1), ledger_row(),
                               ("mismatch", "status", "erp")),
    "a lost update": (joined(source_version=T1, src_total=12.0, src_lines=2), ledger_row(),
                      ("mismatch", "total,lines,version", "source")),
    "both changed": (joined(source_version=T1, erp_modified=T2, erp_customer="111"), ledger_row(),
                     ("mismatch", "customer,version", "both")),
    "unknown total is not compared": (joined(erp_total=None), ledger_row(), None),
    "dead-lettered": (joined(source_version=T1, erp_modified=T0, map_error="line_items[0].sku"),
                      ledger_row(last_outcome="failed", last_reason="MappingError: x"),
                      ("dead_lettered", "mapping", "source")),
}


@pytest.mark.parametrize("case", CASES)
def test_classify(case):
    chunk, ledger_view, expected = CASES[case]
    drift = classify(pd.DataFrame([chunk]), pd.DataFrame([ledger_view]), erp_edit_slack=timedelta(0))
    if expected is None:
        assert drift.empty
    else:
        row = drift.iloc[0]
        assert (row["kind"], row["fields"], row["newer"]) == expected
        assert row["day"] == "2026-11-27"


def test_erp_edits_within_the_slack_are_our_own_write():
    drift = classify(pd.DataFrame([joined(erp_status="closed", erp_modified=T0)]),
                     pd.DataFrame([ledger_row(synced_at=T0)]))
    assert drift.iloc[0]["newer"] == "same"


def test_the_shops_own_total_meets_the_erps_foreigntotal_so_a_mapping_that_drops_shipping_is_a_mismatch():
    """The source side is Shopify's total_price, not the mapped lines; the ERP side is what NetSuite computed."""
    from erpsync_dev.scenarios.demo import GeneratedOrders

    order = GeneratedOrders(10, 3, start=datetime(2026, 11, 27, tzinfo=UTC)).order(4)
    shipping = Decimal(order["shipping_lines"][0]["price"])
    assert shipping > 0
    mapping = find_mapping(MAPPINGS, "shopify", "orders/updated")
    source = source_row(mapping, order, OfflineXref())
    assert Decimal(str(source["src_total"])) == Decimal(order["total_price"])

    erp = ErpSalesOrders(client=None, external_id_prefix="shopify-order-")
    in_step = erp.normalise({"externalid": source["external_id"], "id": "7", "status": "B", "entity": "110",
                             "foreigntotal": order["total_price"], "linecount": "1", "lineamount": "-1"})
    assert in_step["erp_total"] == float(order["total_price"])  # foreigntotal, not the lines' sum
    without_shipping = {**in_step, "erp_total": float(Decimal(order["total_price"]) - shipping)}
    for erp_row, expected in ((in_step, None), (without_shipping, "total")):
        chunk = joined(external_id=source["external_id"], src_total=source["src_total"],
                       erp_total=erp_row["erp_total"])
        drift = classify(pd.DataFrame([chunk]), pd.DataFrame([ledger_row()]), erp_edit_slack=timedelta(0))
        assert (drift.iloc[0]["fields"] if not drift.empty else None) == expected


def test_a_test_order_the_mapping_skips_is_not_expected_in_the_erp():
    from erpsync_dev.scenarios.demo import GeneratedOrders

    order = GeneratedOrders(10, 3, start=datetime(2026, 11, 27, tzinfo=UTC)).order(2)
    assert source_row(find_mapping(MAPPINGS, "shopify", "orders/updated"), {**order, "test": True}) is None


# -- repair rules ----------------------------------------------------------------------------------------------


def drift_row(kind, fields=None, newer="source", detail=None, entity_id="1"):
    return {"kind": kind, "external_id": f"shopify-order-{entity_id}", "entity_id": entity_id, "erp_id": None,
            "fields": fields, "newer": newer, "source_version": T0, "erp_modified": None, "day": "2026-11-27",
            "detail": detail}


@pytest.mark.parametrize(("row", "repaired"), [
    (drift_row("missing_in_erp"), True),
    (drift_row("missing_in_erp", detail="mapping fails at line_items[0].sku"), False),
    (drift_row("erp_only", newer="erp"), False),
    (drift_row("mismatch", "total,version", "source"), True),
    (drift_row("mismatch", "status", "same"), True),
    (drift_row("mismatch", "status", "erp"), False),
    (drift_row("mismatch", "status,version", "both"), False),
    (drift_row("mismatch", "mapping", "same"), False),
    (drift_row("dead_lettered"), False),
])
def test_plan_repairs(row, repaired):
    assert bool(plan_repairs(pd.DataFrame([row]))) is repaired


def test_source_authoritative_fields_overwrite_erp_edits():
    frame = pd.DataFrame([drift_row("mismatch", "status,version", "both", entity_id="1"),
                          drift_row("mismatch", "customer", "erp", entity_id="2")])
    assert [r.entity_id for r in plan_repairs(frame, authoritative_fields={"status"})] == ["1"]


def test_delivery_id_names_run_entity_and_version():
    version = datetime(2026, 11, 27, 11, tzinfo=UTC)
    assert delivery_id("order", "1001", version, "run-a") == "reconcile:run-a:order/1001:2026-11-27T11:00:00+00:00"
    # A later run repairs the same entity and version again under an id of its own.
    assert delivery_id("order", "1001", version, "run-b") != delivery_id("order", "1001", version, "run-a")
    assert run_stamp(datetime(2026, 11, 28, 2, 0, 0, 5, tzinfo=UTC)) == "20261128T020000.000005Z"


@pytest.mark.parametrize("run", ["", "a:b", "x" * 61])
def test_delivery_id_refuses_a_run_id_that_would_blur_the_key(run):
    with pytest.raises(ConfigError, match="run"):
        delivery_id("order", "1", datetime(2026, 1, 1, tzinfo=UTC), run)


# -- the SuiteQL the ERP side sends ------------------------------------------------------------------------------


def test_erp_page_query_bounds_lastmodifieddate_with_a_format_mask_and_pages_by_id():
    erp = ErpSalesOrders(client=None, external_id_prefix="shopify_order-", page_size=500)
    query = erp.page_query(modified_min=datetime(2026, 11, 27, 0, 0, 0, 500, tzinfo=UTC),
                           modified_max=datetime(2026, 11, 28, 1, 0, 0, 1, tzinfo=UTC), after_id=42)
    assert query.startswith("SELECT TOP 500 t.id, t.externalid")
    assert "TO_CHAR(t.lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified FROM transaction t" in query
    assert "t.type = 'SalesOrd'" in query
    # _ is a LIKE wildcard: escaped. Bounds are whole seconds, rounded outwards so the window only widens.
    assert "t.externalid LIKE 'shopify\\_order-%' ESCAPE '\\'" in query
    assert "t.lastmodifieddate >= TO_TIMESTAMP('2026-11-27 00:00:00', 'YYYY-MM-DD HH24:MI:SS')" in query
    assert "t.lastmodifieddate < TO_TIMESTAMP('2026-11-28 01:00:01', 'YYYY-MM-DD HH24:MI:SS')" in query
    assert query.endswith("AND t.id > 42 ORDER BY t.id")
    assert "?" not in query, "NetSuite's REST SuiteQL takes no bind parameters"
    assert ErpSalesOrders.lines_query([7, 9]) == (
        "SELECT tl.transaction, COUNT(tl.id) AS linecount, SUM(tl.foreignamount) AS lineamount "
        "FROM transactionline tl WHERE tl.transaction IN (7, 9) AND tl.mainline = 'F' AND tl.taxline = 'F' "
        "GROUP BY tl.transaction")


def test_erp_bounds_and_stamps_follow_the_roles_time_zone():
    moment = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert erp_timestamp(moment, tz="America/New_York") == (
        "TO_TIMESTAMP('2026-11-27 07:00:00', 'YYYY-MM-DD HH24:MI:SS')")
    assert parse_erp_timestamp("2026-11-27 07:00:00", tz="America/New_York") == moment
    assert parse_erp_timestamp("27/11/2026") is None


def test_erp_rows_normalise_the_credit_sign_of_sales_order_lines():
    erp = ErpSalesOrders(client=None, external_id_prefix="shopify-order-")
    row = erp.normalise({"id": "7", "externalid": "shopify-order-1", "status": "H", "entity": "110",
                         "lastmodified": "2026-11-27 10:00:00", "linecount": "2", "lineamount": "-24.5"})
    assert (row["erp_total"], row["erp_lines"], row["erp_status"], row["erp_customer"]) == (24.5, 2, "closed", "110")


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ErpSalesOrders(client=None, external_id_prefix="x'; DROP"), "literal"),
    (lambda: ErpSalesOrders(client=None, record_type="customer"), "record_type"),
    (lambda: ErpSalesOrders(client=None, tz="Mars/Olympus"), "tz"),
])
def test_erp_reader_refuses_what_it_cannot_query_safely(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


# -- the drift alert ---------------------------------------------------------------------------------------------


def summary(drift: dict, planned: int) -> ReconcileSummary:
    return ReconcileSummary(window="w", source_records=10, erp_records=10, compared=12, per_second=1.0,
                            drift={"missing_in_erp": 0, "erp_only": 0, "mismatch": 0, "dead_lettered": 0, **drift},
                            repairs_planned=planned, repairs_enqueued=planned, dry_run=False)


def test_drift_alert_counts_only_what_a_person_must_look_at():
    window = Window(datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
    repaired_only = summary({"missing_in_erp": 3}, planned=3)
    assert drift_alert(repaired_only, window, 0) is None
    left = summary({"missing_in_erp": 3, "erp_only": 1, "dead_lettered": 1}, planned=3)
    alert = drift_alert(left, window, 0)
    assert alert.window_start.isoformat() == "2026-11-27"
    assert alert.payload["needs_attention"] == 2 and alert.payload["erp_only"] == 1
    assert all(isinstance(value, (int, bool)) for value in alert.payload.values()), "counts only"
    assert drift_alert(left, window, 2) is None and drift_alert(left, window, None) is None
    with pytest.raises(ConfigError, match="drift_alert_threshold"):
        drift_alert(left, window, -1)


# -- the Admin API client's rate limiting ------------------------------------------------------------------------


def test_call_limit_parsing_and_throttle():
    assert parse_call_limit("32/40") == (32, 40) and parse_call_limit("x") is None
    assert throttle_delay((10, 40)) == 0
    assert throttle_delay((39, 40), headroom=4) == pytest.approx(2.0)


def test_429_waits_retry_after_then_follows_the_link_cursor():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "2.0"})
        if "page_info" not in request.url.params:
            return httpx.Response(200, json={"orders": [{"id": 2}]}, headers={
                "Link": '<https://shop.test/admin/api/2025-01/orders.json?limit=1&page_info=abc>; rel="next"',
                "X-Shopify-Shop-Api-Call-Limit": "39/40"})
        return httpx.Response(200, json={"orders": [{"id": 1}]})

    slept: list[float] = []
    with ShopifyAdminClient("https://shop.test", SecretStr("t"), page_size=1, transport=httpx.MockTransport(handler),
                            sleep=slept.append) as client:
        pages = list(client.order_pages(updated_at_min=datetime(2026, 1, 1, tzinfo=UTC),
                                        updated_at_max=datetime(2026, 1, 2, tzinfo=UTC)))
    assert pages == [[{"id": 2}], [{"id": 1}]]
    assert slept[0] == 2.0, "Retry-After honoured"
    assert slept[1] > 0, "slowed down before a nearly full bucket"
    assert "updated_at_min" not in calls[-1], "the cursor carries the filters"


def test_persistent_429_becomes_a_transient_error():
    transport = httpx.MockTransport(lambda request: httpx.Response(429, headers={"Retry-After": "1"}))
    with ShopifyAdminClient("https://shop.test", SecretStr("t"), transport=transport, max_attempts=3,
                            sleep=lambda s: None) as client, pytest.raises(TransientError) as caught:
        next(client.order_pages(updated_at_min=datetime(2026, 1, 1, tzinfo=UTC),
                                updated_at_max=datetime(2026, 1, 2, tzinfo=UTC)))
    assert caught.value.status == 429 and caught.value.retry_after == 1.0


# -- report and boundaries -------------------------------------------------------------------------------------------


def test_chart_has_one_bar_segment_per_day_and_kind():
    by_day = pd.DataFrame([
        {"day": "2026-11-26", "missing_in_erp": 2, "erp_only": 0, "mismatch": 1, "dead_lettered": 0},
        {"day": "2026-11-27", "missing_in_erp": 0, "erp_only": 1, "mismatch": 0, "dead_lettered": 0},
    ])
    svg = drift_chart_svg(by_day)
    assert svg.startswith("<svg") and svg.count("<rect") == 3 + 4  # segments + legend
    assert "<script" not in svg


def test_a_window_ending_now_is_described_to_the_second():
    window = Window(datetime(2026, 12, 3, tzinfo=UTC), datetime(2026, 12, 3, 10, 11, 12, 345678, tzinfo=UTC))
    assert window.describe() == "2026-12-03T00:00:00Z → 2026-12-03T10:11:12Z (±1:00:00)"


@pytest.mark.parametrize(("row", "step"), [
    ({"kind": "dead_lettered", "entity_id": "42", "detail": "MappingError"},
     "erpsync dlq show 7; fix the cause, then Retry run event-7"),
    ({"kind": "dead_lettered", "entity_id": "43", "detail": "ErpRejected"}, "erpsync dlq list --reason ErpRejected"),
    ({"kind": "erp_only", "entity_id": "1", "erp_id": "5001", "external_id": "shopify-order-1"},
     "check ERP record 5001 in the ERP"),
    ({"kind": "mismatch", "entity_id": "44", "fields": "total,lines", "newer": "erp"},
     "keep the edit, or let the shop overwrite it with --authoritative total"),
    ({"kind": "mismatch", "entity_id": "45", "fields": "status", "newer": "source"}, "re-sync queued"),
    ({"kind": "missing_in_erp", "entity_id": "46"}, "re-sync queued"),
    ({"kind": "missing_in_erp", "entity_id": "47", "detail": "mapping fails at line_items[0].sku"},
     "the order mapping refuses this order (mapping fails at line_items[0].sku)"),
])
def test_each_drift_row_names_its_next_step(row, step):
    steps = NextSteps(dead_letter_events={"42": 7}, repaired=frozenset({("mismatch", "45"), ("missing_in_erp", "46")}))
    assert step in steps.for_row(row)


def test_a_dry_run_says_a_real_run_would_queue_the_repair():
    steps = NextSteps(repaired=frozenset({("missing_in_erp", "46")}), dry_run=True)
    assert "run again without --dry-run" in steps.for_row({"kind": "missing_in_erp", "entity_id": "46"})


def test_the_exit_code_is_3_only_when_drift_is_left_for_a_person():
    from erpsync.reconcile.job import NEEDS_A_PERSON, ReconcileResult

    def result(drift: dict[str, int], planned: int) -> ReconcileResult:
        summary = ReconcileSummary(window="w", source_records=1, erp_records=1, compared=1, per_second=1.0,
                                   drift=drift, repairs_planned=planned, repairs_enqueued=planned, dry_run=False)
        return ReconcileResult(drift=None, repairs=[], repair_result=None, summary=summary)

    assert result({"missing_in_erp": 2}, planned=2).exit_code == 0, "repairs cover it"
    assert result({"missing_in_erp": 2, "dead_lettered": 1}, planned=2).exit_code == NEEDS_A_PERSON == 3


def test_the_reconcile_package_does_not_import_prefect():
    package = Path(__file__).resolve().parents[2] / "erpsync" / "reconcile"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] == "prefect" for name in names), path.name


# -- the ERP sandbox's SuiteQL date functions ---------------------------------------------------------------------


def test_sandbox_reads_and_writes_oracle_format_masks():
    from erpsync_dev.sandboxes.netsuite.suiteql_functions import MaskError, format_masked, parse_masked

    moment = parse_masked("2026-11-27 10:05:09", "YYYY-MM-DD HH24:MI:SS")
    assert moment == datetime(2026, 11, 27, 10, 5, 9, tzinfo=UTC)
    assert format_masked(moment.replace(microsecond=123000), 'YYYY-MM-DD"T"HH24:MI:SS.FF3') == "2026-11-27T10:05:09.123"
    assert parse_masked("27/11/2026", "DD/MM/YYYY") == datetime(2026, 11, 27, tzinfo=UTC)
    with pytest.raises(MaskError, match="format"):
        parse_masked("2026-11-27", "YYYY-MON-DD")
    with pytest.raises(MaskError, match="does not match"):
        parse_masked("2026-11-27T10:00:00", "YYYY-MM-DD HH24:MI:SS")


def test_generated_orders_are_lazy_deterministic_and_ordered_by_index():
    from erpsync_dev.scenarios.demo import GeneratedOrders

    start = datetime(2026, 11, 26, tzinfo=UTC)
    one, two = GeneratedOrders(1000, 3, start=start), GeneratedOrders(1000, 3, start=start)
    assert one.order(517) == two.order(517), "the same order in every process"
    assert one.order(517)["id"] == GeneratedOrders.FIRST_ID + 517 and one.index_of(one.order(517)["id"]) == 517
    assert one.index_of(GeneratedOrders.FIRST_ID + 1000) is None
    window = one.index_range(one.updated_at(100), one.updated_at(199))
    assert (window.start, window.stop) == (100, 200)
    mapping = find_mapping(MAPPINGS, "shopify", "orders/updated")
    # Offline, as reconciliation maps: the order's customer is not looked up in the ERP.
    record = mapping.apply(one.order(5), xref=OfflineXref())
    assert record.external_id == f"shopify-order-{GeneratedOrders.FIRST_ID + 5}"
