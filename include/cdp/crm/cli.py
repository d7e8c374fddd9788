"""``cdp crm conflicts`` and ``cdp crm resolve``: the review queue of CRM fields staff edited after our push.

The list shows who changed what and when (no values: those are in the CRM, and in the run's report).
"""

from __future__ import annotations

import argparse
import getpass

from cdp.warehouse import Actor, connect, resolve_url


def _conflicts(args: argparse.Namespace) -> int:
    url = resolve_url()
    with connect(url, Actor("cli:crm"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT conflict_id, person_id, field, crm_id, crm_last_modified, crm_last_modified_by,"
            " detected_run_id FROM ops.crm_push_conflict WHERE resolved_at IS NULL ORDER BY conflict_id"
        ).fetchall()
    for row in rows:
        print(
            f"{row['conflict_id']}\tperson {row['person_id']}\t{row['field']}\tCRM {row['crm_id']}\t"
            f"changed {row['crm_last_modified']:%Y-%m-%d %H:%M} UTC by {row['crm_last_modified_by']}"
            if row["crm_last_modified"]
            else f"{row['conflict_id']}\tperson {row['person_id']}\t{row['field']}\tCRM {row['crm_id']}"
        )
    print(f"{len(rows)} open conflicts")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    from cdp.crm.push import resolve_conflict

    reviewer = args.reviewer or getpass.getuser()
    try:
        resolve_conflict(resolve_url(), args.conflict_id, args.decision, Actor(f"cli:{reviewer}"))
    except LookupError as error:
        print(f"error: {error}")
        return 1
    print(f"conflict {args.conflict_id} resolved: {args.decision}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    crm = commands.add_parser("crm", help="the CRM push: conflicts with staff edits")
    actions = crm.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("conflicts", help="list CRM fields held because staff edited them")
    listing.set_defaults(handler=_conflicts)
    resolve = actions.add_parser("resolve", help="decide a conflict: keep the CRM's value, or push ours")
    resolve.add_argument("conflict_id", type=int)
    resolve.add_argument("decision", choices=["keep_crm", "push_warehouse"])
    resolve.add_argument("--reviewer", help="your name, for the audit trail (default: your login)")
    resolve.set_defaults(handler=_resolve)
