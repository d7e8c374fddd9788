"""Monthly reconciliation: warehouse donations vs Stripe balance transactions vs the finance ledger, and
the CRM's closed-won Opportunity amounts (class ``crm_amount_mismatch``) and gifts it never got (``not_in_crm``).

Matching and counting happen in SQL (``sql/finance/reconcile.sql``) by financial transaction id, exact to
the cent and per currency. A run keeps its totals per class (the month-over-month history), its differing
rows and a report for finance. A difference nobody has explained (``ops.reconciliation_explanation``)
fails the run, so the DAG alerts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlparse

from cdp import audit
from cdp.finance.report import write_report
from cdp.finance.results import ClassTotal, Reconciliation, format_minor
from cdp.paths import SQL_DIR
from cdp.quality.data_alerts import Finding, alert_once
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

FINANCE_SQL = SQL_DIR / "finance"
ACCOUNTED = frozenset({"matched", "fee_accounted", "refund_accounted", "payout_accounted"})
#: Money whose whereabouts are known though it is not in core: Stripe balance transactions of charges that
#: never reached the warehouse, waiting in ops.quarantine. Listed in the report, never unexplained.
HELD = frozenset({"stripe_quarantined"})


class UnexplainedDifference(RuntimeError):
    """The month did not reconcile: rows differ and nobody has explained why."""


def month_bounds(month: date | str) -> tuple[date, date]:
    """A month ("2024-03" or any date in it) as [first day, first day of the next month)."""
    if isinstance(month, str):
        year, mon = (int(part) for part in month[:7].split("-"))
        month = date(year, mon, 1)
    start = month.replace(day=1)
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


def previous_month(moment: datetime | None) -> str:
    """The month before ``moment`` (a run's logical date; now for a manual run without one), as YYYY-MM."""
    moment = moment or datetime.now(UTC)
    first = moment.date().replace(day=1)
    last_month = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    return f"{last_month:%Y-%m}"


def statements(name: str) -> list[str]:
    text = (FINANCE_SQL / name).read_text()
    return [s for s in sqlparse.split(text) if sqlparse.format(s, strip_comments=True).strip()]


def reconcile_month(
    url: str,
    month: date | str,
    *,
    actor: Actor,
    airflow_run_id: str | None = None,
    report_dir: Path | None = None,
) -> Reconciliation:
    """Reconcile one month in one transaction; write the report when ``report_dir`` is given."""
    started = time.monotonic()
    month_start, month_end = month_bounds(month)
    with transaction(url, actor) as conn:
        run_id = conn.execute(
            "INSERT INTO ops.reconciliation_run (month, airflow_run_id) VALUES (%s, %s) RETURNING run_id",
            (month_start, airflow_run_id),
        ).fetchone()["run_id"]
        params = {"run_id": run_id, "month_start": month_start, "month_end": month_end}
        for statement in statements("reconcile.sql"):
            conn.execute(statement, params)
        run = conn.execute(
            "SELECT status, gifts, unexplained_count FROM ops.reconciliation_run WHERE run_id = %s", (run_id,)
        ).fetchone()
        totals = [
            ClassTotal(
                row["class"],
                row["currency"].strip(),
                row["rows"],
                row["warehouse_minor"],
                row["stripe_minor"],
                row["ledger_minor"],
                row["difference_minor"],
                row["unexplained"],
                row["crm_minor"],
            )  # fmt: skip
            for row in conn.execute(
                "SELECT * FROM ops.reconciliation_total WHERE run_id = %s ORDER BY class, currency", (run_id,)
            )
        ]
        result = Reconciliation(
            run_id, month_start, run["status"], run["gifts"], run["unexplained_count"],
            round(time.monotonic() - started, 3), totals,
        )  # fmt: skip
        if report_dir is not None:
            result.report_html, result.report_csv = write_report(conn, result, report_dir)
            conn.execute(
                "UPDATE ops.reconciliation_run SET report_html = %s, report_csv = %s WHERE run_id = %s",
                (str(result.report_html), str(result.report_csv), run_id),
            )
        audit.record_event(
            conn,
            "reconciliation",
            "ops.reconciliation_run",
            str(run_id),
            {"month": month_start.isoformat(), "status": result.status, "gifts": result.gifts,
             "unexplained": result.unexplained},
        )  # fmt: skip
    log.info(
        "reconciled %s: %d gifts, %d unexplained differences, %s in %.1fs",
        month_start.strftime("%Y-%m"), result.gifts, result.unexplained, result.status, result.seconds,
    )  # fmt: skip
    return result


def problems(result: Reconciliation) -> list[ClassTotal]:
    """The classes with unexplained rows, per currency."""
    return [t for t in result.totals if t.class_ not in ACCOUNTED and t.unexplained]


def require_reconciled(result: Reconciliation) -> None:
    """Fail loudly (and so alert once for the run) when the month has unexplained differences."""
    if result.status == "passed":
        return
    lines = [
        f"{t.class_} {t.currency}: {t.unexplained} rows, difference {format_minor(t.difference_minor, t.currency)}"
        for t in problems(result)
    ]
    raise UnexplainedDifference(
        f"{result.month:%Y-%m} did not reconcile: {result.unexplained} unexplained differences "
        f"(run {result.run_id}; report {result.report_html})\n" + "\n".join(lines)
    )


def reconciliation_alert(
    url: str, result: dict[str, Any], *, run_id: str, send: Callable[[str], None], actor: Actor
) -> bool:
    """One grouped data alert for the month (``result`` as ``Reconciliation.as_dict`` gives it, the XCom a
    task hands on), repeated only when its unexplained differences change; True when a message was sent."""
    month = result["month"][:7]
    unexplained = [t for t in result["totals"] if t["unexplained"]]
    findings = []
    if unexplained:
        lines = "; ".join(
            f"{t['class_']} {t['currency']}: {t['unexplained']} rows, "
            f"{format_minor(t['difference_minor'], t['currency'])}"
            for t in unexplained
        )
        fingerprint = "|".join(
            f"{t['class_']}:{t['currency']}:{t['unexplained']}:{t['difference_minor']}" for t in unexplained
        )
        findings.append(Finding(
            f"reconcile:{month}", fingerprint,
            f"*{month}* does not reconcile: {result['unexplained']} unexplained differences "
            f"({lines}). Report: {result['report_html']}",
        ))  # fmt: skip
    outcome = alert_once(
        url, scope=f"reconcile:{month}", title="Reconciliation", run_id=run_id, findings=findings, send=send,
        actor=actor,
    )  # fmt: skip
    return outcome.sent


def require_month_reconciled(result: dict[str, Any]) -> None:
    """``require_reconciled`` for the task's XCom form of a result: fails the run when a month is open."""
    if result["status"] != "passed":
        raise RuntimeError(  # the alert names the error class: kept as the runbook's "plain error"
            f"{result['month'][:7]} did not reconcile: {result['unexplained']} unexplained differences "
            f"(reconciliation run {result['run_id']}, report {result['report_html']})"
        )
