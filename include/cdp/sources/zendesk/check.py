"""``cdp sources check`` for Zendesk: the agent's API token is accepted, the agent may use the Incremental
Export, and the custom ticket field named as the Referral field (``extra.referral_field_id``) exists.

Zendesk's API reference: ``GET /api/v2/users/me`` (the authenticated user, ``role``),
``GET /api/v2/ticket_fields/{id}`` (``{"ticket_field": {"id", "type", "title", "active", ...}}``, 404
``RecordNotFound``), and the Incremental Exports, which only admins may call.
"""

from __future__ import annotations

from cdp.sources.base import SourceSettings
from cdp.sources.check import Finding
from cdp.sources.setup_checks import probe, quick
from cdp.sources.zendesk import ZendeskClient

SOURCE = "zendesk"
AUTH_STEP = "SETUP.md step 1: API token access and the agent's email"


def setup_findings(settings: SourceSettings) -> list[Finding]:
    findings: list[Finding] = []
    if not settings.extra.get("email"):
        return [Finding(SOURCE, "extra.email", "no agent email configured", AUTH_STEP)]
    client = ZendeskClient(quick(settings))
    ok, me = probe(
        findings,
        SOURCE,
        "/api/v2/users/me",
        AUTH_STEP,
        lambda: client.get("/api/v2/users/me.json", {}),
        auth_step=AUTH_STEP,
    )
    if not ok:
        return findings
    role = (me.get("user") or {}).get("role") if isinstance(me, dict) else None
    if role != "admin":
        findings.append(
            Finding(
                SOURCE,
                "agent role",
                f"the agent's role is {role!r}; the Incremental Export needs an admin",
                "SETUP.md step 2: an admin agent for the export",
            )
        )
    field_id = client.referral_field_id
    if field_id is None:
        findings.append(
            Finding(
                SOURCE,
                "extra.referral_field_id",
                "no Referral ticket field configured: only the `referral` tag marks tickets about referrals",
                "SETUP.md step 3: the Referral ticket field",
                "warning",
            )
        )
        return findings
    ok, body = probe(
        findings,
        SOURCE,
        f"ticket field {field_id}",
        "SETUP.md step 3: the Referral ticket field",
        lambda: client.get(f"/api/v2/ticket_fields/{field_id}.json", {}),
        auth_step=AUTH_STEP,
    )
    field = body.get("ticket_field") if ok and isinstance(body, dict) else None
    if ok and not isinstance(field, dict):
        findings.append(
            Finding(
                SOURCE,
                f"ticket field {field_id}",
                "answered without a ticket_field",
                "SETUP.md step 3: the Referral ticket field",
            )
        )
    elif field is not None and field.get("active") is False:
        findings.append(
            Finding(
                SOURCE,
                f"ticket field {field_id}",
                "the field exists but is inactive",
                "SETUP.md step 3: the Referral ticket field",
                "warning",
            )
        )
    return findings
