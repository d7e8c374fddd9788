"""Who could do what: the effective privileges of every login and application role on the financial, personal
and audit tables (and every definer function), read from the catalog, and the monthly privilege snapshots whose
differences are the pack's access changes.

PostgreSQL logs no GRANT, REVOKE or CREATE ROLE, so the pack cannot list them as events. Each evidence run
stores what the catalog grants as a snapshot labelled with the month it closes (``ops.privilege_snapshot``,
revision 0029; appended only when the catalog differs from that month's last snapshot), and the access changes
of a month are its snapshot compared with the previous month's. ``LIMITS`` says what such a diff cannot show.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from cdp import audit
from cdp.paths import SQL_DIR
from cdp.privacy import role_matrix

_SQL = SQL_DIR / "evidence"

#: The money: donations and what they are reconciled against, the corrections and the reconciliation itself.
FINANCIAL_TABLES = (
    "core.donation", "core.refund", "core.donation_soft_credit", "core.balance_transaction", "core.dispute",
    "core.ledger_posting", "ops.donation_correction", "ops.finance_ledger_account", "ops.reconciliation_run",
    "ops.reconciliation_total", "ops.reconciliation_result", "ops.reconciliation_explanation", "ops.donation_trace",
)  # fmt: skip
#: The funds a gift is allocated to (NPSP General Accounting Units and Allocations, synced from the CRM) and
#: the programs they pay for (changed only through a reviewed program change).
ALLOCATION_TABLES = (
    "core.fund", "core.donation_allocation", "core.program", "core.program_course", "core.program_fund",
    "ops.program_change",
)  # fmt: skip
#: Personal data beyond the tables audit.personal_column lists (which are read from it): consent, payloads,
#: quarantined records, the outreach list, the identity graph.
PERSONAL_TABLES = (
    "core.person", "core.household", "core.person_source_id", "core.consent", "raw.records", "ops.quarantine",
    "mart.outreach_eligible",
)  # fmt: skip
#: The trail itself, its personal images, its readable view, and the snapshots.
AUDIT_TABLES = (
    "audit.audit_events", "audit.personal_image", "audit.personal_column", "audit.readable_events",
    "ops.privilege_snapshot",
)  # fmt: skip

LIMITS = (
    "A snapshot diff shows the state at two moments, not the events between them. It cannot show: who ran a "
    "GRANT, REVOKE or CREATE ROLE, nor when (only that it happened between the two snapshots); a privilege "
    "granted and revoked again between two snapshots; what a login did with a privilege (that is the audit "
    "trail's part: every change to an audited table is an event); password changes; the exact month of a change "
    "made between a month's end and the taking of its snapshot (the pack's run, on the 2nd after the "
    "reconciliation: it counts in the month just closed); changes to objects outside the pack's tables. "
    "Logins made through privacy.create_login, and the services' logins made or changed by `cdp warehouse "
    "logins`, also leave an audit event (listed in access_events.csv with who made them and when)."
)


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: int
    month: date
    taken_at: Any
    taken_by: str
    digest: str
    principals: list[dict[str, Any]]
    privileges: list[dict[str, Any]]

    def header(self) -> dict[str, Any]:
        """What identifies the snapshot in the pack (never the run that read it)."""
        return {
            "snapshot_id": self.snapshot_id,
            "month": f"{self.month:%Y-%m}",
            "taken_at": self.taken_at,
            "taken_by": self.taken_by,
            "digest": self.digest,
        }


def scope(conn: psycopg.Connection) -> dict[str, str]:
    """The relations the pack covers -> their category (financial, personal, audit; joined by '+')."""
    personal = {
        row[0]
        for row in conn.cursor(row_factory=psycopg.rows.tuple_row).execute(
            "SELECT DISTINCT table_name FROM audit.personal_column"
        )
    }
    categories: dict[str, set[str]] = {}
    for category, names in (
        ("financial", (*FINANCIAL_TABLES, *ALLOCATION_TABLES)),
        ("personal", (*PERSONAL_TABLES, *sorted(personal))),
        ("audit", AUDIT_TABLES),
    ):
        for name in names:
            categories.setdefault(name, set()).add(category)
    return {name: "+".join(sorted(found)) for name, found in categories.items()}


def read_catalog(conn: psycopg.Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(principals, privileges) as the catalog states them now, sorted; privileges holds non-empty cells only."""
    tuples = psycopg.rows.tuple_row
    roles = role_matrix.application_roles(conn)
    principals = [
        {"name": name, "login": login, "superuser": superuser, "bypassrls": bypassrls, "createrole": createrole,
         "inherit": inherit, "member_of": list(member_of)}
        for name, login, superuser, bypassrls, createrole, inherit, member_of in conn.cursor(
            row_factory=tuples
        ).execute((_SQL / "principals.sql").read_text(), {"roles": roles})
    ]  # fmt: skip
    names = [principal["name"] for principal in principals]
    in_scope = scope(conn)
    cells = role_matrix.read_cells(conn, names)
    picked = {
        (kind, name): by_role
        for (kind, name), by_role in cells.items()
        if (kind in ("table", "view") and name in in_scope) or kind == "definer function"
    }
    partial_relations = sorted(
        {name for (kind, name), by_role in picked.items() if kind != "definer function"
         and any(set(letters) & set("siu") for letters in by_role.values())}
    )  # fmt: skip
    columns: dict[tuple[str, str], tuple[list[str], list[str], list[str]]] = {}
    if partial_relations:
        for grantee, name, select, insert, update in conn.cursor(row_factory=tuples).execute(
            (_SQL / "column_privileges.sql").read_text(), {"roles": names, "relations": partial_relations}
        ):
            columns[(grantee, name)] = (list(select), list(insert), list(update))
    privileges = []
    for (kind, name), by_role in picked.items():
        for grantee, letters in by_role.items():
            if not letters:
                continue
            select, insert, update = columns.get((grantee, name), ([], [], []))
            privileges.append({
                "grantee": grantee,
                "kind": kind,
                "object": name,
                "category": in_scope.get(name, "function"),
                "privileges": letters,
                "select_columns": select if "s" in letters else [],
                "insert_columns": insert if "i" in letters else [],
                "update_columns": update if "u" in letters else [],
            })  # fmt: skip
    privileges.sort(key=lambda row: (row["object"], row["kind"], row["grantee"]))
    return principals, privileges


def digest(principals: list[dict[str, Any]], privileges: list[dict[str, Any]]) -> str:
    text = json.dumps(
        {"principals": principals, "privileges": privileges}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_SNAPSHOT_COLUMNS = "snapshot_id, month, taken_at, taken_by, digest, principals, privileges"


def _snapshot(row: dict[str, Any] | None) -> Snapshot | None:
    return None if row is None else Snapshot(**row)


def latest_snapshot(conn: psycopg.Connection, month: date, *, before: bool = False) -> Snapshot | None:
    """The month's newest snapshot, or (``before``) the newest of the latest earlier month that has one."""
    condition = "month < %s" if before else "month = %s"
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        row = cursor.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM ops.privilege_snapshot WHERE {condition}"  # noqa: S608 (fixed text)
            " ORDER BY month DESC, snapshot_id DESC LIMIT 1",
            (month,),
        ).fetchone()
    return _snapshot(row)


def closing_snapshot(conn: psycopg.Connection, month: date) -> Snapshot | None:
    """The privileges at the close of ``month``.

    While no later month has a snapshot, the catalog now is the month's close: it is read, and stored as a new
    snapshot for the month when it differs from the month's last one (so a re-run of an unchanged catalog
    stores nothing and gives the same pack). Once a later month has one, the month's stored snapshot is used
    (None if it never had one): today's catalog does not describe a closed month.
    """
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cursor:
        later = cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM ops.privilege_snapshot WHERE month > %s)", (month,)
        )
        if later.fetchone()[0]:
            return latest_snapshot(conn, month)
    principals, privileges = read_catalog(conn)
    current = digest(principals, privileges)
    stored = latest_snapshot(conn, month)
    if stored is not None and stored.digest == current:
        return stored
    with conn.transaction(), conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        row = cursor.execute(
            "INSERT INTO ops.privilege_snapshot (month, digest, principals, privileges)"
            f" VALUES (%s, %s, %s::jsonb, %s::jsonb) RETURNING {_SNAPSHOT_COLUMNS}",  # noqa: S608 (fixed text)
            (month, current, json.dumps(principals), json.dumps(privileges)),
        ).fetchone()
        audit.record_event(
            conn, "privilege_snapshot", "ops.privilege_snapshot", str(row["snapshot_id"]),
            {"month": f"{month:%Y-%m}", "digest": current, "principals": len(principals),
             "privileges": len(privileges), "replaces": stored.snapshot_id if stored else None},
        )  # fmt: skip
    return _snapshot(row)


def _cell(row: dict[str, Any] | None) -> str:
    """A privilege as the access-changes file shows it: letters, and the columns of a partial grant."""
    if row is None:
        return ""
    parts = [row["privileges"]]
    for action in ("select", "insert", "update"):
        if row.get(f"{action}_columns"):
            parts.append(f"{action}: {' '.join(row[f'{action}_columns'])}")
    return "; ".join(parts)


ATTRIBUTES = ("login", "superuser", "bypassrls", "createrole", "inherit")


def differences(baseline: Snapshot | None, closing: Snapshot | None) -> list[dict[str, str]]:
    """What changed from ``baseline`` to ``closing``: roles and logins made or dropped, their attributes,
    memberships granted or revoked, privileges changed; sorted. Empty when either is missing."""
    if baseline is None or closing is None:
        return []
    changes: list[dict[str, str]] = []

    def add(change: str, principal: str, item: str, before: object, after: object) -> None:
        changes.append({"change": change, "principal": principal, "object": item,
                        "before": str(before), "after": str(after)})  # fmt: skip

    before_p = {row["name"]: row for row in baseline.principals}
    after_p = {row["name"]: row for row in closing.principals}
    for name in sorted(before_p.keys() | after_p.keys()):
        old, new = before_p.get(name), after_p.get(name)
        if old is None:
            add("login_created" if new["login"] else "role_created", name, "", "",
                f"member of {' '.join(new['member_of']) or 'no application role'}")  # fmt: skip
        elif new is None:
            add("login_dropped" if old["login"] else "role_dropped", name, "", "", "")
        else:
            for attribute in ATTRIBUTES:
                if old[attribute] != new[attribute]:
                    add("attribute_changed", name, attribute, old[attribute], new[attribute])
        old_roles = set(old["member_of"]) if old else set()
        new_roles = set(new["member_of"]) if new else set()
        for role in sorted(new_roles - old_roles):
            add("membership_granted", name, role, "", "member")
        for role in sorted(old_roles - new_roles):
            add("membership_revoked", name, role, "member", "")
    before_g = {(row["grantee"], row["kind"], row["object"]): row for row in baseline.privileges}
    after_g = {(row["grantee"], row["kind"], row["object"]): row for row in closing.privileges}
    for key in sorted(before_g.keys() | after_g.keys()):
        old_cell, new_cell = _cell(before_g.get(key)), _cell(after_g.get(key))
        if old_cell != new_cell:
            grantee, kind, name = key
            add("privilege_granted" if not old_cell else "privilege_revoked" if not new_cell else "privilege_changed",
                grantee, f"{kind} {name}", old_cell, new_cell)  # fmt: skip
    changes.sort(key=lambda row: (row["principal"], row["change"], row["object"]))
    return changes
