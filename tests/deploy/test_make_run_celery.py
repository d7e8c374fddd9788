"""`make run EXECUTOR=celery` (issue 20, item 4): the local stack as `cdp run --executor celery` starts it, on free
ports with a CDP_HOME of its own (``tests/ui/stack.py``): Redis as the broker, the api-server, scheduler,
dag-processor, triggerer and two supervised Celery workers, ``default`` and ``heavy``.

One manual ``cdp_reconcile`` run (a month before the world's history: nothing to differ, so it passes) goes through
both workers: its ``reconcile`` task on the heavy queue, ``alert`` and ``require_reconciled`` on the default
one. Celery's own result rows (in Airflow's metadata database, with the worker's node name) say which worker ran
what. Ctrl-C then stops every process the stack started, Redis and the workers included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import psycopg
import pytest
from support import create_database, drop_database
from ui import stack as local_stack

from cdp_sandbox import devserver
from cdp_sandbox.processes import read_records

START_TIMEOUT = 900
RUN_TIMEOUT = 900
MONTH = "2000-01"
EXPECTED_WORKER = {"reconcile": "heavy", "alert": "default", "require_reconciled": "default"}

pytestmark = [pytest.mark.stack, pytest.mark.timeout(START_TIMEOUT + RUN_TIMEOUT + 300)]


@pytest.fixture(scope="module")
def celery_stack(pg_server, migrated_template, tmp_path_factory) -> Iterator[tuple[local_stack.Stack, str]]:
    name = create_database(pg_server, migrated_template)
    url = pg_server.url(name)
    started = local_stack.start(url, tmp_path_factory.mktemp("make-run-celery"), timeout=START_TIMEOUT,
                                executor="celery")  # fmt: skip
    try:
        yield started, url
    finally:
        started.stop()
        drop_database(pg_server, name)


def _wait(check, timeout: float, failure) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(3)
    raise AssertionError(failure())


def test_make_run_with_celery_shares_a_run_between_its_two_workers(
    celery_stack: tuple[local_stack.Stack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, warehouse_url = celery_stack
    monkeypatch.setenv("CDP_HOME", str(stack.home))  # this process reads the stack's pid files and settings
    banner = stack.log_path.read_text(errors="replace")
    assert "executor:    CeleryExecutor, Redis on 127.0.0.1:" in banner
    assert "heavy@ (queue heavy, 1 slot)" in banner

    settings = devserver.read_stack_env()
    assert settings["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert settings["CDP_HEAVY_QUEUE"] == "heavy", "`cdp airflow` and the workers see the heavy queue"
    running = {record.name for record in read_records() if record.leader_alive()}
    assert {"redis", "celery-worker-default", "celery-worker-heavy", *devserver.COMPONENTS} <= running

    token = stack.token()
    _wait(lambda: stack.poll("/api/v2/dags/cdp_reconcile", token), START_TIMEOUT,
          lambda: f"cdp_reconcile never parsed\n{stack.log_tail()}")  # fmt: skip
    run = stack.api("POST", "/api/v2/dags/cdp_reconcile/dagRuns",
                    {"logical_date": None, "conf": {"month": MONTH}}, token=token)  # fmt: skip
    run_id = run["dag_run_id"]

    def finished() -> str | None:
        answer = stack.poll(f"/api/v2/dags/cdp_reconcile/dagRuns/{run_id}", token)
        return answer["state"] if answer and answer["state"] in {"success", "failed"} else None

    state = _wait(finished, RUN_TIMEOUT, lambda: f"cdp_reconcile {run_id} did not finish\n{stack.log_tail()}")
    assert state == "success", stack.log_tail()

    with psycopg.connect(settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "")) as conn:
        ran = conn.execute(
            "SELECT ti.task_id, ti.queue, m.worker FROM task_instance ti"
            " JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id"
            " WHERE ti.dag_id = 'cdp_reconcile' AND ti.run_id = %s",
            (run_id,),
        ).fetchall()
    where = {task: (queue, worker.split("@")[0]) for task, queue, worker in ran}
    assert where == {task: (worker, worker) for task, worker in EXPECTED_WORKER.items()}, where
    with psycopg.connect(warehouse_url) as conn:
        status = conn.execute(
            "SELECT status FROM ops.reconciliation_run WHERE airflow_run_id = %s", (run_id,)
        ).fetchone()
    assert status == ("passed",), "the heavy worker's reconciliation reached the warehouse"

    processes = [psutil.Process(record.pid) for record in read_records() if record.leader_alive()]
    seconds = stack.interrupt()
    print(
        f"\nEXECUTOR=celery: login after {stack.answered_after:.0f} s, Ctrl-C: all stopped in {seconds:.1f} s"
    )
    assert not [process for process in processes if process.is_running() and process.status() != "zombie"]
