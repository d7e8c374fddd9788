"""The funder report: one fund's impact per month (``mart.fund_impact_monthly``) as CSV and HTML, and its survey
outcomes over the period against the previous period of equal length (before/after, ``outcomes.csv``).

Reproducible: the files hold only the mart's rows, sorted, and the query that lists the rows behind each
figure (``mart.fund_impact_rows``); no run time, login or host. A re-run for a closed period gives the same
bytes unless the data behind it changed. Amounts come from integer minor units, never through floats.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from cdp.finance.results import format_minor

COLUMNS = (
    "fund", "month", "currency", "learners_enrolled", "enrollments_weighted", "learners_completed",
    "completions_weighted", "completion_rate", "survey_responses", "nps_answers", "nps", "satisfaction_answers",
    "satisfaction_mean", "allocated_minor", "cost_per_completion_minor", "learners_reengaged", "reengagement_rate",
    "skills_answers", "skills_improved_share", "survey_responses_before", "nps_before", "satisfaction_mean_before",
    "skills_improved_share_before",
)  # fmt: skip
# The rows behind every figure: the period's, and the previous period's (of equal length) behind "before".
DRILLDOWN = (
    "SELECT measure, row_id, person_id, at, share, weight, nps_score, satisfaction_score, amount_minor, currency,\n"
    "       reengaged, skills_improved,\n"
    "       CASE WHEN month < DATE '{first}' THEN 'before' ELSE 'period' END AS period\n"
    "  FROM mart.fund_impact_rows\n"
    " WHERE {fund} AND month BETWEEN DATE '{before}' AND DATE '{last}'\n"
    " ORDER BY month, measure, at, row_id;"
)
# Survey outcomes and re-engagement over the whole period and the previous period of equal length, by the
# formulas of mart.fund_impact_monthly (sql/definitions/mart/fund_impact_monthly.sql) over the same rows; for a
# one-month period they are that month's figures and its *_before columns (tests/funds/test_impact.py).
OUTCOMES = """
SELECT p.period, p.first_month, p.last_month,
       count(DISTINCT r.person_id) FILTER (WHERE r.measure = 'enrollment') AS learners_enrolled,
       count(DISTINCT r.person_id) FILTER (WHERE r.measure = 'enrollment' AND r.reengaged) AS learners_reengaged,
       count(r.row_id) FILTER (WHERE r.measure = 'survey_response') AS survey_responses,
       count(r.nps_score) AS nps_answers,
       round(100 * (coalesce(sum(r.weight) FILTER (WHERE r.nps_score >= 9), 0)
                    - coalesce(sum(r.weight) FILTER (WHERE r.nps_score <= 6), 0))
             / nullif(sum(r.weight) FILTER (WHERE r.nps_score IS NOT NULL), 0), 1) AS nps,
       count(r.satisfaction_score) AS satisfaction_answers,
       round(sum(r.weight * r.satisfaction_score)
             / nullif(sum(r.weight) FILTER (WHERE r.satisfaction_score IS NOT NULL), 0), 2) AS satisfaction_mean,
       count(r.skills_improved) AS skills_answers,
       round(coalesce(sum(r.weight) FILTER (WHERE r.skills_improved), 0)
             / nullif(sum(r.weight) FILTER (WHERE r.skills_improved IS NOT NULL), 0), 4) AS skills_improved_share
FROM (VALUES ('before', %(before)s::date, %(before_last)s::date), ('period', %(first)s::date, %(last)s::date))
     AS p(period, first_month, last_month)
LEFT JOIN mart.fund_impact_rows r
       ON r.{fund} AND r.measure <> 'allocation' AND r.month BETWEEN p.first_month AND p.last_month
GROUP BY p.period, p.first_month, p.last_month
ORDER BY p.first_month
"""
OUTCOME_COLUMNS = (
    "period", "first_month", "last_month", "learners_enrolled", "learners_reengaged", "survey_responses",
    "nps_answers", "nps", "satisfaction_answers", "satisfaction_mean", "skills_answers", "skills_improved_share",
)  # fmt: skip


# The audit trail's record of the rows behind the report: corrections (update, delete) of its enrollments,
# completions, survey responses and gift allocations, and every reviewed change to the program of its courses
# or the funds of its programs (these decide the attribution). Loads (inserts of activity) are not listed.
CHANGES = """
WITH r AS (
    SELECT * FROM mart.fund_impact_rows WHERE {fund} AND month BETWEEN %(first)s AND %(last)s
), keys AS (
    SELECT 'core.enrollment' AS entity_type, row_id::text AS entity_id FROM r WHERE measure = 'enrollment'
    UNION SELECT 'core.course_completion', row_id::text FROM r WHERE measure = 'completion'
    UNION SELECT 'core.survey_response', row_id::text FROM r WHERE measure = 'survey_response'
    UNION SELECT 'core.donation_allocation', a.source_record_id
          FROM r JOIN core.donation_allocation a ON a.allocation_id = r.row_id WHERE r.measure = 'allocation'
    UNION SELECT 'core.program_course', course_id::text FROM r WHERE course_id IS NOT NULL
    UNION SELECT 'core.program_fund', program_id::text FROM r WHERE program_id IS NOT NULL
)
SELECT e.seq, e.occurred_at, e.entity_type, e.action, e.entity_id
FROM audit.readable_events e
JOIN keys k ON k.entity_type = e.entity_type AND k.entity_id = e.entity_id
WHERE e.action IN ('update', 'delete')
   OR (e.action = 'insert' AND e.entity_type IN ('core.program_course', 'core.program_fund'))
ORDER BY e.seq
"""
CHANGE_COLUMNS = ("seq", "occurred_at", "entity_type", "action", "entity_id")


@dataclass(frozen=True)
class FundReport:
    fund: str
    fund_id: str | None  # None: the unmapped activity
    rows: list[dict]
    drilldown: str
    changes: list[dict]
    outcomes: list[dict]  # before (the previous period of equal length) and period


def previous_period(first: date, last: date) -> tuple[date, date]:
    """The months just before ``first``, as many as ``first``..``last`` has (first days of months)."""
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    index = first.year * 12 + first.month - 1 - months
    before = date(index // 12, index % 12 + 1, 1)
    index = first.year * 12 + first.month - 2
    return before, date(index // 12, index % 12 + 1, 1)


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
    before, before_last = previous_period(first, last)
    drilldown = DRILLDOWN.format(
        fund=where, before=before.isoformat(), first=first.isoformat(), last=last.isoformat()
    )
    changes = cur.execute(CHANGES.format(fund=where), {"first": before, "last": last}).fetchall()
    outcomes = cur.execute(
        OUTCOMES.format(fund=where),
        {"before": before, "before_last": before_last, "first": first, "last": last},
    ).fetchall()
    return FundReport(name, fund_id, rows, drilldown, changes, outcomes)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return f"{value:%Y-%m}"
    return str(value)


def render_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
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


def describe(change: dict) -> str:
    return (
        f"audit seq {change['seq']}: {change['action']} of {change['entity_type']} {change['entity_id']}"
        f" at {_cell(change['occurred_at'])}"
    )


def _changes(changes: list[dict]) -> str:
    if not changes:
        return (
            "<p>The audit trail records no correction of these rows and no program change behind them.</p>\n"
        )
    items = "".join(f"<li>{html.escape(describe(c))}</li>" for c in changes)
    return (
        "<p>Audited changes to the rows behind this report and to their programs' mappings (changes.csv); a "
        f"re-run differs from an earlier one only through data these or new rows changed:</p>\n<ul>{items}</ul>\n"
    )


def _outcomes(report: FundReport) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in OUTCOME_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in OUTCOME_COLUMNS) + "</tr>"
        for row in report.outcomes
    )
    return (
        "<h2>Survey outcomes and re-engagement, before and after</h2>\n<p>The period against the previous period "
        "of equal length (outcomes.csv): NPS 0-10 (promoters 9-10 minus detractors 0-6), satisfaction 1-5, the "
        "share answering the skills question positively (4-5 or yes), learners re-engaged (enrolled before, but "
        "not in the 90 days before their month).</p>\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"
    )


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
        f"{_outcomes(report)}"
        "<p>Every figure is a count or sum over <code>mart.fund_impact_rows</code> (definitions in "
        "<code>sql/definitions/mart/fund_impact_monthly.sql</code>). The rows behind this report (period 'before': "
        "the previous period's):</p>\n"
        f"<pre>{html.escape(report.drilldown)}</pre>\n{_changes(report.changes)}</body></html>\n"
    )


def write(
    conn: psycopg.Connection, fund: str, first: date, last: date, folder: Path
) -> tuple[FundReport, list[Path]]:
    """Write impact.csv, outcomes.csv, changes.csv, report.html and drilldown.sql into ``folder``; returns the
    report and the paths."""
    report = load(conn, fund, first, last)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "impact.csv": render_csv(report.rows, COLUMNS),
        "changes.csv": render_csv(report.changes, CHANGE_COLUMNS),
        "outcomes.csv": render_csv(report.outcomes, OUTCOME_COLUMNS),
        "report.html": render_html(report, first, last),
        "drilldown.sql": report.drilldown + "\n",
    }
    paths = []
    for name, text in sorted(files.items()):
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="\n")
        paths.append(path)
    return report, paths


# Every fund the month's reports cover: each fund still in the CRM, and a deleted one with rows that month.
FUNDS_OF_MONTH = """
SELECT f.fund_id::text AS fund_id, f.source_record_id, f.name
FROM core.fund f
WHERE f.deleted_at IS NULL
   OR EXISTS (SELECT 1 FROM mart.fund_impact_rows r WHERE r.fund_id = f.fund_id AND r.month = %(month)s)
ORDER BY f.source_record_id, f.fund_id
"""


@dataclass(frozen=True)
class MonthReports:
    month: str
    folder: Path
    funds: list[dict]  # fund_id, source_record_id, name, folder, changes (audit seqs named by its report)


def _folder_name(fund: dict) -> str:
    """The GAU's Salesforce Id (letters and digits) names the fund's folder; else its fund id."""
    name = fund["source_record_id"] or ""
    return name if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) else fund["fund_id"]


def write_month(conn: psycopg.Connection, month: str, root: Path) -> MonthReports:
    """Every fund's report for one closed month in ``root/funder-reports-<month>/<GAU Id>/``, with
    ``funds.csv`` (which fund is in which folder, and the audit events its report names) and ``SHA256SUMS``.
    Read in one read-only snapshot; written beside the old folder and swapped in whole, so a failed run leaves
    the previous folder as it was. The same data gives the same bytes."""
    first = parse_month(month)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    if datetime.now(UTC).date() < following:
        raise ValueError(f"{month} is not closed yet: a funder report is written for a month that has ended")
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    with conn.transaction():
        funds = conn.cursor(row_factory=dict_row).execute(FUNDS_OF_MONTH, {"month": first}).fetchall()
        target = root / f"funder-reports-{month}"
        staging = root / f".funder-reports-{month}.new"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        listed = []
        for fund in funds:
            folder = _folder_name(fund)
            report, _paths = write(conn, fund["fund_id"], first, first, staging / folder)
            seqs = " ".join(str(change["seq"]) for change in report.changes)
            listed.append({**fund, "folder": folder, "changes": seqs})
    (staging / "funds.csv").write_text(
        render_csv(listed, ("folder", "fund_id", "source_record_id", "name", "changes")), encoding="utf-8",
        newline="\n",
    )  # fmt: skip
    sums = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(staging).as_posix()}\n"
        for path in sorted(staging.rglob("*"), key=lambda p: p.relative_to(staging).as_posix())
        if path.is_file()
    ]
    (staging / "SHA256SUMS").write_text("".join(sums), encoding="utf-8", newline="\n")
    old = root / f".funder-reports-{month}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return MonthReports(month, target, listed)


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
    for change in report.changes:
        print(describe(change))
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
