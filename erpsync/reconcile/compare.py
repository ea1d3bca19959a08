"""The comparison: both sides spooled page by page to an on-disk table, then joined and classified in pandas chunks.

Drift kinds (one row per entity and kind, each saying which side is newer):

    missing_in_erp   the source has the order, the ERP has no record with its external id
    erp_only         the ERP has a record with our external-id prefix that the source does not have
    mismatch         both have it, but the ERP differs in total (its foreigntotal against the source's own
                     total), status, line count or customer (after mapping the source record), or the source
                     has a version the ledger never applied (``version``)
    dead_lettered    the ledger's last outcome for the entity is ``failed`` (stuck in the dead-letter view)

Memory: each side is held one page at a time while spooling, and the join is read back ``chunk_size`` rows
at a time, so peak memory grows with the page and chunk sizes, not with the number of orders.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import select

from erpsync.errors import ConfigError, MappingError, SkipEvent
from erpsync.ledger import EntityState, Ledger, Outcome
from erpsync.mapping import Mapping as ErpMapping
from erpsync.mapping import OfflineXref, XrefResolver
from erpsync.systems import DEFAULT_TARGET, system
from erpsync.xref_cache import CachedXref

DRIFT_KINDS = ("missing_in_erp", "erp_only", "mismatch", "dead_lettered")
COMPARED_FIELDS = ("total", "status", "lines", "customer")
DRIFT_COLUMNS = (
    "kind", "external_id", "entity_id", "erp_id", "fields", "newer", "source_version", "erp_modified",
    "day", "detail",
)
# The ERP stamps lastmodifieddate just before our ledger commits the sync; a later ERP stamp beyond this
# slack means someone (or something) changed the record after we wrote it.
ERP_EDIT_SLACK = timedelta(seconds=5)
DEFAULT_CHUNK = 5000

_SPOOL_SCHEMA = """
CREATE TABLE source (
    external_id TEXT PRIMARY KEY, entity_id TEXT NOT NULL, source_version TEXT, src_total REAL,
    src_status TEXT, src_lines INTEGER, src_customer TEXT, map_error TEXT
);
CREATE TABLE erp (
    external_id TEXT PRIMARY KEY, entity_id TEXT, erp_id TEXT, erp_status TEXT, erp_customer TEXT,
    erp_modified TEXT, erp_total REAL, erp_lines INTEGER
);
CREATE TABLE drift (
    kind TEXT, external_id TEXT, entity_id TEXT, erp_id TEXT, fields TEXT, newer TEXT,
    source_version TEXT, erp_modified TEXT, day TEXT, detail TEXT
);
"""
_SOURCE_COLUMNS = ("external_id", "entity_id", "source_version", "src_total", "src_status", "src_lines",
                   "src_customer", "map_error")
_ERP_COLUMNS = ("external_id", "entity_id", "erp_id", "erp_status", "erp_customer", "erp_modified",
                "erp_total", "erp_lines")


def _iso(moment: datetime | None) -> str | None:
    # One fixed format, so ISO strings compare in time order inside SQLite and pandas.
    return moment.astimezone(UTC).isoformat(timespec="microseconds") if moment is not None else None


@dataclass(frozen=True)
class ExternalIdShape:
    """How the mapping's external id wraps the entity id (``shopify-order-{id}``: prefix and suffix)."""

    prefix: str
    suffix: str

    def entity_id(self, external_id: str) -> str | None:
        """The entity id inside an external id of this shape, or None if it is not one of ours."""
        if not external_id.startswith(self.prefix) or not external_id.endswith(self.suffix):
            return None
        inner = external_id[len(self.prefix): len(external_id) - len(self.suffix) if self.suffix else None]
        return inner or None


def external_id_shape(mapping: ErpMapping) -> ExternalIdShape | None:
    """The shape when the external id template holds the entity id template exactly once, else None."""
    entity_text = mapping.config.entity.id.text
    external_text = mapping.config.external_id.text
    if external_text.count(entity_text) != 1 or len(mapping.config.entity.id.parts) != 1:
        return None
    prefix, _, suffix = external_text.partition(entity_text)
    if "{" in prefix or "{" in suffix:
        return None
    return ExternalIdShape(prefix, suffix)


def source_row(
    mapping: ErpMapping, payload: Mapping[str, Any], xref: XrefResolver | None = None
) -> dict[str, Any] | None:
    """One source record as the comparison's ``src_*`` columns, after applying the same mapping as the sync.

    A record the mapping refuses still gets a row (its ``map_error`` names the field), so it can be reported
    as missing or dead-lettered instead of vanishing; one it skips on purpose (``skip:``) gets none.
    ``erp_lookup`` rules are not resolved here (no ERP calls per record): ``xref``, an offline resolver, answers
    from the ledger's cache (an order's customer as its sync found or created it), and a value it does not hold
    leaves its field out of the comparison.
    """
    entity_id = mapping.entity_id(payload)
    version = mapping.source_version(payload)
    row: dict[str, Any] = {
        "entity_id": entity_id,
        "source_version": _iso(version) if isinstance(version, datetime) else None,
        "src_total": None, "src_status": None, "src_lines": None, "src_customer": None, "map_error": None,
    }
    try:
        record = mapping.apply(payload, xref=xref if xref is not None else OfflineXref())
    except SkipEvent:
        return None  # a record the mapping skips on purpose (a test order): the ERP should not hold it
    except MappingError as exc:
        row["external_id"] = _external_id_or_entity(mapping, payload, entity_id)
        row["map_error"] = exc.field or "mapping"
        return row
    row["external_id"] = record.external_id
    summary = system(mapping.target or DEFAULT_TARGET).summarize_body(record.body)
    row["src_lines"], mapped_total = summary.lines, summary.total
    # The shop's own total (Shopify's total_price, WooCommerce's total …) when the mapping declares its money,
    # compared with the ERP's own total: a mapping that drops shipping, tax or a discount shows as a
    # mismatch. Without a money section, only the mapped lines' sum can be compared with the ERP's.
    expected = record.expected_total
    row["src_total"] = float(expected.total) if expected is not None else mapped_total
    row["src_status"], row["src_customer"] = summary.status, summary.customer
    return row


def _external_id_or_entity(mapping: ErpMapping, payload: Mapping[str, Any], entity_id: str) -> str:
    try:
        return mapping.config.external_id.render(payload)
    except MappingError:
        return f"entity:{entity_id}"


@dataclass
class CompareStats:
    """What one comparison read and how long it took."""

    source_records: int = 0
    erp_records: int = 0
    compared: int = 0
    source_filled_in: int = 0
    erp_filled_in: int = 0
    seconds: float = 0.0  # wall time of reading both sides and classifying (set by run_reconciliation)
    classify_seconds: float = 0.0
    drift: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Entities compared per second of wall time (reading both sides included when ``seconds`` is set)."""
        seconds = self.seconds or self.classify_seconds
        return self.compared / seconds if seconds else 0.0


class DriftSet:
    """The drift rows of one comparison, kept in its on-disk spool; read them in counts, heads or chunks."""

    def __init__(self, spool: Path, stats: CompareStats):
        self.spool = spool
        self.stats = stats

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        with sqlite3.connect(self.spool) as conn:
            return pd.read_sql_query(sql, conn, params=params)

    def counts(self) -> dict[str, int]:
        """Drift rows per kind, every kind present (0 when none)."""
        frame = self._read("SELECT kind, COUNT(*) AS n FROM drift GROUP BY kind")
        found = dict(zip(frame["kind"], frame["n"].astype(int)))
        return {kind: int(found.get(kind, 0)) for kind in DRIFT_KINDS}

    def total(self) -> int:
        """All drift rows."""
        return sum(self.counts().values())

    def head(self, kind: str | None = None, n: int = 20) -> pd.DataFrame:
        """The first ``n`` rows (of one kind, or of all), ordered by external id."""
        if kind is None:
            return self._read("SELECT * FROM drift ORDER BY kind, external_id LIMIT ?", (n,))
        return self._read("SELECT * FROM drift WHERE kind = ? ORDER BY external_id LIMIT ?", (kind, n))

    def by_day(self) -> pd.DataFrame:
        """Rows per day and kind: columns ``day`` plus one per drift kind (the chart's data)."""
        frame = self._read("SELECT day, kind, COUNT(*) AS n FROM drift GROUP BY day, kind ORDER BY day")
        if frame.empty:
            return pd.DataFrame(columns=["day", *DRIFT_KINDS])
        table = frame.pivot(index="day", columns="kind", values="n").fillna(0).astype(int)
        for kind in DRIFT_KINDS:
            if kind not in table:
                table[kind] = 0
        return table[list(DRIFT_KINDS)].reset_index()

    def chunks(self, size: int = DEFAULT_CHUNK, kinds: Iterable[str] | None = None) -> Iterator[pd.DataFrame]:
        """Every drift row, ``size`` at a time (of ``kinds`` only, when given)."""
        sql, params = "SELECT * FROM drift", ()
        if kinds is not None:
            wanted = tuple(kinds)
            sql += f" WHERE kind IN ({', '.join('?' for _ in wanted)})"
            params = wanted
        with sqlite3.connect(self.spool) as conn:
            yield from pd.read_sql_query(sql + " ORDER BY kind, external_id", conn, params=params, chunksize=size)

    def frame(self) -> pd.DataFrame:
        """All drift rows at once (for tests and small runs; use ``chunks`` for big ones)."""
        return self._read("SELECT * FROM drift ORDER BY kind, external_id")


class Comparison:
    """Spools source pages and ERP pages, fills in each side's unmatched keys, then classifies the drift.

    ``find_in_erp(external_ids)`` and ``find_in_source(entity_ids)`` yield pages of rows for keys seen on one
    side only within the window: an order updated in the window whose ERP record was last modified long ago
    (a lost webhook) is then compared, not called missing; an ERP record hand-edited in the window whose order
    did not change is compared too, not called ERP-only.
    """

    def __init__(
        self,
        mapping: ErpMapping,
        ledger: Ledger,
        spool: Path,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        compare_fields: Iterable[str] = COMPARED_FIELDS,
        erp_edit_slack: timedelta = ERP_EDIT_SLACK,
    ) -> None:
        self.mapping = mapping
        self.ledger = ledger
        self.spool = Path(spool)
        self.chunk_size = chunk_size
        self.compare_fields = tuple(compare_fields)
        self.erp_edit_slack = erp_edit_slack
        unknown = set(self.compare_fields) - set(COMPARED_FIELDS)
        if unknown:
            raise ConfigError(f"compare_fields: unknown {', '.join(sorted(unknown))}")
        self.shape = external_id_shape(mapping)
        self.xref = CachedXref(ledger.engine)
        self.stats = CompareStats()
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        if self.spool.exists():
            self.spool.unlink()
        self._db = sqlite3.connect(self.spool)
        # WAL: the chunked read of the join stays open while drift rows are committed beside it. The spool is
        # scratch space, rebuilt on every run, so durability is not worth an fsync per page.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SPOOL_SCHEMA)

    def close(self) -> None:
        """Close the spool connection (the file stays, for the DriftSet)."""
        self._db.close()

    # -- spooling --

    def add_source_page(self, payloads: Iterable[Mapping[str, Any]]) -> int:
        """Map and spool one page of source records; a newer version of a key replaces an older one."""
        rows = [row for payload in payloads if (row := source_row(self.mapping, payload, self.xref)) is not None]
        if rows:
            frame = pd.DataFrame(rows, columns=list(_SOURCE_COLUMNS))
            self._db.executemany(
                f"INSERT INTO source VALUES ({', '.join('?' for _ in _SOURCE_COLUMNS)}) "
                "ON CONFLICT(external_id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _SOURCE_COLUMNS[1:])
                + " WHERE excluded.source_version >= source.source_version",
                _records(frame),
            )
            self._db.commit()
        self.stats.source_records += len(rows)
        return len(rows)

    def add_erp_page(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Spool one page of normalised ERP rows (``ErpSalesOrders`` output)."""
        prepared = []
        for row in rows:
            entity_id = self.shape.entity_id(row["external_id"]) if self.shape and row.get("external_id") else None
            prepared.append({**row, "entity_id": entity_id, "erp_modified": _iso(row.get("erp_modified"))})
        if prepared:
            frame = pd.DataFrame(prepared, columns=list(_ERP_COLUMNS))
            self._db.executemany(
                f"INSERT OR REPLACE INTO erp VALUES ({', '.join('?' for _ in _ERP_COLUMNS)})", _records(frame)
            )
            self._db.commit()
        self.stats.erp_records += len(prepared)
        return len(prepared)

    def fill_in(
        self,
        *,
        find_in_erp: Callable[[Iterable[str]], Iterable[list[dict[str, Any]]]] | None = None,
        find_in_source: Callable[[Iterable[str]], Iterable[list[dict[str, Any]]]] | None = None,
    ) -> None:
        """Look up, on the other side, every key that only one side returned for the window."""
        if find_in_erp is not None:
            keys = _column(self._db, "SELECT s.external_id FROM source s LEFT JOIN erp e USING (external_id) "
                                     "WHERE e.external_id IS NULL AND s.map_error IS NULL")
            for page in find_in_erp(keys):
                self.stats.erp_filled_in += self.add_erp_page(page)
        if find_in_source is not None and self.shape is not None:
            keys = _column(self._db, "SELECT e.entity_id FROM erp e LEFT JOIN source s USING (external_id) "
                                     "WHERE s.external_id IS NULL AND e.entity_id IS NOT NULL")
            for page in find_in_source(keys):
                self.stats.source_filled_in += self.add_source_page(page)

    # -- classifying --

    def run(self, *, dead_letter_since: datetime | None = None) -> DriftSet:
        """Classify every spooled key into drift rows (written to the spool) and return the DriftSet.

        ``dead_letter_since`` also reports entities dead-lettered since then that neither side returned.
        """
        started = time.perf_counter()
        joined = (
            "SELECT s.external_id, s.entity_id, s.source_version, s.src_total, s.src_status, s.src_lines, "
            "s.src_customer, s.map_error, e.erp_id, e.erp_status, e.erp_customer, e.erp_modified, e.erp_total, "
            "e.erp_lines, 1 AS has_source, e.external_id IS NOT NULL AS has_erp "
            "FROM source s LEFT JOIN erp e USING (external_id) "
            "UNION ALL "
            "SELECT e.external_id, e.entity_id, NULL, NULL, NULL, NULL, NULL, NULL, e.erp_id, e.erp_status, "
            "e.erp_customer, e.erp_modified, e.erp_total, e.erp_lines, 0, 1 "
            "FROM erp e LEFT JOIN source s USING (external_id) WHERE s.external_id IS NULL"
        )
        reader = sqlite3.connect(self.spool)
        try:
            for chunk in pd.read_sql_query(joined, reader, chunksize=self.chunk_size):
                self.stats.compared += len(chunk)
                drift = classify(chunk, self._ledger_view(chunk["entity_id"].dropna().tolist()),
                                 compare_fields=self.compare_fields, erp_edit_slack=self.erp_edit_slack)
                self._write_drift(drift)
        finally:
            reader.close()
        if dead_letter_since is not None:
            self._stray_dead_letters(dead_letter_since)
        self.stats.classify_seconds += time.perf_counter() - started
        result = DriftSet(self.spool, self.stats)
        self.stats.drift = result.counts()
        return result

    def _write_drift(self, drift: pd.DataFrame) -> None:
        if drift.empty:
            return
        self._db.executemany(
            f"INSERT INTO drift VALUES ({', '.join('?' for _ in DRIFT_COLUMNS)})",
            _records(drift[list(DRIFT_COLUMNS)]),
        )
        self._db.commit()

    def _ledger_view(self, entity_ids: list[str]) -> pd.DataFrame:
        """Per entity: last applied version, when it was synced, and the last synced/failed outcome."""
        columns = ["entity_id", "last_version", "synced_at", "last_outcome", "last_reason", "outcome_at"]
        if not entity_ids:
            return pd.DataFrame(columns=columns)
        source, entity_type = self.mapping.source, self.mapping.entity_type
        states: dict[str, dict[str, Any]] = {}
        with self.ledger.session() as session:
            for start in range(0, len(entity_ids), 500):
                ids = entity_ids[start: start + 500]
                for state in session.exec(select(EntityState).where(
                    EntityState.from_system == source, EntityState.to_system == self.mapping.target,
                    EntityState.entity_type == entity_type,
                    EntityState.entity_id.in_(ids),
                )):
                    states[state.entity_id] = {"last_version": _iso(state.last_version),
                                               "synced_at": _iso(state.updated_at)}
                outcomes = session.exec(select(
                    Outcome.entity_id, Outcome.outcome, Outcome.reason, Outcome.at
                ).where(
                    Outcome.source == source, Outcome.entity_type == entity_type, Outcome.entity_id.in_(ids),
                    Outcome.outcome.in_(("synced", "failed")),
                ).order_by(Outcome.id))
                for entity_id, outcome, reason, at in outcomes:
                    states.setdefault(entity_id, {}).update(
                        last_outcome=outcome, last_reason=reason, outcome_at=_iso(at)
                    )
        return pd.DataFrame([{"entity_id": k, **v} for k, v in states.items()], columns=columns)

    def _stray_dead_letters(self, since: datetime) -> None:
        """Entities whose last outcome is failed since ``since`` but that neither side returned."""
        source, entity_type = self.mapping.source, self.mapping.entity_type
        with self.ledger.session() as session:
            failed = session.exec(select(Outcome.entity_id).where(
                Outcome.source == source, Outcome.entity_type == entity_type, Outcome.outcome == "failed",
                Outcome.at >= since, Outcome.entity_id.is_not(None),
            ).distinct()).all()
        seen = set()
        for start in range(0, len(failed), 500):
            ids = failed[start: start + 500]
            marks = ", ".join("?" for _ in ids)
            seen.update(_column(self._db, f"SELECT entity_id FROM source WHERE entity_id IN ({marks}) UNION "
                                          f"SELECT entity_id FROM erp WHERE entity_id IN ({marks})", (*ids, *ids)))
        stray = [entity_id for entity_id in failed if entity_id not in seen]
        view = self._ledger_view(stray)
        stuck = view[view["last_outcome"] == "failed"]
        if stuck.empty:
            return
        frame = pd.DataFrame({
            "kind": "dead_lettered", "external_id": None, "entity_id": stuck["entity_id"], "erp_id": None,
            "fields": None, "newer": "source", "source_version": None, "erp_modified": None,
            "day": stuck["outcome_at"].str[:10], "detail": stuck["last_reason"].map(_reason_class),
        })
        self._write_drift(frame)


def classify(chunk: pd.DataFrame, ledger_view: pd.DataFrame, *,
             compare_fields: Iterable[str] = COMPARED_FIELDS,
             erp_edit_slack: timedelta = ERP_EDIT_SLACK) -> pd.DataFrame:
    """Drift rows (``DRIFT_COLUMNS``) for one chunk of joined source/ERP rows and their ledger state.

    Pure: no I/O, so the rules can be tested on hand-made frames.
    """
    frame = chunk.merge(ledger_view, on="entity_id", how="left") if not ledger_view.empty else chunk.assign(
        last_version=None, synced_at=None, last_outcome=None, last_reason=None, outcome_at=None)
    has_source = frame["has_source"].astype(bool)
    has_erp = frame["has_erp"].astype(bool)

    source_version = pd.to_datetime(frame["source_version"], utc=True, format="ISO8601")
    erp_modified = pd.to_datetime(frame["erp_modified"], utc=True, format="ISO8601")
    last_version = pd.to_datetime(frame["last_version"], utc=True, format="ISO8601")
    synced_at = pd.to_datetime(frame["synced_at"], utc=True, format="ISO8601")

    # The source is newer when it holds a version the ledger never applied (or none was ever applied).
    source_newer = has_source & (last_version.isna() | (source_version > last_version))
    # The ERP is newer when it was modified after our last sync wrote it; with no sync on record, when its
    # stamp is later than the source's version.
    erp_newer = has_erp & (
        (synced_at.notna() & (erp_modified > synced_at + erp_edit_slack))
        | (synced_at.isna() & (source_version.isna() | (erp_modified > source_version)))
    )

    differs: dict[str, pd.Series] = {}
    both = has_source & has_erp & frame["map_error"].isna()
    pairs = {"total": ("src_total", "erp_total"), "status": ("src_status", "erp_status"),
             "lines": ("src_lines", "erp_lines"), "customer": ("src_customer", "erp_customer")}
    for name in compare_fields:
        src, erp = (frame[column] for column in pairs[name])
        comparable = both & src.notna() & erp.notna()
        if name in ("total", "lines"):
            unequal = (pd.to_numeric(src, errors="coerce") - pd.to_numeric(erp, errors="coerce")).abs() > 0.005
        else:
            unequal = src.astype(str) != erp.astype(str)
        differs[name] = comparable & unequal
    differs["version"] = both & source_newer & last_version.notna()

    field_names = pd.Series("", index=frame.index)
    for name, mask in differs.items():
        field_names = field_names.where(~mask, field_names + "," + name)
    field_names = field_names.str.lstrip(",")

    dead = frame["last_outcome"].eq("failed") & has_source
    kind = pd.Series(None, index=frame.index, dtype=object)
    kind[has_source & ~has_erp] = "missing_in_erp"
    kind[~has_source & has_erp] = "erp_only"
    kind[both & (field_names != "")] = "mismatch"
    # Present on both sides but the mapping now refuses the source record: the ERP holds an older mapping's view.
    kind[has_source & has_erp & frame["map_error"].notna()] = "mismatch"
    # Stuck in the dead-letter view wins: repairing it is a different act (fix the mapping or data first).
    kind[dead] = "dead_lettered"

    newer = pd.Series("same", index=frame.index, dtype=object)
    newer[source_newer & ~erp_newer] = "source"
    newer[erp_newer & ~source_newer] = "erp"
    newer[source_newer & erp_newer] = "both"
    # Only one side holds the record: that side is the newer one by definition.
    newer[kind.eq("missing_in_erp")] = "source"
    newer[kind.eq("erp_only")] = "erp"

    detail = pd.Series(None, index=frame.index, dtype=object)
    mapped_out = frame["map_error"].notna()
    detail[mapped_out] = "mapping fails at " + frame.loc[mapped_out, "map_error"].astype(str)
    field_names = field_names.where(~(mapped_out & has_erp & has_source), "mapping")
    detail[dead & ~mapped_out] = frame.loc[dead & ~mapped_out, "last_reason"].map(_reason_class)

    day = frame["source_version"].where(frame["source_version"].notna(), frame["erp_modified"])
    out = pd.DataFrame({
        "kind": kind, "external_id": frame["external_id"], "entity_id": frame["entity_id"],
        "erp_id": frame["erp_id"], "fields": field_names.astype(object).where(field_names != "", None), "newer": newer,
        "source_version": frame["source_version"], "erp_modified": frame["erp_modified"],
        "day": day.str[:10], "detail": detail,
    })
    return out[out["kind"].notna()].reset_index(drop=True)


def _reason_class(reason: Any) -> str | None:
    # The ledger's reasons are written without customer data; the report still shows only the error class.
    if not isinstance(reason, str) or not reason:
        return None
    return reason.split(":", 1)[0][:80]


def _records(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as tuples of plain Python values (NaN → None), the way sqlite3 binds them."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [tuple(_plain(v) for v in row) for row in clean.itertuples(index=False, name=None)]


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _column(db: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return [row[0] for row in db.execute(sql, params)]


def json_safe(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready dicts (NaN → None), e.g. for a Prefect table artifact."""
    return json.loads(frame.to_json(orient="records"))
