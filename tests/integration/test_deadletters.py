"""Dead letters on a real ledger (SQLite, and PostgreSQL when configured): selection by time, source, topic and
reason, grouping, closing by a later success; the stale-inbox count; the replay's calls to Prefect's REST API
(through an httpx transport standing in for the server), its pacing and its dry run; the `dlq` commands."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from erpsync.deadletters import DeadLetterFilter, group_dead_letters, replay, select_dead_letters
from erpsync.errors import ConfigError, ErpRejected, InvalidPayload, MappingError
from erpsync.ledger import InboxEvent, Outcome
from erpsync.pipeline import SyncPipeline
from erpsync.retry import RetryPolicy
from erpsync.stale_inbox import stale_inbox
from orchestration.runs import PrefectRunControl
from tests.conftest import REPO

LOOKUP_MISS = ("shopify_order_to_netsuite_sales_order@1fb2ca2c9aa1: line_items[0].sku: '{sku}' not found in lookup "
               "table 'sku_to_item' (mappings/lookups/sku_to_item.csv)")


def store(ledger, *, source="shopify", topic="orders/create") -> int:
    body = json.dumps({"id": uuid.uuid4().int % 10**9}).encode()
    return ledger.record_delivery(source=source, delivery_id=str(uuid.uuid4()), topic=topic, shop=None,
                                  triggered_at=None, body=body, payload_sha256=hashlib.sha256(body).hexdigest()
                                  ).event_id


def set_times(ledger, event_id: int, *, received: datetime | None = None, failed: datetime | None = None) -> None:
    with ledger.session() as session:
        if received:
            session.exec(update(InboxEvent).where(InboxEvent.id == event_id).values(received_at=received))
        if failed:
            session.exec(update(Outcome).where(Outcome.event_id == event_id, Outcome.outcome == "failed")
                         .values(at=failed))
        session.commit()


@pytest.fixture
def pipeline(ledger):
    def no_erp():
        raise AssertionError("these tests never reach the ERP")

    return SyncPipeline(ledger, REPO / "mappings", no_erp)


@pytest.fixture
def dead_letters(ledger, pipeline):
    """Five dead letters of three causes, received and failed at known times, and one closed by a later success."""
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    made = {}
    for name, exc, source, topic, hours in [
        ("sku-a", MappingError(LOOKUP_MISS.format(sku="SKU-A")), "shopify", "orders/create", 0),
        ("sku-a-2", MappingError(LOOKUP_MISS.format(sku="SKU-A")), "shopify", "orders/updated", 1),
        ("rejected", ErpRejected(400, "INVALID_CONTENT", "Jane Doe is not valid", "item.items[0].item"),
         "shopify", "orders/create", 2),
        ("rejected-2", ErpRejected(400, "INVALID_CONTENT", "John Roe is not valid", "item.items[3].item"),
         "woocommerce", "order.created", 3),
        ("invalid", InvalidPayload("required field is missing", field="line_items[0].sku"), "standard",
         "order.created", 4),
        ("closed", MappingError(LOOKUP_MISS.format(sku="SKU-A")), "shopify", "orders/create", 5),
    ]:
        event_id = store(ledger, source=source, topic=topic)
        pipeline.fail(event_id, exc)
        set_times(ledger, event_id, received=t0 + timedelta(hours=hours), failed=t0 + timedelta(hours=hours, minutes=5))
        made[name] = event_id
    ledger.record_outcome(event_id=made["closed"], source="shopify", outcome="synced")
    return t0, made


def test_dead_letters_group_by_cause_with_counts_times_and_examples(ledger, dead_letters):
    t0, made = dead_letters
    events = select_dead_letters(ledger)
    assert [e.event_id for e in events] == sorted(v for k, v in made.items() if k != "closed"), \
        "a later success closed one; the rest are listed oldest first"
    groups = {g.group: g for g in group_dead_letters(events)}
    assert set(groups) == {"MappingError: 'SKU-A' not found in lookup table sku_to_item",
                           "ErpRejected INVALID_CONTENT at item.items[].item",
                           "InvalidPayload: line_items[].sku: required field is missing"}
    rejected = groups["ErpRejected INVALID_CONTENT at item.items[].item"]
    assert rejected.count == 2 and rejected.examples == [made["rejected"], made["rejected-2"]]
    assert rejected.oldest == t0 + timedelta(hours=2, minutes=5)
    assert rejected.newest == t0 + timedelta(hours=3, minutes=5)
    assert rejected.sources == {"shopify", "woocommerce"}
    assert group_dead_letters(events)[0].count == 2


def test_filters_by_time_source_topic_and_reason(ledger, dead_letters):
    t0, made = dead_letters

    def ids(**given) -> set[int]:
        return {e.event_id for e in select_dead_letters(ledger, DeadLetterFilter.parse(**given))}

    window = dict(since=(t0 + timedelta(minutes=30)).isoformat(),
                  until=(t0 + timedelta(hours=2, minutes=3)).isoformat())
    assert ids(**window) == {made["sku-a-2"]}, "failed at 1:05 is in [0:30, 2:03); 0:05 and 2:05 are not"
    assert ids(**window, time_of="received") == {made["sku-a-2"], made["rejected"]}, "received at 1:00 and 2:00"
    assert ids(source="woocommerce") == {made["rejected-2"]}
    assert ids(topic="orders/updated") == {made["sku-a-2"]}
    assert ids(reason="ErpRejected") == {made["rejected"], made["rejected-2"]}
    assert ids(reason="sku-a") == {made["sku-a"], made["sku-a-2"]}
    assert ids(reason="Jane Doe") == {made["rejected"]}, "an operator may search the ERP's detail too"
    assert ids(reason="line_items[].sku") == {made["invalid"]}, "a field's shape matches the group"
    assert len(select_dead_letters(ledger, limit=2)) == 2


def test_the_stale_inbox_counts_events_without_a_run_older_than_the_age(ledger):
    now = datetime.now(UTC)
    waiting = [store(ledger) for _ in range(3)]
    set_times(ledger, waiting[0], received=now - timedelta(hours=2))
    set_times(ledger, waiting[1], received=now - timedelta(minutes=20))
    ledger.mark_dispatched(waiting[2], "run-1")
    set_times(ledger, waiting[2], received=now - timedelta(hours=3))
    stale = stale_inbox(ledger, older_than=timedelta(minutes=10), now=now)
    assert stale.payload() == {"count": 2, "oldest_age_seconds": 7200}
    assert stale_inbox(ledger, older_than=timedelta(hours=5), now=now) is None


class FakePrefect:
    """The three Prefect REST calls a replay makes, answered as Prefect 3.9 answers them."""

    def __init__(self, states: dict[str, str]):
        self.states = states
        self.calls: list[tuple[str, str, dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.calls.append((request.method, request.url.path, body))
        path = request.url.path
        if path.endswith("/flow_runs/filter"):
            return httpx.Response(200, json=[{"id": i, "state_type": self.states[i]}
                                             for i in body["flow_runs"]["id"]["any_"] if i in self.states])
        if path.endswith("/set_state"):
            return httpx.Response(201, json={"status": "ACCEPT"})
        if "/deployments/name/" in path:
            return httpx.Response(200, json={"id": "dep-1"})
        if path.endswith("/create_flow_run"):
            return httpx.Response(201, json={"id": f"new-run-{body['parameters']['event_id']}"})
        return httpx.Response(404)


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_replay_reschedules_failed_runs_skips_running_ones_dispatches_runless_ones_at_the_rate(ledger, pipeline):
    event_ids = [store(ledger) for _ in range(4)]
    for event_id in event_ids:
        pipeline.fail(event_id, MappingError(LOOKUP_MISS.format(sku="SKU-B")))
    for event_id, run_id in zip(event_ids[:3], ("run-failed", "run-running", "run-crashed")):
        ledger.note_run(event_id, run_id)
    prefect = FakePrefect({"run-failed": "FAILED", "run-running": "RUNNING", "run-crashed": "CRASHED"})
    runs = PrefectRunControl("http://prefect.test/api", transport=httpx.MockTransport(prefect),
                             retry=RetryPolicy(max_attempts=1))
    clock, lines = Clock(), []
    result = replay(ledger, runs, select_dead_letters(ledger), rate=2.0, progress=lines.append, clock=clock,
                    sleep=clock.sleep)
    assert result.rescheduled == [event_ids[0], event_ids[2]]
    assert result.in_flight == [event_ids[1]]
    assert result.dispatched == [event_ids[3]]
    assert ledger.get_event(event_ids[3]).flow_run_id == f"new-run-{event_ids[3]}"
    set_states = [(path, body) for method, path, body in prefect.calls if path.endswith("/set_state")]
    assert [p.split("/")[-2] for p, _ in set_states] == ["run-failed", "run-crashed"]
    assert all(b["state"]["type"] == "SCHEDULED" and b["state"]["name"] == "AwaitingRetry" and b["force"]
               for _, b in set_states)
    assert clock.slept == [0.5, 0.5], "three actions at 2 per second: two half-second waits; a skip costs none"
    assert len(lines) == 4 and "[4/4]" in lines[-1]


def test_a_dry_run_asks_nothing_of_prefect_and_a_bad_rate_is_refused(ledger, pipeline):
    event_id = store(ledger)
    pipeline.fail(event_id, MappingError(LOOKUP_MISS.format(sku="SKU-C")))
    prefect = FakePrefect({})
    runs = PrefectRunControl("http://prefect.test/api", transport=httpx.MockTransport(prefect))
    result = replay(ledger, runs, select_dead_letters(ledger), rate=1.0, dry_run=True)
    assert result.dispatched == [event_id] and prefect.calls == []
    with pytest.raises(ConfigError, match="rate: must be a positive number"):
        replay(ledger, runs, [], rate=0)


def erpsync(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ERPSYNC_DATABASE_URL": database_url}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "erpsync", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=120)


def test_dlq_commands_list_show_and_refuse_bad_filters(database_url, ledger, dead_letters):
    _, made = dead_letters
    listed = erpsync(database_url, "dlq", "list", "--events")
    assert listed.returncode == 0, listed.stderr
    assert "5 dead letters in 3 groups" in listed.stdout
    assert "ErpRejected INVALID_CONTENT at item.items[].item" in listed.stdout
    assert "Jane Doe" not in listed.stdout, "the ERP's detail is for `dlq show` only"
    document = json.loads(erpsync(database_url, "dlq", "list", "--json", "--source", "standard").stdout)
    assert document["dead_letters"] == 1 and document["groups"][0]["example_event_ids"] == [made["invalid"]]

    shown = erpsync(database_url, "dlq", "show", str(made["rejected"]))
    assert shown.returncode == 0, shown.stderr
    assert "Jane Doe is not valid" in shown.stdout and "INVALID_CONTENT" in shown.stdout

    for args, message in [(("dlq", "list", "--since", "last tuesday"), "--since: expected an ISO 8601"),
                          (("dlq", "replay", "--source", "magento"), "--source: unknown source 'magento'"),
                          (("dlq", "show", "999999"), "event 999999: not in the inbox"),
                          (("dlq", "replay", "--reason", "SKU-A"), "PREFECT_API_URL: not set")]:
        refused = erpsync(database_url, *args)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)
    dry = erpsync(database_url, "dlq", "replay", "--reason", "SKU-A", "--dry-run")
    assert dry.returncode == 0 and "2 dead letters chosen" in dry.stdout, dry.stdout + dry.stderr
    # no orchestrator configured: the dry run says so, and claims no run it would reschedule
    assert "dry run without an orchestrator: PREFECT_API_URL: not set" in dry.stdout
    assert "would reschedule run" not in dry.stdout and "would sync again" in dry.stdout
