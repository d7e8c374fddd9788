"""The data-health page: one static HTML file (charts as inline SVG) and the same figures as JSON.

``collect`` reads the figures from the warehouse with the named queries in ``sql/data_health/``;
``render_html`` turns them into a page that needs nothing from the internet (no CDN, no script), so it
can be opened from disk, mailed, or served by the Airflow plugin ``cdp_data_health``. ``write_page``
writes both files atomically into the data-health folder (``CDP_DATA_HEALTH_DIR``, by default
``.cdp/data-health``), which in production is a volume shared by the Celery workers and the API server.

The page shows figures, never a person's values: a quarantine reason names a rule and a field, never the value
(that is in ``reason_value``, which the page does not read), and is shown as its class besides (``quarantine.sql``,
for reasons kept before revision 0020); a KPI view's error is shown by its kind, not its message.

KPIs are not listed here: every view named ``mart.kpi_<name>_monthly`` (columns month, numerator,
denominator, value; label in its ``COMMENT ON VIEW``) is found in the catalog and rendered, so a new KPI
appears on the page without a code change. A KPI view that cannot be read is shown with its error, and
does not stop the rest of the page.

Every figure on the page carries ``data-metric="…"`` so that tests (and people with a browser's
inspector) can tie a number to what it means.
"""

from __future__ import annotations

import html
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cdp.paths import SQL_DIR, state_dir
from cdp.warehouse import Actor, connect

log = logging.getLogger(__name__)

QUERIES = SQL_DIR / "data_health"
PAGE_NAME = "index.html"
JSON_NAME = "data-health.json"
NO_DATA = "no data yet"
COUNT_DIFF_DAYS = 30
DEDUPE_RUNS = 30
KPI_MONTHS = 24
SURVEY_WEEKS = 26


def data_health_dir() -> Path:
    """Where the page is written and served from."""
    path = Path(os.environ.get("CDP_DATA_HEALTH_DIR") or state_dir() / "data-health")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _query(name: str) -> str:
    return (QUERIES / f"{name}.sql").read_text()


def _plain(value: Any) -> Any:
    """JSON-friendly values: exact integers stay integers, other numerics become floats, times ISO 8601."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in conn.execute(_query(name), params)]


def _kpis(conn: psycopg.Connection) -> list[dict[str, Any]]:
    kpis = []
    for view in conn.execute(_query("kpi_views")).fetchall():
        name = view["view_name"]
        entry: dict[str, Any] = {"view": f"mart.{name}", "label": view["label"] or name, "months": []}
        statement = sql.SQL(
            "SELECT month, numerator, denominator, value FROM mart.{} ORDER BY month DESC LIMIT %s"
        ).format(sql.Identifier(name))
        try:
            with conn.transaction():  # a savepoint: one broken view must not abort the others
                rows = conn.execute(statement, (KPI_MONTHS,)).fetchall()
        except psycopg.Error as error:
            # The error's kind only: a message can quote a row's value ('invalid input syntax … "2031-02-30"').
            entry["error"] = f"{type(error).__name__} (SQLSTATE {error.sqlstate})"
            log.warning("KPI view mart.%s could not be read: %s", name, type(error).__name__)
        else:
            entry["months"] = [{k: _plain(v) for k, v in row.items()} for row in reversed(rows)]
        kpis.append(entry)
    return kpis


def collect(url: str, actor: Actor, *, now: datetime | None = None) -> dict[str, Any]:
    """Every figure the page shows, read in one read-only transaction (one consistent snapshot)."""
    now = now or datetime.now(UTC)
    with connect(url, actor) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        reconciliation = conn.execute(_query("reconciliation")).fetchone()
        totals = (
            _rows(conn, "reconciliation_totals", {"run_id": reconciliation["run_id"]})
            if reconciliation
            else []
        )
        figures = {
            "generated_at": now.isoformat(),
            "freshness": _rows(conn, "freshness", {"now": now}),
            "count_diff_history": _rows(conn, "count_diff_history", {"now": now, "days": COUNT_DIFF_DAYS}),
            "quarantine": _rows(conn, "quarantine"),
            "dedupe_runs": _rows(conn, "duplicate_rate", {"runs": DEDUPE_RUNS}),
            "reconciliation": (
                {**{k: _plain(v) for k, v in reconciliation.items()}, "totals": totals}
                if reconciliation
                else None
            ),
            "consent_coverage": _rows(conn, "consent_coverage"),
            "kpis": _kpis(conn),
            "surveys": _rows(conn, "surveys", {"weeks": SURVEY_WEEKS})[::-1],
        }
        conn.rollback()
    figures["quarantine_open_total"] = sum(row["open_count"] for row in figures["quarantine"])
    log.info(
        "data health: %d streams, %d count-diff days, %d open quarantined, %d dedupe runs, %d KPIs",
        len(figures["freshness"]), len(figures["count_diff_history"]), figures["quarantine_open_total"],
        len(figures["dedupe_runs"]), len(figures["kpis"]),
    )  # fmt: skip
    return figures


# --- rendering ------------------------------------------------------------------------------------------
# The charts are a few dozen lines of SVG by hand: a charting library would bring a CDN script or a heavy
# dependency for four bar charts.

CHART_WIDTH = 640
CHART_HEIGHT = 160
BAR_COLOUR = "#2b6cb0"
ALERT_COLOUR = "#c53030"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return f"{value:,}"


def _percent(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def _cell(metric: str, value: Any, shown: str | None = None) -> str:
    raw = "" if value is None else value
    return f'<td class="num" data-metric="{_e(metric)}" data-value="{_e(raw)}">{_e(shown or _number(value))}</td>'


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float | None], *, highlight: Iterable[int] = ()
) -> str:
    """A labelled bar chart as inline SVG; None values leave a gap."""
    highlight = set(highlight)
    present = [v for v in values if v is not None]
    top = max(present, default=0) or 1
    n = max(len(values), 1)
    slot = (CHART_WIDTH - 40) / n
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        if value is None:
            continue
        height = (CHART_HEIGHT - 30) * (value / top)
        x = 30 + i * slot
        colour = ALERT_COLOUR if i in highlight else BAR_COLOUR
        bars.append(
            f'<rect x="{x:.1f}" y="{CHART_HEIGHT - 20 - height:.1f}" width="{max(slot * 0.8, 1):.1f}" '
            f'height="{height:.1f}" fill="{colour}"><title>{_e(label)}: {_e(_number(value))}</title></rect>'
        )
    first, last = (labels[0], labels[-1]) if labels else ("", "")
    return (
        f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(title)}</title>"
        f'<line x1="30" y1="{CHART_HEIGHT - 20}" x2="{CHART_WIDTH - 10}" y2="{CHART_HEIGHT - 20}" stroke="#999"/>'
        f'<text x="30" y="12" font-size="11">max {_e(_number(top))}</text>'
        f'<text x="30" y="{CHART_HEIGHT - 5}" font-size="11">{_e(first)}</text>'
        f'<text x="{CHART_WIDTH - 10}" y="{CHART_HEIGHT - 5}" font-size="11" text-anchor="end">{_e(last)}</text>'
        + "".join(bars)
        + "</svg>"
    )


def _section(title: str, anchor: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _no_data(what: str) -> str:
    return f'<p class="empty" data-empty="{_e(what)}">{NO_DATA}</p>'


def _freshness(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _no_data("freshness")
    lines = [
        "<table><tr><th>stream</th><th>watermark</th><th>last synced</th><th>hours since</th>"
        "<th>rows read</th><th>upserted</th><th>quarantined</th></tr>"
    ]
    for row in rows:
        key = f"{row['source']}.{row['stream']}"
        hours = row["hours_since_sync"]
        lines.append(
            f"<tr><td>{_e(key)}</td><td>{_e(row['watermark'] or '–')}</td><td>{_e(row['last_synced_at'] or '–')}</td>"
            + _cell(f"freshness_hours:{key}", hours, "–" if hours is None else f"{hours:.1f}")
            + _cell(f"last_rows_read:{key}", row["last_rows_read"])
            + _cell(f"last_rows_upserted:{key}", row["last_rows_upserted"])
            + _cell(f"last_rows_quarantined:{key}", row["last_rows_quarantined"])
            + "</tr>"
        )
    return "".join(lines) + "</table>"


def _count_diffs(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _no_data("count_diff")
    chart = bar_chart(
        "streams alerting per day",
        [str(r["day"]) for r in rows],
        [r["streams_alerting"] for r in rows],
        highlight=[i for i, r in enumerate(rows) if r["streams_alerting"]],
    )
    lines = [
        chart,
        "<table><tr><th>day</th><th>streams checked</th><th>alerting</th><th>source</th><th>raw</th><th>core</th>"
        "<th>rejected</th></tr>",
    ]
    for row in rows:
        day = str(row["day"])
        lines.append(
            f"<tr><td>{_e(day)}</td>"
            + "".join(
                _cell(f"count_diff_{column}:{day}", row[column])
                for column in (
                    "streams_checked",
                    "streams_alerting",
                    "source_count",
                    "raw_count",
                    "core_count",
                    "quarantined_count",
                )  # fmt: skip
            )
            + "</tr>"
        )
    return "".join(lines) + "</table>"


def _quarantine(rows: list[dict[str, Any]], total: int) -> str:
    if not rows:
        return (
            _no_data("quarantine") + f'<p>open: <span data-metric="quarantine_open_total">{total}</span></p>'
        )
    chart = bar_chart("open quarantined records per stream", [f"{r['source']}.{r['stream']}" for r in rows],
                      [r["open_count"] for r in rows])  # fmt: skip
    lines = [
        f'<p>open in total: <strong data-metric="quarantine_open_total">{total:,}</strong></p>',
        chart,
        "<table><tr><th>stream</th><th>open</th><th>top reason</th><th>oldest</th></tr>",
    ]
    for row in rows:
        key = f"{row['source']}.{row['stream']}"
        lines.append(
            f"<tr><td>{_e(key)}</td>{_cell(f'quarantine_open:{key}', row['open_count'])}"
            f"<td>{_e(row['top_reason'])}</td><td>{_e(row['oldest_at'])}</td></tr>"
        )
    return "".join(lines) + "</table>"


def _dedupe(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _no_data("dedupe")
    chart = bar_chart(
        "duplicate rate per dedupe run",
        [str(r["started_at"])[:16] for r in rows],
        [r["duplicate_rate"] for r in rows],
        highlight=[i for i, r in enumerate(rows) if r["rate_spike"]],
    )
    lines = [
        chart,
        "<table><tr><th>run</th><th>mode</th><th>status</th><th>people compared</th><th>merged</th><th>queued</th>"
        "<th>duplicate rate</th><th>baseline</th><th>spike</th></tr>",
    ]
    for row in reversed(rows):
        run = row["run_id"]
        lines.append(
            f"<tr><td>{_e(run)}</td><td>{_e(row['mode'])}</td><td>{_e(row['status'])}</td>"
            + _cell(f"dedupe_people_compared:{run}", row["people_compared"])
            + _cell(f"dedupe_merged:{run}", row["merged"])
            + _cell(f"dedupe_queued:{run}", row["queued"])
            + _cell(f"duplicate_rate:{run}", row["duplicate_rate"], _percent(row["duplicate_rate"]))
            + _cell(f"baseline_rate:{run}", row["baseline_rate"], _percent(row["baseline_rate"]))
            + f"<td>{'yes' if row['rate_spike'] else 'no'}</td></tr>"
        )
    return "".join(lines) + "</table>"


def _minor(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency}" if currency and currency != "---" else f"{amount:,}"


def _reconciliation(run: dict[str, Any] | None) -> str:
    if run is None:
        return _no_data("reconciliation")
    status_class = "ok" if run["status"] == "passed" else "bad"
    lines = [
        f'<p>month <strong>{_e(run["month"])}</strong>: <strong class="{status_class}" '
        f'data-metric="reconciliation_status" data-value="{_e(run["status"])}">{_e(run["status"])}</strong>, '
        f'gifts <span data-metric="reconciliation_gifts" data-value="{_e(run["gifts"])}">{_e(run["gifts"])}</span>, '
        f'unexplained <span data-metric="reconciliation_unexplained" data-value="{_e(run["unexplained_count"])}">'
        f"{_e(run['unexplained_count'])}</span> (run {_e(run['run_id'])}, finished {_e(run['finished_at'])})</p>",
        "<table><tr><th>class</th><th>currency</th><th>rows</th><th>warehouse</th><th>Stripe</th><th>ledger</th>"
        "<th>difference</th><th>unexplained</th></tr>",
    ]
    for row in run["totals"]:
        key = f"{row['class']}:{row['currency']}"
        lines.append(
            f"<tr><td>{_e(row['class'])}</td><td>{_e(row['currency'])}</td>"
            + _cell(f"reconciliation_rows:{key}", row["rows"])
            + "".join(
                _cell(f"reconciliation_{column}:{key}", row[column], _minor(row[column], row["currency"]))
                for column in ("warehouse_minor", "stripe_minor", "ledger_minor", "difference_minor")
            )
            + _cell(f"reconciliation_unexplained:{key}", row["unexplained"])
            + "</tr>"
        )
    return "".join(lines) + "</table>"


def _consent(rows: list[dict[str, Any]]) -> str:
    if not rows or not any(r["people"] for r in rows):
        return _no_data("consent")
    lines = ["<table><tr><th>purpose</th><th>people</th><th>with a statement</th><th>coverage</th>"
             "<th>may be contacted</th></tr>"]  # fmt: skip
    for row in rows:
        purpose = row["purpose"]
        coverage = row["with_statement"] / row["people"] if row["people"] else None
        lines.append(
            f"<tr><td>{_e(purpose)}</td>"
            + _cell(f"consent_people:{purpose}", row["people"])
            + _cell(f"consent_with_statement:{purpose}", row["with_statement"])
            + _cell(f"consent_coverage:{purpose}", coverage, _percent(coverage))
            + _cell(f"consent_eligible:{purpose}", row["eligible"])
            + "</tr>"
        )
    return "".join(lines) + "</table>"


def _kpi_block(kpi: dict[str, Any]) -> str:
    view = kpi["view"]
    head = f'<h3 data-kpi="{_e(view)}">{_e(kpi["label"])} <small>({_e(view)})</small></h3>'
    if "error" in kpi:
        return head + f'<p class="bad">could not be read: {_e(kpi["error"])}</p>'
    months = kpi["months"]
    if not months:
        return head + _no_data(view)
    chart = bar_chart(kpi["label"], [str(m["month"])[:7] for m in months], [m["value"] for m in months])
    cells = "".join(
        f"<tr><td>{_e(str(m['month'])[:7])}</td>"
        + _cell(f"kpi_numerator:{view}:{m['month']}", m["numerator"])
        + _cell(f"kpi_denominator:{view}:{m['month']}", m["denominator"])
        + _cell(
            f"kpi_value:{view}:{m['month']}",
            m["value"],
            _number(m["value"], 4) if m["value"] is not None else None,
        )
        + "</tr>"
        for m in months
    )
    return (
        head
        + chart
        + f"<table><tr><th>month</th><th>numerator</th><th>denominator</th><th>value</th></tr>{cells}</table>"
    )


def signed_bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float | None], *, scale: float
) -> str:
    """Bars up from a zero line for positive values and down for negative ones (a net promoter score runs from
    -scale to +scale); None values leave a gap."""
    n = max(len(values), 1)
    slot = (CHART_WIDTH - 40) / n
    middle = (CHART_HEIGHT - 20) / 2 + 5
    half = (CHART_HEIGHT - 30) / 2
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        if value is None:
            continue
        height = half * min(abs(value), scale) / scale
        y = middle - height if value >= 0 else middle
        colour = BAR_COLOUR if value >= 0 else ALERT_COLOUR
        bars.append(
            f'<rect x="{30 + i * slot:.1f}" y="{y:.1f}" width="{max(slot * 0.8, 1):.1f}" height="{height:.1f}" '
            f'fill="{colour}"><title>{_e(label)}: {_e(_number(value, 1))}</title></rect>'
        )
    first, last = (labels[0], labels[-1]) if labels else ("", "")
    return (
        f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(title)}</title>"
        f'<line x1="30" y1="{middle:.1f}" x2="{CHART_WIDTH - 10}" y2="{middle:.1f}" stroke="#999"/>'
        f'<text x="30" y="12" font-size="11">+{_e(_number(scale))}</text>'
        f'<text x="30" y="{CHART_HEIGHT - 5}" font-size="11">{_e(first)} (-{_e(_number(scale))} at the bottom)</text>'
        f'<text x="{CHART_WIDTH - 10}" y="{CHART_HEIGHT - 5}" font-size="11" text-anchor="end">{_e(last)}</text>'
        + "".join(bars)
        + "</svg>"
    )


def _surveys(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _no_data("surveys")
    weeks = [str(r["sample_week"]) for r in rows]
    rates = [None if r["response_rate"] is None else float(r["response_rate"]) for r in rows]
    scores = [None if r["nps"] is None else float(r["nps"]) for r in rows]
    lines = [
        "<table><tr><th>sample week</th><th>invited</th><th>answered</th><th>response rate</th>"
        "<th>NPS answers</th><th>NPS</th><th>satisfaction answers</th><th>satisfaction (1-5)</th></tr>"
    ]
    for row in rows:
        week = str(row["sample_week"])
        lines.append(
            f"<tr><td>{_e(week)}</td>"
            + _cell(f"survey_invited:{week}", row["invited"])
            + _cell(f"survey_responded:{week}", row["responded"])
            + _cell(f"survey_response_rate:{week}", row["response_rate"], _percent(row["response_rate"]))
            + _cell(f"survey_nps_answers:{week}", row["nps_answers"])
            + _cell(f"survey_nps:{week}", row["nps"], _number(row["nps"], 1) if row["nps"] is not None else "–")
            + _cell(f"survey_satisfaction_answers:{week}", row["satisfaction_answers"])
            + _cell(f"survey_satisfaction:{week}", row["satisfaction_mean"],
                    _number(row["satisfaction_mean"], 2) if row["satisfaction_mean"] is not None else "–")
            + "</tr>"
        )  # fmt: skip
    return (
        bar_chart("response rate per sample week", weeks, rates)
        + signed_bar_chart("net promoter score per sample week", weeks, scores, scale=100)
        + "".join(lines)
        + "</table>"
    )


def _kpis_html(kpis: list[dict[str, Any]]) -> str:
    if not kpis:
        return _no_data("kpis")
    return "".join(_kpi_block(kpi) for kpi in kpis)


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1a202c;max-width:72rem}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #cbd5e0;padding:.2rem .5rem}"
    "th{background:#edf2f7;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".empty{color:#718096;font-style:italic}.bad{color:#c53030}.ok{color:#2f855a}svg.chart{display:block}"
    "nav a{margin-right:1rem}"
)

SECTIONS = (
    ("Freshness of each source", "freshness"),
    ("Count-diff history", "count-diff"),
    ("Open quarantine", "quarantine"),
    ("Duplicate rate (dedupe runs)", "dedupe"),
    ("Last reconciliation", "reconciliation"),
    ("Consent coverage", "consent"),
    ("Survey response rate and NPS", "surveys"),
    ("KPIs", "kpis"),
)


def render_html(figures: dict[str, Any]) -> str:
    """The page: self-contained HTML, no script, no external resource."""
    bodies = {
        "freshness": _freshness(figures["freshness"]),
        "count-diff": _count_diffs(figures["count_diff_history"]),
        "quarantine": _quarantine(figures["quarantine"], figures["quarantine_open_total"]),
        "dedupe": _dedupe(figures["dedupe_runs"]),
        "reconciliation": _reconciliation(figures["reconciliation"]),
        "consent": _consent(figures["consent_coverage"]),
        "surveys": _surveys(figures["surveys"]),
        "kpis": _kpis_html(figures["kpis"]),
    }
    nav = "".join(f'<a href="#{anchor}">{_e(title)}</a>' for title, anchor in SECTIONS)
    sections = "".join(_section(title, anchor, bodies[anchor]) for title, anchor in SECTIONS)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Data health</title>'
        f"<style>{STYLE}</style></head><body><h1>Data health</h1>"
        f'<p>generated <time data-metric="generated_at">{_e(figures["generated_at"])}</time> by '
        f'<code>cdp_data_health</code>; figures as JSON: <a href="{JSON_NAME}">{JSON_NAME}</a></p>'
        f"<nav>{nav}</nav>{sections}</body></html>"
    )


def _atomic_write(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, delete=False, encoding="utf-8", suffix=".tmp"
    ) as f:
        f.write(text)
    os.replace(f.name, path)
    path.chmod(0o644)


def write_page(figures: dict[str, Any], folder: Path | None = None) -> dict[str, str]:
    """Write the page and its JSON (each replaced atomically, so a reader never sees half a page)."""
    folder = folder or data_health_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / JSON_NAME, json.dumps(figures, indent=1, sort_keys=True))
    _atomic_write(folder / PAGE_NAME, render_html(figures))
    return {"html": str(folder / PAGE_NAME), "json": str(folder / JSON_NAME)}


def build(
    url: str, actor: Actor, folder: Path | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """Collect and write; what the DAG's task returns (paths and a few counts, no personal data)."""
    figures = collect(url, actor, now=now)
    paths = write_page(figures, folder)
    return {
        **paths,
        "streams": len(figures["freshness"]),
        "quarantine_open_total": figures["quarantine_open_total"],
        "kpis": len(figures["kpis"]),
    }
