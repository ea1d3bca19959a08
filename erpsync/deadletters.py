"""Dead letters: the failed events, their reasons taken apart and grouped by cause, and their replay.

Free of Prefect. `erpsync dlq`, the `replay-dead-letters` flow and the `sync-event` flow's dead-letter artifact
all read through here, so the three show the same cause for the same event.

A dead letter is an inbox event in state ``failed``; its reason is the latest ``failed`` outcome. A later run of
the same event that ends synced (or duplicate, or superseded) moves the state on, which closes the dead letter.

Reasons are the texts ``SyncPipeline.fail`` stores. Taken apart, each gives:
- ``group``: one cause, one group. List positions are erased (``line_items[0].sku`` and ``line_items[3].sku``
  fail for one reason), the mapping version is left out (a fix that did not work is still the same cause), and a
  lookup miss keeps its key (each missing row is a fix of its own);
- ``label``: the cause's class (error class, ERP code, field), without any value: fit for notifications;
- the parts an operator acts on (ERP code, field, mapping, lookup table and key), shown in the artifact.
Only ``detail`` (NetSuite's own text, which may quote a name or an email) stays in the ledger and `dlq show`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import select

from erpsync.errors import ConfigError, ErpsyncError
from erpsync.event_refs import describe
from erpsync.ledger import HANDLED_IN_RECEIVER, InboxEvent, Ledger, Outcome, utcnow
from erpsync.run_control import IN_FLIGHT, RunControl

# -- reasons -----------------------------------------------------------------------------------------------------

_ERP_REJECTED = re.compile(
    r"^ErpRejected: HTTP (?P<status>\d{3}) (?P<code>\S+?)(?: at (?P<path>\S+))?: (?P<detail>.*)$", re.DOTALL)
_CLASS_AND_TEXT = re.compile(r"^(?P<cls>[A-Z]\w*): (?P<text>.*)$", re.DOTALL)
_MAPPING_REF = re.compile(r"^(?P<name>[\w\-]+)@(?P<version>[0-9a-f]{6,40}): (?P<rest>.*)$", re.DOTALL)
# A field path as the validators and the mapping engine write it: line_items[0].sku, customer.email, (payload).
_FIELD = re.compile(r"^(?:\(payload\)|[A-Za-z_][\w\-]*(?:\[\d*\]|\.[A-Za-z_][\w\-]*)*)$")
_LOOKUP_MISS = re.compile(r"^(?P<key>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|key) not found in "
                          r"(?:lookup table '(?P<table>[^']+)'|(?P<inline>the inline lookup table))")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_INDEX = re.compile(r"\[\d+\]")
_EXTERNAL_REF = re.compile(r"eid:[^\s:/]+")
_NUMBER = re.compile(r"\b\d+\b")
_HTTP_STATUS = re.compile(r"\bHTTP (?P<status>\d{3})(?: (?P<code>[A-Z][A-Z_]+))?")
_CONFIG_PREFIX = "ConfigError (fix the configuration, then retry the run): "
_GAVE_UP_PREFIX = "gave up after retries: "
_UNEXPECTED = re.compile(r"^unexpected (?P<cls>\w+); see the flow run's logs$")


@dataclass(frozen=True)
class Reason:
    """A failure reason from the ledger, taken apart. ``detail`` is the only part that may quote customer data."""

    text: str
    error_class: str
    gave_up: bool = False  # a transient error that outlasted every retry
    http_status: int | None = None
    erp_code: str | None = None
    field: str | None = None  # as written, list positions included
    mapping: str | None = None
    mapping_version: str | None = None
    lookup_table: str | None = None
    lookup_key: str | None = None  # the unknown key (a SKU), quoted; None when the mapping redacts keys
    problem: str | None = None  # the message with quoted values, numbers of ids and positions taken out
    detail: str | None = None  # the ERP's free text: ledger and `erpsync dlq show` only

    @property
    def field_shape(self) -> str | None:
        return _INDEX.sub("[]", self.field) if self.field else None

    @property
    def group(self) -> str:
        """One cause: every event of a group is fixed by the same change."""
        if self.lookup_table is not None:
            key = f"{self.lookup_key} not found" if self.lookup_key else "a key not found"
            return f"MappingError: {key} in lookup table {self.lookup_table}"
        if self.error_class == "ErpRejected":
            return "ErpRejected " + " at ".join(filter(None, [self.erp_code, self.field_shape]))
        parts = [p for p in (self.mapping, self.field_shape, self.problem) if p]
        head = f"{_GAVE_UP_PREFIX}{self.error_class}" if self.gave_up else self.error_class
        return f"{head}: {': '.join(parts)}" if parts else head

    @property
    def label(self) -> str:
        """The cause's class without any value or free text: safe for notifications and Prefect state messages."""
        if self.lookup_table is not None:
            return f"MappingError: unknown key in lookup table {self.lookup_table}"
        if self.error_class == "ErpRejected":
            return self.group
        if self.gave_up:
            return self.group  # transient kinds are built from status codes and fixed words only
        where = f" at {self.field_shape}" if self.field_shape else ""
        of = f" ({self.mapping})" if self.mapping else ""
        return f"{self.error_class}{where}{of}"


def parse_reason(text: str | None) -> Reason:
    """Take a reason written by ``SyncPipeline.fail`` apart; an unknown shape still gets a class and a group."""
    text = (text or "").strip()
    if not text:
        return Reason(text="", error_class="unknown", problem="no reason recorded")
    if match := _ERP_REJECTED.match(text):
        path = match["path"] if match["path"] and _FIELD.match(match["path"]) else None
        return Reason(text=text, error_class="ErpRejected", http_status=int(match["status"]),
                      erp_code=match["code"], field=path, detail=match["detail"])
    if text.startswith(_CONFIG_PREFIX):
        return Reason(text=text, error_class="ConfigError", problem=_normalise(text[len(_CONFIG_PREFIX):]))
    if text.startswith(_GAVE_UP_PREFIX):
        return _transient(text, text[len(_GAVE_UP_PREFIX):])
    if match := _UNEXPECTED.match(text):
        return Reason(text=text, error_class=f"unexpected {match['cls']}")
    match = _CLASS_AND_TEXT.match(text)
    if match is None:
        return Reason(text=text, error_class="unknown", problem=_normalise(text, numbers=True))
    error_class, rest = match["cls"], match["text"]
    if error_class in ("MappingError", "InvalidPayload", "PayloadMismatch"):
        return _field_error(text, error_class, rest)
    if error_class == "ErpAuthError":
        return Reason(text=text, error_class=error_class, problem="the ERP refused our credentials")
    return Reason(text=text, error_class=error_class, problem=_normalise(rest, numbers=True))


def _field_error(text: str, error_class: str, rest: str) -> Reason:
    mapping = version = None
    if error_class == "MappingError" and (ref := _MAPPING_REF.match(rest)):
        mapping, version, rest = ref["name"], ref["version"], ref["rest"]
    where, sep, message = rest.partition(": ")
    if sep and _FIELD.match(where):
        field_path = where
    else:
        field_path, message = None, rest
    message = message.split("; also ", 1)[0]  # a payload with several problems: the first one names the cause
    if miss := _LOOKUP_MISS.match(message):
        key = None if miss["key"] == "key" else miss["key"]
        return Reason(text=text, error_class=error_class, field=field_path, mapping=mapping, mapping_version=version,
                      lookup_table=miss["table"] or "(inline)", lookup_key=key,
                      problem="not found in lookup table")
    return Reason(text=text, error_class=error_class, field=field_path, mapping=mapping, mapping_version=version,
                  problem=_normalise(message))


def _transient(text: str, rest: str) -> Reason:
    match = _CLASS_AND_TEXT.match(rest)
    error_class, message = (match["cls"], match["text"]) if match else ("TransientError", rest)
    status = code = None
    if error_class == "EntityBusy":
        kind = "another event of the entity held it"
    elif "ledger database unavailable" in message:
        kind = "ledger database unavailable"
    elif "Prefect API" in message:
        kind = "Prefect API unavailable"
    elif http := _HTTP_STATUS.search(message):
        status, code = int(http["status"]), http["code"]
        if status == 429 or (code and ("CONCURRENCY" in code or "RATE" in code)):
            kind = "ERP rate limit (HTTP 429)"
        elif status == 408:
            kind = "ERP timed out"
        else:
            kind = f"ERP unavailable (HTTP {status // 100}xx)"
    elif "timed out" in message:
        kind = "ERP timed out"
    elif "connection failed" in message:
        kind = "ERP unreachable"
    else:
        kind = _normalise(message, numbers=True)
    return Reason(text=text, error_class=error_class, gave_up=True, http_status=status, erp_code=code, problem=kind)


def _normalise(message: str, *, numbers: bool = False) -> str:
    """The message with what varies per event taken out: quoted values, external ids, positions (and numbers)."""
    out = _QUOTED.sub("'…'", message)
    out = _EXTERNAL_REF.sub("eid:…", out)
    out = _INDEX.sub("[]", out)
    if numbers:
        out = _NUMBER.sub("N", out)
    return out.strip()


# -- selection ---------------------------------------------------------------------------------------------------

TIME_OF = ("failed", "received")
_AGE = re.compile(r"^(?P<n>\d+)(?P<unit>[mhdw])$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, *, name: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or an age such as ``12h`` meaning that long ago."""
    raw = text.strip()
    if match := _AGE.match(raw):
        return (now or utcnow()) - timedelta(**{_AGE_UNITS[match["unit"]]: int(match["n"])})
    try:
        if len(raw) == 10:
            moment = datetime.combine(date.fromisoformat(raw), datetime.min.time())
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name}: expected an ISO 8601 date or time (2026-11-28, 2026-11-28T08:00Z) or an age "
                          f"(30m, 12h, 7d, 2w); got {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters: a time range on when they failed (or were received), a source, a topic, a reason.

    ``reason`` is an error class (``ErpRejected``, ``MappingError``, …) or else a case-insensitive piece of the
    reason text or of its group (``INVALID_CONTENT``, ``sku_to_item``, ``line_items[].sku``).
    """

    since: datetime | None = None
    until: datetime | None = None
    time_of: str = "failed"
    source: str | None = None
    topic: str | None = None
    reason: str | None = None

    @classmethod
    def parse(cls, *, since: str | None = None, until: str | None = None, time_of: str = "failed",
              source: str | None = None, topic: str | None = None, reason: str | None = None,
              known_sources: Iterable[str] | None = None, prefix: str = "",
              now: datetime | None = None) -> DeadLetterFilter:
        """Filters from text (options or flow parameters); ConfigError names the one that is wrong.

        ``prefix`` is put before each name in errors (``--`` for the command line).
        """
        now = now or utcnow()
        start = parse_moment(since, name=f"{prefix}since", now=now) if since else None
        end = parse_moment(until, name=f"{prefix}until", now=now) if until else None
        if start and end and end <= start:
            raise ConfigError(f"{prefix}until: {end.isoformat()} is not after {prefix}since {start.isoformat()}")
        if time_of not in TIME_OF:
            raise ConfigError(f"{prefix}time-of: expected one of {', '.join(TIME_OF)}; got {time_of!r}")
        if source is not None:
            if known_sources is None:
                from erpsync.receiver.webhook_sources import SOURCES

                known_sources = SOURCES
            known = sorted(known_sources)
            if source not in known:
                raise ConfigError(f"{prefix}source: unknown source {source!r}; expected one of {', '.join(known)}")
        if topic is not None and not topic.strip():
            raise ConfigError(f"{prefix}topic: empty")
        if reason is not None and not reason.strip():
            raise ConfigError(f"{prefix}reason: empty")
        return cls(since=start, until=end, time_of=time_of, source=source, topic=topic,
                   reason=reason.strip() if reason else None)

    def matches_reason(self, reason: Reason) -> bool:
        if self.reason is None:
            return True
        if self.reason == reason.error_class:
            return True
        wanted = self.reason.lower()
        return wanted in reason.text.lower() or wanted in reason.group.lower()

    def describe(self) -> str:
        parts = []
        if self.since or self.until:
            start = self.since.strftime("%Y-%m-%d %H:%M") if self.since else "…"
            end = self.until.strftime("%Y-%m-%d %H:%M") if self.until else "now"
            parts.append(f"{self.time_of} {start} → {end} UTC")
        parts += [f"{name} {value}" for name, value in
                  (("source", self.source), ("topic", self.topic), ("reason", self.reason)) if value]
        return ", ".join(parts) or "all"


# ``failed``: a dead letter, its run ended Failed (and alerts). ``mismatched``: a payload that is not what its topic
# carries (errors.PayloadMismatch), its run Completed, so nothing alerts; listed and grouped here all the same,
# under PayloadMismatch, for an operator to look at.
DEAD_LETTER_STATES = ("failed", "mismatched")


@dataclass(frozen=True)
class FailedEvent:
    """One dead letter: the inbox event, its run and the latest reason."""

    event_id: int
    source: str
    topic: str
    received_at: datetime
    failed_at: datetime
    flow_run_id: str | None
    reason: Reason
    mapping_version: str | None  # of the failed outcome, when the event got as far as the transform
    entity: str | None = None  # order/820982911946154508, when a run could read who the event is about
    label: str | None = None  # the order code, #1042

    @classmethod
    def of(cls, event: InboxEvent, outcome: Outcome) -> FailedEvent:
        return cls(event_id=event.id, source=event.source, topic=event.topic, received_at=event.received_at,
                   failed_at=outcome.at, flow_run_id=event.flow_run_id, reason=parse_reason(outcome.reason),
                   mapping_version=outcome.mapping_version, entity=event.entity, label=event.entity_label)

    def as_json(self) -> dict:
        return {"event_id": self.event_id, "entity": self.entity, "order_code": self.label,
                "source": self.source, "topic": self.topic,
                "received_at": self.received_at.isoformat(), "failed_at": self.failed_at.isoformat(),
                "flow_run_id": self.flow_run_id, "group": self.reason.group, "error_class": self.reason.error_class}


def select_dead_letters(ledger: Ledger, where: DeadLetterFilter = DeadLetterFilter(), *,
                        limit: int | None = None) -> list[FailedEvent]:
    """Dead letters matching ``where``, oldest event first; at most ``limit``."""
    latest_failure = (select(Outcome.event_id, func.max(Outcome.id).label("outcome_id"))
                      .where(Outcome.outcome.in_(DEAD_LETTER_STATES)).group_by(Outcome.event_id).subquery())
    query = (select(InboxEvent, Outcome)
             .join(latest_failure, latest_failure.c.event_id == InboxEvent.id)
             .join(Outcome, Outcome.id == latest_failure.c.outcome_id)
             .where(InboxEvent.state.in_(DEAD_LETTER_STATES))
             .order_by(InboxEvent.id))
    moment = Outcome.at if where.time_of == "failed" else InboxEvent.received_at
    if where.since:
        query = query.where(moment >= where.since)
    if where.until:
        query = query.where(moment < where.until)
    if where.source:
        query = query.where(InboxEvent.source == where.source)
    if where.topic:
        query = query.where(InboxEvent.topic == where.topic)
    chosen: list[FailedEvent] = []
    with ledger.session() as session:
        for event, outcome in session.exec(query):
            failed = FailedEvent.of(event, outcome)
            if not where.matches_reason(failed.reason):
                continue
            chosen.append(failed)
            if limit is not None and len(chosen) >= limit:
                break
    return chosen


@dataclass
class DeadLetterGroup:
    group: str
    label: str
    count: int = 0
    oldest: datetime | None = None  # failure times
    newest: datetime | None = None
    event_ids: list[int] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)  # event id → order code, where known
    sources: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)

    EXAMPLES = 5

    @property
    def examples(self) -> list[int]:
        return self.event_ids[: self.EXAMPLES]

    @property
    def examples_text(self) -> str:
        """``12 #1042, 15 #1043, …``: the example events with their order codes."""
        more = ", …" if self.count > len(self.examples) else ""
        return ", ".join(" ".join(filter(None, [str(i), self.labels.get(i)])) for i in self.examples) + more

    def as_json(self) -> dict:
        return {"group": self.group, "label": self.label, "count": self.count,
                "oldest_failed_at": self.oldest.isoformat() if self.oldest else None,
                "newest_failed_at": self.newest.isoformat() if self.newest else None,
                "example_event_ids": self.examples,
                "example_order_codes": [self.labels.get(i) for i in self.examples],
                "sources": sorted(self.sources), "topics": sorted(self.topics)}


def group_dead_letters(events: Iterable[FailedEvent]) -> list[DeadLetterGroup]:
    """One group per cause, the largest first."""
    groups: dict[str, DeadLetterGroup] = {}
    for event in events:
        group = groups.setdefault(event.reason.group, DeadLetterGroup(event.reason.group, event.reason.label))
        group.count += 1
        group.oldest = min(filter(None, [group.oldest, event.failed_at]))
        group.newest = max(filter(None, [group.newest, event.failed_at]))
        group.event_ids.append(event.event_id)
        if event.label:
            group.labels[event.event_id] = event.label
        group.sources.add(event.source)
        group.topics.add(event.topic)
    return sorted(groups.values(), key=lambda g: (-g.count, g.group))


def latest_failure(ledger: Ledger, event_id: int) -> FailedEvent | None:
    """The event's latest failure, whether or not it is still a dead letter; None if it never failed."""
    event = ledger.get_event(event_id)
    if event is None:
        return None
    failures = [o for o in ledger.outcomes(event_id) if o.outcome == "failed"]
    if not failures:
        return None
    return FailedEvent.of(event, failures[-1])


# -- what Prefect may show ---------------------------------------------------------------------------------------

ARTIFACT_KEY = "dead-letter"


def _cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")


def artifact_markdown(failed: FailedEvent) -> str:
    """The dead-letter artifact of a failed run: the cause's parts, never the ERP's free text or a payload value.

    The one value it may show is a lookup key that was not found (a SKU): it is catalogue data, and the row to add.
    """
    r = failed.reason
    rows: list[tuple[str, object]] = [("event", failed.event_id), ("entity", failed.entity or "(not read)"),
                                      ("order code", failed.label or "-"),
                                      ("source", failed.source), ("topic", failed.topic),
                                      ("error class", f"{r.error_class} (gave up after retries)" if r.gave_up
                                       else r.error_class)]
    if r.erp_code:
        rows.append(("ERP error code", f"{r.erp_code}" + (f" (HTTP {r.http_status})" if r.http_status else "")))
    if r.field:
        rows.append(("field", r.field))
    if r.mapping:
        rows.append(("mapping", r.mapping))
    version = r.mapping_version or failed.mapping_version
    if version:
        rows.append(("mapping version", version))
    if r.lookup_table:
        rows.append(("lookup table", r.lookup_table))
        rows.append(("unknown key", r.lookup_key or "(redacted by the mapping)"))
    if r.problem and r.error_class != "ErpRejected":
        rows.append(("problem", r.problem))
    rows.append(("cause (group)", r.group))
    table = "\n".join(f"| {name} | `{_cell(value)}` |" for name, value in rows)
    detail_note = ("The ERP's own detail text is not shown here (it may quote customer data); "
                   if r.detail else "")
    return (f"# Dead letter: {describe(failed.event_id, failed.entity, failed.label)}\n\n"
            f"| | |\n| --- | --- |\n{table}\n\n"
            f"{detail_note}the full reason is in the ledger: `erpsync dlq show {failed.event_id}`.\n\n"
            f"## Replay\n\n"
            f"Fix the cause first (the mapping or its lookup table, the ERP record, the connection), then:\n"
            f"- this event alone: press **Retry** on this flow run;\n"
            f"- every dead letter of this cause: `erpsync dlq replay --reason {_shell_quote(_reason_filter(r))}` "
            f"(add `--dry-run` to see the list first), or run the `replay-dead-letters` deployment.\n\n"
            f"A replay runs this same flow run again, with the mapping as it is now. When it succeeds the dead "
            f"letter is closed.\n")


def _reason_filter(reason: Reason) -> str:
    """A ``--reason`` value that selects this cause: its code, table or field, never a payload value."""
    if reason.lookup_table:
        return reason.lookup_table
    if reason.erp_code:
        return reason.erp_code
    return reason.error_class


def _shell_quote(text: str) -> str:
    return text if re.fullmatch(r"[\w.\-\[\]]+", text) else "'" + text.replace("'", "'\"'\"'") + "'"


def state_message(failed: FailedEvent | None, event_id: int) -> str:
    """The Failed state's message: the cause's label, fit for the UI's run list and for notifications."""
    label = failed.reason.label if failed else "no reason recorded"
    which = describe(event_id, failed.entity, failed.label) if failed else f"event {event_id}"
    return f"dead-lettered: {label} ({which}; erpsync dlq show {event_id})"


# -- replay ------------------------------------------------------------------------------------------------------

@dataclass
class ReplayResult:
    chosen: int = 0
    rescheduled: list[int] = field(default_factory=list)
    dispatched: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        return (f"{self.chosen} dead letters chosen: {len(self.rescheduled)} runs {verb}rescheduled, "
                f"{len(self.dispatched)} {verb}dispatched (no run yet), {len(self.in_flight)} skipped (already "
                f"queued or running), {len(self.failed)} could not be replayed")

    def as_json(self) -> dict:
        return {"chosen": self.chosen, "rescheduled": self.rescheduled, "dispatched": self.dispatched,
                "in_flight": self.in_flight, "failed": [{"event_id": e, "error": m} for e, m in self.failed],
                "dry_run": self.dry_run}


def replay(ledger: Ledger, runs: RunControl | None, events: Sequence[FailedEvent], *, rate: float,
           dry_run: bool = False, progress: Callable[[str], None] = lambda line: None,
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> ReplayResult:
    """Run each dead letter again, at most ``rate`` per second: its existing flow run is rescheduled (as the
    UI's Retry does), so one event keeps one run; an event that never got a run is dispatched.

    The runs read the event from the inbox and the mapping from disk when they start: the mapping as it is now.
    A ConfigError from the orchestrator (refused credentials) stops the replay; other errors skip the event.
    """
    if not rate > 0:
        raise ConfigError(f"rate: must be a positive number of replays per second; got {rate!r}")
    result = ReplayResult(chosen=len(events), dry_run=dry_run)
    total = len(events)
    if dry_run:
        # Without a run control (no orchestrator configured here) say what a replay does, not what it would ask of
        # an orchestrator nobody configured.
        for n, event in enumerate(events, 1):
            if event.flow_run_id == HANDLED_IN_RECEIVER:
                result.failed.append((event.event_id, "handled by the receiver, not a flow run"))
                action = "would not be replayed: handled by the receiver; see its reason"
            elif event.flow_run_id:
                result.rescheduled.append(event.event_id)
                action = (f"would reschedule run {event.flow_run_id}" if runs is not None else
                          f"would sync again, in its failed run {event.flow_run_id}")
            else:
                result.dispatched.append(event.event_id)
                action = "would dispatch a run" if runs is not None else "would sync again, in a new run"
            progress(f"[{n}/{total}] event {event.event_id} ({event.reason.label}): {action}")
        return result
    if runs is None:
        raise ConfigError("a replay needs the orchestrator's run control")
    run_ids = [e.flow_run_id for e in events if e.flow_run_id and e.flow_run_id != HANDLED_IN_RECEIVER]
    states = runs.run_states(run_ids) if run_ids else {}
    interval = 1.0 / rate
    next_at: float | None = None
    for n, event in enumerate(events, 1):
        if event.flow_run_id == HANDLED_IN_RECEIVER:
            # No flow run to replay (an orders/delete left for a person): its reason says what to do.
            result.failed.append((event.event_id, "handled by the receiver, not a flow run: act as its reason says"))
            progress(f"[{n}/{total}] event {event.event_id}: not replayed: handled by the receiver; see its reason")
            continue
        state = states.get(event.flow_run_id) if event.flow_run_id else None
        if state in IN_FLIGHT:  # rescheduling a queued or running run would start it twice
            result.in_flight.append(event.event_id)
            progress(f"[{n}/{total}] event {event.event_id}: run {event.flow_run_id} is {state}, skipped")
            continue
        if next_at is not None and (wait := next_at - clock()) > 0:
            sleep(wait)
        next_at = clock() + interval
        try:
            if state is not None:
                runs.reschedule(event.flow_run_id, message=f"replay of dead letter (event {event.event_id})")
                result.rescheduled.append(event.event_id)
                progress(f"[{n}/{total}] event {event.event_id}: run {event.flow_run_id} rescheduled")
            else:
                # No run, or one the orchestrator no longer knows (its database was reset): start one.
                run_id = runs.dispatch(event.event_id)
                ledger.mark_dispatched(event.event_id, run_id)
                result.dispatched.append(event.event_id)
                progress(f"[{n}/{total}] event {event.event_id}: run {run_id} dispatched")
        except ConfigError:
            raise
        except ErpsyncError as exc:
            result.failed.append((event.event_id, str(exc)))
            progress(f"[{n}/{total}] event {event.event_id}: not replayed: {exc}")
    return result
