"""Dead-letter reasons taken apart and grouped by cause, the artifact's safety, and the filters' errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from erpsync.deadletters import DeadLetterFilter, FailedEvent, artifact_markdown, parse_reason, state_message
from erpsync.errors import ConfigError, ErpAuthError, ErpRejected, InvalidPayload, MappingError, PermanentError

LOOKUP_MISS = ("shopify_order_to_netsuite_sales_order@1fb2ca2c9aa1: line_items[{i}].sku: '{sku}' not found in lookup "
               "table 'sku_to_item' (mappings/lookups/sku_to_item.csv)")
PERSONAL_DETAIL = "Invalid reference for customer Jane Doe <jane@example.com>"

# (reason as SyncPipeline.fail stores it, its group, its label)
REASONS = [
    (ErpRejected(400, "INVALID_CONTENT", PERSONAL_DETAIL, "item.items[0].item").reason,
     "ErpRejected INVALID_CONTENT at item.items[].item", "ErpRejected INVALID_CONTENT at item.items[].item"),
    (ErpRejected(400, "USER_ERROR", "Please enter value(s) for: Customer").reason,
     "ErpRejected USER_ERROR", "ErpRejected USER_ERROR"),
    (InvalidPayload("required field is missing", field="line_items[0].sku").reason,
     "InvalidPayload: line_items[].sku: required field is missing", "InvalidPayload at line_items[].sku"),
    (InvalidPayload("Input should be a valid number; also email: bad", field="total_price").reason,
     "InvalidPayload: total_price: Input should be a valid number", "InvalidPayload at total_price"),
    (MappingError(LOOKUP_MISS.format(i=2, sku="DISCONTINUED-SKU-0001")).reason,
     "MappingError: 'DISCONTINUED-SKU-0001' not found in lookup table sku_to_item",
     "MappingError: unknown key in lookup table sku_to_item"),
    (MappingError("shopify_order_to_netsuite_sales_order@1fb2ca2c9aa1: line_items[0].sku: key not found in lookup "
                  "table 'sku_to_item' (mappings/lookups/sku_to_item.csv)").reason,
     "MappingError: a key not found in lookup table sku_to_item",
     "MappingError: unknown key in lookup table sku_to_item"),
    (MappingError("shopify_order_to_netsuite_sales_order@1fb2ca2c9aa1: created_at: required source field is "
                  "missing").reason,
     "MappingError: shopify_order_to_netsuite_sales_order: created_at: required source field is missing",
     "MappingError at created_at (shopify_order_to_netsuite_sales_order)"),
    (MappingError("must be letters, digits, '_' or '-' only (NetSuite external id)", field="externalId").reason,
     "MappingError: externalId: must be letters, digits, '…' or '…' only (NetSuite external id)",
     "MappingError at externalId"),
    (ErpAuthError("upsert salesOrder/eid:shopify-order-5: HTTP 401 even with a fresh access token").reason,
     "ErpAuthError: the ERP refused our credentials", "ErpAuthError"),
    (PermanentError("inbox event 12: its payload was purged (erpsync purge); the source must send it again").reason,
     "PermanentError: inbox event N: its payload was purged (erpsync purge); the source must send it again",
     "PermanentError"),
    ("gave up after retries: TransientError: upsert salesOrder/eid:shopify-order-5: HTTP 503",
     "gave up after retries: TransientError: ERP unavailable (HTTP 5xx)",
     "gave up after retries: TransientError: ERP unavailable (HTTP 5xx)"),
    ("gave up after retries: TransientError: upsert salesOrder/eid:x-1: HTTP 429 CONCURRENCY_LIMIT_EXCEEDED",
     "gave up after retries: TransientError: ERP rate limit (HTTP 429)",
     "gave up after retries: TransientError: ERP rate limit (HTTP 429)"),
    ("gave up after retries: TransientError: suiteql offset 0: timed out (ReadTimeout)",
     "gave up after retries: TransientError: ERP timed out", "gave up after retries: TransientError: ERP timed out"),
    ("gave up after retries: TransientError: get item/7: connection failed (ConnectError)",
     "gave up after retries: TransientError: ERP unreachable",
     "gave up after retries: TransientError: ERP unreachable"),
    ("gave up after retries: EntityBusy: shopify/order/5 is being synced by another event",
     "gave up after retries: EntityBusy: another event of the entity held it",
     "gave up after retries: EntityBusy: another event of the entity held it"),
    ("gave up after retries: TransientError: ledger database unavailable: OperationalError",
     "gave up after retries: TransientError: ledger database unavailable",
     "gave up after retries: TransientError: ledger database unavailable"),
    ("ConfigError (fix the configuration, then retry the run): no NetSuite connection: set X",
     "ConfigError: no NetSuite connection: set X", "ConfigError"),
    ("unexpected KeyError; see the flow run's logs", "unexpected KeyError", "unexpected KeyError"),
    (None, "unknown: no reason recorded", "unknown"),
]


@pytest.mark.parametrize(("text", "group", "label"), REASONS, ids=[r[1][:60] for r in REASONS])
def test_each_reason_the_pipeline_writes_has_one_group_and_a_value_free_label(text, group, label):
    reason = parse_reason(text)
    assert reason.group == group
    assert reason.label == label
    assert "Jane" not in reason.label and "DISCONTINUED" not in reason.label


def test_list_positions_and_mapping_versions_do_not_split_a_cause():
    first = parse_reason(MappingError(LOOKUP_MISS.format(i=0, sku="X-1")).reason)
    later = parse_reason(MappingError(LOOKUP_MISS.format(i=4, sku="X-1").replace("1fb2ca2c9aa1", "0a0b0c0d0e0f"))
                         .reason)
    other_sku = parse_reason(MappingError(LOOKUP_MISS.format(i=0, sku="X-2")).reason)
    assert first.group == later.group, "the same missing row, whatever the line or the mapping version"
    assert first.group != other_sku.group, "each missing row is a fix of its own"
    rejected = [parse_reason(ErpRejected(400, "INVALID_CONTENT", f"line {i}: {PERSONAL_DETAIL}",
                                         f"item.items[{i}].item").reason) for i in range(3)]
    assert len({r.group for r in rejected}) == 1


def test_the_parts_an_operator_acts_on_are_taken_out():
    lookup = parse_reason(MappingError(LOOKUP_MISS.format(i=3, sku="DISCONTINUED-SKU-0001")).reason)
    assert (lookup.error_class, lookup.field, lookup.mapping, lookup.mapping_version) == (
        "MappingError", "line_items[3].sku", "shopify_order_to_netsuite_sales_order", "1fb2ca2c9aa1")
    assert (lookup.lookup_table, lookup.lookup_key) == ("sku_to_item", "'DISCONTINUED-SKU-0001'")
    rejected = parse_reason(ErpRejected(400, "INVALID_CONTENT", PERSONAL_DETAIL, "item.items[0].item").reason)
    assert (rejected.http_status, rejected.erp_code, rejected.field, rejected.detail) == (
        400, "INVALID_CONTENT", "item.items[0].item", PERSONAL_DETAIL)


def failed_event(reason: str, *, mapping_version: str | None = None) -> FailedEvent:
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    return FailedEvent(event_id=17, source="shopify", topic="orders/create", received_at=now, failed_at=now,
                       flow_run_id="run-1", reason=parse_reason(reason), mapping_version=mapping_version)


def test_the_artifact_names_code_field_and_mapping_but_never_the_erps_detail():
    text = artifact_markdown(failed_event(
        ErpRejected(400, "INVALID_CONTENT", PERSONAL_DETAIL, "item.items[0].item").reason, mapping_version="abc123"))
    for part in ("event 17", "shopify", "orders/create", "INVALID_CONTENT (HTTP 400)", "item.items[0].item", "abc123",
                 "erpsync dlq show 17", "Retry", "erpsync dlq replay --reason INVALID_CONTENT", "replay-dead-letters"):
        assert part in text, part
    assert "Jane" not in text and "example.com" not in text


def test_the_artifact_shows_the_unknown_sku_and_its_table():
    text = artifact_markdown(failed_event(MappingError(LOOKUP_MISS.format(i=0, sku="DISCONTINUED-SKU-0001")).reason))
    assert "'DISCONTINUED-SKU-0001'" in text and "sku_to_item" in text and "1fb2ca2c9aa1" in text
    assert "--reason sku_to_item" in text


def test_the_artifact_escapes_table_syntax_from_the_erp():
    text = artifact_markdown(failed_event("ErpRejected: HTTP 400 BAD|CODE: detail"))
    assert "BAD\\|CODE" in text


def test_the_state_message_carries_the_label_only():
    failed = failed_event(MappingError(LOOKUP_MISS.format(i=0, sku="DISCONTINUED-SKU-0001")).reason)
    message = state_message(failed, 17)
    assert message == ("dead-lettered: MappingError: unknown key in lookup table sku_to_item "
                       "(event 17; erpsync dlq show 17)")


NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

INVALID_FILTERS = [
    ({"since": "yesterday"}, "--since: expected an ISO 8601 date or time"),
    ({"until": "2026-13-01"}, "--until: expected an ISO 8601 date or time"),
    ({"since": "2026-11-28", "until": "2026-11-01"}, "--until: 2026-11-01T00:00:00+00:00 is not after --since"),
    ({"source": "magento"}, "--source: unknown source 'magento'; expected one of netsuite, shopify, standard, woocommerce"),
    ({"time_of": "created"}, "--time-of: expected one of failed, received; got 'created'"),
    ({"topic": " "}, "--topic: empty"),
    ({"reason": ""}, "--reason: empty"),
]


@pytest.mark.parametrize(("given", "message"), INVALID_FILTERS, ids=[m for _, m in INVALID_FILTERS])
def test_bad_filters_are_refused_naming_the_option(given, message):
    with pytest.raises(ConfigError) as refused:
        DeadLetterFilter.parse(**given, prefix="--", now=NOW)
    assert message in str(refused.value)


def test_times_are_dates_datetimes_or_ages():
    parsed = DeadLetterFilter.parse(since="12h", until="2026-11-28T11:30+01:00", now=NOW)
    assert parsed.since == NOW - timedelta(hours=12)
    assert parsed.until == datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    assert DeadLetterFilter.parse(since="2026-11-27", now=NOW).since == datetime(2026, 11, 27, tzinfo=UTC)
    assert DeadLetterFilter.parse(since="2w", now=NOW).since == NOW - timedelta(weeks=2)


def test_reason_filter_matches_a_class_a_code_a_table_or_a_field_shape():
    rejected = parse_reason(ErpRejected(400, "INVALID_CONTENT", PERSONAL_DETAIL, "item.items[0].item").reason)
    lookup = parse_reason(MappingError(LOOKUP_MISS.format(i=0, sku="X-1")).reason)
    matches = lambda text, reason: DeadLetterFilter.parse(reason=text).matches_reason(reason)  # noqa: E731
    assert matches("ErpRejected", rejected) and not matches("ErpRejected", lookup)
    assert matches("invalid_content", rejected) and matches("item.items[].item", rejected)
    assert matches("sku_to_item", lookup) and matches("MappingError", lookup) and not matches("sku_to_item", rejected)
