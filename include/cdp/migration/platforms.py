"""Phase 4 of the migration: the volunteer platform joined to the same person ids, and the KPI marts.

The volunteer streams (``VOLUNTEER_SPECS``) land through the regular sync engine (raw, validation,
quarantine, exact-key person resolution, one transaction and one audit event per stream). Then the
phase checks its success criteria: every volunteer record the platform sent is either in ``core`` or
waiting in the quarantine with its reason, and every KPI mart holds together (one row per month, no gap,
value = numerator / denominator, a share between 0 and 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

#: The KPI marts of the convention (month, numerator, denominator, value), all shares between 0 and 1.
KPI_MARTS = (
    "mart.kpi_course_completion_monthly",
    "mart.kpi_learner_reengagement_monthly",
    "mart.kpi_learners_also_donors_monthly",
    "mart.kpi_learners_also_volunteers_monthly",
    "mart.kpi_data_accuracy_monthly",
    "mart.kpi_duplicate_rate_monthly",
)
#: core table of each volunteer stream
VOLUNTEER_TABLES = {
    "users": "core.volunteer",
    "responses": "core.volunteer_shift",
    "hours": "core.volunteer_hours",
}


class PhaseCheckFailed(RuntimeError):
    """A phase-4 success criterion does not hold: the message names the stream or mart and the numbers."""


@dataclass(frozen=True)
class LinkReport:
    stream: str
    received: int  # distinct records the platform sent (raw)
    landed: int  # in core, linked to a person
    quarantined: int  # waiting in ops.quarantine with a reason
    lost: int  # neither: must be 0


def link_report(url: str) -> list[LinkReport]:
    """Per volunteer stream: every record received is landed (with its person) or quarantined."""
    reports = []
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for stream, table in VOLUNTEER_TABLES.items():
            row = conn.execute(
                sql.SQL(
                    "WITH received AS (SELECT DISTINCT source_record_id FROM raw.records"
                    "   WHERE source = 'galaxy' AND stream = %(stream)s),"
                    " landed AS (SELECT source_record_id FROM {table}"
                    " WHERE source = 'galaxy' AND person_id IS NOT NULL),"
                    " waiting AS (SELECT DISTINCT source_record_id FROM ops.quarantine"
                    "   WHERE source = 'galaxy' AND stream = %(stream)s AND resolved_at IS NULL)"
                    " SELECT (SELECT count(*) FROM received) AS received,"
                    "        (SELECT count(*) FROM received r JOIN landed l USING (source_record_id)) AS landed,"
                    "        (SELECT count(*) FROM received r JOIN waiting w USING (source_record_id)"
                    "          WHERE NOT EXISTS (SELECT 1 FROM landed l WHERE l.source_record_id = r.source_record_id))"
                    "          AS quarantined,"
                    "        (SELECT count(*) FROM received r WHERE NOT EXISTS (SELECT 1 FROM landed l"
                    "          WHERE l.source_record_id = r.source_record_id) AND NOT EXISTS (SELECT 1 FROM waiting w"
                    "          WHERE w.source_record_id = r.source_record_id)) AS lost"
                ).format(table=sql.Identifier(*table.split("."))),
                {"stream": stream},
            ).fetchone()
            reports.append(LinkReport(stream, **{k: int(v) for k, v in row.items()}))
    return reports


def mart_problems(url: str) -> dict[str, list[str]]:
    """What breaks the KPI convention in each mart (empty lists when all hold)."""
    problems: dict[str, list[str]] = {}
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for mart in KPI_MARTS:
            rows = conn.execute(
                sql.SQL("SELECT month, numerator, denominator, value FROM {} ORDER BY month").format(
                    sql.Identifier(*mart.split("."))
                )
            ).fetchall()
            found: list[str] = []
            for previous, current in zip(rows, rows[1:], strict=False):
                step = (
                    (current["month"].year - previous["month"].year) * 12
                    + current["month"].month
                    - previous["month"].month
                )
                if step != 1:
                    found.append(f"months {previous['month']} and {current['month']} are not consecutive")
            for row in rows:
                numerator, denominator, value = row["numerator"], row["denominator"], row["value"]
                if row["month"].day != 1:
                    found.append(f"{row['month']} is not the first of a month")
                if denominator == 0 and value is not None:
                    found.append(f"{row['month']}: value {value} with a zero denominator")
                if denominator and (
                    value is None
                    or abs(Decimal(value) - Decimal(numerator) / Decimal(denominator)) > Decimal("1e-9")
                ):
                    found.append(f"{row['month']}: value {value} is not {numerator}/{denominator}")
                if not 0 <= numerator <= denominator:
                    found.append(f"{row['month']}: numerator {numerator} outside 0..{denominator}")
            problems[mart] = found
    return problems


def check_phase(url: str) -> dict[str, Any]:
    """Raise ``PhaseCheckFailed`` when a volunteer record is neither landed nor quarantined, or a mart is broken."""
    links = link_report(url)
    problems = mart_problems(url)
    for report in links:
        log.info(
            "galaxy.%s: %d received, %d landed with a person, %d quarantined, %d lost",
            report.stream, report.received, report.landed, report.quarantined, report.lost,
        )  # fmt: skip
    lost = [r for r in links if r.lost]
    broken = {mart: found for mart, found in problems.items() if found}
    if lost or broken:
        parts = [
            f"galaxy.{r.stream}: {r.lost} of {r.received} records neither landed nor quarantined"
            for r in lost
        ]
        parts += [f"{mart}: {'; '.join(found[:3])}" for mart, found in broken.items()]
        raise PhaseCheckFailed("Phase4CheckFailed: " + " | ".join(parts))
    return {"links": [r.__dict__ for r in links], "marts_checked": len(problems)}
