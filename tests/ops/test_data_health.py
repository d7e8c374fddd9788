"""The data-health page: its numbers equal what SQL says directly about a warehouse filled by real syncs
from the sandbox (plus a real count diff, dedupe run and reconciliation); every KPI view is found and shown;
an empty warehouse gives a page that says "no data yet"."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest

from cdp import data_health
from cdp.finance.reconcile import reconcile_month
from cdp.identity.runs import run_dedupe
from cdp.quality.count_diff import run_count_diff
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import sync_sandbox

ACTOR = Actor("pytest")
NOW = datetime.now(UTC)
COUNT_WINDOW = (datetime(2020, 1, 1, tzinfo=UTC), NOW)


class Metrics(HTMLParser):
    """data-metric -> data-value (or the text shown) of every figure on the page; the "no data yet" marks."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.empty: set[str] = set()
        self.kpis: list[str] = []
        self.external: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href"):
            if (attributes.get(name) or "").startswith(("http:", "https:", "//")):
                self.external.append(attributes[name] or "")
        if "data-empty" in attributes:
            self.empty.add(attributes["data-empty"] or "")
        if "data-kpi" in attributes:
            self.kpis.append(attributes["data-kpi"] or "")
        if "data-metric" in attributes:
            if "data-value" in attributes:
                self.values[attributes["data-metric"] or ""] = attributes["data-value"] or ""
            else:
                self._open = attributes["data-metric"]

    def handle_data(self, data: str) -> None:
        if self._open:
            self.values[self._open] = data.strip().replace(",", "")
            self._open = None


def _metrics(page: str) -> Metrics:
    parser = Metrics()
    parser.feed(page)
    return parser


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


@pytest.fixture(scope="module")
def filled_warehouse(pg_server, migrated_template):
    """One warehouse for the module: every stream synced, counted, deduplicated and a month reconciled."""
    from support import create_database, drop_database

    name = create_database(pg_server, migrated_template)
    url = pg_server.url(name)
    world = World(seed=11, learners=300)
    with SandboxServer(world) as sandbox:
        sync_sandbox(url, sandbox, end=NOW)
        counted = run_count_diff(url, sandbox.settings, run_id="health-count", window_start=COUNT_WINDOW[0],
                                 window_end=COUNT_WINDOW[1], actor=ACTOR)  # fmt: skip
        assert not counted.failures
    run_dedupe(url, ACTOR, "health-dedupe", full=True)
    with psycopg.connect(url) as conn:
        busiest_month = conn.execute(
            "SELECT date_trunc('month', received_at)::date FROM core.donation GROUP BY 1 ORDER BY count(*) DESC, 1"
            " LIMIT 1"
        ).fetchone()[0]
        # Two KPI views in the shared convention (as other engineers add them), and one that is broken.
        conn.execute(
            "CREATE VIEW mart.kpi_test_donors_monthly AS SELECT date_trunc('month', received_at)::date AS month,"
            " count(DISTINCT person_id)::numeric AS numerator, count(*)::numeric AS denominator,"
            " count(DISTINCT person_id)::numeric / nullif(count(*), 0) AS value FROM core.donation GROUP BY 1"
        )
        conn.execute("COMMENT ON VIEW mart.kpi_test_donors_monthly IS 'Donors per gift (ratio)'")
        conn.execute(
            "CREATE VIEW mart.kpi_test_empty_monthly AS SELECT month, numerator, denominator, value"
            " FROM (VALUES (DATE '2024-01-01', 0::numeric, 0::numeric, NULL::numeric)) v(month, numerator,"
            " denominator, value) WHERE false"
        )
        conn.execute("CREATE VIEW mart.kpi_test_broken_monthly AS SELECT 1 AS month_missing")
    reconcile_month(url, busiest_month, actor=ACTOR)
    yield url
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def page(filled_warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Metrics, dict, Path]:
    folder = tmp_path_factory.mktemp("data-health")
    result = data_health.build(filled_warehouse, ACTOR, folder, now=datetime.now(UTC))
    html = Path(result["html"]).read_text()
    return _metrics(html), json.loads(Path(result["json"]).read_text()), folder


def test_freshness_of_every_stream_equals_its_watermark_and_last_sync(filled_warehouse: str, page) -> None:
    metrics, figures, _ = page
    with psycopg.connect(filled_warehouse) as conn:
        expected = {
            f"{source}.{stream}": (read, upserted, quarantined)
            for source, stream, read, upserted, quarantined in conn.execute(
                "SELECT source, stream, rows_read, rows_upserted, rows_quarantined FROM ops.sync_run r"
                " WHERE finished_at = (SELECT max(finished_at) FROM ops.sync_run m"
                " WHERE m.source = r.source AND m.stream = r.stream)"
            )
        }
        watermarks = conn.execute("SELECT count(*) FROM ops.sync_watermark").fetchone()[0]
    assert len(expected) >= 15, "every sandbox stream should have synced"
    assert len(figures["freshness"]) == max(len(expected), watermarks)
    for key, (read, upserted, quarantined) in expected.items():
        assert metrics.values[f"last_rows_read:{key}"] == str(read), key
        assert metrics.values[f"last_rows_upserted:{key}"] == str(upserted), key
        assert metrics.values[f"last_rows_quarantined:{key}"] == str(quarantined), key
        assert 0 <= float(metrics.values[f"freshness_hours:{key}"]) < 1, f"{key} was synced minutes ago"
    assert sum(v[0] for v in expected.values()) > 1000


def test_open_quarantine_counts_equal_sql(filled_warehouse: str, page) -> None:
    metrics, figures, _ = page
    with psycopg.connect(filled_warehouse) as conn:
        expected = dict(
            conn.execute(
                "SELECT source || '.' || stream, count(*) FROM ops.quarantine WHERE resolved_at IS NULL GROUP BY 1"
            ).fetchall()
        )
    assert sum(expected.values()) > 0, "the sandbox plants malformed records in every stream"
    assert {k: int(metrics.values[f"quarantine_open:{k}"]) for k in expected} == expected
    assert int(metrics.values["quarantine_open_total"]) == sum(expected.values())
    assert figures["quarantine_open_total"] == sum(expected.values())


def test_count_diff_history_equals_sql(filled_warehouse: str, page) -> None:
    metrics, _, _ = page
    day = COUNT_WINDOW[0].date().isoformat()
    with psycopg.connect(filled_warehouse) as conn:
        checked, alerting, source, core = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'alert'), sum(source_count), sum(core_count)"
            " FROM ops.count_diff WHERE run_id = 'health-count'"
        ).fetchone()
    assert checked >= 15 and source > 1000
    assert int(metrics.values[f"count_diff_streams_checked:{day}"]) == checked
    assert int(metrics.values[f"count_diff_streams_alerting:{day}"]) == alerting
    assert int(metrics.values[f"count_diff_source_count:{day}"]) == source
    assert int(metrics.values[f"count_diff_core_count:{day}"]) == core


def test_duplicate_rate_equals_the_dedupe_report(filled_warehouse: str, page) -> None:
    metrics, _, _ = page
    with psycopg.connect(filled_warehouse) as conn:
        rate, compared, merged, queued = conn.execute(
            "SELECT duplicate_rate, people_compared, merged, queued FROM ops.dedupe_run WHERE run_id = 'health-dedupe'"
        ).fetchone()
    assert rate > 0 and merged > 0
    assert float(metrics.values["duplicate_rate:health-dedupe"]) == pytest.approx(rate, abs=1e-12)
    assert int(metrics.values["dedupe_people_compared:health-dedupe"]) == compared
    assert int(metrics.values["dedupe_merged:health-dedupe"]) == merged
    assert int(metrics.values["dedupe_queued:health-dedupe"]) == queued


def test_last_reconciliation_equals_sql_to_the_cent(filled_warehouse: str, page) -> None:
    metrics, figures, _ = page
    with psycopg.connect(filled_warehouse) as conn:
        run_id, status, gifts, unexplained = conn.execute(
            "SELECT run_id, status, gifts, unexplained_count FROM ops.reconciliation_run ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        totals = conn.execute(
            "SELECT class, trim(currency), warehouse_minor, difference_minor FROM ops.reconciliation_total"
            " WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    assert gifts > 0 and totals
    assert metrics.values["reconciliation_status"] == status
    assert int(metrics.values["reconciliation_gifts"]) == gifts
    assert int(metrics.values["reconciliation_unexplained"]) == unexplained
    for cls, currency, warehouse_minor, difference_minor in totals:
        assert int(metrics.values[f"reconciliation_warehouse_minor:{cls}:{currency}"]) == warehouse_minor
        assert int(metrics.values[f"reconciliation_difference_minor:{cls}:{currency}"]) == difference_minor
    assert figures["reconciliation"]["run_id"] == run_id


def test_consent_coverage_equals_sql(filled_warehouse: str, page) -> None:
    metrics, _, _ = page
    with psycopg.connect(filled_warehouse) as conn:
        people = conn.execute("SELECT count(*) FROM core.person WHERE merged_into IS NULL").fetchone()[0]
        stated = dict(
            conn.execute(
                "SELECT c.purpose, count(DISTINCT coalesce(p.merged_into, p.person_id)) FROM core.consent c"
                " JOIN core.person p ON p.person_id = c.person_id GROUP BY 1"
            ).fetchall()
        )
    assert stated, "the sandbox's registration form and Zigpoll give consent statements"
    for purpose in ("course_messages", "fundraising", "surveys", "partner_sharing"):
        assert int(metrics.values[f"consent_people:{purpose}"]) == people
        assert int(metrics.values[f"consent_with_statement:{purpose}"]) == stated.get(purpose, 0)
        assert float(metrics.values[f"consent_coverage:{purpose}"]) == pytest.approx(
            stated.get(purpose, 0) / people
        )


def test_every_kpi_view_is_found_labelled_and_shown(filled_warehouse: str, page) -> None:
    metrics, figures, _ = page
    with psycopg.connect(filled_warehouse) as conn:
        views = [r[0] for r in conn.execute(
            "SELECT 'mart.' || viewname FROM pg_views WHERE schemaname = 'mart' AND viewname LIKE 'kpi\\_%\\_monthly'"
            " ORDER BY 1"
        )]  # fmt: skip
        rows = conn.execute(
            "SELECT month, numerator, denominator, value FROM mart.kpi_test_donors_monthly ORDER BY month DESC"
            " LIMIT %s",
            (data_health.KPI_MONTHS,),
        ).fetchall()
    assert {"mart.kpi_test_donors_monthly", "mart.kpi_test_broken_monthly"} <= set(views)
    assert metrics.kpis == views, "every KPI view, and only those, has a block on the page"
    by_view = {kpi["view"]: kpi for kpi in figures["kpis"]}
    assert by_view["mart.kpi_test_donors_monthly"]["label"] == "Donors per gift (ratio)"
    assert rows
    for month, numerator, denominator, value in rows:
        view = "mart.kpi_test_donors_monthly"
        assert int(metrics.values[f"kpi_numerator:{view}:{month.isoformat()}"]) == numerator
        assert int(metrics.values[f"kpi_denominator:{view}:{month.isoformat()}"]) == denominator
        assert float(metrics.values[f"kpi_value:{view}:{month.isoformat()}"]) == pytest.approx(float(value))
    # A broken view is reported with its error; an empty one says so; neither stops the page.
    assert "error" in by_view["mart.kpi_test_broken_monthly"]
    assert "mart.kpi_test_empty_monthly" in metrics.empty


def test_the_page_loads_nothing_from_the_internet(page) -> None:
    metrics, _, folder = page
    html = (folder / data_health.PAGE_NAME).read_text()
    assert metrics.external == []
    assert "<script" not in html
    assert html.count("<svg") >= 4, "quarantine, count diff, duplicate rate and KPI charts"


def test_an_empty_warehouse_says_no_data_yet(warehouse_url: str, tmp_path: Path) -> None:
    result = data_health.build(warehouse_url, ACTOR, tmp_path)
    metrics = _metrics(Path(result["html"]).read_text())
    assert {
        "freshness",
        "count_diff",
        "quarantine",
        "dedupe",
        "reconciliation",
        "consent",
    } <= metrics.empty
    # The KPI views come with the migrations: each one has its block, and each block says "no data yet"
    # (with no KPI view at all, the section itself says so).
    assert set(metrics.kpis) <= metrics.empty if metrics.kpis else "kpis" in metrics.empty
    assert metrics.values["quarantine_open_total"] == "0"
    assert json.loads(Path(result["json"]).read_text())["reconciliation"] is None


def test_a_page_with_data_has_no_no_data_marks_where_there_is_data(page) -> None:
    """The "no data yet" mark is not printed unconditionally (the rule above, broken, must show)."""
    metrics, _, _ = page
    assert (
        not {"freshness", "count_diff", "quarantine", "dedupe", "reconciliation", "consent", "kpis"}
        & metrics.empty
    )
