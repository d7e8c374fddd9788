"""Signed webhook intake for the registration form and the survey tools (Typeform, Zigpoll).

A request is checked (content type, size, HMAC signature over the exact bytes received, JSON, the fields
that identify the event, timestamp, known form), then its payload is landed in ``raw.records`` (stream
``webhook``) in the same statement that claims its event id in ``ops.webhook_event``, and only then is the
sender answered 2xx: an acknowledged event is never lost, and a repeated one is landed once. Nothing of a
body is stored before its signature verifies: a rejected request is answered 4xx with the reason and
counted per source, reason and hour in ``ops.webhook_rejection_count`` (a few detail rows per hour in
``ops.webhook_rejection``, never the body), an unknown source name stores nothing, and a signed body
PostgreSQL cannot hold as JSON is kept byte for byte in ``ops.webhook_undeliverable`` and answered 200
(the ``webhook_undeliverable`` data alert tells an operator). Nothing reaches ``core`` from here. The pipeline
(DAG ``cdp_webhook_intake``, woken by the Asset event the plugin emits) feeds the landed payloads through the
same survey mappings as the 2-hourly polling sync (``cdp.webhooks.stream``).

No Airflow imports: the plugin in ``plugins/`` wraps ``create_app`` and supplies the secrets.
"""

WEBHOOK_ASSET_NAME = "warehouse.raw.webhooks"
WEBHOOK_ASSET_URI = "cdp://warehouse/raw/webhooks"

# The survey streams that webhooks feed, by their polling spec's key. A key with no spec in
# cdp.sync.specs yet is left out (its events wait, and the DAG's check_backlog reports them).
WEBHOOK_STREAM_KEYS = ("typeform.responses", "zigpoll.responses", "registration.submissions")


def specs_with_webhooks() -> list:
    """The sync specs of the streams webhooks feed (light import: the DAG file calls it at parse time)."""
    from cdp.sync.specs import BY_KEY

    return [BY_KEY[key] for key in WEBHOOK_STREAM_KEYS if key in BY_KEY]
