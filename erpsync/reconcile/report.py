"""The reconciliation report: counts by drift kind, a markdown summary (the Prefect artifact), a plain-text summary
(the CLI), and an HTML page with a drift-by-day chart; every row names what a person does next about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, select_autoescape
from sqlalchemy.engine import make_url

from erpsync.reconcile.compare import DRIFT_KINDS, CompareStats, DriftSet, json_safe
from erpsync.reconcile.repair import RepairResult
from erpsync.reconcile.windows import Window

# Columns a person needs to act; all are ids, kinds, field names and timestamps, never customer data.
REPORT_COLUMNS = ["kind", "external_id", "entity_id", "erp_id", "fields", "newer", "source_version",
                  "erp_modified", "detail", "next_step"]
KIND_COLOURS = {"missing_in_erp": "#d62728", "erp_only": "#9467bd", "mismatch": "#ff7f0e", "dead_lettered": "#7f7f7f"}
KIND_MEANINGS = {
    "missing_in_erp": "the source has the order; the ERP has no record with its external id",
    "erp_only": "an ERP record with our external-id prefix that the source does not have",
    "mismatch": "both have it; total, status, line count or customer differ after mapping, or the ERP lacks "
                "a source version",
    "dead_lettered": "the ledger's last outcome for the entity is failed",
}


@dataclass(frozen=True)
class ReconcileSummary:
    """Counts of one run, plain values only (safe for a Prefect artifact or a flow-run result)."""

    window: str
    source_records: int
    erp_records: int
    compared: int
    per_second: float
    drift: dict[str, int]
    repairs_planned: int
    repairs_enqueued: int
    dry_run: bool
    # The way back's drift (way_back.py), counted apart from the orders': kind → rows, and its repairs.
    way_back: dict[str, int] = field(default_factory=dict)
    way_back_repairs_planned: int = 0
    way_back_repairs_enqueued: int = 0

    @property
    def total_drift(self) -> int:
        """All drift rows."""
        return sum(self.drift.values())

    @property
    def needs_attention(self) -> int:
        """Drift rows no repair covers: ERP-only records, ERP-newer edits, dead letters — a person decides."""
        return max(self.total_drift - self.repairs_planned, 0)

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {**self.__dict__, "total_drift": self.total_drift, "needs_attention": self.needs_attention}


@dataclass(frozen=True)
class NextSteps:
    """What a person does next about each drift row, from what the run knows beyond the row itself.

    ``dead_letter_events`` maps a dead-lettered entity to its latest failed inbox event (what `erpsync dlq show`
    takes); ``repaired`` holds the (kind, entity id) pairs a re-sync was planned for. Ids only, never customer data.
    """

    dead_letter_events: Mapping[str, int] = field(default_factory=dict)
    repaired: frozenset[tuple[str, str]] = frozenset()
    dry_run: bool = False

    def for_row(self, row: Mapping[str, Any]) -> str:
        """One sentence: the command to run or the thing to check in the ERP."""
        kind, entity = row.get("kind"), _text(row.get("entity_id"))
        fields, detail = _text(row.get("fields")), _text(row.get("detail"))
        if (kind, entity) in self.repaired:
            if self.dry_run:
                return "would be re-synced from the shop: run again without --dry-run to queue it"
            return ("re-sync queued (inbox → sync-event run; erpsync status shows it); the next reconciliation "
                    "confirms it")
        if kind == "dead_lettered":
            event = self.dead_letter_events.get(entity)
            if event is None:
                return f"erpsync dlq list --reason {detail}" if detail else "erpsync dlq list"
            return (f"erpsync dlq show {event}; fix the cause, then Retry run event-{event} in the Prefect UI "
                    f"or erpsync dlq replay")
        if fields == "mapping" or (detail or "").startswith("mapping fails"):
            return (f"the order mapping refuses this order ({detail or 'see the mapping'}): fix the mapping or its "
                    f"lookup table (erpsync mapping test), then run again")
        if kind == "erp_only":
            record = _text(row.get("erp_id")) or _text(row.get("external_id"))
            return (f"check ERP record {record} in the ERP: entered by hand, or its order deleted in the shop? "
                    f"Keep or delete it there; erpsync never deletes ERP records")
        if kind == "mismatch":
            first = (fields or "").split(",")[0] or "FIELD"
            return (f"edited in the ERP after erpsync wrote it ({fields}): keep the edit, or let the shop "
                    f"overwrite it with --authoritative {first}")
        if kind == "missing_in_erp":
            return "not queued: check the order in the shop, then run again"
        return ""


WAY_BACK_MEANINGS = {
    "not_fulfilled_in_shop": "shipped in the ERP (an order from the shop) but not fulfilled in the shop",
    "stock_differs": "available per location differs between the ERP (by the stock mapping) and the shop",
}


def way_back_lines(summary: ReconcileSummary, *, markdown: bool) -> list[str]:
    """The way back's counts, apart from the orders': each kind and the notices queued to repair it."""
    if not summary.way_back:
        return []
    queued = ("none queued (dry run)" if summary.dry_run
              else f"{summary.way_back_repairs_enqueued} queued as the ERP's change notices")
    head = f"The way back: {sum(summary.way_back.values())} drift rows, {summary.way_back_repairs_planned} repairs " \
           f"planned, {queued}."
    if markdown:
        return ["", head, "", "| way back kind | count | meaning |", "|---|---:|---|",
                *(f"| {kind} | {count} | {WAY_BACK_MEANINGS[kind]} |" for kind, count in summary.way_back.items())]
    width = max(len(kind) for kind in WAY_BACK_MEANINGS)
    return ["", head, *(f"  {kind:<{width}}  {count:>6}  {WAY_BACK_MEANINGS[kind]}"
                        for kind, count in summary.way_back.items())]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)


def summarize(window: Window, stats: CompareStats, drift: DriftSet, repairs: RepairResult) -> ReconcileSummary:
    """One summary of a run from its window, comparison stats, drift and repair result."""
    return ReconcileSummary(
        window=window.describe(),
        source_records=stats.source_records,
        erp_records=stats.erp_records,
        compared=stats.compared,
        per_second=round(stats.per_second, 1),
        drift=drift.counts(),
        repairs_planned=repairs.planned,
        repairs_enqueued=repairs.enqueued,
        dry_run=repairs.dry_run,
    )


def head_with_steps(drift: DriftSet, kind: str, n: int, steps: NextSteps | None = None) -> pd.DataFrame:
    """The first ``n`` rows of one kind, with the ``next_step`` column filled in."""
    head = drift.head(kind, n)
    steps = steps or NextSteps()
    head["next_step"] = [steps.for_row(row) for row in head.to_dict("records")] if not head.empty else []
    return head


def first_rows(drift: DriftSet, per_kind: int = 10, *, steps: NextSteps | None = None) -> list[dict[str, Any]]:
    """The first ``per_kind`` rows of each kind as JSON-ready dicts (a Prefect table artifact's rows)."""
    frames = [head_with_steps(drift, kind, per_kind, steps) for kind in DRIFT_KINDS]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return []
    return json_safe(pd.concat(frames)[REPORT_COLUMNS])


def markdown_summary(summary: ReconcileSummary, drift: DriftSet, per_kind: int = 5, *,
                     steps: NextSteps | None = None) -> str:
    """Markdown for a summary artifact: counts by kind, then the first rows of each kind and their next step."""
    mode = "dry run: nothing was queued" if summary.dry_run else f"{summary.repairs_enqueued} queued for re-sync"
    lines = [
        f"# Reconciliation {summary.window}",
        "",
        f"Compared **{summary.compared}** entities ({summary.source_records} source, {summary.erp_records} ERP) "
        f"at {summary.per_second}/s. Drift: **{summary.total_drift}**. "
        f"Repairs: {summary.repairs_planned} planned, {mode}.",
        "",
        "| kind | count | meaning |",
        "|---|---:|---|",
        *(f"| {kind} | {summary.drift.get(kind, 0)} | {KIND_MEANINGS[kind]} |" for kind in DRIFT_KINDS),
        *way_back_lines(summary, markdown=True),
    ]
    for kind in DRIFT_KINDS:
        head = head_with_steps(drift, kind, per_kind, steps)
        if head.empty:
            continue
        lines += ["", f"## {kind} (first {len(head)})", "",
                  "| external id | entity | ERP id | fields | newer | next step |", "|---|---|---|---|---|---|"]
        for row in head.itertuples(index=False):
            lines.append(f"| {_cell(row.external_id)} | {_cell(row.entity_id)} | {_cell(row.erp_id)} | "
                         f"{_cell(row.fields)} | {row.newer} | {_cell(row.next_step)} |")
    return "\n".join(lines) + "\n"


def text_summary(summary: ReconcileSummary, drift: DriftSet, per_kind: int = 5, *,
                 steps: NextSteps | None = None) -> str:
    """Plain text for a terminal: counts by kind, then the first rows of each kind, each with its next step."""
    mode = "dry run, nothing queued" if summary.dry_run else f"{summary.repairs_enqueued} queued for re-sync"
    lines = [
        f"Reconciliation {summary.window}",
        f"Compared {summary.compared} entities ({summary.source_records} in the shop, {summary.erp_records} in the "
        f"ERP) at {summary.per_second}/s.",
        f"Drift: {summary.total_drift} row{'' if summary.total_drift == 1 else 's'}. "
        f"Repairs: {summary.repairs_planned} planned, {mode}. "
        f"Left for a person: {summary.needs_attention}.",
        "",
    ]
    width = max(len(kind) for kind in DRIFT_KINDS)
    lines += [f"  {kind:<{width}}  {summary.drift.get(kind, 0):>6}  {KIND_MEANINGS[kind]}" for kind in DRIFT_KINDS]
    lines += way_back_lines(summary, markdown=False)
    for kind in DRIFT_KINDS:
        head = head_with_steps(drift, kind, per_kind, steps)
        if head.empty:
            continue
        total = summary.drift.get(kind, len(head))
        more = f", first {len(head)} shown" if total > len(head) else ""
        lines += ["", f"{kind} ({total}{more}):"]
        for row in head.to_dict("records"):
            lines.append("  " + "  ".join(_row_facts(row)))
            lines.append(f"    next: {row['next_step']}")
    return "\n".join(lines) + "\n"


def _row_facts(row: Mapping[str, Any]) -> list[str]:
    """The identifying facts of one drift row, labelled, in the order a person looks them up."""
    facts = [("entity", row.get("entity_id")), ("external id", row.get("external_id")), ("ERP id", row.get("erp_id")),
             ("fields", row.get("fields")), ("newer", row.get("newer")), ("cause", row.get("detail"))]
    return [f"{label} {_text(value)}" for label, value in facts if _text(value)]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).replace("|", "\\|")


def drift_chart_svg(by_day: pd.DataFrame, *, width: int = 640, height: int = 220) -> str:
    """An inline SVG stacked bar chart of drift rows per day and kind (no scripts, no external files)."""
    pad_left, pad_bottom, pad_top = 40, 36, 12
    days = list(by_day["day"]) if not by_day.empty else []
    totals = by_day[list(DRIFT_KINDS)].sum(axis=1).tolist() if days else []
    peak = max(totals, default=0) or 1
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    slot = plot_w / max(len(days), 1)
    bar = max(min(slot * 0.7, 40), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="drift by day">',
             f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 10}" y2="{pad_top + plot_h}" stroke="#333"/>',
             f'<text x="{pad_left - 6}" y="{pad_top + 4}" text-anchor="end" font-size="10">{peak}</text>',
             f'<text x="{pad_left - 6}" y="{pad_top + plot_h}" text-anchor="end" font-size="10">0</text>']
    for index, day in enumerate(days):
        x = pad_left + index * slot + (slot - bar) / 2
        y = pad_top + plot_h
        for kind in DRIFT_KINDS:
            count = int(by_day.iloc[index][kind])
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{KIND_COLOURS[kind]}"><title>{day} {kind}: {count}</title></rect>')
        if len(days) <= 31 or index % max(len(days) // 15, 1) == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - pad_bottom + 14}" text-anchor="middle" '
                         f'font-size="9">{day[5:]}</text>')
    legend_x = pad_left
    for kind in DRIFT_KINDS:
        parts.append(f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" fill="{KIND_COLOURS[kind]}"/>'
                     f'<text x="{legend_x + 14}" y="{height - 3}" font-size="10">{kind}</text>')
        legend_x += 130
    parts.append("</svg>")
    return "".join(parts)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>erpsync reconciliation {{ summary.window }}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#f4f4f4}.n{text-align:right}</style>
</head><body>
<h1>Reconciliation {{ summary.window }}</h1>
<p>Generated {{ generated }}. Compared {{ summary.compared }} entities ({{ summary.source_records }} source,
{{ summary.erp_records }} ERP) at {{ summary.per_second }}/s. Drift: <b>{{ summary.total_drift }}</b>.
Repairs: {{ summary.repairs_planned }} planned,
{% if summary.dry_run %}dry run, none queued{% else %}{{ summary.repairs_enqueued }} queued for re-sync{% endif %}.</p>
<table><tr><th>kind</th><th>count</th><th>meaning</th></tr>
{% for kind in kinds %}<tr><td>{{ kind }}</td><td class="n">{{ summary.drift.get(kind, 0) }}</td>
<td>{{ meanings[kind] }}</td></tr>{% endfor %}</table>
{% if summary.way_back %}<h2>The way back</h2>
<p>{{ summary.way_back_repairs_planned }} repairs planned,
{% if summary.dry_run %}none queued (dry run){% else %}{{ summary.way_back_repairs_enqueued }} queued as the ERP's
change notices{% endif %}.</p>
<table><tr><th>kind</th><th>count</th><th>meaning</th></tr>
{% for kind, count in summary.way_back.items() %}<tr><td>{{ kind }}</td><td class="n">{{ count }}</td>
<td>{{ way_back_meanings[kind] }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Drift by day</h2>
{{ chart | safe }}
{% for kind, rows in heads %}{% if rows %}
<h2>{{ kind }} (first {{ rows | length }})</h2>
<table><tr>{% for column in columns %}<th>{{ column }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for column in columns %}
<td>{{ row[column] if row[column] is not none else "" }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}{% endfor %}
</body></html>
"""


def render_html(summary: ReconcileSummary, drift: DriftSet, *, per_kind: int = 50,
                steps: NextSteps | None = None) -> str:
    """The HTML report: counts, meanings, the drift-by-day SVG and the first rows of each kind with their next step
    (autoescaped)."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    heads = [(kind, json_safe(head_with_steps(drift, kind, per_kind, steps)[REPORT_COLUMNS])) for kind in DRIFT_KINDS]
    return env.from_string(_TEMPLATE).render(
        summary=summary, kinds=DRIFT_KINDS, meanings=KIND_MEANINGS, chart=drift_chart_svg(drift.by_day()),
        heads=heads, columns=REPORT_COLUMNS, generated=datetime.now(UTC).isoformat(timespec="seconds"),
        way_back_meanings=WAY_BACK_MEANINGS,
    )


def report_dir(database_url: str, fallback: Path) -> Path:
    """``reports/`` beside a SQLite ledger file; ``fallback`` for a server database (PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "reports"
    return fallback


def save_html(summary: ReconcileSummary, drift: DriftSet, directory: Path, *, stamp: datetime | None = None,
              steps: NextSteps | None = None) -> Path:
    """Write the HTML report to ``directory/reconcile-<UTC stamp>.html`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    moment = (stamp or datetime.now(UTC)).astimezone(UTC)
    path = directory / f"reconcile-{moment.strftime('%Y%m%dT%H%M%SZ')}.html"
    path.write_text(render_html(summary, drift, steps=steps), encoding="utf-8")
    return path
