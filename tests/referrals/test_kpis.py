"""The referral KPI marts equal the same KPIs computed here from the generator's truth, month by month."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

import psycopg
import pytest

from cdp.referrals.fulfilment import fulfil_rewards
from cdp.referrals.kpis import KPI_VIEWS, read_kpis
from cdp.warehouse import Actor
from cdp_sandbox.formats import DAY
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
NOW = datetime(2025, 1, 15, tzinfo=UTC)


def _month(ts: int) -> date:
    moment = datetime.fromtimestamp(ts, UTC)
    return date(moment.year, moment.month, 1)


def _truth(world) -> dict[str, dict[date, tuple[float, float]]]:
    """{kpi: {month: (numerator, denominator)}} straight from the generator's columns."""
    table = world.table("referralhero", "subscribers")
    clicks, referred = table.columns["clicks"], table.columns["people_referred"]
    kpis: dict[str, dict[date, list[float]]] = {
        name: defaultdict(lambda: [0.0, 0.0]) for name in ("conversion", "volume", "redemption")
    }
    for i in range(len(table)):
        if int(table.malformed[i]):
            continue  # quarantined by the sync: not in the warehouse
        created = int(table.created[i])
        conversion = kpis["conversion"][_month(created)]
        conversion[0] += int(referred[i])
        conversion[1] += int(clicks[i])
        if int(table.columns["referrer"][i]) >= 0:
            kpis["volume"][_month(created)][0] += 1
            kpis["volume"][_month(created)][1] = 1
        for level, threshold in enumerate((3, 10)):
            if int(referred[i]) >= threshold:
                unlocked = created + (level + 1) * DAY
                redemption = kpis["redemption"][_month(unlocked)]
                redemption[0] += (NOW.timestamp() - unlocked) / DAY
                redemption[1] += 1
    return {name: {month: tuple(pair) for month, pair in months.items()} for name, months in kpis.items()}


def test_kpi_values_equal_those_computed_from_the_generators_truth(
    warehouse_url: str, synced: None, referral_sandbox: SandboxServer, referral_world
) -> None:
    settings = referral_sandbox.settings("referralhero", max_attempts=2, retry_base_delay=0.01)
    fulfil_rewards(warehouse_url, settings, actor=ACTOR, run_id="run-1", now=NOW)
    kpis = read_kpis(warehouse_url, ACTOR)
    truth = _truth(referral_world)

    for name, view in (("conversion", "kpi_referral_conversion_monthly"), ("volume", "kpi_referral_volume_monthly"),
                       ("redemption", "kpi_referral_reward_redemption_monthly")):  # fmt: skip
        rows = {row["month"]: row for row in kpis[view]}
        assert set(rows) == set(truth[name]), name
        assert len(rows) >= 2, name
        for month, (numerator, denominator) in truth[name].items():
            row = rows[month]
            assert float(row["numerator"]) == pytest.approx(numerator, rel=1e-9), (name, month)
            assert float(row["denominator"]) == pytest.approx(denominator, rel=1e-9), (name, month)
            expected = numerator / denominator if denominator else None
            assert (
                (row["value"] is None) if expected is None else float(row["value"]) == pytest.approx(expected)
            )
    assert all(0 <= float(row["value"]) <= 1 for row in kpis["kpi_referral_conversion_monthly"])


def test_kpis_have_the_shape_and_a_label_and_show_no_made_up_numbers(warehouse_url: str) -> None:
    # With no tickets synced, the ticket KPI has no rows rather than made-up zeros (its values against the
    # generator's truth: tests/referrals/test_support_tickets.py).
    assert read_kpis(warehouse_url, ACTOR)["kpi_referral_support_tickets_monthly"] == []
    with psycopg.connect(warehouse_url) as conn:
        comments = dict(
            conn.execute(
                "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'mart' AND c.relname = ANY (%s)",
                (list(KPI_VIEWS),),
            ).fetchall()
        )
        columns = conn.execute(
            "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns"
            " WHERE table_schema = 'mart' AND table_name = ANY (%s) GROUP BY table_name",
            (list(KPI_VIEWS),),
        ).fetchall()
    assert set(comments) == set(KPI_VIEWS) and all(comments.values())
    assert "÷ all support tickets opened that month" in comments["kpi_referral_support_tickets_monthly"]
    assert all(cols == ["month", "numerator", "denominator", "value"] for _, cols in columns)


@pytest.mark.parametrize("role", ["cdp_viewer", "cdp_editor", "cdp_finance", "cdp_admin"])
def test_reporting_roles_read_the_kpis_and_outreach_does_not(warehouse_url: str, role: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        for view in KPI_VIEWS:
            assert conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT')", (role, f"mart.{view}")
            ).fetchone()[0]
            assert not conn.execute(
                "SELECT has_table_privilege('cdp_outreach', %s, 'SELECT')", (f"mart.{view}",)
            ).fetchone()[0]


def test_records_deleted_at_the_source_leave_the_kpis(warehouse_url: str) -> None:
    """A ReferralHero subscriber or a Zendesk ticket deleted at the source is kept in core (deleted_at) but no
    longer counts in the month's referral volume, conversion or support-ticket share."""
    march = datetime(2025, 3, 10, tzinfo=UTC)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for n, deleted in enumerate((None, None, march)):
            conn.execute(
                "INSERT INTO core.referral (status, signed_up_at, source, source_record_id, referrer_source_id,"
                " clicks, people_referred, deleted_at) VALUES ('signed_up', %s, 'referralhero', %s, 'sub_0', 10, %s,"
                " %s)",
                (march, f"sub_{n + 1}", n + 1, deleted),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO core.support_ticket (status, about_referral, opened_at, changed_at, source,"
                " source_record_id, deleted_at) VALUES ('open', %s, %s, %s, 'zendesk', %s, %s)",
                (n == 2, march, march, f"t{n}", deleted),
            )

        def kpi(view: str) -> tuple:
            return conn.execute(
                f"SELECT numerator, denominator FROM mart.{view} WHERE month = '2025-03-01'"
            ).fetchone()

        assert kpi("kpi_referral_volume_monthly") == (2, 1)
        assert kpi("kpi_referral_conversion_monthly") == (1 + 2, 20)
        assert kpi("kpi_referral_support_tickets_monthly") == (0, 2)  # the referral ticket was deleted
