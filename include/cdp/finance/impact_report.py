"""The funder report: one fund's impact per month (``mart.fund_impact_monthly``) as CSV and HTML.

Reproducible: the files hold only the mart's rows, sorted, and the query that lists the rows behind each
figure (``mart.fund_impact_rows``); no run time, login or host. A re-run for a closed period gives the same
bytes unless the data behind it changed. Amounts come from integer minor units, never through floats.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from cdp.finance.results import format_minor

COLUMNS = (
    "fund", "month", "currency", "learners_enrolled", "enrollments_weighted", "learners_completed",
    "completions_weighted", "completion_rate", "survey_responses", "nps_answers", "nps", "satisfaction_answers",
    "satisfaction_mean", "allocated_minor", "cost_per_completion_minor",
)  # fmt: skip
DRILLDOWN = (
    "SELECT measure, row_id, person_id, at, share, weight, nps_score, satisfaction_score, amount_minor, currency\n"
    "  FROM mart.fund_impact_rows\n"
    " WHERE {fund} AND month BETWEEN DATE '{first}' AND DATE '{last}'\n"
    " ORDER BY month, measure, at, row_id;"
)


@dataclass(frozen=True)
class FundReport:
    fund: str
    fund_id: str | None  # None: the unmapped activity
    rows: list[dict]
    drilldown: str


def parse_month(text: str) -> date:
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise ValueError(f"a month is YYYY-MM, not {text!r}") from None


def load(conn: psycopg.Connection, fund: str, first: date, last: date) -> FundReport:
    """The fund (its fund id, GAU Salesforce Id or name; ``unmapped`` for unmapped activity) and its rows."""
    if last < first:
        raise ValueError(f"the period ends ({last:%Y-%m}) before it starts ({first:%Y-%m})")
    cur = conn.cursor(row_factory=dict_row)
    if fund == "unmapped":
        fund_id, name, where = None, "unmapped", "fund_id IS NULL"
    else:
        found = cur.execute(
            "SELECT fund_id::text, name FROM core.fund WHERE fund_id::text = %s OR source_record_id = %s"
            " OR name = %s ORDER BY fund_id", (fund, fund, fund)).fetchall()  # fmt: skip
        if len(found) != 1:
            raise ValueError(
                f"no fund {fund!r}" if not found else f"{fund!r} names {len(found)} funds: use its id"
            )
        fund_id, name = found[0]["fund_id"], found[0]["name"]
        where = f"fund_id = '{fund_id}'"
    rows = cur.execute(
        f"SELECT {', '.join(COLUMNS)} FROM mart.fund_impact_monthly WHERE {where} AND month BETWEEN %s AND %s"
        " ORDER BY month, currency NULLS FIRST", (first, last)).fetchall()  # fmt: skip
    drilldown = DRILLDOWN.format(fund=where, first=first.isoformat(), last=last.isoformat())
    return FundReport(name, fund_id, rows, drilldown)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return f"{value:%Y-%m}"
    return str(value)


def render_csv(report: FundReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in report.rows:
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def _chart(rows: list[dict]) -> str:
    """An inline SVG bar chart: learners enrolled and completed per month (no external assets)."""
    months: dict[str, tuple[int, int]] = {}
    for row in rows:
        months[f"{row['month']:%Y-%m}"] = (row["learners_enrolled"], row["learners_completed"])
    top = max([1, *(max(v) for v in months.values())])
    width, height, bar = 60 * max(1, len(months)) + 40, 220, 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"'
             ' aria-label="learners enrolled and completed per month">']  # fmt: skip
    for i, (label, (enrolled, completed)) in enumerate(months.items()):
        x = 30 + 60 * i
        for j, (value, colour, what) in enumerate(((enrolled, "#4c78a8", "enrolled"), (completed, "#59a14f",
                                                                                           "completed"))):  # fmt: skip
            h = round(160 * value / top)
            parts.append(f'<rect x="{x + j * bar}" y="{180 - h}" width="{bar - 2}" height="{h}" fill="{colour}">'
                         f"<title>{label} {what}: {value}</title></rect>")  # fmt: skip
        parts.append(f'<text x="{x}" y="198" font-size="11">{label}</text>')
    parts.append(
        '<text x="30" y="214" font-size="11">blue: learners enrolled, green: learners completed</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: FundReport, first: date, last: date) -> str:
    title = f"Impact of {report.fund}, {first:%Y-%m} to {last:%Y-%m}"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in report.rows:
        cells = []
        for c in COLUMNS:
            value = row[c]
            if (
                c in ("allocated_minor", "cost_per_completion_minor")
                and value is not None
                and row["currency"]
            ):
                value = format_minor(value, row["currency"])
            cells.append(f"<td>{html.escape(_cell(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>\n<h1>{html.escape(title)}</h1>\n"
        f"{_chart(report.rows)}\n<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>\n"
        "<p>Every figure is a count or sum over <code>mart.fund_impact_rows</code> (definitions in "
        "<code>sql/definitions/mart/fund_impact_monthly.sql</code>). The rows behind this report:</p>\n"
        f"<pre>{html.escape(report.drilldown)}</pre>\n</body></html>\n"
    )


def write(
    conn: psycopg.Connection, fund: str, first: date, last: date, folder: Path
) -> tuple[FundReport, list[Path]]:
    """Write impact.csv, report.html and drilldown.sql into ``folder``; returns the report and the paths."""
    report = load(conn, fund, first, last)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "impact.csv": render_csv(report),
        "report.html": render_html(report, first, last),
        "drilldown.sql": report.drilldown + "\n",
    }
    paths = []
    for name, text in sorted(files.items()):
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="\n")
        paths.append(path)
    return report, paths


def command(args) -> int:
    """``cdp funds report --fund F --from YYYY-MM --to YYYY-MM --out DIR``."""
    from cdp.warehouse import resolve_url

    try:
        first, last = parse_month(args.first), parse_month(args.last)
        with psycopg.connect(resolve_url()) as conn:
            report, paths = write(conn, args.fund, first, last, Path(args.out))
    except ValueError as error:
        print(f"error: {error}")
        return 2
    except psycopg.errors.InsufficientPrivilege as error:
        print(f"refused: {error.diag.message_primary}")
        return 4
    for path in paths:
        print(f"wrote {path}")
    print("the rows behind each figure:")
    print(report.drilldown)
    return 0


def register(actions) -> None:
    report = actions.add_parser("report", help="a fund's impact per month as CSV and HTML (reproducible)")
    report.add_argument("--fund", required=True, help="fund id, GAU Salesforce Id or name; 'unmapped'")
    report.add_argument("--from", dest="first", required=True, metavar="YYYY-MM")
    report.add_argument("--to", dest="last", required=True, metavar="YYYY-MM")
    report.add_argument(
        "--out", required=True, help="the folder to write impact.csv, report.html, drilldown.sql"
    )
    report.set_defaults(handler=command)
