"""A newcomer's first hour with `make run` (issue 21), walked once, in order, on one real local stack.

The stack starts as `make run` starts it (`cdp run`: the warehouse migrated, Airflow's metadata in its own
PostgreSQL database, the live vendor-API sandbox dated from today with its planted faults, Airflow's four
supervised components with every DAG and the project's plugins), on free ports (``tests/ui/stack.py``). Debian's
Chromium, driven by Playwright (headless), then does what the issue's newcomer did:

1. logs in (SimpleAuthManager) and sees every DAG;
2. triggers ``cdp_sync`` from its page, watches it succeed and opens its log; the first complete sync landed
   today's data (core rows dated yesterday and today, the sandbox's today) without one failed try;
3. runs a one-day backfill from the UI's trigger dialog ("Backfill") and watches it finish while the
   scheduler keeps running (the same scheduler, no lock error);
4. runs yesterday's count diff: the planted night (40 % of yesterday's Moodle enrolments dropped by the
   "vendor") is found as never fetched, exactly as many as the sandbox dropped;
5. fails a run on purpose (a folder parameter outside the import folders) and finds exactly one alert at the
   sandbox's Slack receiver (`cdp sandbox slack`);
6. reconciles last month: every gift the sandbox lost on the way to the ledger is an unexplained difference;
7. opens the data-health page from the UI's menu: its charts have real data points, and it reports
   yesterday's alerting count diff and last month's failed reconciliation;
8. the operator's side of `make run`: the metadata database is PostgreSQL with its own role, `cdp airflow`
   reaches the stack, the README's CLI backfill runs beside the scheduler, a second start is refused, a
   killed scheduler is restarted;
9. Ctrl-C (SIGINT to the process group, as a terminal sends it) stops every process within seconds and
   frees the ports; `cdp stop` then stops the embedded PostgreSQL.

One test function, not one per step: each stack start costs minutes on two cores, the steps build on each
other, and pytest-xdist would otherwise spread a module's tests (and their stacks) over its workers. It
prints the first-hour timings (start to a UI that answers, start to the first complete sync, the
backfill, Ctrl-C) and keeps them with a screenshot of every step in ``test-artifacts/browser/<time>/``
(git-ignored; the path is printed).

Playwright brings only its driver here: the browser is ``/usr/bin/chromium`` from Debian (`make test`
installs it when missing), never a downloaded build.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import psutil
import psycopg
import pytest
from support import free_port
from ui import stack as local_stack

from cdp.warehouse.embedded import EmbeddedServer, port_is_free
from cdp_sandbox import devserver
from cdp_sandbox.defaults import SANDBOX_LEARNERS, SANDBOX_SEED
from cdp_sandbox.generator import World
from cdp_sandbox.processes import read_records

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CDP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
DAG_IDS = sorted(path.stem for path in (REPO / "dags").glob("cdp_*.py"))
# Generous: on a two-core machine shared with other test runs (load 15-25), Airflow took 7-14 minutes to
# answer and a cdp_sync run over 15 minutes (about 1 minute when idle).
START_TIMEOUT = 900
RUN_TIMEOUT = 1800
UI_TIMEOUT_MS = 180_000
#: how long an alert may take from a failed run to the receiver (the dag-processor runs the callback)
ALERT_TIMEOUT = 300
#: a parameter that fails its task at once, without retries: the folder is outside the import folders
FAILING_DAG = "migration_phase1_audit"
FAILING_CONF = {"folder": "/etc"}
#: what would say the backfill broke the scheduler (issue 21: SQLite's lock, then the scheduler's death)
SCHEDULER_BREAKAGE = ("database is locked", "StaleDataError", "PendingRollbackError", "scheduler exited")

T = TypeVar("T")

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(5400)]


@pytest.fixture(scope="module")
def artefacts() -> Path:
    folder = REPO / "test-artifacts" / "browser" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def running(pg_server, migrated_template, artefacts: Path) -> Iterator[tuple[local_stack.Stack, str]]:
    from support import create_database, drop_database

    name = create_database(pg_server, migrated_template)
    url = pg_server.url(name)
    started = local_stack.start(url, artefacts, timeout=START_TIMEOUT)
    try:
        yield started, url
    finally:
        started.stop()
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def browser_page(running, artefacts: Path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `apt-get install chromium` (make test does it as root)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield page
        finally:
            page.screenshot(path=str(artefacts / "99-last.png"), full_page=True)
            browser.close()


class Timings(dict):
    """The first hour's numbers, printed at the end and kept beside the screenshots."""

    def __init__(self, stack: local_stack.Stack, folder: Path) -> None:
        super().__init__()
        self.stack, self.folder = stack, folder

    def since_start(self, what: str) -> float:
        self[what] = round(time.monotonic() - self.stack.started_at, 1)
        return self[what]

    def report(self) -> str:
        (self.folder / "timings.json").write_text(json.dumps(self, indent=2))
        return "first-hour timings (s): " + ", ".join(f"{key} {value}" for key, value in self.items())


def test_a_newcomers_first_hour(
    running, browser_page, artefacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, warehouse_url = running
    page = browser_page
    timings = Timings(stack, artefacts)
    timings["start -> UI answers a login"] = round(stack.answered_after, 1)
    monkeypatch.setenv("CDP_HOME", str(stack.home))  # this process reads the stack's pid files and settings
    token = stack.token()
    _wait_for_dags(stack, token)
    assert stack.api("GET", "/api/v2/importErrors", token=token)["total_entries"] == 0
    scheduler = _scheduler()

    try:
        _log_in_and_see_every_dag(stack, page, artefacts)
        sync_run = _first_sync_from_the_ui(stack, token, page, artefacts, warehouse_url)
        timings.since_start("start -> first complete sync")
        _first_sync_landed_todays_data_without_a_failed_try(stack, token, warehouse_url, sync_run)
        timings["backfill of one day, from the UI"] = _backfill_from_the_ui(stack, token, page, artefacts)
        _yesterdays_count_diff_finds_the_planted_night(stack, token, page, artefacts, warehouse_url)
        _an_alert_reaches_the_sandbox_and_cdp_sandbox_slack_prints_it(stack)
        _a_failed_run_sends_exactly_one_alert(stack, token, page, artefacts)
        _last_months_reconciliation_finds_the_lost_gifts(stack, token, warehouse_url)
        _data_health_page_has_charts_with_data(stack, token, page, artefacts)
        _the_data_health_page_needs_the_login(stack, token, page, artefacts)
        assert scheduler.leader_alive() and _scheduler().pid == scheduler.pid, "one scheduler all along"
        _airflow_metadata_is_its_own_postgres_database_with_its_own_role(stack)
        _cdp_airflow_runs_airflow_commands_against_the_stack(stack)
        _the_readmes_backfill_runs_beside_the_scheduler(stack)
        _a_second_start_is_refused_naming_the_running_one(stack)
        _a_killed_scheduler_is_restarted(stack)
        timings["Ctrl-C -> every process stopped"] = _ctrl_c_stops_every_process_and_cdp_stop_the_warehouse(
            stack
        )
    finally:
        print("\n" + timings.report())


# ---------------------------------------------------------------- 1-2: log in, the first sync
def _log_in_and_see_every_dag(stack: local_stack.Stack, page, artefacts: Path) -> None:
    page.goto(stack.base_url + "/")
    page.wait_for_selector("input[type=password]")
    _shot(page, artefacts, "01-login")
    page.locator("input:not([type=password])").first.fill(stack.user)
    page.locator("input[type=password]").fill(stack.password)
    page.locator("input[type=password]").press("Enter")
    page.wait_for_url(re.compile(r"^(?!.*login).*$"))
    page.goto(stack.base_url + "/dags")
    for dag_id in DAG_IDS:
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for()
    _shot(page, artefacts, "02-dag-list")


def _first_sync_from_the_ui(
    stack: local_stack.Stack, token: str, page, artefacts: Path, warehouse_url: str
) -> str:
    page.goto(stack.base_url + "/dags/cdp_sync")
    page.get_by_role("button", name=re.compile(r"^Trigger", re.IGNORECASE)).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    _shot(page, artefacts, "03-trigger-dialog")
    dialog.get_by_role("button", name=re.compile(r"^Trigger", re.IGNORECASE)).last.click()
    run_id = _manual_run(stack, token, "cdp_sync")
    assert _wait_for_run(stack, token, "cdp_sync", run_id) == "success", stack.log_tail()
    page.goto(f"{stack.base_url}/dags/cdp_sync/runs/{run_id}")
    page.get_by_text(re.compile(r"^success$", re.IGNORECASE)).filter(visible=True).first.wait_for()
    _shot(page, artefacts, "04-sync-succeeded")

    # Its log: the summary task says how many streams landed.
    page.goto(f"{stack.base_url}/dags/cdp_sync/runs/{run_id}/tasks/summarise")
    page.get_by_text(re.compile(r"sync run: \d+ of \d+ streams landed")).filter(visible=True).first.wait_for()
    _shot(page, artefacts, "05-sync-log")
    with psycopg.connect(warehouse_url) as conn:
        synced = conn.execute("SELECT count(DISTINCT (source, stream)) FROM ops.sync_run").fetchone()[0]
    assert synced >= 15, "the run the UI showed as successful landed every stream in the warehouse"
    assert stack.api("GET", "/api/v2/dags/cdp_sync/dagRuns", token=token)["total_entries"] == 1
    return run_id


def _first_sync_landed_todays_data_without_a_failed_try(
    stack: local_stack.Stack, token: str, warehouse_url: str, run_id: str
) -> None:
    today = _sandbox_today()
    with psycopg.connect(warehouse_url) as conn:
        dated = {
            table: conn.execute(
                f"SELECT count(*) FILTER (WHERE {column}::date = %(yesterday)s), "  # noqa: S608 - names above
                f"count(*) FILTER (WHERE {column}::date = %(today)s), max({column}) FROM core.{table}",
                {"today": today, "yesterday": today - timedelta(days=1)},
            ).fetchone()
            for table, column in (("enrollment", "enrolled_at"), ("donation", "received_at"))
        }
    print(f"\nfirst sync, core rows (yesterday, today, latest): {dated}")
    for table, (yesterday, _, latest) in dated.items():
        assert yesterday > 0, f"core.{table} has no row dated yesterday ({today - timedelta(days=1)})"
        assert latest.date() <= today and latest <= datetime.now(UTC) + timedelta(minutes=5), (table, latest)
    assert sum(today_rows for _, today_rows, _ in dated.values()) > 0, f"no core row dated today: {dated}"

    # Every task of the first complete sync succeeded at its first try (REST API: what the UI shows).
    tries = stack.api("GET", f"/api/v2/dags/cdp_sync/dagRuns/{run_id}/taskInstances?limit=500", token=token)
    instances = tries["task_instances"]
    assert instances and tries["total_entries"] == len(instances)
    failed = [
        (ti["task_id"], ti.get("map_index"), ti["state"], ti["try_number"])
        for ti in instances
        if ti["try_number"] > 1 or ti["state"] not in {"success", "skipped"}
    ]
    assert failed == [], f"the first complete sync had failed tries: {failed}"


# ---------------------------------------------------------------- 3: a backfill from the UI
def _backfill_from_the_ui(stack: local_stack.Stack, token: str, page, artefacts: Path) -> float:
    """cdp_count_diff for the day before yesterday (one daily run, at 06:30, checking the day before it),
    created in the trigger dialog's Backfill form and run by the scheduler beside everything else; seconds from
    the click to the backfill's end."""
    day = _sandbox_today() - timedelta(days=2)
    page.goto(stack.base_url + "/dags/cdp_count_diff")
    page.get_by_role("button", name=re.compile(r"^Trigger", re.IGNORECASE)).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_text("Backfill", exact=True).first.click()
    dialog.get_by_text("Date Range", exact=True).wait_for()
    _fill_date_time(page, dialog, 0, day, "00:00")
    _fill_date_time(page, dialog, 1, day, "23:59")
    shown = dialog.locator("[data-testid=datetime-input]").all_inner_texts()
    assert shown == [f"{day:%b %d, %Y} 00:00", f"{day:%b %d, %Y} 23:59"], shown
    dialog.get_by_text("All Runs", exact=True).click()
    dialog.get_by_text("1 run will be triggered.").wait_for()
    _shot(page, artefacts, "06-backfill-dialog")
    clicked = time.monotonic()
    dialog.get_by_role("button", name="Run Backfill").click()

    backfill = _wait_for(
        lambda: next(iter((stack.poll("/api/v2/backfills?dag_id=cdp_count_diff", token) or {}).get("backfills", [])),
                     None), 120, "the UI created no backfill")  # fmt: skip
    assert backfill["from_date"].startswith(day.isoformat()) and backfill["reprocess_behavior"] == "completed"
    runs = _wait_for(
        lambda: [r for r in _runs(stack, token, "cdp_count_diff") if r["run_type"] == "backfill"] or None,
        120, "the backfill created no run",
    )  # fmt: skip
    assert len(runs) == 1 and runs[0]["logical_date"].startswith(day.isoformat()), runs
    assert _wait_for_run(stack, token, "cdp_count_diff", runs[0]["dag_run_id"]) == "success", stack.log_tail()
    finished = _wait_for(
        lambda: (stack.poll(f"/api/v2/backfills/{backfill['id']}", token) or {}).get("completed_at"), 300,
        "the backfill's run succeeded but the backfill never completed",
    )  # fmt: skip
    seconds = time.monotonic() - clicked
    assert finished
    page.goto(f"{stack.base_url}/dags/cdp_count_diff/runs/{runs[0]['dag_run_id']}")
    page.get_by_text(re.compile(r"^success$", re.IGNORECASE)).filter(visible=True).first.wait_for()
    _shot(page, artefacts, "07-backfill-run-succeeded")
    # The scheduler ran it beside everything else and did not break (issue 21: SQLite's lock killed it).
    _scheduler_unbroken(stack)
    return round(seconds, 1)


def _fill_date_time(page, dialog, index: int, day: date, clock: str) -> None:
    """The backfill form's From (0) / To (1): a button that opens a popover with a date and a time field (UTC)."""
    dialog.locator("[data-testid=datetime-input]").nth(index).click()
    page.locator("input[placeholder='YYYY/MM/DD']:visible").fill(day.strftime("%Y/%m/%d"))
    page.locator("input[placeholder='HH:mm']:visible").fill(clock)
    dialog.get_by_text("Date Range", exact=True).click()  # closes the popover


def _scheduler_unbroken(stack: local_stack.Stack) -> None:
    scheduler_log = (stack.home / "airflow" / "logs" / "scheduler.log").read_text(errors="replace")
    everything = scheduler_log + stack.log_path.read_text(errors="replace")
    assert not [word for word in SCHEDULER_BREAKAGE if word in everything], stack.log_tail()
    assert _scheduler().leader_alive()


# ---------------------------------------------------------------- 4: yesterday's count diff
def _yesterdays_count_diff_finds_the_planted_night(
    stack: local_stack.Stack, token: str, page, artefacts: Path, warehouse_url: str
) -> None:
    """Triggered from its page with no parameters: the window is yesterday (UTC)."""
    planted = _planted_faults(stack)
    assert len(planted) == 1 and planted[0]["kind"] == "drop_records", planted
    page.goto(stack.base_url + "/dags/cdp_count_diff")
    page.get_by_role("button", name=re.compile(r"^Trigger", re.IGNORECASE)).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_text("Single Run", exact=True).first.click()
    dialog.get_by_role("button", name=re.compile(r"^Trigger", re.IGNORECASE)).last.click()
    run_id = _manual_run(stack, token, "cdp_count_diff")
    assert _wait_for_run(stack, token, "cdp_count_diff", run_id) == "success", stack.log_tail()
    page.goto(f"{stack.base_url}/dags/cdp_count_diff/runs/{run_id}")
    page.get_by_text(re.compile(r"^success$", re.IGNORECASE)).filter(visible=True).first.wait_for()
    _shot(page, artefacts, "08-count-diff-yesterday")
    yesterday = datetime.combine(_sandbox_today() - timedelta(days=1), datetime.min.time(), UTC)
    with psycopg.connect(warehouse_url) as conn:
        rows = {
            f"{source}.{stream}": (status, never_fetched, source_count, window_start)
            for source, stream, status, never_fetched, source_count, window_start in conn.execute(
                "SELECT source, stream, status, never_fetched, source_count, window_start FROM ops.count_diff "
                "WHERE run_id = %s",
                (run_id,),
            )
        }
    status, never_fetched, source_count, window_start = rows["moodle.enrollments"]
    assert window_start == yesterday
    assert (status, never_fetched) == ("alert", planted[0]["count"]), rows["moodle.enrollments"]
    assert source_count > never_fetched > 0
    others = {key: row for key, row in rows.items() if key != "moodle.enrollments" and row[1] != 0}
    assert others == {}, "only the planted night is missing"


# ---------------------------------------------------------------- 5: one alert per failed run
def _an_alert_reaches_the_sandbox_and_cdp_sandbox_slack_prints_it(stack: local_stack.Stack) -> None:
    from cdp.runtime.alerts import slack_sender

    devserver.clear_slack_messages(stack.sandbox_port)
    connection = devserver.read_stack_env()["AIRFLOW_CONN_SLACK_ALERTS"]
    assert json.loads(connection)["conn_type"] == "slackwebhook"
    os.environ["AIRFLOW_CONN_SLACK_ALERTS"] = connection
    try:
        slack_sender("slack_alerts")("cdp_sync failed: test alert 4711")  # as the DAGs' notifiers send it
    finally:
        del os.environ["AIRFLOW_CONN_SLACK_ALERTS"]
    result = stack.cdp("sandbox", "slack")
    assert result.returncode == 0, result.stderr
    assert "1 Slack message(s) received" in result.stdout
    assert "cdp_sync failed: test alert 4711" in result.stdout


def _a_failed_run_sends_exactly_one_alert(
    stack: local_stack.Stack, token: str, page, artefacts: Path
) -> None:
    """A person triggers the legacy audit with a folder outside the import folders: the task fails at once (no
    retry can help), the run fails, and the receiver gets exactly one message for it."""
    devserver.clear_slack_messages(stack.sandbox_port)
    run = stack.api("POST", f"/api/v2/dags/{FAILING_DAG}/dagRuns",
                    {"logical_date": None, "conf": FAILING_CONF}, token=token)  # fmt: skip
    assert _wait_for_run(stack, token, FAILING_DAG, run["dag_run_id"]) == "failed", stack.log_tail()
    page.goto(f"{stack.base_url}/dags/{FAILING_DAG}/runs/{run['dag_run_id']}")
    page.get_by_text(re.compile(r"^failed$", re.IGNORECASE)).filter(visible=True).first.wait_for()
    _shot(page, artefacts, "09-failed-run")
    _wait_for(lambda: devserver.slack_messages(stack.sandbox_port) or None, ALERT_TIMEOUT, "no alert arrived")
    time.sleep(30)  # a second message would be a bug: give it the time to arrive
    result = stack.cdp("sandbox", "slack")
    assert result.returncode == 0, result.stderr
    assert "1 Slack message(s) received" in result.stdout, result.stdout
    assert FAILING_DAG in result.stdout, result.stdout
    print(f"\nthe alert of the failed run, as `cdp sandbox slack` prints it:\n{result.stdout}")


# ---------------------------------------------------------------- 6: last month's reconciliation
def _last_months_reconciliation_finds_the_lost_gifts(
    stack: local_stack.Stack, token: str, warehouse_url: str
) -> None:
    """The silent donation loss: gifts at Stripe that never reached the ledger, or the CRM, are unexplained
    differences. The run fails afterwards (unexplained differences alert once); what is checked here is what it
    found."""
    today = _sandbox_today()
    month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    lost = _lost_gifts(today, month)
    assert lost["missing_in_ledger"] and lost["missing_in_crm"], (
        f"the sandbox's world loses no gifts in {month}"
    )
    run = stack.api("POST", "/api/v2/dags/cdp_reconcile/dagRuns",
                    {"logical_date": None, "conf": {"month": month}}, token=token)  # fmt: skip
    for task_id in ("reconcile", "alert"):
        state = _wait_for_task(stack, token, "cdp_reconcile", run["dag_run_id"], task_id)
        assert state == "success", (task_id, state, stack.log_tail())
    with psycopg.connect(warehouse_url) as conn:
        status, unexplained = conn.execute(
            "SELECT status, unexplained_count FROM ops.reconciliation_run WHERE airflow_run_id = %s",
            (run["dag_run_id"],),
        ).fetchone()
        found = set(
            conn.execute(
                "SELECT financial_transaction_id, class FROM ops.reconciliation_result "
                "JOIN ops.reconciliation_run USING (run_id) WHERE airflow_run_id = %s AND NOT explained",
                (run["dag_run_id"],),
            ).fetchall()
        )
    assert status == "failed" and unexplained > 0, (status, unexplained)
    for kind, class_ in (("missing_in_ledger", "in_warehouse_not_ledger"), ("missing_in_crm", "not_in_crm")):
        missing = {ftid for ftid in lost[kind] if (ftid, class_) not in found}
        assert not missing, f"gifts {kind} that the reconciliation did not report as {class_}: {missing}"
    print(
        f"\n{month}: {len(lost['missing_in_ledger'])} gifts missing in the ledger and "
        f"{len(lost['missing_in_crm'])} missing in the CRM, all reported"
    )


def _lost_gifts(today: date, month: str) -> dict[str, set[str]]:
    """The financial transaction ids the sandbox's world lost (in the CRM, in the ledger) in ``month``."""
    world = World(seed=SANDBOX_SEED, learners=SANDBOX_LEARNERS, today=today)
    lost = world.truth.ledger.discrepancies_in(month)
    malformed = set(world.truth.malformed("stripe", "charges"))  # these wait in the quarantine, not in core
    return {kind: lost[kind] - malformed for kind in ("missing_in_crm", "missing_in_ledger")}


# ---------------------------------------------------------------- 7: the data-health page
def _data_health_page_has_charts_with_data(
    stack: local_stack.Stack, token: str, page, artefacts: Path
) -> None:
    health_run = stack.api(
        "POST", "/api/v2/dags/cdp_data_health/dagRuns", {"logical_date": None}, token=token
    )
    assert _wait_for_run(stack, token, "cdp_data_health", health_run["dag_run_id"]) == "success"
    page.goto(stack.base_url + "/")
    page.get_by_role("button", name=re.compile("Browse", re.IGNORECASE)).first.click()
    page.get_by_text("Data health", exact=True).filter(visible=True).first.click()
    page.wait_for_url(re.compile(r"/plugin/data-health"))
    frame = page.frame_locator("iframe").first
    frame.get_by_role("heading", name="Data health", exact=True).wait_for()
    frame.locator('[data-metric="last_rows_read:moodle.users"]').wait_for()
    _shot(page, artefacts, "10-data-health")
    assert "no data yet" not in frame.locator("#freshness").inner_text()

    # Charts with real data points: bars of a non-zero height, not an empty frame.
    for section in ("count-diff", "quarantine"):
        heights = [float(h) for h in frame.locator(f"#{section} svg.chart rect").evaluate_all(
            "bars => bars.map(bar => bar.getAttribute('height'))")]  # fmt: skip
        assert heights and max(heights) > 0, f"the {section} chart has no data points: {heights}"
    # ... and the planted faults as a person reads them: yesterday's count diff alerting, last month failing.
    yesterday = (_sandbox_today() - timedelta(days=1)).isoformat()
    alerting = frame.locator(f'[data-metric="count_diff_streams_alerting:{yesterday}"]').get_attribute(
        "data-value"
    )
    assert int(alerting) >= 1, alerting
    reconciliation = frame.locator('[data-metric="reconciliation_status"]').get_attribute("data-value")
    assert reconciliation != "passed"
    assert (
        int(frame.locator('[data-metric="reconciliation_unexplained"]').first.get_attribute("data-value")) > 0
    )
    frame.locator("#reconciliation").scroll_into_view_if_needed()
    _shot(page, artefacts, "11-data-health-planted-faults")


def _the_data_health_page_needs_the_login(
    stack: local_stack.Stack, token: str, page, artefacts: Path
) -> None:
    """The API server refuses the page and its JSON without a login, serves them with a token, and sends a
    browser without a session to the login page."""
    for path in ("/cdp-data-health/", "/cdp-data-health/data-health.json"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(stack.base_url + path, headers={"Accept": "application/json"}),
                timeout=120,
            )
        assert refused.value.code == 401, path
    assert "freshness" in stack.api("GET", "/cdp-data-health/data-health.json", token=token)
    anonymous = page.context.browser.new_page()
    try:
        anonymous.goto(stack.base_url + "/cdp-data-health/")
        anonymous.wait_for_selector("input[type=password]")
        _shot(anonymous, artefacts, "12-data-health-needs-login")
        assert "login" in anonymous.url and "Freshness" not in anonymous.content()
    finally:
        anonymous.close()


# ---------------------------------------------------------------- 8: the operator's side (was tests/deploy)
def _airflow_metadata_is_its_own_postgres_database_with_its_own_role(stack: local_stack.Stack) -> None:
    settings = devserver.read_stack_env()  # .cdp/airflow/stack.env, what the components got
    url = settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert url.startswith("postgresql+psycopg://airflow:"), url.split(":", 2)[:2]
    secrets_file = stack.home / "airflow" / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    password = json.loads(secrets_file.read_text())["metadata_password"]
    assert len(password) >= 32 and password not in {"airflow", "admin", "postgres"}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        who, database, superuser = conn.execute(
            "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert (who, database, superuser) == ("airflow", "airflow", False)
        # Migrated by `make run`, and the DAGs parsed into it by the stack's dag-processor.
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
        parsed = {row[0] for row in conn.execute("SELECT dag_id FROM serialized_dag")}
        assert parsed >= set(DAG_IDS)
    assert not list((stack.home / "airflow").glob("*.db")), "no SQLite file in AIRFLOW_HOME"
    # What the components themselves use: Airflow's own check against the configured database.
    result = stack.cdp("airflow", "db", "check")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Connection successful" in result.stdout + result.stderr


def _cdp_airflow_runs_airflow_commands_against_the_stack(stack: local_stack.Stack) -> None:
    result = stack.cdp("airflow", "dags", "list", "--output", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    listed = json.loads(result.stdout[result.stdout.index("[{") :])
    assert {dag["dag_id"] for dag in listed} >= set(DAG_IDS)


def _the_readmes_backfill_runs_beside_the_scheduler(stack: local_stack.Stack) -> None:
    scheduler = _scheduler()
    result = stack.cdp(
        "airflow", "backfill", "create", "--dag-id", "cdp_data_health", "--from-date", "2026-11-01T00:00",
        "--to-date", "2026-11-01T02:00", "--reprocess-behavior", "completed", "--max-active-runs", "1",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "database is locked" not in output and "OperationalError" not in output
    with _metadata() as conn:
        runs = conn.execute(
            "SELECT count(*) FROM dag_run WHERE dag_id = 'cdp_data_health' AND backfill_id IS NOT NULL"
        ).fetchone()[0]
    assert runs >= 2, "the backfill's runs are in the metadata database for the scheduler to run"
    assert scheduler.leader_alive(), "the scheduler survived the backfill"
    assert "scheduler exited" not in stack.log_path.read_text()


def _a_second_start_is_refused_naming_the_running_one(stack: local_stack.Stack) -> None:
    result = stack.cdp("run", "--port", str(free_port()), "--sandbox-port", str(free_port()), timeout=300)
    assert result.returncode == 1
    assert "already running" in result.stderr and f"pid {stack.process.pid}" in result.stderr
    assert stack.process.poll() is None, "the running stack is left alone"


def _a_killed_scheduler_is_restarted(stack: local_stack.Stack) -> None:
    before = _scheduler()
    psutil.Process(before.pid).kill()
    deadline = time.monotonic() + 300
    after = before
    while time.monotonic() < deadline and (after.pid == before.pid or not after.leader_alive()):
        time.sleep(1)
        after = next((record for record in read_records() if record.name == "scheduler"), before)
    assert after.pid != before.pid and after.leader_alive(), stack.log_tail()
    assert "scheduler exited with code -9; restarting it (1 of 3" in stack.log_path.read_text()


# ---------------------------------------------------------------- 9: Ctrl-C
def _ctrl_c_stops_every_process_and_cdp_stop_the_warehouse(stack: local_stack.Stack) -> float:
    records = read_records()
    assert {record.name for record in records} >= {"supervisor", "sandbox", *devserver.COMPONENTS}
    # The components fork their workers (the API server's, the scheduler's executor) as they warm up: wait
    # for some, so the stop is seen to take children too.
    deadline = time.monotonic() + 120
    tree = [process for record in records for process in record.members()]
    while len(tree) <= len(records) and time.monotonic() < deadline:
        time.sleep(2)
        tree = [process for record in records for process in record.members()]
    assert len(tree) > len(records), "the components' children are part of the tree"
    session = [p for p in psutil.process_iter() if _in_session(p, stack.process.pid)]

    seconds = stack.interrupt()

    assert stack.process.returncode == 0, stack.log_tail()
    assert seconds < 30, f"Ctrl-C took {seconds:.1f} s"
    left = [p for p in {*tree, *session} if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"left running after Ctrl-C: {left}"
    assert port_is_free(stack.port) and port_is_free(stack.sandbox_port)
    assert read_records() == []
    assert "Ctrl-C: stopping Airflow and the sandbox" in stack.log_path.read_text()
    print(f"\nCtrl-C stopped {len(tree)} processes in {seconds:.1f} s")

    server = EmbeddedServer(Path(stack.home) / "warehouse")
    assert server.is_running(), "Ctrl-C leaves the warehouse running"
    result = stack.cdp("stop")
    assert result.returncode == 0 and "stopped the embedded PostgreSQL" in result.stdout
    assert not server.is_running()
    return round(seconds, 1)


def _in_session(process: psutil.Process, session: int) -> bool:
    """In `cdp run`'s session (the stack started it with a session of its own, as a terminal's job)."""
    try:
        return os.getsid(process.pid) == session
    except (ProcessLookupError, PermissionError):
        return False


# ---------------------------------------------------------------- helpers
def _shot(page, artefacts: Path, name: str) -> None:
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


def _sandbox_today() -> date:
    """The day the sandbox's world is dated from (``devserver.reference_day``: today, UTC, in this stack)."""
    return devserver.reference_day()


def _planted_faults(stack: local_stack.Stack) -> list[dict]:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{stack.sandbox_port}/_sandbox/faults", timeout=30
    ) as answer:
        return json.loads(answer.read())["faults"]


def _scheduler():
    return next(record for record in read_records() if record.name == "scheduler")


def _metadata() -> psycopg.Connection:
    settings = devserver.read_stack_env()
    return psycopg.connect(
        settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", ""), autocommit=True
    )


def _wait_for(check: Callable[[], T | None], timeout: float, failure: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(failure)


def _wait_for_dags(stack: local_stack.Stack, token: str) -> set[str]:
    deadline = time.monotonic() + START_TIMEOUT
    seen: set[str] = set()
    while time.monotonic() < deadline:
        answer = stack.poll("/api/v2/dags?limit=100", token)
        seen = {dag["dag_id"] for dag in answer["dags"]} if answer else seen
        if set(DAG_IDS) <= seen:
            return seen
        time.sleep(2)
    raise AssertionError(f"DAGs never parsed: {sorted(set(DAG_IDS) - seen)}\n{stack.log_tail()}")


def _runs(stack: local_stack.Stack, token: str, dag_id: str) -> list[dict]:
    return (stack.poll(f"/api/v2/dags/{dag_id}/dagRuns?limit=100", token) or {"dag_runs": []})["dag_runs"]


def _wait_for_run(stack: local_stack.Stack, token: str, dag_id: str, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    state = "unknown"
    while time.monotonic() < deadline:
        answer = stack.poll(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token)
        state = answer["state"] if answer else state
        if state in {"success", "failed"}:
            return state
        time.sleep(3)
    raise AssertionError(f"{dag_id} run {run_id} still {state} after {RUN_TIMEOUT} s\n{stack.log_tail()}")


def _wait_for_task(stack: local_stack.Stack, token: str, dag_id: str, run_id: str, task_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    state = "unknown"
    while time.monotonic() < deadline:
        answer = stack.poll(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", token)
        state = (answer or {}).get("state") or state
        if state in {"success", "failed", "upstream_failed", "up_for_retry"}:
            return state
        time.sleep(3)
    raise AssertionError(
        f"{dag_id} {run_id} {task_id} still {state} after {RUN_TIMEOUT} s\n{stack.log_tail()}"
    )


def _manual_run(stack: local_stack.Stack, token: str, dag_id: str) -> str:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        manual = [run["dag_run_id"] for run in _runs(stack, token, dag_id) if run["run_type"] == "manual"]
        if manual:
            return manual[-1]
        time.sleep(1)
    raise AssertionError(f"the UI's trigger created no manual run of {dag_id}")
