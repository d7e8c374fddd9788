"""What a task needs of its context: the warehouse it writes to and the actor its audit events name. Kept
apart from ``cdp.runtime`` so that its helpers (the audit anchor) can use it without an import cycle."""

from __future__ import annotations

import logging
from typing import Any

from cdp.warehouse import PIPELINE, Actor, normalise_url, resolve_url
from cdp.warehouse.embedded import FAMILY_PURPOSES

log = logging.getLogger(__name__)

WAREHOUSE_CONN_ID = "warehouse"

#: DAG families that connect as their own login (issue 15, "each DAG family its own role"): dag_id ->
#: Airflow connection id (``AIRFLOW_CONN_WAREHOUSE_RECONCILE``, ...). A family whose connection is not
#: configured falls back to ``warehouse`` with a warning, so a deployment without the new connections keeps
#: working.
FAMILY_CONNECTIONS: dict[str, str] = {
    f"cdp_{purpose}": conn_id for purpose, conn_id in FAMILY_PURPOSES.items()
}


def _connection_url(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return normalise_url(connection.get_uri())


def warehouse_url(dag_id: str | None = None) -> str:
    """The warehouse as ``dag_id``'s family login (``FAMILY_CONNECTIONS``) when that connection is defined,
    else the Airflow connection ``warehouse``, else the project's embedded server (started)."""
    family_conn_id = FAMILY_CONNECTIONS.get(dag_id or "")
    if family_conn_id is not None:
        url = _connection_url(family_conn_id)
        if url is not None:
            return url
        log.warning(
            "DAG %s has no connection of its own (%s): using `%s`; give it its own login",
            dag_id, family_conn_id, WAREHOUSE_CONN_ID,
        )  # fmt: skip
    url = _connection_url(WAREHOUSE_CONN_ID)
    if url is not None:
        return url
    return resolve_url(start_embedded=True, purpose=PIPELINE)


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
