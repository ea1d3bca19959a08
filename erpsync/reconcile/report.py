"""The reconciliation report: counts by drift kind, a markdown summary, and an HTML page with a drift-by-day chart."""

from __future__ import annotations

from dataclasses import dataclass
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
                  "erp_modified", "detail"]
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


def first_rows(drift: DriftSet, per_kind: int = 10) -> list[dict[str, Any]]:
    """The first ``per_kind`` rows of each kind as JSON-ready dicts (a Prefect table artifact's rows)."""
    frames = [drift.head(kind, per_kind) for kind in DRIFT_KINDS]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return []
    return json_safe(pd.concat(frames)[REPORT_COLUMNS])


def markdown_summary(summary: ReconcileSummary, drift: DriftSet, per_kind: int = 5) -> str:
    """Markdown for a summary artifact: counts by kind, then the first rows of each kind."""
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
    ]
    for kind in DRIFT_KINDS:
        head = drift.head(kind, per_kind)
        if head.empty:
            continue
        lines += ["", f"## {kind} (first {len(head)})", "", "| external id | entity | ERP id | fields | newer |",
                  "|---|---|---|---|---|"]
        for row in head.itertuples(index=False):
            lines.append(f"| {_cell(row.external_id)} | {_cell(row.entity_id)} | {_cell(row.erp_id)} | "
                         f"{_cell(row.fields)} | {row.newer} |")
    return "\n".join(lines) + "\n"


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


def render_html(summary: ReconcileSummary, drift: DriftSet, *, per_kind: int = 50) -> str:
    """The HTML report: counts, meanings, the drift-by-day SVG and the first rows of each kind (autoescaped)."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    heads = [(kind, json_safe(drift.head(kind, per_kind)[REPORT_COLUMNS])) for kind in DRIFT_KINDS]
    return env.from_string(_TEMPLATE).render(
        summary=summary, kinds=DRIFT_KINDS, meanings=KIND_MEANINGS, chart=drift_chart_svg(drift.by_day()),
        heads=heads, columns=REPORT_COLUMNS, generated=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def report_dir(database_url: str, fallback: Path) -> Path:
    """``reports/`` beside a SQLite ledger file; ``fallback`` for a server database (PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "reports"
    return fallback


def save_html(summary: ReconcileSummary, drift: DriftSet, directory: Path, *, stamp: datetime | None = None) -> Path:
    """Write the HTML report to ``directory/reconcile-<UTC stamp>.html`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    moment = (stamp or datetime.now(UTC)).astimezone(UTC)
    path = directory / f"reconcile-{moment.strftime('%Y%m%dT%H%M%SZ')}.html"
    path.write_text(render_html(summary, drift), encoding="utf-8")
    return path
