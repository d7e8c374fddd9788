"""The registration form: a push-only source. It has no polling API, so no connector: its submissions
arrive as signed webhooks (``cdp.webhooks``), and the webhook DAG feeds them through the sync engine with
the spec in ``specs.py``, like any other stream."""
