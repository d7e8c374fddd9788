"""Vendor pools exist wherever the DAGs run. A task whose pool does not exist stays queued for ever in Airflow 3,
so every pool any task of any DAG names must be created by docker-compose's airflow-init and by `make run`
(``cdp_sandbox.devserver.create_pools``), with the slots ``cdp.runtime.POOLS`` gives; both are also run for real
against an Airflow metadata database, and shown to keep slots an operator changed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cdp.runtime import DEFAULT_POOL, POOLS, SOURCE_POOLS
from cdp.sources.registry import STREAMS
from cdp_sandbox import devserver

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
POOL_LINE = re.compile(r'^pool (\S+) (\d+) "([^"]*)"$')
# Each `airflow` CLI call gets its own limit (issue 20): on a loaded machine one hung `airflow pools list` waited
# out the whole 600 s pytest timeout; now it fails on its own, naming the command.
CLI_TIMEOUT = 180


def _init_script() -> str:
    command = yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]["airflow-init"][
        "command"
    ]
    return command[-1].replace("$$", "$")  # compose's escape for a literal $


def compose_pools(script: str) -> dict[str, int]:
    """The pools airflow-init creates: name -> slots."""
    found = (POOL_LINE.match(line.strip()) for line in script.splitlines())
    return {match[1]: int(match[2]) for match in found if match}


def missing_pools(used: set[str], created: set[str]) -> list[str]:
    return sorted(used - created - {DEFAULT_POOL})


@pytest.fixture(scope="module")
def pools_used() -> dict[str, set[str]]:
    """Pool -> the tasks (dag.task) that run in it, over every DAG in dags/."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    used: dict[str, set[str]] = {}
    for dag in bag.dags.values():
        for task in dag.tasks:
            used.setdefault(task.pool, set()).add(f"{dag.dag_id}.{task.task_id}")
    return used


def test_every_pool_a_task_uses_is_created_by_compose_and_by_make_run(pools_used) -> None:
    in_compose = compose_pools(_init_script())
    in_make_run = devserver.pool_definitions()

    assert missing_pools(set(pools_used), set(in_compose)) == []
    assert missing_pools(set(pools_used), set(in_make_run)) == []
    assert in_compose == {pool.name: pool.slots for pool in POOLS}
    assert {name: d["slots"] for name, d in in_make_run.items()} == in_compose
    # The vendor pools are really used (a pool no task names would keep a budget for nothing).
    assert set(in_compose) <= set(pools_used)
    # Breaking the rule is caught: a task naming a pool nobody creates, or a pool line dropped from compose.
    assert missing_pools({*pools_used, "crm_v2_api"}, set(in_compose)) == ["crm_v2_api"]
    without_galaxy = _init_script().replace('pool galaxy_api 2 "Galaxy Digital volunteer platform"', "")
    assert missing_pools(set(pools_used), set(compose_pools(without_galaxy))) == ["galaxy_api"]


def test_every_source_has_a_pool_and_the_tasks_calling_it_run_there(pools_used) -> None:
    assert set(STREAMS) <= set(SOURCE_POOLS), "a registered source has no pool in cdp.runtime.SOURCE_POOLS"
    assert set(SOURCE_POOLS.values()) <= {pool.name for pool in POOLS} | {DEFAULT_POOL}
    # The other DAGs' vendor calls (cdp_sync's own tasks are checked in tests/dags/test_cdp_sync.py).
    assert {"cdp_count_diff.count_moodle", "cdp_count_diff.count_galaxy"} <= pools_used[
        "moodle_api"
    ] | pools_used["galaxy_api"]
    assert {
        "migration_phase2_lms_crm.push_contacts",
        "migration_phase3_completion_triggers.trigger_completions",
        "cdp_count_diff.count_salesforce",
        "cdp_sync.sync_salesforce_Contact",
    } <= pools_used["salesforce_api"]
    assert {"referral_migration.fulfil_rewards", "cdp_count_diff.count_referralhero"} <= pools_used[
        "survey_api"
    ]
    assert {
        "migration_phase4_platforms.sync_volunteers",
        "migration_phase4_platforms.sync_volunteer_activity",
        "cdp_sync.sync_galaxy_hours",
    } <= pools_used["galaxy_api"]


def _airflow(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(AIRFLOW), *args], env=env, capture_output=True, text=True, check=False, timeout=CLI_TIMEOUT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _pools(env: dict[str, str]) -> dict[str, int]:
    listed = _airflow(env, "pools", "list", "--output", "json")
    return {pool["pool"]: int(pool["slots"]) for pool in json.loads(listed[listed.index("[") :])}


def _with_an_operators_change(env: dict[str, str]) -> None:
    """galaxy_api and moodle_api missing; salesforce_api turned down to 1 slot by an operator."""
    for name in ("galaxy_api", "moodle_api"):
        subprocess.run(
            [str(AIRFLOW), "pools", "delete", name],
            env=env,
            capture_output=True,
            check=False,
            timeout=CLI_TIMEOUT,
        )
    _airflow(env, "pools", "set", "salesforce_api", "1", "turned down by an operator")


@pytest.fixture
def airflow_env(airflow_db: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_db),
        "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ['PATH']}",
    }


@pytest.mark.slow
def test_compose_init_creates_the_missing_pools_and_keeps_changed_slots(airflow_env) -> None:
    _with_an_operators_change(airflow_env)
    pool_lines = "\n".join(
        line for line in _init_script().splitlines() if line.startswith("pool") or POOL_LINE.match(line)
    )

    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", pool_lines],
        env=airflow_env,
        check=True,
        capture_output=True,
        timeout=3 * CLI_TIMEOUT,
    )

    expected = {pool.name: pool.slots for pool in POOLS}
    assert _pools(airflow_env) == {
        **expected,
        DEFAULT_POOL: _pools(airflow_env)[DEFAULT_POOL],
        "salesforce_api": 1,
    }


@pytest.mark.slow
def test_make_run_creates_the_missing_pools_and_keeps_changed_slots(airflow_env) -> None:
    _with_an_operators_change(airflow_env)

    created = devserver.create_pools(airflow_env)

    assert created == ["galaxy_api", "moodle_api"]
    pools = _pools(airflow_env)
    assert pools == {
        **{pool.name: pool.slots for pool in POOLS},
        DEFAULT_POOL: pools[DEFAULT_POOL],
        "salesforce_api": 1,
    }
    assert devserver.create_pools(airflow_env) == []  # nothing missing: nothing done
