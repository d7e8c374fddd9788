"""Data subject requests and logins, over the functions the warehouse itself guards.

The rules live in the database (``sql/definitions/privacy/``, history in revisions 0005, 0012 and 0014):
who may export, who may erase, what erasure keeps for financial audit, how raw payloads are redacted.
This module calls those functions in one transaction and prints numbers, never the personal data itself
(an export is written to the file asked for, or to standard output when asked to).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

APPLICATION_ROLES = (
    "cdp_loader",
    "cdp_viewer",
    "cdp_editor",
    "cdp_admin",
    "cdp_finance",
    "cdp_partner",
    "cdp_outreach",
)


class PersonNotFound(LookupError):
    """No person with that id in the warehouse."""


@dataclass(frozen=True)
class ErasureResult:
    person_id: str
    counts: dict[str, Any]


def _person_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as error:
        raise PersonNotFound(f"{value!r} is not a person id (a UUID)") from error


def export_person(url: str, person_id: str, actor: Actor) -> dict[str, Any]:
    """Everything held about a person (core, consent, raw, audit references); audited in the database."""
    import psycopg

    person_id = _person_id(person_id)
    try:
        with transaction(url, actor) as conn:
            row = conn.execute("SELECT privacy.export_person(%s) AS document", (person_id,)).fetchone()
            document = row["document"]
            # The personal fields of the audit images (kept outside the hash chain, see 0012) are data
            # held about the person too.
            document["audit_personal_images"] = conn.execute(
                "SELECT coalesce(jsonb_agg(to_jsonb(i) - 'salt' - 'subject_id' ORDER BY i.recorded_at, i.image_set,"
                " i.ordinal), '[]') AS images FROM audit.personal_image i WHERE i.subject_id = ANY(%s)",
                ([p["person_id"] for p in document["people"]],),
            ).fetchone()["images"]
            # Support tickets (0015): by person id, or written from one of the person's emails.
            document["support_tickets"] = conn.execute(
                "SELECT privacy.support_tickets_of(%s) AS tickets", (person_id,)
            ).fetchone()["tickets"]
            # The migration's ops and raw rows about the person (legacy exports, CRM push; see 0014).
            document["migration_records"] = conn.execute(
                "SELECT privacy.export_person_ops(%s) AS records", (person_id,)
            ).fetchone()["records"]
    except psycopg.errors.NoDataFound as error:
        raise PersonNotFound(f"no person {person_id}") from error
    log.info(
        "exported person: %d person rows, %d raw records, %d audit references",
        len(document["people"]), len(document["raw_records"]), len(document["audit_references"]),
    )  # fmt: skip
    return document


def erase_person(url: str, person_id: str, reason: str, actor: Actor) -> ErasureResult:
    """Remove or pseudonymise the person's personal data, keeping the financial trail; audited."""
    import psycopg

    from cdp.crm.reports import erase_from_reports

    person_id = _person_id(person_id)
    try:
        with transaction(url, actor) as conn:
            # First the migration's ops and raw rows (found by the emails and ids erase_person blanks).
            ops = conn.execute(
                "SELECT privacy.erase_person_ops(%s, %s) AS counts", (person_id, reason)
            ).fetchone()
            row = conn.execute(
                "SELECT privacy.erase_person(%s, %s) AS counts", (person_id, reason)
            ).fetchone()
            # The CRM push reports on disk hold the values of the people they list: the person's rows go
            # too, once the erasure is committed, and those of everyone merged into them (a report written
            # before a merge lists the absorbed person under their own id).
            ids = {
                str(r["person_id"])
                for r in conn.execute(
                    "SELECT person_id FROM core.person WHERE person_id = %s OR merged_into = %s",
                    (person_id, person_id),
                )
            }
            reports = [
                r["report_path"]
                for r in conn.execute(
                    "SELECT report_path FROM ops.crm_push_run WHERE report_path IS NOT NULL"
                )
            ]
    except psycopg.errors.NoDataFound as error:
        raise PersonNotFound(f"no person {person_id}") from error
    counts = {
        **dict(row["counts"]),
        "migration_records": dict(ops["counts"]),
        "crm_push_reports": erase_from_reports(reports, ids),
    }
    log.info("erased person: %s", json.dumps({k: v for k, v in counts.items() if k != "erasure_id"}))
    return ErasureResult(person_id, counts)


def create_login(
    url: str, login: str, role: str, password: str, actor: Actor, *, organization_id: str | None = None
) -> None:
    """A login user that is a member of one application role (and, for a partner, bound to its organisation)."""
    if role not in APPLICATION_ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(APPLICATION_ROLES)}")
    with transaction(url, actor) as conn:
        conn.execute(
            "SELECT privacy.create_login(%s, %s, %s, %s::uuid)", (login, role, password, organization_id)
        )
