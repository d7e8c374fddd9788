"""The finance report of a reconciliation run: totals per class, the differing rows, month over month.

HTML for people, CSV for spreadsheets; both written from SQL results (``sql/finance/report_*.sql``).
Amounts are shown from integer minor units, never through floats.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

import psycopg

from cdp.finance.results import Reconciliation, format_minor
from cdp.paths import SQL_DIR

DIFFERENCE_ROWS = 5000
CSV_COLUMNS = (
    "section", "month", "class", "financial_transaction_id", "currency", "rows", "warehouse_minor", "stripe_minor",
    "ledger_minor", "crm_minor", "difference_minor", "unexplained", "explanation", "person_id", "campaign",
    "is_learner", "enrollments", "completions", "referrals_made", "latest_course",
)  # fmt: skip


def _money(minor: int | None, currency: str) -> str:
    return "" if minor is None else format_minor(minor, currency)


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(conn: psycopg.Connection, result: Reconciliation, folder: Path) -> tuple[Path, Path]:
    month = f"{result.month:%Y-%m}"
    folder.mkdir(parents=True, exist_ok=True)
    differences = conn.execute(
        (SQL_DIR / "finance" / "report_differences.sql").read_text(),
        {"run_id": result.run_id, "limit": DIFFERENCE_ROWS},
    ).fetchall()
    history = conn.execute(
        (SQL_DIR / "finance" / "report_history.sql").read_text(), {"month": result.month}
    ).fetchall()

    csv_path = folder / f"reconciliation_{month}_run{result.run_id}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for t in result.totals:
            writer.writerow({"section": "total", "month": month, "class": t.class_, "currency": t.currency,
                             "rows": t.rows, "warehouse_minor": t.warehouse_minor, "stripe_minor": t.stripe_minor,
                             "ledger_minor": t.ledger_minor, "crm_minor": t.crm_minor,
                             "difference_minor": t.difference_minor,
                             "unexplained": t.unexplained})  # fmt: skip
        for row in differences:
            writer.writerow({**row, "section": "difference", "month": month, "rows": 1,
                             "unexplained": int(not row["explained"])})  # fmt: skip
        for row in history:
            writer.writerow({**row, "section": "history"})

    totals = _table(
        ["class", "currency", "rows", "warehouse", "Stripe", "ledger", "CRM", "difference", "unexplained"],
        [[t.class_, t.currency, t.rows, _money(t.warehouse_minor, t.currency), _money(t.stripe_minor, t.currency),
          _money(t.ledger_minor, t.currency), _money(t.crm_minor, t.currency), _money(t.difference_minor, t.currency),
          t.unexplained]
         for t in result.totals],
    )  # fmt: skip
    diff_table = _table(
        ["class", "financial transaction", "warehouse", "Stripe", "ledger", "CRM", "difference", "explained", "donor",
         "campaign", "learner: enrollments / completions", "referrals made"],
        [[r["class"], r["financial_transaction_id"], _money(r["warehouse_minor"], r["currency"] or ""),
          _money(r["stripe_minor"], r["currency"] or ""), _money(r["ledger_minor"], r["currency"] or ""),
          _money(r["crm_minor"], r["currency"] or ""), _money(r["difference_minor"], r["currency"] or ""),
          r["explanation"] or ("yes" if r["explained"] else "no"),
          r["person_id"], r["campaign"],
          "" if r["enrollments"] is None else f"{r['enrollments']} / {r['completions']}", r["referrals_made"]]
         for r in differences],
    )  # fmt: skip
    history_table = _table(
        ["month", "status", "class", "currency", "rows", "difference", "unexplained"],
        [[h["month"], h["status"], h["class"], h["currency"], h["rows"],
          _money(h["difference_minor"], h["currency"]), h["unexplained"]] for h in history],
    )  # fmt: skip
    verdict = (
        "reconciled" if result.status == "passed" else f"NOT reconciled: {result.unexplained} unexplained"
    )
    html_path = folder / f"reconciliation_{month}_run{result.run_id}.html"
    html_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Reconciliation {month}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}</style></head><body>"
        f"<h1>Donations reconciliation {month}</h1><p>Run {result.run_id}: {result.gifts} gifts, {verdict}.</p>"
        f"<h2>Totals per class</h2>{totals}"
        f"<h2>Differing rows ({len(differences)} shown)</h2>{diff_table}"
        f"<h2>Month over month</h2>{history_table}</body></html>",
        encoding="utf-8",
    )
    return html_path, csv_path
