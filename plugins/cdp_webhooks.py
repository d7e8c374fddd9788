"""Airflow plugin: the signed webhook intake, served by the Airflow API server under ``/cdp-webhooks``.

Senders post to ``https://<airflow>/cdp-webhooks/typeform`` (``/zigpoll``, ``/registration``). The logic
is ``cdp.webhooks``; this file only supplies what comes from Airflow: the warehouse and signing secrets
from Airflow connections (``warehouse_webhook``, the intake's own cdp_webhook login; ``webhook_typeform``,
``webhook_zigpoll``, ``webhook_registration`` with the secret as password and
``{"forms": {"FORM_ID": "STREAM"}}`` as extra; ``CDP_WEBHOOK_*`` environment variables when a connection
is absent), and the Asset event that wakes the ``cdp_webhook_intake`` DAG. Nothing is looked up when the
plugin loads, only at the first request.

The endpoints are not behind Airflow's login (vendors cannot log in): the HMAC signature is the
authentication, checked on every request before anything of its body is stored (``cdp.webhooks.intake``).
"""

from __future__ import annotations

import logging

from airflow.plugins_manager import AirflowPlugin

from cdp.webhooks.app import CoalescingNotifier, create_app

log = logging.getLogger(__name__)


def _settings():
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    from cdp.webhooks import config

    from_env = config.from_env()
    sources = dict(from_env.sources)
    for source in config.SOURCES:
        try:
            connection = Connection.get_connection_from_secrets(f"webhook_{source}")
        except AirflowNotFoundException:
            continue
        sources[source] = config.source_config(
            source, connection.password or "", connection.extra_dejson.get("forms")
        )
    return config.WebhookSettings(
        sources,
        max_body_bytes=from_env.max_body_bytes,
        tolerance_seconds=from_env.tolerance_seconds,
        typeform_max_age_seconds=from_env.typeform_max_age_seconds,
    )


def _warehouse_url() -> str:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    from cdp.warehouse import WEBHOOK, normalise_url, resolve_url

    # Its own login (a cdp_webhook member: inserts into the intake tables only), never the pipeline's.
    try:
        return normalise_url(Connection.get_connection_from_secrets("warehouse_webhook").get_uri())
    except AirflowNotFoundException:
        return resolve_url(purpose=WEBHOOK)


def _intake():
    from cdp.webhooks.intake import Intake

    return Intake(_warehouse_url(), _settings())


def emit_asset_event(landed: int) -> None:
    """One Asset event for a burst of landed webhooks: the DAG scheduled on it processes them all."""
    from airflow.assets.manager import asset_manager
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
    from airflow.utils.session import create_session

    from cdp.webhooks import WEBHOOK_ASSET_NAME, WEBHOOK_ASSET_URI

    with create_session() as session:
        asset_manager.register_asset_change(
            asset=SerializedAssetUniqueKey(name=WEBHOOK_ASSET_NAME, uri=WEBHOOK_ASSET_URI),
            extra={"landed": landed},
            source_is_api=True,
            session=session,
        )


webhook_app = create_app(_intake, CoalescingNotifier(emit_asset_event, interval=1.0))


class CdpWebhooksPlugin(AirflowPlugin):
    name = "cdp_webhooks"
    fastapi_apps = [{"app": webhook_app, "url_prefix": "/cdp-webhooks", "name": "CDP webhook intake"}]
