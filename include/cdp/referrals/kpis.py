"""The referral KPI marts as rows, for the DAG's summary and the data-health page."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from cdp.warehouse import Actor, transaction

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
