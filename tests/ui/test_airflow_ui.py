"""The Airflow UI as its users see it, in Debian's Chromium driven by Playwright (headless).

The stack starts as `make run` starts it (`cdp run`: the warehouse migrated, Airflow's metadata in
PostgreSQL, the vendor-API sandbox, Airflow's four components with every DAG and the project's plugins), on
free ports in the test session's temporary folders. The browser logs in (SimpleAuthManager), sees every
DAG in the list, triggers `cdp_sync`, watches the run succeed, opens its log, and opens the data-health
page from the UI (which the API server refuses to anyone without the login). Screenshots of every step are
kept in ``test-artifacts/browser/`` (git-ignored; the path is printed).

Playwright brings only its driver here: the browser is ``/usr/bin/chromium`` from Debian (`make test`
installs it when missing), never a downloaded build.
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from ui import stack as local_stack

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CDP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
DAG_IDS = sorted(path.stem for path in (REPO / "dags").glob("cdp_*.py"))
# Generous: on a two-core machine shared with other test runs (load 15-25), Airflow took 7-14 minutes to
# answer and a cdp_sync run over 15 minutes
# (about 1 minute when idle).
START_TIMEOUT = 900
RUN_TIMEOUT = 1800
UI_TIMEOUT_MS = 180_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(4200)]


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


def _shot(page, artefacts: Path, name: str) -> None:
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


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


def test_operations_staff_see_sync_and_data_health_in_the_ui(running, browser_page, artefacts: Path) -> None:
    stack, warehouse_url = running
    page = browser_page
    token = stack.token()
    _wait_for_dags(stack, token)
    assert stack.api("GET", "/api/v2/importErrors", token=token)["total_entries"] == 0

    # Log in as a person would.
    page.goto(stack.base_url + "/")
    page.wait_for_selector("input[type=password]")
    _shot(page, artefacts, "01-login")
    page.locator("input:not([type=password])").first.fill(stack.user)
    page.locator("input[type=password]").fill(stack.password)
    page.locator("input[type=password]").press("Enter")
    page.wait_for_url(re.compile(r"^(?!.*login).*$"))

    # Every DAG in the list, with its tags.
    page.goto(stack.base_url + "/dags")
    for dag_id in DAG_IDS:
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for()
    _shot(page, artefacts, "02-dag-list")

    # Trigger the sync from its page; watch it succeed.
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

    # The data-health page, written by its DAG and opened from the UI's menu.
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
    _shot(page, artefacts, "06-data-health")
    assert "no data yet" not in frame.locator("#freshness").inner_text()

    # ... only behind Airflow's login: the real API server refuses the page and its JSON without it, serves
    # them with a token, and sends a browser without a session to the login page.
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
        _shot(anonymous, artefacts, "07-data-health-needs-login")
        assert "login" in anonymous.url and "Freshness" not in anonymous.content()
    finally:
        anonymous.close()


def _manual_run(stack: local_stack.Stack, token: str, dag_id: str) -> str:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = (stack.poll(f"/api/v2/dags/{dag_id}/dagRuns", token) or {"dag_runs": []})["dag_runs"]
        manual = [run["dag_run_id"] for run in runs if run["run_type"] == "manual"]
        if manual:
            return manual[-1]
        time.sleep(1)
    raise AssertionError(f"the UI's trigger created no manual run of {dag_id}")
