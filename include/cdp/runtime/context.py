"""What a task needs of its context: the warehouse it writes to and the actor its audit events name. Kept
apart from ``cdp.runtime`` so that its helpers (the audit anchor) can use it without an import cycle."""

from __future__ import annotations

from typing import Any

from cdp.warehouse import PIPELINE, Actor, normalise_url, resolve_url

WAREHOUSE_CONN_ID = "warehouse"


def warehouse_url() -> str:
    """The Airflow connection ``warehouse`` when defined, else the project's embedded server (started)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(WAREHOUSE_CONN_ID)
    except AirflowNotFoundException:
        return resolve_url(start_embedded=True, purpose=PIPELINE)
    return normalise_url(connection.get_uri())


def actor_of(ti: Any) -> Actor:
    """Audit events written by a task name its DAG, run and task: from the task instance TaskFlow hands in
    (a task declares ``ti=None``)."""
    dag_id = getattr(ti, "dag_id", None)
    return Actor(
        name=f"airflow:{dag_id}",
        dag_id=dag_id,
        run_id=getattr(ti, "run_id", None),
        task_id=getattr(ti, "task_id", None),
    )
