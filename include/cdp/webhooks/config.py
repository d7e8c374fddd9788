"""What the intake needs to know: per source, its signing secret and the forms it may send.

Secrets never live in code. The plugin reads them from Airflow connections (``webhook_typeform``,
``webhook_zigpoll``, ``webhook_registration``: password = signing secret, extra ``{"forms": {"FORM_ID":
"STREAM"}}``); ``from_env`` reads the same from ``CDP_WEBHOOK_<SOURCE>_SECRET`` and
``CDP_WEBHOOK_<SOURCE>_FORMS`` (``FORM_ID=STREAM,…``) for runs without Airflow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

SOURCES = ("typeform", "zigpoll", "registration")
DEFAULT_MAX_BYTES = 256 * 1024
# Zigpoll and the registration form sign their timestamp: five minutes is the usual window.
DEFAULT_TOLERANCE_SECONDS = 300
# Typeform signs no timestamp; its own retries of a failed delivery go on for hours, so an event is
# accepted up to a day after submission (a replay inside that day is still landed only once).
DEFAULT_TYPEFORM_MAX_AGE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class FormRoute:
    form_id: str
    stream: str  # the survey stream whose mapping processes it, e.g. "responses"


@dataclass(frozen=True)
class SourceConfig:
    source: str
    secret: str
    forms: Mapping[str, FormRoute] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown webhook source {self.source!r}; one of {', '.join(SOURCES)}")
        if len(self.secret) < 16:
            raise ValueError(f"the {self.source} webhook secret is missing or shorter than 16 characters")


@dataclass(frozen=True)
class WebhookSettings:
    sources: Mapping[str, SourceConfig]
    max_body_bytes: int = DEFAULT_MAX_BYTES
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    typeform_max_age_seconds: int = DEFAULT_TYPEFORM_MAX_AGE_SECONDS


def parse_forms(value: str | Mapping[str, str] | None, default_stream: str) -> dict[str, FormRoute]:
    """``{"id": "stream"}`` or ``"id=stream,id2"`` (stream defaulted) as routes."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v or default_stream)) for k, v in value.items()]
    else:
        pairs = []
        for item in value.split(","):
            form_id, _, stream = item.strip().partition("=")
            if form_id:
                pairs.append((form_id, stream or default_stream))
    return {form_id: FormRoute(form_id, stream) for form_id, stream in pairs}


DEFAULT_STREAM = {"typeform": "responses", "zigpoll": "responses", "registration": "submissions"}


def source_config(source: str, secret: str, forms: str | Mapping[str, str] | None) -> SourceConfig:
    return SourceConfig(source, secret, parse_forms(forms, DEFAULT_STREAM[source]))


def from_env(environ: Mapping[str, str] | None = None) -> WebhookSettings:
    environ = os.environ if environ is None else environ
    sources = {}
    for source in SOURCES:
        secret = environ.get(f"CDP_WEBHOOK_{source.upper()}_SECRET")
        if secret:
            sources[source] = source_config(
                source, secret, environ.get(f"CDP_WEBHOOK_{source.upper()}_FORMS")
            )
    return WebhookSettings(
        sources,
        max_body_bytes=int(environ.get("CDP_WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BYTES)),
        tolerance_seconds=int(environ.get("CDP_WEBHOOK_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS)),
    )
