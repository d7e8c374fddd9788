"""House rules for every DAG file, so a new DAG cannot skip them (after Mozilla's telemetry-airflow tests)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cdp.runtime import ALLOWED_TAGS, OWNER

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
# Never imported by parsing a DAG file: slow to import, or able to reach a database or an API.
HEAVY_AT_PARSE_TIME = frozenset(
    {"pandas", "numpy", "scipy", "sklearn", "recordlinkage", "rapidfuzz", "openpyxl", "psycopg", "psycopg2",
     "requests", "httpx", "sqlparse"}
)  # fmt: skip


@pytest.fixture(scope="module")
def dag_bag(monkeypatch_module):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Variable

    def refuse(*args, **kwargs):
        raise AssertionError("a DAG file looked up a connection or variable at parse time")

    monkeypatch_module.setattr(BaseHook, "get_connection", classmethod(refuse))
    monkeypatch_module.setattr(Variable, "get", staticmethod(refuse))
    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.fixture(scope="module")
def monkeypatch_module():
    patcher = pytest.MonkeyPatch()
    yield patcher
    patcher.undo()


def _dag_call_keywords(path: Path) -> set[str]:
    """Keyword arguments given to the @dag decorator (or DAG(...)) in the file, read without running it."""
    keywords: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"dag", "DAG"}:
            keywords |= {keyword.arg for keyword in node.keywords if keyword.arg}
    return keywords


def test_there_are_dags() -> None:
    assert DAG_FILES, "no DAG files found"


def test_every_dag_file_imports_without_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}
    files_with_dags = {Path(dag.fileloc).name for dag in dag_bag.dags.values()}
    assert files_with_dags == {path.name for path in DAG_FILES}


def test_every_dag_follows_the_house_rules(dag_bag) -> None:
    from airflow.sdk.bases.notifier import BaseNotifier

    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert set(dag.tags) <= ALLOWED_TAGS, f"{dag_id} uses tags outside {sorted(ALLOWED_TAGS)}"
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} lacks documentation for operations staff"
        # The serialized DAG is stored as JSON in the metadata database: PostgreSQL refuses a NUL in it, and
        # the dag-processor then dies (a docstring's "\u0000" is a NUL unless written "\\u0000").
        controls = sorted({char for char in dag.doc_md if ord(char) < 32 and char not in "\n\t"})
        assert not controls, f"{dag_id}'s documentation holds control characters {controls}"
        callbacks = (
            dag.on_failure_callback
            if isinstance(dag.on_failure_callback, list)
            else [dag.on_failure_callback]
        )
        assert any(isinstance(callback, BaseNotifier) for callback in callbacks), (
            f"{dag_id} has no failure notifier"
        )
        for task in dag.tasks:
            assert task.owner == OWNER, f"{dag_id}.{task.task_id} owner is {task.owner}"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"
            assert task.retry_exponential_backoff, f"{dag_id}.{task.task_id} retries without backoff"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_schedule_catchup_and_start_date_are_explicit(path: Path) -> None:
    keywords = _dag_call_keywords(path)
    missing = {
        "schedule",
        "catchup",
        "start_date",
        "doc_md",
        "tags",
        "default_args",
        "on_failure_callback",
    } - keywords
    assert not missing, f"{path.name} leaves {sorted(missing)} to defaults"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_dag_file_parses_without_heavy_imports(path: Path) -> None:
    """What parsing a DAG file loads, in a fresh interpreter after Airflow itself (the dag-processor's view).

    Parse speed is kept by what a file imports, not by a stopwatch (which a busy machine defeats): data
    libraries and database or HTTP clients belong inside task bodies.
    """
    script = (
        "import sys, runpy, airflow.sdk, cdp.runtime\n"
        "before = set(sys.modules)\n"
        f"runpy.run_path({str(path)!r})\n"
        "print(' '.join(sorted({name.split('.')[0] for name in set(sys.modules) - before})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(result.stdout.strip().splitlines()[-1].split()) if result.stdout.strip() else set()
    assert not loaded & HEAVY_AT_PARSE_TIME, (
        f"{path.name} imports {sorted(loaded & HEAVY_AT_PARSE_TIME)} at parse time"
    )


def test_ruff_airflow3_rules_are_clean() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "AIR3",
            "--preview",
            "dags",
            "include",
            "plugins",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Context values a run can lack: a run triggered from the CLI or the UI, or by an Asset, has no logical date
# and no data interval (Airflow 3), and a first run has no previous one.
MAYBE_ABSENT = frozenset(
    {"logical_date", "data_interval_start", "data_interval_end", "ds", "ds_nodash", "ts", "ts_nodash",
     "prev_data_interval_start_success", "prev_data_interval_end_success", "prev_start_date_success",
     "prev_end_date_success", "triggering_asset_events"}
)  # fmt: skip


def test_no_task_needs_a_data_interval(dag_bag) -> None:
    """A manual, CLI or Asset-triggered run works: a task takes each value a run may lack as a parameter with a
    default (TaskFlow then hands in the default), never from ``context[...]`` or a template."""
    import inspect

    for dag_id, dag in dag_bag.dags.items():
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            callable_ = getattr(task, "python_callable", None)
            if callable_ is not None:
                source = inspect.getsource(callable_)
                for parameter in inspect.signature(callable_).parameters.values():
                    if parameter.name in MAYBE_ABSENT:
                        assert parameter.default is None, f"{where}: {parameter.name} has no default of None"
                for name in MAYBE_ABSENT:
                    assert f'context["{name}"]' not in source and f"context['{name}']" not in source, where
            for field in task.template_fields:
                value = str(getattr(task, field, "") or "")
                used = {name for name in MAYBE_ABSENT if "{{" in value and name in value}
                assert not used, f"{where}.{field} renders {sorted(used)}, absent from a manual run"


def _first_run_after(dag) -> object:
    """When the scheduler would start the DAG's first run, had it just been switched on (no run before)."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import TimeRestriction

    served = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # the scheduler's view of it
    info = served.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=served.start_date, latest=None, catchup=served.catchup),
    )
    return None if info is None else info.run_after


def _pre_execute(task) -> object:
    """What Airflow's task runner calls before the task (a mapped task passes it on to each of its copies)."""
    if hasattr(task, "partial_kwargs"):
        return task.partial_kwargs.get("pre_execute")
    return task._pre_execute_hook


# Switched on at these minutes of an hour (each DAG's cron minute is 0, 15, 40 or 45): Airflow 3.3 runs the
# last past cron time within max(5 min, a tenth of the gap) after it unless told never to; the CI run that
# found it had started a minute after :45.
SWITCHED_ON_AT = ["2026-12-07T13:41:00", "2026-12-07T13:46:00", "2026-12-07T14:00:30", "2026-12-07T13:20:00"]


@pytest.mark.parametrize("switched_on", SWITCHED_ON_AT)
def test_the_dags_that_read_synced_data_wait_for_the_first_complete_sync(
    dag_bag, switched_on: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pendulum
    from airflow.timetables import trigger

    from cdp.runtime.assets import WAREHOUSE_READY_URI, skip_before_first_complete_sync_hook

    monkeypatch.setattr(trigger, "utcnow", lambda: pendulum.parse(switched_on))

    waiting = {
        "cdp_dedupe", "cdp_count_diff", "cdp_reconcile", "cdp_data_health", "migration_phase2_lms_crm",
        "migration_phase4_platforms", "referral_migration",
    }  # fmt: skip
    for dag_id in waiting:
        schedule = dag_bag.dags[dag_id].timetable
        assert [asset.uri for asset in schedule.asset_condition.objects] == [WAREHOUSE_READY_URI], dag_id
    # Their cron time may still come during the first sync: every task of such a run skips until it is done.
    for dag_id in {*waiting, "migration_phase3_completion_triggers"}:
        for task in dag_bag.dags[dag_id].tasks:
            assert _pre_execute(task) is skip_before_first_complete_sync_hook, (dag_id, task.task_id)
    assert all(_pre_execute(task) is None for task in dag_bag.dags["cdp_sync"].tasks)
    # Phase 3 also on the completions a sync lands (its runs before the first complete sync skip).
    phase3 = dag_bag.dags["migration_phase3_completion_triggers"].timetable.asset_condition
    assert [asset.uri for asset in phase3.objects] == [
        WAREHOUSE_READY_URI,
        "cdp://warehouse/core/course_completion",
    ]
    # Switching the DAGs on (a fresh `make run`) starts only these at once; the rest wait for their next cron
    # time or, sooner, for the first complete sync (phase 3: for the first completions a sync lands).
    now = pendulum.parse(switched_on)
    at_once = {
        dag_id for dag_id, dag in dag_bag.dags.items() if (_first_run_after(dag) or now.add(days=1)) <= now
    }
    assert at_once == {"cdp_sync", "cdp_health", "cdp_webhook_intake"}
    # The check can fail: with a start date, a cron DAG's latest past cron time runs at switch-on.
    started = dag_bag.dags["cdp_health"]
    assert started.start_date is not None and _first_run_after(started) <= now
