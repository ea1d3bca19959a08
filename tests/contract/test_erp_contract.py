"""The ERP contract: every registered ERP (``erpsync.systems.erps()``), against its local server, behaves the same.

What a system must do to sit behind the ports (erpsync/ports.py): write idempotently by external id, classify its
refusals, throttling and credentials into the one error tree, read, transform and delete records, resolve ids by
natural key, read changes since a cursor without skipping or repeating a record, and read reconciliation windows.
The only per-system part is erpsync_dev/local_systems.py: how the local server starts, its faults and samples.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from erpsync.errors import ErpAuthError, ErpRejected, MappingError, TransientError
from erpsync.ports import Change, ChangeReader, IdResolver, RecordWriter, System, WindowReader
from erpsync.systems import erps
from erpsync_dev.local_systems import LOCAL_ERPS, LocalErp, local_erp

ERPS = [system.name for system in erps()]


@pytest.fixture(scope="module", params=ERPS)
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalErp]:
    name = request.param
    try:
        server = local_erp(name, tmp_path_factory.mktemp(name))
        local = server.__enter__()
    except LookupError as missing:
        pytest.fail(str(missing))
    try:
        yield local
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def erp(running: LocalErp) -> LocalErp:
    """The module's local ERP, emptied: no records, no queued faults, counters at zero."""
    running.faults.reset()
    return running


@pytest.fixture
def system(running: LocalErp, request: pytest.FixtureRequest) -> System:
    return next(s for s in erps() if s.name == request.node.callspec.params["running"])


def read_all_changes(erp: LocalErp, record_type: str, cursor: str | None = None, limit: int = 2) -> list[Change]:
    """Every change after ``cursor``, page by page, as a poller would read them."""
    changes: list[Change] = []
    for _ in range(100):
        page = erp.writer.changes_since(record_type, cursor, limit=limit)
        assert len(page) <= limit
        if not page:
            return changes
        changes.extend(page)
        cursor = page[-1].cursor
    raise AssertionError("changes_since never ran out of changes")


def test_every_registered_erp_has_a_local_server() -> None:
    missing = [name for name in ERPS if name not in LOCAL_ERPS]
    assert not missing, (f"no local server for {', '.join(missing)}: add each to LOCAL_ERPS in "
                         "erpsync_dev/local_systems.py, then make this suite pass")


def test_the_writer_implements_the_ports(erp: LocalErp, system: System) -> None:
    for port in (RecordWriter, IdResolver, ChangeReader):
        assert isinstance(erp.writer, port), f"{system.name}'s writer is not a {port.__name__}"
    assert system.writer is not None and system.window_reader is not None
    assert system.natural_keys, "natural_keys: the record types and fields find_id accepts"


# --- writing ---------------------------------------------------------------------------------------------------


def test_an_upsert_by_the_same_external_id_twice_is_one_record(erp: LocalErp) -> None:
    samples = erp.samples
    first = erp.writer.upsert(samples.record_type, "contract-upsert-1", samples.body("first"))
    second = erp.writer.upsert(samples.record_type, "contract-upsert-1", samples.body("second"))
    assert first == second
    time.sleep(erp.settle_seconds)
    assert [c.internal_id for c in read_all_changes(erp, samples.record_type)] == [first]


def test_get_and_get_by_external_id_read_what_was_written(erp: LocalErp) -> None:
    samples = erp.samples
    internal_id = erp.writer.upsert(samples.record_type, "contract-get-1", samples.body("read me"))
    by_id = erp.writer.get(samples.record_type, internal_id)
    by_external_id = erp.writer.get_by_external_id(samples.record_type, "contract-get-1")
    assert by_id is not None and by_external_id is not None
    assert str(by_id["id"]) == str(by_external_id["id"]) == internal_id
    assert erp.writer.get_by_external_id(samples.record_type, "contract-never-written") is None
    assert erp.writer.get(samples.record_type, "999999") is None


def test_a_closed_record_stays_and_reads_as_closed(erp: LocalErp, system: System) -> None:
    samples = erp.samples
    internal_id = erp.writer.upsert(samples.record_type, "contract-close-1", samples.body("close me"))
    written = erp.writer.get_by_external_id(samples.record_type, "contract-close-1")
    assert system.summarize_body(written).status == "open"
    assert erp.writer.close_record(samples.record_type, "contract-close-1") == internal_id
    record = erp.writer.get_by_external_id(samples.record_type, "contract-close-1")
    assert system.summarize_body(record).status == "closed"
    assert erp.writer.close_record(samples.record_type, "contract-never-written") is None


def test_a_refusal_is_rejected_with_the_code_and_field_path(erp: LocalErp) -> None:
    samples = erp.samples
    with pytest.raises(ErpRejected) as raised:
        erp.writer.upsert(samples.record_type, "contract-refused-1", samples.rejected_body)
    assert 400 <= raised.value.status < 500
    assert (raised.value.code, raised.value.path) == (samples.rejected_code, samples.rejected_path)
    assert erp.writer.get_by_external_id(samples.record_type, "contract-refused-1") is None


def test_a_transform_makes_a_record_from_another(erp: LocalErp) -> None:
    samples = erp.samples
    source_id = erp.writer.upsert(samples.record_type, "contract-transform-1", samples.body("to transform"))
    body = samples.transform_body(erp.writer, source_id)
    made = erp.writer.transform(samples.record_type, source_id, samples.transform_to, body,
                                external_id="contract-transformed-1")
    assert made != source_id
    record = erp.writer.get_by_external_id(samples.transform_to, "contract-transformed-1")
    assert record is not None and str(record["id"]) == made
    # Written again under the same external id, it is refused rather than made twice.
    with pytest.raises(ErpRejected):
        erp.writer.transform(samples.record_type, source_id, samples.transform_to, body,
                             external_id="contract-transformed-1")


def test_a_transform_of_a_record_that_is_not_there_is_rejected(erp: LocalErp) -> None:
    samples = erp.samples
    with pytest.raises(ErpRejected) as raised:
        erp.writer.transform(samples.record_type, "999999", samples.transform_to, {},
                             external_id="contract-transformed-2")
    assert raised.value.status == 404


def test_delete_removes_the_record_once(erp: LocalErp) -> None:
    samples = erp.samples
    internal_id = erp.writer.upsert(samples.record_type, "contract-delete-1", samples.body("delete me"))
    assert erp.writer.delete(samples.record_type, internal_id) is True
    assert erp.writer.get(samples.record_type, internal_id) is None
    assert erp.writer.get_by_external_id(samples.record_type, "contract-delete-1") is None
    assert erp.writer.delete(samples.record_type, internal_id) is False


# --- throttling and credentials --------------------------------------------------------------------------------


def test_a_429_is_retried(erp: LocalErp) -> None:
    erp.faults.throttle(erp.attempts - 1, retry_after=0)
    internal_id = erp.writer.upsert(erp.samples.record_type, "contract-429-1", erp.samples.body("throttled"))
    assert erp.writer.get(erp.samples.record_type, internal_id) is not None


def test_a_429_that_lasts_is_transient_with_the_servers_retry_after(erp: LocalErp) -> None:
    erp.faults.throttle(erp.attempts, retry_after=7)
    with pytest.raises(TransientError) as raised:
        erp.writer.get(erp.samples.record_type, "1")
    assert raised.value.status == 429
    assert raised.value.retry_after == 7


def test_an_expired_token_is_refreshed_once(erp: LocalErp) -> None:
    erp.writer.get(erp.samples.record_type, "1")  # holds a token from here on
    issued = erp.faults.tokens_issued()
    erp.faults.expire_tokens()
    erp.writer.upsert(erp.samples.record_type, "contract-token-1", erp.samples.body("after expiry"))
    erp.writer.get_by_external_id(erp.samples.record_type, "contract-token-1")
    assert erp.faults.tokens_issued() == issued + 1


def test_a_second_401_is_an_auth_error(erp: LocalErp) -> None:
    erp.writer.get(erp.samples.record_type, "1")
    issued = erp.faults.tokens_issued()
    erp.faults.unauthorized(2)
    with pytest.raises(ErpAuthError):
        erp.writer.get(erp.samples.record_type, "1")
    assert erp.faults.tokens_issued() == issued + 1  # refreshed once, not again and again


# --- ids by natural key ----------------------------------------------------------------------------------------


def test_find_id_one_match_none_and_two(erp: LocalErp, system: System) -> None:
    samples = erp.samples
    kind, field = samples.key_record_type, samples.key_field
    assert field in system.natural_keys[kind]
    value = "contract.key@example.com"
    internal_id = erp.writer.upsert(kind, "contract-key-1", samples.key_body(value))
    assert erp.writer.find_id(kind, field, value) == internal_id
    if field in system.case_insensitive_keys:
        assert erp.writer.find_id(kind, field, value.upper()) == internal_id
    assert erp.writer.find_id(kind, field, "nobody@example.com") is None
    erp.writer.upsert(kind, "contract-key-2", samples.key_body(value))
    with pytest.raises(MappingError) as raised:
        erp.writer.find_id(kind, field, value)
    assert field in str(raised.value)
    assert value not in str(raised.value)  # a natural key may be personal: named, never shown


def test_find_id_refuses_a_field_that_is_no_natural_key(erp: LocalErp, system: System) -> None:
    kind = erp.samples.key_record_type
    with pytest.raises(ValueError, match="cannot be looked up by"):
        erp.writer.find_id(kind, "id) = 1 OR (1", "x")
    with pytest.raises(ValueError, match="unknown ERP record"):
        erp.writer.find_id("no_such_record", erp.samples.key_field, "x")


# --- changes since a cursor ------------------------------------------------------------------------------------


def test_changes_come_oldest_first_each_once_and_an_update_comes_again(erp: LocalErp) -> None:
    samples = erp.samples
    ids = [erp.writer.upsert(samples.record_type, f"contract-change-{n}", samples.body(str(n))) for n in range(5)]
    time.sleep(erp.settle_seconds)
    changes = read_all_changes(erp, samples.record_type, limit=2)
    assert [c.internal_id for c in changes] == ids
    assert [c.external_id for c in changes] == [f"contract-change-{n}" for n in range(5)]
    assert all(c.record_type == samples.record_type and c.modified.tzinfo is not None for c in changes)
    assert [c.modified for c in changes] == sorted(c.modified for c in changes)
    last = changes[-1].cursor
    assert read_all_changes(erp, samples.record_type, last) == []
    erp.writer.upsert(samples.record_type, "contract-change-0", samples.body("edited"))
    time.sleep(erp.settle_seconds)
    assert [c.internal_id for c in read_all_changes(erp, samples.record_type, last)] == [ids[0]]


def test_changes_sharing_a_time_are_neither_skipped_nor_repeated(erp: LocalErp) -> None:
    samples = erp.samples
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    # Within one second the later write has the earlier time: a reader ordering by raw time, then paging by
    # (time, id), would skip it.
    erp.faults.write_at(samples.record_type, [("contract-tie-a", samples.body("a"))], moment + timedelta(seconds=0.9))
    erp.faults.write_at(samples.record_type, [(f"contract-tie-{n}", samples.body(str(n))) for n in range(6)],
                        moment + timedelta(seconds=0.1))
    erp.faults.write_at(samples.record_type, [("contract-tie-later", samples.body("later"))],
                        moment + timedelta(seconds=1))
    expected = ["contract-tie-a", *(f"contract-tie-{n}" for n in range(6)), "contract-tie-later"]
    for limit in (1, 2, 3, 100):
        changes = read_all_changes(erp, samples.record_type, limit=limit)
        assert [c.external_id for c in changes] == expected, f"limit={limit}"
        assert len({c.cursor for c in changes}) == len(changes)


# --- reconciliation windows ------------------------------------------------------------------------------------


def test_the_window_reader_pages_a_window_and_reads_by_external_id(erp: LocalErp, system: System) -> None:
    samples = erp.samples
    assert system.window_reader is not None
    written = [erp.writer.upsert(samples.record_type, f"contract-window-{n}", samples.body(str(n)))
               for n in range(5)]
    erp.writer.upsert(samples.record_type, "contract-other-1", samples.body("outside the prefix"))
    time.sleep(erp.settle_seconds)  # a window read may hold back what is still settling too
    reader = system.window_reader(erp.writer, external_id_prefix="contract-window-", record_type=samples.record_type,
                                  page_size=2)
    assert isinstance(reader, WindowReader)
    now = datetime.now(UTC)
    pages = list(reader.pages(modified_min=now - timedelta(hours=1), modified_max=now + timedelta(hours=1)))
    assert len(pages) >= 3
    rows: list[dict[str, Any]] = [row for page in pages for row in page]
    assert sorted(row["external_id"] for row in rows) == [f"contract-window-{n}" for n in range(5)]
    assert len(written) == len(set(written))
    assert list(reader.pages(modified_min=now + timedelta(hours=1), modified_max=now + timedelta(hours=2))) in ([], [[]])
    wanted = ["contract-window-1", "contract-window-3", "contract-never-written"]
    found = [row["external_id"] for page in reader.by_external_ids(wanted) for row in page]
    assert sorted(found) == ["contract-window-1", "contract-window-3"]

