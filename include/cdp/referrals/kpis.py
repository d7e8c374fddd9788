"""The referral KPI marts as rows, for the DAG's summary and the data-health page."""

from __future__ import annotations

import logging
from typing import Any

from psycopg import sql

from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

KPI_VIEWS = (
    "kpi_referral_conversion_monthly",
    "kpi_referral_volume_monthly",
    "kpi_referral_reward_redemption_monthly",
    "kpi_referral_support_tickets_monthly",
)


def read_kpis(url: str, actor: Actor) -> dict[str, list[dict[str, Any]]]:
    with transaction(url, actor) as conn:
        return {
            view: conn.execute(
                sql.SQL("SELECT month, numerator, denominator, value FROM {} ORDER BY month").format(
                    sql.Identifier("mart", view)
                )
            ).fetchall()
            for view in KPI_VIEWS
        }


def latest_kpis(url: str, actor: Actor) -> dict[str, tuple[str, float | None] | None]:
    """Each referral KPI's latest month and value (None for a KPI with no month yet), logged in numbers."""
    latest = {
        view: (str(rows[-1]["month"]), None if rows[-1]["value"] is None else float(rows[-1]["value"]))
        if rows
        else None
        for view, rows in read_kpis(url, actor).items()
    }
    log.info("referral KPIs, latest month: %s", latest)
    return latest
